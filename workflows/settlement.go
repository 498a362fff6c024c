package workflows

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"paysaga/activities"
	"paysaga/events"
	"paysaga/settlement"
)

// Registered types of the settlement workflows (issue 17).
const (
	// SettlementDayWorkflowName settles a day: it starts SettlementWorkflow for every merchant
	// with something to settle. The Temporal Schedule starts it daily; payctl's backfill too.
	SettlementDayWorkflowName = "SettlementDayWorkflow"
	// SettlementWorkflowName settles one merchant's day: compute once, pay the net out once.
	SettlementWorkflowName = "SettlementWorkflow"
)

// SearchScheduledStartTime is the time the Schedule meant to start a run at (set by Temporal on
// every run a Schedule starts): a late start still settles the day before it.
var SearchScheduledStartTime = temporal.NewSearchAttributeKeyTime("TemporalScheduledStartTime")

// SettlementDayInput names the day to settle (YYYY-MM-DD, KST); empty: the day before the
// scheduled start.
type SettlementDayInput struct {
	Day string `json:"day,omitempty"`
}

// SettlementDayResult says what a day's run did, per merchant settlement status.
type SettlementDayResult struct {
	Day       string         `json:"day"`
	Merchants int            `json:"merchants"`
	ByStatus  map[string]int `json:"by_status"`
	// Busy counts merchants whose settlement of the day another run is working on.
	Busy int `json:"busy,omitempty"`
	// Errors counts merchants whose settlement run failed (nothing was paid by it: see
	// SettlementWorkflow); the next run of the day, or a retry, takes them again.
	Errors int `json:"errors,omitempty"`
}

// SettlementInput names a merchant's day. Retry is an operator's retry of a FAILED or UNKNOWN
// settlement: reopened, its payouts in doubt asked about, then paid with a new transfer.
type SettlementInput struct {
	MerchantID string `json:"merchant_id"`
	Day        string `json:"day"`
	Retry      bool   `json:"retry,omitempty"`
	Actor      string `json:"actor,omitempty"`
}

// Failure codes of settlements (settlements.failure_code).
const (
	FailureNoSettlementAccount = "no_account"
)

// maxParallelSettlements bounds the merchants a day's run settles at once.
const maxParallelSettlements = 8

// SettlementDayWorkflow settles a day: every merchant with payments or refunds to settle (or a
// settlement of the day still PENDING) gets SettlementWorkflow under the ID
// settlement:<merchant>:<day>. A run again for the same day — the Schedule's, a backfill's — pays
// nobody twice: a settled merchant has nothing left, and the store pays a settlement once.
func (w *Payments) SettlementDayWorkflow(ctx workflow.Context, in SettlementDayInput) (SettlementDayResult, error) {
	day := in.Day
	if day == "" {
		at := workflow.Now(ctx)
		if t, ok := workflow.GetTypedSearchAttributes(ctx).GetTime(SearchScheduledStartTime); ok && !t.IsZero() {
			at = t
		}
		day = settlement.PreviousDay(at)
	}
	res := SettlementDayResult{Day: day, ByStatus: map[string]int{}}
	if _, err := settlement.ParseDay(day); err != nil {
		return res, temporal.NewNonRetryableApplicationError("a settlement day is YYYY-MM-DD", "InvalidInput", nil)
	}
	var merchants []string
	if err := workflow.ExecuteActivity(storeOptions(ctx), activities.ListSettlementMerchantsName, day).Get(ctx, &merchants); err != nil {
		return res, fmt.Errorf("merchants to settle on %s: %w", day, err)
	}
	res.Merchants = len(merchants)
	logger := workflow.GetLogger(ctx)
	for start := 0; start < len(merchants); start += maxParallelSettlements {
		batch := merchants[start:min(start+maxParallelSettlements, len(merchants))]
		futures := make([]workflow.ChildWorkflowFuture, len(batch))
		for i, m := range batch {
			cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
				WorkflowID: settlement.WorkflowID(m, day),
				// A payout goes on even if this run is terminated.
				ParentClosePolicy:     enumspb.PARENT_CLOSE_POLICY_ABANDON,
				TypedSearchAttributes: settlementSearchAttributes(m, settlement.Pending),
			})
			futures[i] = workflow.ExecuteChildWorkflow(cctx, SettlementWorkflowName, SettlementInput{MerchantID: m, Day: day})
		}
		for i, f := range futures {
			var s settlement.Settlement
			err := f.Get(ctx, &s)
			var started *temporal.ChildWorkflowExecutionAlreadyStartedError
			switch {
			case errors.As(err, &started):
				res.Busy++
			case err != nil:
				res.Errors++
				logger.Error("merchant settlement failed", "merchant_id", batch[i], "day", day, "error", err)
			case s.ID == "":
				res.ByStatus["NOTHING"]++
			default:
				res.ByStatus[string(s.Status)]++
			}
		}
	}
	return res, nil
}

// SettlementWorkflow settles one merchant's day: prepare (computed and stored once: the lines,
// the fees, the carry-over) → pay the positive net out (the transfer row before the call, lost
// answers asked about with CheckOnReceivedTransfer, never sent twice) → PAID, or FAILED (the
// bank refused; nothing moved), or UNKNOWN (the bank cannot say; an operator retries, and the
// retry asks the bank first) → announce. A settlement already PAID or CARRIED_OVER is returned
// as it is; a FAILED or UNKNOWN one waits for an operator's retry (Retry).
func (w *Payments) SettlementWorkflow(ctx workflow.Context, in SettlementInput) (settlement.Settlement, error) {
	if in.MerchantID == "" || in.Day == "" {
		return settlement.Settlement{}, temporal.NewNonRetryableApplicationError("incomplete settlement input", "InvalidInput", nil)
	}
	r := &settlementRun{cfg: w.cfg, in: in, tag: settlementTag(ctx)}
	var s settlement.Settlement
	if err := workflow.ExecuteActivity(storeOptions(ctx), activities.PrepareSettlementName,
		activities.PrepareSettlementInput{MerchantID: in.MerchantID, Day: in.Day}).Get(ctx, &s); err != nil {
		return s, err
	}
	if s.ID == "" {
		return s, nil // nothing to settle
	}
	r.s = s
	if in.Retry && s.Status.Retryable() {
		workflow.GetLogger(ctx).Info("settlement retried by an operator", "settlement_id", s.ID, "actor", in.Actor)
		if err := workflow.ExecuteActivity(storeOptions(ctx), activities.ReopenSettlementName, s.ID).Get(ctx, &r.s); err != nil {
			return r.s, err
		}
	}
	if r.s.Status != settlement.Pending {
		return r.s, r.mark(ctx)
	}
	out, err := r.payout(ctx)
	if err != nil {
		return r.s, err
	}
	if err := r.finish(ctx, out); err != nil {
		return r.s, err
	}
	return r.s, nil
}

// settlementRun is the state of one run of a merchant's settlement.
type settlementRun struct {
	cfg      PaymentConfig
	in       SettlementInput
	tag      string
	s        settlement.Settlement
	attempts int
}

// payoutOutcome is where the payout ended.
type payoutOutcome struct {
	status         settlement.Status
	transferID     string
	failureCode    string
	failureMessage string
}

// payout sends transfers until one executes, the bank refuses, the outcome stays unknown past
// the deadline, or MaxDebitAttempts transfers certainly did not execute.
func (r *settlementRun) payout(ctx workflow.Context) (payoutOutcome, error) {
	for {
		r.attempts++
		tid := fmt.Sprintf("trf_%s_%s_%d", strings.TrimPrefix(r.s.ID, settlement.PrefixSettlement), r.tag, r.attempts)
		var res activities.CreditResult
		err := workflow.ExecuteActivity(r.payoutOptions(ctx), activities.PayoutName,
			activities.PayoutInput{SettlementID: r.s.ID, TransferID: tid}).Get(ctx, &res)
		if err == nil {
			return payoutOutcome{status: settlement.Paid, transferID: res.TransferID}, nil
		}
		var appErr *temporal.ApplicationError
		errors.As(err, &appErr)
		switch settlementErrType(err) {
		case activities.ErrTypeDeclined:
			var ans activities.BankAnswer
			if appErr != nil && appErr.HasDetails() {
				_ = appErr.Details(&ans)
			}
			return payoutOutcome{status: settlement.Failed, failureCode: ans.Rpcd, failureMessage: ans.Rsms}, nil
		case activities.ErrTypeNameMismatch:
			return payoutOutcome{status: settlement.Failed, failureCode: FailureNameMismatch,
				failureMessage: "the settlement account's holder is not the merchant"}, nil
		case activities.ErrTypeAccountUnusable:
			return payoutOutcome{status: settlement.Failed, failureCode: FailureNoSettlementAccount,
				failureMessage: "the merchant has no usable settlement account"}, nil
		case activities.ErrTypeInvalidRequest:
			return payoutOutcome{status: settlement.Failed, failureCode: FailureInvalidRequest,
				failureMessage: "the bank request was refused as malformed"}, nil
		case activities.ErrTypeStateConflict:
			// Nothing was sent by this attempt (the store refused to record it).
			return payoutOutcome{}, err
		case activities.ErrTypeNotExecuted:
			// Certainly not sent: a new transfer is safe.
		default:
			workflow.GetLogger(ctx).Warn("payout outcome unknown; checking with the bank", "settlement_id", r.s.ID)
			chk, err := r.check(ctx)
			if err != nil {
				return payoutOutcome{status: settlement.Unknown}, nil
			}
			if chk.Executed {
				return payoutOutcome{status: settlement.Paid, transferID: chk.TransferID}, nil
			}
		}
		if r.attempts >= r.cfg.MaxDebitAttempts {
			return payoutOutcome{status: settlement.Failed, failureCode: FailureNotExecuted,
				failureMessage: fmt.Sprintf("the bank did not execute the payout (%d attempts)", r.attempts)}, nil
		}
		if err := workflow.Sleep(ctx, r.cfg.RetryDelay*time.Duration(r.attempts)); err != nil {
			return payoutOutcome{}, err
		}
	}
}

// check asks the bank about the settlement's payouts whose answer was lost, until the deadline.
func (r *settlementRun) check(ctx workflow.Context) (activities.CheckCreditResult, error) {
	cctx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    r.cfg.BankCallTimeout,
		ScheduleToCloseTimeout: r.cfg.UnknownDeadline,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        2 * time.Second,
			BackoffCoefficient:     2,
			MaximumInterval:        time.Minute,
			NonRetryableErrorTypes: []string{activities.ErrTypeStateConflict, activities.ErrTypeAccountUnusable},
		},
	})
	var chk activities.CheckCreditResult
	err := workflow.ExecuteActivity(cctx, activities.CheckPayoutName,
		activities.CheckPayoutInput{SettlementID: r.s.ID, SendableFor: r.cfg.BankCallTimeout + r.cfg.SendMargin}).Get(ctx, &chk)
	return chk, err
}

// finish records the outcome, asking the bank again when the store refuses FAILED because a
// payout executed or may have, then announces it.
func (r *settlementRun) finish(ctx workflow.Context, out payoutOutcome) error {
	for {
		var s settlement.Settlement
		err := workflow.ExecuteActivity(storeOptions(ctx), activities.FinishSettlementName, activities.FinishSettlementInput{
			SettlementID: r.s.ID, Status: out.status, TransferID: out.transferID,
			FailureCode: out.failureCode, FailureMessage: out.failureMessage,
		}).Get(ctx, &s)
		switch settlementErrType(err) {
		case "":
			if err != nil {
				return err
			}
			r.s = s
			return r.announce(ctx)
		case activities.ErrTypeCreditExecuted, activities.ErrTypeUnknownOutcome:
			chk, cerr := r.check(ctx)
			switch {
			case cerr != nil:
				out = payoutOutcome{status: settlement.Unknown}
			case chk.Executed:
				out = payoutOutcome{status: settlement.Paid, transferID: chk.TransferID}
			}
			continue // not executed: FAILED again, now that the check recorded it
		}
		return err
	}
}

// announce publishes the outcome and marks the run for operators.
func (r *settlementRun) announce(ctx workflow.Context) error {
	typ := ""
	switch r.s.Status {
	case settlement.Paid:
		typ = events.SettlementPaid
	case settlement.Failed:
		typ = events.SettlementFailed
	case settlement.Unknown:
		typ = events.SettlementUnknown
	}
	if typ != "" {
		id := fmt.Sprintf("evt_%s_%s_%s", strings.TrimPrefix(r.s.ID, settlement.PrefixSettlement), strings.ToLower(string(r.s.Status)), r.tag)
		publishEvent(ctx, activities.PublishSettlementEventName, activities.PublishSettlementEventInput{
			EventID: id, Type: typ, Settlement: r.s, OccurredAt: workflow.Now(ctx)}, "settlement_id", r.s.ID, "event_id", id)
	}
	return r.mark(ctx)
}

// mark sets the run's search attributes to the settlement's status.
func (r *settlementRun) mark(ctx workflow.Context) error {
	return workflow.UpsertTypedSearchAttributes(ctx,
		SearchPaymentStatus.ValueSet(string(r.s.Status)),
		SearchNeedsAttention.ValueSet(r.s.Status.Retryable()))
}

func (r *settlementRun) payoutOptions(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    r.cfg.BankCallTimeout,
		ScheduleToCloseTimeout: r.cfg.DebitDeadline,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    15 * time.Second,
			// Only failures before the request left are retried (a database outage, a failed
			// depositor inquiry); everything the bank may have seen is final for this transfer.
			NonRetryableErrorTypes: []string{
				activities.ErrTypeDeclined, activities.ErrTypeUnknownOutcome, activities.ErrTypeNotExecuted,
				activities.ErrTypeInvalidRequest, activities.ErrTypeAccountUnusable, activities.ErrTypeStateConflict,
				activities.ErrTypeNameMismatch,
			},
		},
	})
}

// storeOptions: database steps, retried until the database answers (they move no money).
func storeOptions(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    time.Minute,
			NonRetryableErrorTypes: []string{
				activities.ErrTypeStateConflict, activities.ErrTypeUnknownOutcome, activities.ErrTypeCreditExecuted,
			},
		},
	})
}

// settlementSearchAttributes are a merchant settlement run's: the merchant and the status, no
// amount.
func settlementSearchAttributes(merchantID string, status settlement.Status) temporal.SearchAttributes {
	return temporal.NewSearchAttributes(
		SearchMerchantID.ValueSet(merchantID),
		SearchPaymentStatus.ValueSet(string(status)),
		SearchNeedsAttention.ValueSet(false),
	)
}

// SettlementSearchAttributes are the search attributes a merchant settlement run is started
// with (by the day's run, or by payctl's retry).
func SettlementSearchAttributes(merchantID string) temporal.SearchAttributes {
	return settlementSearchAttributes(merchantID, settlement.Pending)
}

// settlementTag is a short stable name of this run: a retry (a new run) gets new transfer IDs,
// hence new IsTunos, and new event IDs.
func settlementTag(ctx workflow.Context) string {
	sum := sha256.Sum256([]byte(workflow.GetInfo(ctx).WorkflowExecution.RunID))
	return hex.EncodeToString(sum[:4])
}

func settlementErrType(err error) string {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return appErr.Type()
	}
	return ""
}
