package workflows

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"paysaga"
	"paysaga/activities"
)

// Regression tests of the money-safety review (issue 11): store outages and refusals after
// money moved (item 2), a failed cancellation (item 3), a cancellation during a credit (item 4),
// alerts that were never published (item 8).

// outage returns a store that is down for d from its first use, on the clock now: each call
// fails like a refused connection until then.
func outage(now func() time.Time, d time.Duration) func() error {
	var until time.Time
	return func() error {
		if until.IsZero() {
			until = now().Add(d)
		}
		if now().Before(until) {
			return errors.New("dial tcp 127.0.0.1:3306: connection refused")
		}
		return nil
	}
}

func conflict() error {
	return temporal.NewNonRetryableApplicationError("row is not what the saga expects", activities.ErrTypeStateConflict, nil)
}

// Item 2: the database is down for two hours right after the debit. The run retries without
// end, says it needs attention (and alerts) after a few minutes, and ends SUCCEEDED once the
// write lands — before, it failed after an hour with the customer debited and the row
// PROCESSING.
func TestPaymentStoreDownForHoursAfterTheDebitStillSucceeds(t *testing.T) {
	steps := &fakeSteps{debitFn: succeedDebit}
	h := newHarness(t, steps)
	down := outage(h.env.Now, 2*time.Hour)
	steps.recordFn = func(_ int, in activities.RecordPaymentInput) error {
		if in.Status != paysaga.PaymentSucceeded {
			return nil
		}
		return down()
	}
	var during PaymentView
	h.env.RegisterDelayedCallback(func() {
		v, err := h.env.QueryWorkflow(QueryStatus)
		require.NoError(t, err)
		require.NoError(t, v.Get(&during))
	}, time.Hour)
	p := h.run(t)

	require.Equal(t, paysaga.PaymentSucceeded, p.Status)
	require.True(t, during.NeedsAttention, "an hour into the outage the payment says it needs attention")
	require.Len(t, steps.debits, 1)
	require.Equal(t, []string{EventStalled, EventSucceeded}, steps.publishedTypes(), "payment.stalled alerts while it retries")
	h.mu.Lock()
	last := h.attrs[len(h.attrs)-1]
	h.mu.Unlock()
	na, _ := last.GetBool(SearchNeedsAttention)
	require.False(t, na, "the flag is cleared when the write lands")
	status, _ := last.GetKeyword(SearchPaymentStatus)
	require.Equal(t, "SUCCEEDED", status)
}

// Item 2: the store refuses the outcome as a conflict after the debit: the payment turns
// UNKNOWN with NeedsAttention and an alert, and an operator's verdict ends it — instead of a
// failed run nobody can repair.
func TestPaymentStoreRefusalAfterTheDebitWaitsForAnOperator(t *testing.T) {
	steps := &fakeSteps{debitFn: succeedDebit}
	refusals := 0
	steps.recordFn = func(_ int, in activities.RecordPaymentInput) error {
		if in.Status == paysaga.PaymentSucceeded && refusals == 0 {
			refusals++
			return conflict()
		}
		return nil
	}
	h := newHarness(t, steps)
	var view PaymentView
	var resolved paysaga.Payment
	h.env.RegisterDelayedCallback(func() {
		v, err := h.env.QueryWorkflow(QueryStatus)
		require.NoError(t, err)
		require.NoError(t, v.Get(&view))
		h.env.UpdateWorkflow(UpdateResolve, "resolve-1", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { t.Errorf("resolution rejected: %v", err) },
			OnAccept: func() {},
			OnComplete: func(v any, err error) {
				require.NoError(t, err)
				resolved = v.(paysaga.Payment)
			},
		}, Resolution{As: ResolveSucceeded, Reason: "row repaired; bank shows the debit", Actor: "usr_operator"})
	}, time.Hour)
	p := h.run(t)

	require.Equal(t, paysaga.PaymentUnknown, view.Payment.Status)
	require.True(t, view.NeedsAttention)
	require.True(t, view.AwaitingResolution)
	require.Equal(t, paysaga.PaymentSucceeded, p.Status)
	require.Equal(t, paysaga.PaymentSucceeded, resolved.Status)
	require.Len(t, steps.debits, 1, "never sent again")
	require.Equal(t, []string{EventUnknown, EventSucceeded}, steps.publishedTypes())
}

// Item 2 / item 9: a refusal before anything was sent (the row is not the one the workflow
// was started for) fails the run, and nothing is debited.
func TestPaymentStoreRefusalBeforeTheDebitFailsWithoutSending(t *testing.T) {
	steps := &fakeSteps{debitFn: succeedDebit}
	steps.recordFn = func(n int, _ activities.RecordPaymentInput) error {
		if n == 1 {
			return conflict()
		}
		return nil
	}
	h := newHarness(t, steps)
	h.env.ExecuteWorkflow(PaymentWorkflowName, testInput())
	require.True(t, h.env.IsWorkflowCompleted())
	require.Error(t, h.env.GetWorkflowError())
	require.Empty(t, steps.debits)
}

// Item 2: what an operator types is checked against the store's columns before it is accepted.
func TestResolutionRefusesWhatTheStoreCannotKeep(t *testing.T) {
	steps := &fakeSteps{
		debitFn: func(int, activities.DebitInput) (activities.DebitResult, error) {
			return activities.DebitResult{}, lostAnswer()
		},
		checkFn: func(int, activities.CheckDebitInput) (activities.CheckDebitResult, error) {
			return activities.CheckDebitResult{}, errors.New("bank unreachable")
		},
	}
	h := newHarness(t, steps)
	var longActor, longReason error
	h.env.RegisterDelayedCallback(func() {
		for _, c := range []struct {
			r   Resolution
			err *error
		}{
			{Resolution{As: ResolveFailed, Reason: "checked", Actor: strings.Repeat("a", 65)}, &longActor},
			{Resolution{As: ResolveFailed, Reason: strings.Repeat("가", 501), Actor: "usr_operator"}, &longReason},
		} {
			h.env.UpdateWorkflow(UpdateResolve, "bad-"+c.r.Actor[:1]+c.r.Reason[:1], &testsuite.TestUpdateCallback{
				OnReject: func(err error) { *c.err = err }, OnAccept: func() {}, OnComplete: func(any, error) {},
			}, c.r)
		}
		h.env.UpdateWorkflow(UpdateResolve, "good", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { t.Errorf("rejected: %v", err) }, OnAccept: func() {}, OnComplete: func(any, error) {},
		}, Resolution{As: ResolveFailed, Reason: strings.Repeat("가", 500), Actor: strings.Repeat("a", 64)})
	}, time.Hour)
	p := h.run(t)
	require.ErrorContains(t, longActor, "actor")
	require.ErrorContains(t, longReason, "reason")
	require.Equal(t, paysaga.PaymentFailed, p.Status)
}

// Item 3: the refund of a cancellation fails; the payment run stays open (AUTHORIZED, needs
// attention, payment.cancel_failed published) until an operator replays it, and the replay's
// success cancels the payment — before, the run ended and nothing could repair it.
func TestPaymentFailedCancellationWaitsForAReplay(t *testing.T) {
	h, refunds, in := manualHarness(t)
	refunds.creditFn = func(n int, in activities.CreditInput) (activities.CreditResult, error) {
		if n == 1 {
			return activities.CreditResult{}, temporal.NewNonRetryableApplicationError("declined", activities.ErrTypeDeclined, nil,
				activities.BankAnswer{Rpcd: "E0001", Rsms: "계좌 오류"})
		}
		return creditOK(n, in)
	}
	var canceled, replayed paysaga.Payment
	var view PaymentView
	h.decide(t, UpdateCancel, time.Hour, &canceled)
	h.env.RegisterDelayedCallback(func() {
		v, err := h.env.QueryWorkflow(QueryStatus)
		require.NoError(t, err)
		require.NoError(t, v.Get(&view))
		h.env.UpdateWorkflow(UpdateReplayCancel, "replay-1", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { t.Errorf("replay rejected: %v", err) },
			OnAccept: func() {},
			OnComplete: func(v any, err error) {
				require.NoError(t, err)
				replayed = v.(paysaga.Payment)
			},
		}, CaptureDecision{Actor: "usr_operator", Reason: "customer's account fixed"})
	}, 3*time.Hour)
	h.env.ExecuteWorkflow(PaymentWorkflowName, in)
	require.NoError(t, h.env.GetWorkflowError())
	var p paysaga.Payment
	require.NoError(t, h.env.GetWorkflowResult(&p))

	require.Equal(t, paysaga.PaymentAuthorized, view.Payment.Status, "after the failed refund, before the replay")
	require.True(t, view.NeedsAttention)
	require.Equal(t, paysaga.PaymentCanceled, p.Status)
	require.Equal(t, paysaga.PaymentCanceled, replayed.Status)
	require.Len(t, refunds.credits, 2, "the failed credit, then the replay's")
	require.Equal(t, []string{EventAuthorized, EventCancelFailed, EventCanceled}, h.steps.publishedTypes())
}

// Item 4: the refund is cancelled while its credit is at the bank. The store refuses to give
// the reservation back while the credit's row is SENT (store.TestRefundCreditAndFailedSettlement
// CannotInterleave), so the compensation asks the bank and, the money having left, settles
// SUCCEEDED. (The run also waits for the credit in flight — WaitForCancellation, behind
// creditWaitsChange — which Temporal's test environment does not model: it reports a cancelled
// activity at once.)
func TestRefundCancelledDuringItsCreditSettlesAsTheBankSays(t *testing.T) {
	steps := &fakeRefundSteps{
		checkFn: func(int) (activities.CheckCreditResult, error) {
			return activities.CheckCreditResult{Executed: true, Rpcd: "00000"}, nil
		},
	}
	h := newRefundHarness(t, steps)
	steps.creditFn = func(n int, in activities.CreditInput) (activities.CreditResult, error) {
		steps.mu.Lock()
		steps.unsettled = true // the transfer row is SENT
		steps.mu.Unlock()
		h.env.CancelWorkflow()
		time.Sleep(100 * time.Millisecond) // the bank takes its time
		return creditOK(n, in)
	}
	_, err := h.run(t, testRefundInput())
	if err != nil {
		require.True(t, temporal.IsCanceledError(err), "%v", err)
	}
	require.Len(t, steps.credits, 1)
	require.Equal(t, []paysaga.RefundStatus{paysaga.RefundSucceeded}, steps.settledStatuses(),
		"the reservation is never given back for money that left")
	require.Equal(t, []string{EventRefundSucceeded}, steps.publishedTypes())
}

// Item 2: the refund's settlement after its credit meets a store outage of two hours: it
// retries, raises refund.stalled, and settles SUCCEEDED when the store is back.
func TestRefundStoreDownForHoursAfterTheCreditStillSettles(t *testing.T) {
	steps := &fakeRefundSteps{creditFn: creditOK}
	h := newRefundHarness(t, steps)
	down := outage(h.env.Now, 2*time.Hour)
	steps.settleFn = func(int, activities.SettleRefundInput) error { return down() }
	r, err := h.run(t, testRefundInput())
	require.NoError(t, err)
	require.Equal(t, paysaga.RefundSucceeded, r.Status)
	require.Equal(t, []string{EventRefundStalled, EventRefundSucceeded}, steps.publishedTypes())
}

// A database outage of two hours when the refund is reserved delays it; it does not end it
// with nothing written (before, the run failed after an hour and the refund could not be read).
func TestRefundReservedAfterAStoreOutage(t *testing.T) {
	steps := &fakeRefundSteps{creditFn: creditOK}
	h := newRefundHarness(t, steps)
	down := outage(h.env.Now, 2*time.Hour)
	steps.reserveFn = func(int) error { return down() }
	r, err := h.run(t, testRefundInput())
	require.NoError(t, err)
	require.Equal(t, paysaga.RefundSucceeded, r.Status)
	require.Equal(t, []string{EventRefundStalled, EventRefundSucceeded}, steps.publishedTypes())
}

// The store refuses the operator's verdict too (the row is still wrong): the resolve Update
// answers at once that it could not be recorded — it does not hang — and the payment waits
// for the next verdict, which lands once the row is repaired.
func TestPaymentVerdictTheStoreRefusesIsAnsweredAndAskedAgain(t *testing.T) {
	steps := &fakeSteps{debitFn: succeedDebit}
	refusals := 0
	steps.recordFn = func(_ int, in activities.RecordPaymentInput) error {
		if in.Status == paysaga.PaymentSucceeded && refusals < 2 {
			refusals++
			return conflict()
		}
		return nil
	}
	h := newHarness(t, steps)
	var first, second error
	var firstDone, secondDone bool
	resolve := func(id string, done *bool, into *error) func() {
		return func() {
			h.env.UpdateWorkflow(UpdateResolve, id, &testsuite.TestUpdateCallback{
				OnReject: func(err error) { t.Errorf("%s rejected: %v", id, err) },
				OnAccept: func() {},
				OnComplete: func(_ any, err error) {
					*done, *into = true, err
				},
			}, Resolution{As: ResolveSucceeded, Reason: "bank shows the debit", Actor: "usr_operator"})
		}
	}
	h.env.RegisterDelayedCallback(resolve("resolve-1", &firstDone, &first), time.Hour)
	h.env.RegisterDelayedCallback(resolve("resolve-2", &secondDone, &second), 2*time.Hour)
	p := h.run(t)

	require.True(t, firstDone, "the first verdict is answered")
	require.ErrorContains(t, first, "refused to record the resolution")
	require.True(t, secondDone)
	require.NoError(t, second)
	require.Equal(t, paysaga.PaymentSucceeded, p.Status)
	require.Len(t, steps.debits, 1)
}
