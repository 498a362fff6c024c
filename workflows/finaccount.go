package workflows

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"paysaga"
	"paysaga/activities"
	"paysaga/events"
)

// FinAccountWorkflowName is the registered type of the bank-account registration workflow.
// Callers talk to it with UpdateOutcome (the registered or failed paysaga.Account) and
// QueryStatus (the account as the workflow knows it).
const FinAccountWorkflowName = "FinAccountWorkflow"

// FinAccountWorkflowID is the workflow ID of an account's registration: only the opaque account
// id, never the account number or anything else personal.
func FinAccountWorkflowID(accountID string) string { return "finaccount:" + accountID }

// FinAccountInput starts a registration. The account is already stored PENDING with its sealed
// number and birth date; the workflow only ever handles its ID.
type FinAccountInput struct {
	AccountID string `json:"account_id"`
	OwnerID   string `json:"owner_id"`
}

// FinAccountConfig holds the deadlines of the registration. Zero fields take the defaults of
// DefaultFinAccountConfig; they change activity options only, never the commands emitted.
type FinAccountConfig struct {
	// BankCallTimeout bounds one attempt of a bank call (it should exceed the nh client's own).
	BankCallTimeout time.Duration
	// OpenDeadline bounds the retries of OpenFinAccountDirect (transport failures).
	OpenDeadline time.Duration
	// IssueDeadline is how long the bank is asked whether the fin account was issued before
	// the registration fails.
	IssueDeadline time.Duration
	// PollInterval is the first pause between two checks; it grows to MaxPollInterval.
	PollInterval    time.Duration
	MaxPollInterval time.Duration
}

// DefaultFinAccountConfig returns the deadlines used when none are configured.
func DefaultFinAccountConfig() FinAccountConfig {
	return FinAccountConfig{
		BankCallTimeout: 30 * time.Second,
		OpenDeadline:    2 * time.Minute,
		IssueDeadline:   10 * time.Minute,
		PollInterval:    time.Second,
		MaxPollInterval: 15 * time.Second,
	}
}

func (c FinAccountConfig) withDefaults() FinAccountConfig {
	d := DefaultFinAccountConfig()
	orDefault(&c.BankCallTimeout, d.BankCallTimeout)
	orDefault(&c.OpenDeadline, d.OpenDeadline)
	orDefault(&c.IssueDeadline, d.IssueDeadline)
	orDefault(&c.PollInterval, d.PollInterval)
	orDefault(&c.MaxPollInterval, d.MaxPollInterval)
	return c
}

// registeredOnlyActiveChange versions account.registered: before it, a registration the
// store ended FAILED at activation (number_in_use) was announced as registered.
const registeredOnlyActiveChange = "registered-only-active"

// FinAccounts runs registration workflows with a configuration; the worker registers its
// FinAccountWorkflow method under FinAccountWorkflowName.
type FinAccounts struct {
	cfg FinAccountConfig
}

// NewFinAccounts returns the registration workflows with cfg (zero fields: defaults).
func NewFinAccounts(cfg FinAccountConfig) *FinAccounts { return &FinAccounts{cfg: cfg.withDefaults()} }

// FinAccountWorkflow registers a customer's bank account with the bank: OpenFinAccountDirect
// (for withdrawals, with the holder's own birth date) → CheckOpenFinAccountDirect polled through
// activity retries until the fin account is issued or the deadline passes → ACTIVE, or FAILED
// with the bank's code and message → account.registered published.
func (w *FinAccounts) FinAccountWorkflow(ctx workflow.Context, in FinAccountInput) (paysaga.Account, error) {
	if !paysaga.HasPrefix(in.AccountID, paysaga.PrefixAccount) {
		return paysaga.Account{}, temporal.NewNonRetryableApplicationError("incomplete registration input", paysaga.EINVALID, nil)
	}
	acct := paysaga.Account{ID: in.AccountID, OwnerID: in.OwnerID, Status: paysaga.AccountPending}
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (paysaga.Account, error) { return acct, nil }); err != nil {
		return acct, err
	}
	if err := workflow.SetUpdateHandler(ctx, UpdateOutcome, func(ctx workflow.Context) (paysaga.Account, error) {
		err := workflow.Await(ctx, func() bool { return acct.Status != paysaga.AccountPending })
		return acct, err
	}); err != nil {
		return acct, err
	}

	out, registered, err := w.register(ctx, in.AccountID)
	if err != nil {
		return acct, err
	}
	acct = out
	if registered && (acct.Status == paysaga.AccountActive ||
		workflow.GetVersion(ctx, registeredOnlyActiveChange, workflow.DefaultVersion, 1) == workflow.DefaultVersion) {
		// account.registered is for an ACTIVE account; a registration that ended FAILED when
		// it was activated (number_in_use) announces nothing since registeredOnlyActiveChange.
		w.publishRegistered(ctx, acct)
	}
	// Every outcome update is answered before the run ends.
	err = workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) })
	return acct, err
}

// register opens the account at the bank and waits for its fin account. It returns the
// account ACTIVE (registered: by this run) or FAILED, or as it is when another run had
// finished it already (a client's retry that raced with the end of the previous run); an
// error only when the database holds a state the rules forbid.
func (w *FinAccounts) register(ctx workflow.Context, accountID string) (paysaga.Account, bool, error) {
	step := activities.FinAccountInput{AccountID: accountID}
	err := workflow.ExecuteActivity(w.bankOptions(ctx, w.cfg.OpenDeadline), activities.OpenFinAccountName, step).Get(ctx, nil)
	opened := err == nil
	if opened {
		var acct paysaga.Account
		err = workflow.ExecuteActivity(w.bankOptions(ctx, w.cfg.IssueDeadline), activities.CheckFinAccountName, step).Get(ctx, &acct)
		if err == nil {
			return acct, true, nil
		}
	}
	code, msg := FailureIssuanceTimeout, "the bank did not issue the fin account in time; register the account again later"
	if f, ok := failureOf(err, "registered"); ok {
		code, msg = f.code, f.message
	}
	switch errType(err) {
	case activities.ErrTypeNotPending:
		var acct paysaga.Account
		var appErr *temporal.ApplicationError
		if errors.As(err, &appErr) && appErr.HasDetails() {
			_ = appErr.Details(&acct)
		}
		return acct, false, nil
	case activities.ErrTypeStateConflict:
		return paysaga.Account{}, false, fmt.Errorf("register account %s: %w", accountID, err)
	case activities.ErrTypeInProgress, activities.ErrTypeDeclined, activities.ErrTypeInvalidRequest:
		// The deadline passed while the bank was still issuing (the default reason), or a refusal.
	default:
		if !opened {
			code, msg = FailureBankUnavailable, "the bank could not be reached; register the account again later"
		}
	}
	workflow.GetLogger(ctx).Info("account registration failed", "account_id", accountID, "rpcd", code)
	var acct paysaga.Account
	lctx := localStoreOptions(ctx, time.Hour, 30*time.Second)
	if err := workflow.ExecuteLocalActivity(lctx, activities.FailFinAccountName,
		activities.FailFinAccountInput{AccountID: accountID, Code: code, Message: msg}).Get(ctx, &acct); err != nil {
		return paysaga.Account{}, false, fmt.Errorf("record failed registration of account %s: %w", accountID, err)
	}
	return acct, false, nil
}

// bankOptions are the options of a registration bank call: retried with backoff until
// deadline, except for the answers the activity marks final (activities/errors.go). For the
// check, the retries are the polling loop: "in progress" (ErrTypeInProgress) is retryable.
func (w *FinAccounts) bankOptions(ctx workflow.Context, deadline time.Duration) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    w.cfg.BankCallTimeout,
		ScheduleToCloseTimeout: deadline,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    w.cfg.PollInterval,
			BackoffCoefficient: 1.5,
			MaximumInterval:    w.cfg.MaxPollInterval,
		},
	})
}

// publishRegistered announces the registered account, retrying until the broker is back. The
// outcome update has been answered already: publishing never delays the customer.
func (w *FinAccounts) publishRegistered(ctx workflow.Context, acct paysaga.Account) {
	info := workflow.GetInfo(ctx)
	in := activities.PublishAccountEventInput{
		EventID:    accountEventID(acct.ID, info.WorkflowExecution.RunID),
		Type:       events.AccountRegistered,
		Account:    acct,
		OccurredAt: acct.UpdatedAt,
	}
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    30 * time.Second,
		ScheduleToCloseTimeout: 24 * time.Hour,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    time.Minute,
		},
	})
	if err := workflow.ExecuteActivity(actx, activities.PublishAccountEventName, in).Get(ctx, nil); err != nil {
		workflow.GetLogger(ctx).Error("account event not published", "account_id", acct.ID, "event_id", in.EventID, "error", err)
	}
}

// accountEventID is the ID of the registered event of one registration run: stable across
// retries of the publish, new when the account is registered again (a new run).
func accountEventID(accountID, runID string) string {
	run := strings.ReplaceAll(runID, "-", "")
	if len(run) > 12 {
		run = run[:12]
	}
	return fmt.Sprintf("%s%s_reg_%s", paysaga.PrefixEvent, strings.TrimPrefix(accountID, paysaga.PrefixAccount), run)
}
