package workflows

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"paysaga"
	"paysaga/activities"
	"paysaga/events"
)

// The deadlines are short enough to pass within the 10 attempts the test environment allows an
// activity whose policy retries without limit.
var testFinConfig = FinAccountConfig{
	BankCallTimeout: 10 * time.Second,
	OpenDeadline:    15 * time.Second,
	IssueDeadline:   20 * time.Second,
	PollInterval:    time.Second,
	MaxPollInterval: 5 * time.Second,
}

const testAccountID = "acct_test000000000000000001"

// fakeRegistration stands in for the registration activities: it scripts the bank's answers
// and records what the workflow asked for.
type fakeRegistration struct {
	mu        sync.Mutex
	opens     int
	openFn    func(n int) error
	checks    []time.Time
	checkFn   func(n int) (paysaga.Account, error)
	fails     []activities.FailFinAccountInput
	published []activities.PublishAccountEventInput
	now       func() time.Time
}

func (f *fakeRegistration) open(_ context.Context, in activities.FinAccountInput) error {
	f.mu.Lock()
	f.opens++
	n := f.opens
	f.mu.Unlock()
	if in.AccountID != testAccountID {
		return errors.New("wrong account")
	}
	if f.openFn != nil {
		return f.openFn(n)
	}
	return nil
}

func (f *fakeRegistration) check(_ context.Context, in activities.FinAccountInput) (paysaga.Account, error) {
	f.mu.Lock()
	f.checks = append(f.checks, f.now())
	n := len(f.checks)
	f.mu.Unlock()
	return f.checkFn(n)
}

func (f *fakeRegistration) fail(_ context.Context, in activities.FailFinAccountInput) (paysaga.Account, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fails = append(f.fails, in)
	return paysaga.Account{ID: in.AccountID, Status: paysaga.AccountFailed, FailureCode: in.Code, FailureMessage: in.Message,
		MaskedNumber: "****7891", BankCode: "011"}, nil
}

func (f *fakeRegistration) publish(_ context.Context, in activities.PublishAccountEventInput) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.published = append(f.published, in)
	return nil
}

func activeAccount() paysaga.Account {
	return paysaga.Account{ID: testAccountID, OwnerID: "usr_owner", BankCode: "011", MaskedNumber: "****7891",
		Status: paysaga.AccountActive, UpdatedAt: time.Date(2026, 11, 25, 1, 0, 0, 0, time.UTC)}
}

func inProgress() error {
	return temporal.NewApplicationError("fin account not issued yet", activities.ErrTypeInProgress,
		activities.BankAnswer{Rpcd: "A0017", Rsms: "핀어카운트 발급 처리중입니다."})
}

func refused(rpcd, rsms string) error {
	return temporal.NewNonRetryableApplicationError("bank declined: "+rpcd, activities.ErrTypeDeclined, nil,
		activities.BankAnswer{Rpcd: rpcd, Rsms: rsms})
}

type finHarness struct {
	env     *testsuite.TestWorkflowEnvironment
	steps   *fakeRegistration
	mu      sync.Mutex
	outcome *paysaga.Account
	outT    time.Time
	start   time.Time
}

func newFinHarness(t *testing.T, steps *fakeRegistration) *finHarness {
	t.Helper()
	var ts testsuite.WorkflowTestSuite
	ts.SetLogger(log.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	env := ts.NewTestWorkflowEnvironment()
	h := &finHarness{env: env, steps: steps}
	steps.now = env.Now
	env.RegisterWorkflowWithOptions(NewFinAccounts(testFinConfig).FinAccountWorkflow, workflow.RegisterOptions{Name: FinAccountWorkflowName})
	env.RegisterActivityWithOptions(steps.open, activity.RegisterOptions{Name: activities.OpenFinAccountName})
	env.RegisterActivityWithOptions(steps.check, activity.RegisterOptions{Name: activities.CheckFinAccountName})
	env.RegisterActivityWithOptions(steps.fail, activity.RegisterOptions{Name: activities.FailFinAccountName})
	env.RegisterActivityWithOptions(steps.publish, activity.RegisterOptions{Name: activities.PublishAccountEventName})
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(UpdateOutcome, "outcome", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { t.Errorf("outcome update rejected: %v", err) },
			OnAccept: func() {},
			OnComplete: func(v any, err error) {
				require.NoError(t, err)
				a := v.(paysaga.Account)
				h.mu.Lock()
				h.outcome, h.outT = &a, env.Now()
				h.mu.Unlock()
			},
		})
	}, 0)
	return h
}

func (h *finHarness) run(t *testing.T) paysaga.Account {
	t.Helper()
	h.start = h.env.Now()
	h.env.ExecuteWorkflow(FinAccountWorkflowName, FinAccountInput{AccountID: testAccountID, OwnerID: "usr_owner"})
	require.True(t, h.env.IsWorkflowCompleted())
	require.NoError(t, h.env.GetWorkflowError())
	var a paysaga.Account
	require.NoError(t, h.env.GetWorkflowResult(&a))
	require.NotNil(t, h.outcome, "the outcome update was answered")
	require.Equal(t, a, *h.outcome)
	return a
}

func TestFinAccountQuickIssuance(t *testing.T) {
	steps := &fakeRegistration{checkFn: func(int) (paysaga.Account, error) { return activeAccount(), nil }}
	h := newFinHarness(t, steps)
	a := h.run(t)

	require.Equal(t, paysaga.AccountActive, a.Status)
	require.Equal(t, 1, steps.opens)
	require.Len(t, steps.checks, 1)
	require.Empty(t, steps.fails)
	require.Len(t, steps.published, 1)
	require.Equal(t, events.AccountRegistered, steps.published[0].Type)
	require.Equal(t, testAccountID, steps.published[0].Account.ID)
	require.Regexp(t, `^evt_test000000000000000001_reg_[0-9A-Za-z]{1,12}$`, steps.published[0].EventID)
	require.Equal(t, h.start, h.outT, "answered without waiting for anything")
}

func TestFinAccountSlowIssuance(t *testing.T) {
	steps := &fakeRegistration{checkFn: func(n int) (paysaga.Account, error) {
		if n <= 4 {
			return paysaga.Account{}, inProgress()
		}
		return activeAccount(), nil
	}}
	h := newFinHarness(t, steps)
	a := h.run(t)

	require.Equal(t, paysaga.AccountActive, a.Status)
	require.Equal(t, 1, steps.opens, "opened once; only the check is asked again")
	require.Len(t, steps.checks, 5, "A0017 four times, then issued")
	for i := 1; i < len(steps.checks); i++ {
		require.GreaterOrEqual(t, steps.checks[i].Sub(steps.checks[i-1]), testFinConfig.PollInterval, "the bank is not hammered")
	}
	require.Empty(t, steps.fails)
	require.Len(t, steps.published, 1)
	require.Greater(t, h.outT.Sub(h.start), 4*testFinConfig.PollInterval, "the outcome waited for issuance")
}

func TestFinAccountRefused(t *testing.T) {
	for name, tc := range map[string]struct {
		openFn  func(int) error
		checkFn func(int) (paysaga.Account, error)
		opens   int
		checks  int
	}{
		"at open": {
			openFn: func(int) error { return refused("E1006", "생년월일이 일치하지 않습니다.") },
			checkFn: func(int) (paysaga.Account, error) {
				return paysaga.Account{}, errors.New("must not be asked")
			},
			opens: 1, checks: 0,
		},
		"at check": {
			checkFn: func(n int) (paysaga.Account, error) {
				if n == 1 {
					return paysaga.Account{}, inProgress()
				}
				return paysaga.Account{}, refused("E1006", "생년월일이 일치하지 않습니다.")
			},
			opens: 1, checks: 2,
		},
	} {
		t.Run(name, func(t *testing.T) {
			steps := &fakeRegistration{openFn: tc.openFn, checkFn: tc.checkFn}
			h := newFinHarness(t, steps)
			a := h.run(t)

			require.Equal(t, paysaga.AccountFailed, a.Status)
			require.Equal(t, "E1006", a.FailureCode)
			require.Equal(t, "생년월일이 일치하지 않습니다.", a.FailureMessage)
			require.Equal(t, tc.opens, steps.opens, "a refusal is final: never sent again")
			require.Len(t, steps.checks, tc.checks)
			require.Equal(t, []activities.FailFinAccountInput{{AccountID: testAccountID, Code: "E1006", Message: "생년월일이 일치하지 않습니다."}}, steps.fails)
			require.Empty(t, steps.published, "account.registered is for registered accounts only")
		})
	}
}

func TestFinAccountIssuanceDeadline(t *testing.T) {
	steps := &fakeRegistration{checkFn: func(int) (paysaga.Account, error) { return paysaga.Account{}, inProgress() }}
	h := newFinHarness(t, steps)
	a := h.run(t)

	require.Equal(t, paysaga.AccountFailed, a.Status)
	require.Equal(t, FailureIssuanceTimeout, a.FailureCode)
	require.Greater(t, len(steps.checks), 5, "asked again and again until the deadline")
	last := steps.checks[len(steps.checks)-1]
	require.LessOrEqual(t, last.Sub(h.start), testFinConfig.IssueDeadline)
	require.GreaterOrEqual(t, h.outT.Sub(h.start), testFinConfig.IssueDeadline-testFinConfig.MaxPollInterval)
	require.Len(t, steps.fails, 1)
	require.Empty(t, steps.published)
}

func TestFinAccountBankUnreachable(t *testing.T) {
	steps := &fakeRegistration{
		openFn:  func(int) error { return errors.New("connection refused") },
		checkFn: func(int) (paysaga.Account, error) { return paysaga.Account{}, errors.New("must not be asked") },
	}
	h := newFinHarness(t, steps)
	a := h.run(t)

	require.Equal(t, paysaga.AccountFailed, a.Status)
	require.Equal(t, FailureBankUnavailable, a.FailureCode)
	require.Greater(t, steps.opens, 3, "transport failures are retried until the deadline")
	require.Empty(t, steps.checks)
}

func TestFinAccountAlreadyFinished(t *testing.T) {
	// A client's retry raced with the end of the previous run and started a new one.
	steps := &fakeRegistration{
		openFn: func(int) error {
			return temporal.NewNonRetryableApplicationError("account is ACTIVE", activities.ErrTypeNotPending, nil, activeAccount())
		},
		checkFn: func(int) (paysaga.Account, error) { return paysaga.Account{}, errors.New("must not be asked") },
	}
	h := newFinHarness(t, steps)
	a := h.run(t)

	require.Equal(t, activeAccount(), a, "the outcome is the account as the previous run left it")
	require.Empty(t, steps.checks)
	require.Empty(t, steps.fails)
	require.Empty(t, steps.published, "announced by the run that registered it, not again")
}

func TestFinAccountRefusesBadInput(t *testing.T) {
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(NewFinAccounts(testFinConfig).FinAccountWorkflow, workflow.RegisterOptions{Name: FinAccountWorkflowName})
	env.ExecuteWorkflow(FinAccountWorkflowName, FinAccountInput{AccountID: "3021234567891"})
	require.Error(t, env.GetWorkflowError())
}

func TestFinAccountWorkflowID(t *testing.T) {
	require.Equal(t, "finaccount:acct_x", FinAccountWorkflowID("acct_x"))
}

// A registration the store ends FAILED at activation (another customer's verified registration
// holds the number: number_in_use) is not announced as account.registered.
func TestFinAccountNumberInUseIsNotAnnouncedAsRegistered(t *testing.T) {
	steps := &fakeRegistration{checkFn: func(int) (paysaga.Account, error) {
		a := activeAccount()
		a.Status, a.FailureCode = paysaga.AccountFailed, "number_in_use"
		return a, nil
	}}
	h := newFinHarness(t, steps)
	a := h.run(t)
	require.Equal(t, paysaga.AccountFailed, a.Status)
	require.Empty(t, steps.published, "account.registered is for an ACTIVE account")
}
