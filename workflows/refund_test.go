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
)

func testRefundInput() RefundInput {
	return RefundInput{
		RefundID: "ref_test0000000000000000001", PaymentID: "pay_test0000000000000000001",
		CustomerID: "usr_customer", MerchantID: "usr_merchant", Amount: 5000, Reason: "damaged",
		Actor: "usr_merchant", CreatedAt: time.Date(2026, 11, 25, 2, 0, 0, 0, time.UTC),
	}
}

// fakeRefundSteps stands in for the refund activities, with a tiny model of the database: the
// refund's status and the transfers the credits wrote.
type fakeRefundSteps struct {
	mu        sync.Mutex
	refuse    string // ReserveRefund refuses with this message
	reserves  int
	reserveFn func(n int) error // fails a reservation when it returns an error
	credits   []string
	creditFn  func(n int, in activities.CreditInput) (activities.CreditResult, error)
	checks    int
	checkFn   func(n int) (activities.CheckCreditResult, error)
	unsettled bool // a credit with an unknown outcome exists: FAILED is refused until checked
	settles   []activities.SettleRefundInput
	settleN   int
	settleFn  func(n int, in activities.SettleRefundInput) error // fails a settlement when it returns an error
	published []activities.PublishRefundEventInput
	status    paysaga.RefundStatus
}

func (f *fakeRefundSteps) reserve(_ context.Context, in activities.ReserveRefundInput) (paysaga.Refund, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reserves++
	if f.reserveFn != nil {
		if err := f.reserveFn(f.reserves); err != nil {
			return paysaga.Refund{}, err
		}
	}
	if f.refuse != "" {
		return paysaga.Refund{}, temporal.NewNonRetryableApplicationError(f.refuse, activities.ErrTypeRefundRefused, nil)
	}
	f.status = paysaga.RefundPending
	r := in.Refund
	r.Status = f.status
	return r, nil
}

func (f *fakeRefundSteps) credit(ctx context.Context, in activities.CreditInput) (activities.CreditResult, error) {
	f.mu.Lock()
	f.credits = append(f.credits, in.TransferID)
	n := len(f.credits)
	f.mu.Unlock()
	return f.creditFn(n, in)
}

func (f *fakeRefundSteps) check(_ context.Context, _ activities.CheckCreditInput) (activities.CheckCreditResult, error) {
	f.mu.Lock()
	f.checks++
	n := f.checks
	f.mu.Unlock()
	res, err := f.checkFn(n)
	if err == nil {
		f.mu.Lock()
		f.unsettled = false
		f.mu.Unlock()
	}
	return res, err
}

func (f *fakeRefundSteps) settle(_ context.Context, in activities.SettleRefundInput) (paysaga.Refund, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.settleN++
	if f.settleFn != nil {
		if err := f.settleFn(f.settleN, in); err != nil {
			return paysaga.Refund{}, err
		}
	}
	if in.ResolveTransfers != "" {
		f.unsettled = false // an operator's verdict settles the credit in doubt
	}
	if in.Status == paysaga.RefundFailed && f.unsettled {
		return paysaga.Refund{}, temporal.NewNonRetryableApplicationError("unknown outcome", activities.ErrTypeUnknownOutcome, nil)
	}
	f.settles = append(f.settles, in)
	f.status = in.Status
	in2 := testRefundInput()
	return paysaga.Refund{ID: in.RefundID, PaymentID: in2.PaymentID, Amount: in2.Amount, Status: in.Status,
		FailureCode: in.FailureCode, FailureMessage: in.FailureMessage}, nil
}

func (f *fakeRefundSteps) publish(_ context.Context, in activities.PublishRefundEventInput) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.published = append(f.published, in)
	return nil
}

func (f *fakeRefundSteps) settledStatuses() []paysaga.RefundStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []paysaga.RefundStatus
	for _, s := range f.settles {
		out = append(out, s.Status)
	}
	return out
}

func (f *fakeRefundSteps) publishedTypes() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, p := range f.published {
		out = append(out, p.Type)
	}
	return out
}

type refundHarness struct {
	env     *testsuite.TestWorkflowEnvironment
	steps   *fakeRefundSteps
	mu      sync.Mutex
	outcome *paysaga.Refund
	outErr  error
}

func newRefundHarness(t *testing.T, steps *fakeRefundSteps) *refundHarness {
	t.Helper()
	var ts testsuite.WorkflowTestSuite
	ts.SetLogger(log.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	env := ts.NewTestWorkflowEnvironment()
	h := &refundHarness{env: env, steps: steps}
	if steps.checkFn == nil {
		steps.checkFn = func(int) (activities.CheckCreditResult, error) {
			t.Error("unexpected CheckCredit")
			return activities.CheckCreditResult{}, errors.New("unexpected")
		}
	}
	env.RegisterWorkflowWithOptions(NewRefunds(testRefundConfig).RefundWorkflow, workflow.RegisterOptions{Name: RefundWorkflowName})
	env.RegisterActivityWithOptions(steps.reserve, activity.RegisterOptions{Name: activities.ReserveRefundName})
	env.RegisterActivityWithOptions(steps.credit, activity.RegisterOptions{Name: activities.CreditName})
	env.RegisterActivityWithOptions(steps.check, activity.RegisterOptions{Name: activities.CheckCreditName})
	env.RegisterActivityWithOptions(steps.settle, activity.RegisterOptions{Name: activities.SettleRefundName})
	env.RegisterActivityWithOptions(steps.publish, activity.RegisterOptions{Name: activities.PublishRefundEventName})
	require.NoError(t, env.SetTypedSearchAttributesOnStart(SearchAttributesForRefund(testRefundInput())))
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(UpdateOutcome, "outcome-1", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { t.Errorf("outcome update rejected: %v", err) },
			OnAccept: func() {},
			OnComplete: func(v any, err error) {
				h.mu.Lock()
				defer h.mu.Unlock()
				h.outErr = err
				if err == nil {
					r := v.(paysaga.Refund)
					h.outcome = &r
				}
			},
		})
	}, 0)
	return h
}

func (h *refundHarness) run(t *testing.T, in RefundInput) (paysaga.Refund, error) {
	t.Helper()
	h.env.ExecuteWorkflow(RefundWorkflowName, in)
	require.True(t, h.env.IsWorkflowCompleted())
	var r paysaga.Refund
	err := h.env.GetWorkflowError()
	if err == nil {
		require.NoError(t, h.env.GetWorkflowResult(&r))
	}
	return r, err
}

func creditOK(_ int, in activities.CreditInput) (activities.CreditResult, error) {
	return activities.CreditResult{TransferID: in.TransferID, Rpcd: "00000", Rsms: "정상처리 되었습니다."}, nil
}

func TestRefundSucceeds(t *testing.T) {
	steps := &fakeRefundSteps{creditFn: creditOK}
	h := newRefundHarness(t, steps)
	r, err := h.run(t, testRefundInput())
	require.NoError(t, err)

	require.Equal(t, paysaga.RefundSucceeded, r.Status)
	require.Len(t, steps.credits, 1, "one credit")
	require.Regexp(t, `^trf_test0000000000000000001_[0-9a-f]{8}_1$`, steps.credits[0])
	require.Equal(t, []paysaga.RefundStatus{paysaga.RefundSucceeded}, steps.settledStatuses())
	require.Equal(t, "00000", steps.settles[0].Events[0].Rpcd)
	require.Equal(t, "ref_test0000000000000000001", steps.settles[0].Events[0].RefundID)
	require.Equal(t, []string{EventRefundSucceeded}, steps.publishedTypes())
	require.NotNil(t, h.outcome)
	require.Equal(t, paysaga.RefundSucceeded, h.outcome.Status)
}

func TestRefundRefusedWhenNothingIsLeftToRefund(t *testing.T) {
	steps := &fakeRefundSteps{refuse: "a refund of 5000 won exceeds what is left to refund of payment pay_x: 1000 won",
		creditFn: creditOK}
	h := newRefundHarness(t, steps)
	_, err := h.run(t, testRefundInput())

	var appErr *temporal.ApplicationError
	require.ErrorAs(t, err, &appErr)
	require.Equal(t, paysaga.ECONFLICT, appErr.Type())
	require.Contains(t, appErr.Message(), "1000 won")
	require.Empty(t, steps.credits, "nothing is credited")
	require.Empty(t, steps.settles, "nothing was reserved, nothing to give back")
	require.Empty(t, steps.published)
	require.ErrorAs(t, h.outErr, &appErr, "the API hears the refusal through the outcome update")
	require.Equal(t, paysaga.ECONFLICT, appErr.Type())
}

func TestRefundDeclinedIsCompensated(t *testing.T) {
	steps := &fakeRefundSteps{creditFn: func(int, activities.CreditInput) (activities.CreditResult, error) {
		return activities.CreditResult{}, temporal.NewNonRetryableApplicationError("declined", activities.ErrTypeDeclined, nil,
			activities.BankAnswer{Rpcd: "E1005", Rsms: "계좌정보가 존재하지 않습니다."})
	}}
	h := newRefundHarness(t, steps)
	r, err := h.run(t, testRefundInput())
	require.NoError(t, err)

	require.Equal(t, paysaga.RefundFailed, r.Status)
	require.Len(t, steps.credits, 1, "a decline is final: no second credit")
	require.Equal(t, []paysaga.RefundStatus{paysaga.RefundFailed}, steps.settledStatuses(), "the reservation is given back")
	require.Equal(t, "E1005", steps.settles[0].FailureCode)
	require.Equal(t, "계좌정보가 존재하지 않습니다.", steps.settles[0].FailureMessage)
	require.Equal(t, []string{EventRefundFailed}, steps.publishedTypes())
	require.Equal(t, paysaga.RefundFailed, h.outcome.Status)
}

func TestRefundLostAnswerExecuted(t *testing.T) {
	steps := &fakeRefundSteps{
		creditFn: func(int, activities.CreditInput) (activities.CreditResult, error) {
			return activities.CreditResult{}, lostAnswer()
		},
		checkFn: func(int) (activities.CheckCreditResult, error) {
			return activities.CheckCreditResult{Executed: true, Rpcd: "00000"}, nil
		},
	}
	h := newRefundHarness(t, steps)
	r, err := h.run(t, testRefundInput())
	require.NoError(t, err)
	require.Equal(t, paysaga.RefundSucceeded, r.Status)
	require.Len(t, steps.credits, 1, "never sent again")
	require.Equal(t, 1, steps.checks)
	require.Equal(t, []string{EventRefundSucceeded}, steps.publishedTypes())
}

func TestRefundLostAnswerNotExecutedSendsOneNewTransfer(t *testing.T) {
	steps := &fakeRefundSteps{
		creditFn: func(n int, in activities.CreditInput) (activities.CreditResult, error) {
			if n == 1 {
				return activities.CreditResult{}, lostAnswer()
			}
			return creditOK(n, in)
		},
		checkFn: func(int) (activities.CheckCreditResult, error) {
			return activities.CheckCreditResult{Executed: false}, nil
		},
	}
	h := newRefundHarness(t, steps)
	r, err := h.run(t, testRefundInput())
	require.NoError(t, err)
	require.Equal(t, paysaga.RefundSucceeded, r.Status)
	require.Len(t, steps.credits, 2)
	require.NotEqual(t, steps.credits[0], steps.credits[1], "a new transfer, hence a new IsTuno")
	require.Equal(t, []paysaga.RefundStatus{paysaga.RefundSucceeded}, steps.settledStatuses())
}

func TestRefundCancelledMidCreditIsCompensated(t *testing.T) {
	steps := &fakeRefundSteps{creditFn: func(_ int, _ activities.CreditInput) (activities.CreditResult, error) {
		return activities.CreditResult{}, temporal.NewNonRetryableApplicationError("not sent", activities.ErrTypeNotExecuted, nil)
	}}
	h := newRefundHarness(t, steps)
	// The first credit did not execute; the workflow is cancelled while it waits to try again.
	h.env.RegisterDelayedCallback(h.env.CancelWorkflow, 500*time.Millisecond)
	_, err := h.run(t, testRefundInput())
	require.Error(t, err)
	require.True(t, temporal.IsCanceledError(err), "%v", err)

	require.Len(t, steps.credits, 1)
	require.Equal(t, []paysaga.RefundStatus{paysaga.RefundFailed}, steps.settledStatuses(), "a cancelled refund still gives its reservation back")
	require.Equal(t, FailureCanceled, steps.settles[0].FailureCode)
	require.Equal(t, []string{EventRefundFailed}, steps.publishedTypes())
}

func TestRefundCancelledWithCreditInDoubtAsksTheBankBeforeCompensating(t *testing.T) {
	steps := &fakeRefundSteps{
		creditFn: func(_ int, _ activities.CreditInput) (activities.CreditResult, error) {
			return activities.CreditResult{}, temporal.NewNonRetryableApplicationError("not sent", activities.ErrTypeNotExecuted, nil)
		},
		checkFn: func(int) (activities.CheckCreditResult, error) {
			return activities.CheckCreditResult{Executed: true, Rpcd: "00000"}, nil
		},
	}
	h := newRefundHarness(t, steps)
	h.env.RegisterDelayedCallback(func() {
		// As if the credit had been sent and its answer lost when the cancellation came.
		steps.mu.Lock()
		steps.unsettled = true
		steps.mu.Unlock()
		h.env.CancelWorkflow()
	}, 500*time.Millisecond)
	_, err := h.run(t, testRefundInput())
	require.True(t, temporal.IsCanceledError(err), "%v", err)
	require.Equal(t, 1, steps.checks)
	require.Equal(t, []paysaga.RefundStatus{paysaga.RefundSucceeded}, steps.settledStatuses(),
		"money that left is never given back to the payment as if it had not")
}

func TestRefundReplayReservesAgainWithNewTransfers(t *testing.T) {
	steps := &fakeRefundSteps{creditFn: creditOK}
	h := newRefundHarness(t, steps)
	in := testRefundInput()
	in.Replay, in.Actor = true, "usr_operator"
	r, err := h.run(t, in)
	require.NoError(t, err)
	require.Equal(t, paysaga.RefundSucceeded, r.Status)
	require.Equal(t, 1, steps.reserves)
}

// An UNKNOWN refund keeps asking the bank, and takes an operator's verdict once it waits for
// one: succeeded → SUCCEEDED (its credit marked SUCCEEDED); failed → FAILED with the
// reservation given back (its credit marked NOT_EXECUTED). Who and why go in the history.
func TestRefundUnknownIsResolvedByAnOperator(t *testing.T) {
	for _, tc := range []struct {
		as       string
		status   paysaga.RefundStatus
		event    string
		transfer paysaga.TransferState
		code     string
	}{
		{ResolveSucceeded, paysaga.RefundSucceeded, EventRefundSucceeded, paysaga.TransferSucceeded, ""},
		{ResolveFailed, paysaga.RefundFailed, EventRefundFailed, paysaga.TransferNotExecuted, FailureOperator},
	} {
		t.Run(tc.as, func(t *testing.T) {
			steps := &fakeRefundSteps{
				checkFn: func(int) (activities.CheckCreditResult, error) {
					return activities.CheckCreditResult{}, errors.New("bank inquiry failed: http 500")
				},
			}
			steps.creditFn = func(int, activities.CreditInput) (activities.CreditResult, error) {
				steps.mu.Lock()
				steps.unsettled = true // the credit's answer was lost: it may have executed
				steps.mu.Unlock()
				return activities.CreditResult{}, lostAnswer()
			}
			h := newRefundHarness(t, steps)
			env := h.env
			var (
				early, invalid, resolved error
				resolvedRefund           paysaga.Refund
				view                     RefundView
			)
			// Too early: the refund is still PENDING, the bank being asked.
			env.RegisterDelayedCallback(func() {
				env.UpdateWorkflow(UpdateResolveRefund, "resolve-early", &testsuite.TestUpdateCallback{
					OnReject: func(err error) { early = err }, OnAccept: func() {}, OnComplete: func(any, error) {},
				}, Resolution{As: tc.as, Reason: "checked", Actor: "usr_operator"})
			}, time.Minute)
			env.RegisterDelayedCallback(func() {
				v, err := env.QueryWorkflow(QueryStatus)
				require.NoError(t, err)
				require.NoError(t, v.Get(&view))
				env.UpdateWorkflow(UpdateResolveRefund, "resolve-invalid", &testsuite.TestUpdateCallback{
					OnReject: func(err error) { invalid = err }, OnAccept: func() {}, OnComplete: func(any, error) {},
				}, Resolution{As: "maybe", Reason: "checked", Actor: "usr_operator"})
				env.UpdateWorkflow(UpdateResolveRefund, "resolve-1", &testsuite.TestUpdateCallback{
					OnReject: func(err error) { t.Errorf("resolution rejected: %v", err) },
					OnAccept: func() {},
					OnComplete: func(v any, err error) {
						resolved = err
						if err == nil {
							resolvedRefund = v.(paysaga.Refund)
						}
					},
				}, Resolution{As: tc.as, Reason: "credit checked on the NH statement", Actor: "usr_operator"})
			}, 2*time.Hour)
			r, err := h.run(t, testRefundInput())
			require.NoError(t, err)

			require.Error(t, early, "a resolution is refused while the refund is not UNKNOWN")
			require.Contains(t, early.Error(), "not waiting for a resolution")
			var appErr *temporal.ApplicationError
			require.ErrorAs(t, early, &appErr)
			require.Equal(t, paysaga.ECONFLICT, appErr.Type())
			require.ErrorAs(t, invalid, &appErr)
			require.Equal(t, paysaga.EINVALID, appErr.Type())

			require.Equal(t, paysaga.RefundUnknown, view.Refund.Status)
			require.True(t, view.NeedsAttention)
			require.True(t, view.AwaitingResolution)
			require.Equal(t, paysaga.RefundUnknown, h.outcome.Status, "the outcome update answers UNKNOWN")
			require.Greater(t, steps.checks, 1, "the bank is asked again while UNKNOWN")

			require.NoError(t, resolved)
			require.Equal(t, tc.status, resolvedRefund.Status)
			require.Equal(t, tc.status, r.Status)
			require.Len(t, steps.credits, 1, "never sent again")
			require.Equal(t, []paysaga.RefundStatus{paysaga.RefundUnknown, tc.status}, steps.settledStatuses(),
				"UNKNOWN keeps the reservation; the verdict settles it (FAILED gives it back)")
			last := steps.settles[1]
			require.Equal(t, tc.transfer, last.ResolveTransfers, "the credit in doubt is marked as the operator said")
			require.Equal(t, tc.code, last.FailureCode)
			require.Len(t, last.Events, 1)
			require.Equal(t, tc.event, last.Events[0].Type)
			require.Equal(t, "usr_operator", last.Events[0].Actor)
			require.Equal(t, "credit checked on the NH statement", last.Events[0].Reason)
			require.Equal(t, []string{EventRefundUnknown, tc.event}, steps.publishedTypes(), "refund.unknown (an alert), then the outcome")
		})
	}
}

// Without a verdict an UNKNOWN refund still settles on the bank's answer, as before.
func TestRefundUnknownSettlesOnTheBanksLaterAnswer(t *testing.T) {
	steps := &fakeRefundSteps{
		creditFn: func(int, activities.CreditInput) (activities.CreditResult, error) {
			return activities.CreditResult{}, lostAnswer()
		},
		checkFn: func(n int) (activities.CheckCreditResult, error) {
			if n < 3 {
				return activities.CheckCreditResult{}, temporal.NewNonRetryableApplicationError("down", "BankDown", nil)
			}
			return activities.CheckCreditResult{Executed: true, Rpcd: "00000"}, nil
		},
	}
	h := newRefundHarness(t, steps)
	r, err := h.run(t, testRefundInput())
	require.NoError(t, err)
	require.Equal(t, paysaga.RefundSucceeded, r.Status)
	require.Equal(t, 3, steps.checks)
	require.Equal(t, []paysaga.RefundStatus{paysaga.RefundUnknown, paysaga.RefundSucceeded}, steps.settledStatuses())
	require.Empty(t, steps.settles[1].ResolveTransfers)
	require.Equal(t, []string{EventRefundUnknown, EventRefundSucceeded}, steps.publishedTypes(), "refund.unknown (an alert), then the outcome")
}
