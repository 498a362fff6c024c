package workflows

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"paysaga"
	"paysaga/activities"
)

var testConfig = PaymentConfig{
	BankCallTimeout:  10 * time.Second,
	DebitDeadline:    time.Minute,
	UnknownDeadline:  5 * time.Minute,
	MaxDebitAttempts: 3,
	RetryDelay:       time.Second,
}

var testRefundConfig = RefundConfig{
	BankCallTimeout:   10 * time.Second,
	CreditDeadline:    time.Minute,
	UnknownDeadline:   5 * time.Minute,
	MaxCreditAttempts: 3,
	RetryDelay:        time.Second,
}

func testInput() PaymentInput {
	return PaymentInput{
		PaymentID:   "pay_test0000000000000000001",
		CustomerID:  "usr_customer",
		MerchantID:  "usr_merchant",
		AccountID:   "acct_test",
		Amount:      15000,
		Description: "coffee beans",
		CreatedAt:   time.Date(2026, 11, 25, 1, 0, 0, 0, time.UTC),
	}
}

// fakeSteps stands in for the activities: it scripts the bank's answers and the broker's
// health, and records what the workflow asked for.
type fakeSteps struct {
	mu        sync.Mutex
	debits    []string // transfer IDs, in order
	debitFn   func(n int, in activities.DebitInput) (activities.DebitResult, error)
	checks    []string
	checkFn   func(n int, in activities.CheckDebitInput) (activities.CheckDebitResult, error)
	records   []activities.RecordPaymentInput
	recordN   int
	recordFn  func(n int, in activities.RecordPaymentInput) error // fails a write when it returns an error
	publishFn func(n int) error
	publishN  int
	published []activities.PublishPaymentEventInput
	// publishedAt is the test clock when the last event went out.
	publishedAt time.Time
	now         func() time.Time
}

func (f *fakeSteps) record(_ context.Context, in activities.RecordPaymentInput) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.recordN++
	if f.recordFn != nil {
		if err := f.recordFn(f.recordN, in); err != nil {
			return err
		}
	}
	f.records = append(f.records, in)
	return nil
}

func (f *fakeSteps) debit(_ context.Context, in activities.DebitInput) (activities.DebitResult, error) {
	f.mu.Lock()
	f.debits = append(f.debits, in.TransferID)
	n := len(f.debits)
	f.mu.Unlock()
	return f.debitFn(n, in)
}

func (f *fakeSteps) check(_ context.Context, in activities.CheckDebitInput) (activities.CheckDebitResult, error) {
	f.mu.Lock()
	f.checks = append(f.checks, in.TransferID)
	n := len(f.checks)
	f.mu.Unlock()
	return f.checkFn(n, in)
}

func (f *fakeSteps) publish(_ context.Context, in activities.PublishPaymentEventInput) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.publishN++
	if f.publishFn != nil {
		if err := f.publishFn(f.publishN); err != nil {
			return err
		}
	}
	f.published = append(f.published, in)
	f.publishedAt = f.now()
	return nil
}

func (f *fakeSteps) statuses() []paysaga.PaymentStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []paysaga.PaymentStatus
	for _, r := range f.records {
		out = append(out, r.Status)
	}
	return out
}

func (f *fakeSteps) eventTypes() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, r := range f.records {
		for _, e := range r.Events {
			out = append(out, e.Type)
		}
	}
	return out
}

func (f *fakeSteps) publishedTypes() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, p := range f.published {
		out = append(out, p.Type)
	}
	return out
}

func succeedDebit(_ int, in activities.DebitInput) (activities.DebitResult, error) {
	return activities.DebitResult{TransferID: in.TransferID, Tsymd: "20261125", IsTuno: "20261125000000000001",
		Rpcd: "00000", Rsms: "정상처리 되었습니다."}, nil
}

func lostAnswer() error {
	return temporal.NewNonRetryableApplicationError("answer lost", activities.ErrTypeUnknownOutcome, nil)
}

// harness is a test environment with the payment workflow, the fake steps, captured search
// attributes and the answer to the "outcome" update the API sends at start.
type harness struct {
	env      *testsuite.TestWorkflowEnvironment
	steps    *fakeSteps
	mu       sync.Mutex
	attrs    []temporal.SearchAttributes
	outcome  *paysaga.Payment
	outcomeT time.Time
	start    time.Time
}

func newHarness(t *testing.T, steps *fakeSteps, register ...func(*testsuite.TestWorkflowEnvironment)) *harness {
	t.Helper()
	var ts testsuite.WorkflowTestSuite
	ts.SetLogger(log.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	env := ts.NewTestWorkflowEnvironment()
	h := &harness{env: env, steps: steps}
	steps.now = env.Now
	if steps.checkFn == nil {
		steps.checkFn = func(int, activities.CheckDebitInput) (activities.CheckDebitResult, error) {
			t.Error("unexpected CheckDebit")
			return activities.CheckDebitResult{}, errors.New("unexpected")
		}
	}
	env.RegisterWorkflowWithOptions(NewPayments(testConfig).PaymentWorkflow, workflow.RegisterOptions{Name: PaymentWorkflowName})
	env.RegisterActivityWithOptions(steps.record, activity.RegisterOptions{Name: activities.RecordPaymentName})
	env.RegisterActivityWithOptions(steps.debit, activity.RegisterOptions{Name: activities.DebitName})
	env.RegisterActivityWithOptions(steps.check, activity.RegisterOptions{Name: activities.CheckDebitName})
	env.RegisterActivityWithOptions(steps.publish, activity.RegisterOptions{Name: activities.PublishPaymentEventName})
	for _, r := range register {
		r(env)
	}
	require.NoError(t, env.SetTypedSearchAttributesOnStart(SearchAttributesForStart(testInput())))
	env.OnUpsertTypedSearchAttributes(mock.Anything).Run(func(args mock.Arguments) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.attrs = append(h.attrs, args.Get(0).(temporal.SearchAttributes))
	}).Return(nil)
	// The API's Update-with-Start: the outcome update arrives with the start.
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(UpdateOutcome, "outcome-1", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { t.Errorf("outcome update rejected: %v", err) },
			OnAccept: func() {},
			OnComplete: func(v any, err error) {
				require.NoError(t, err)
				p := v.(paysaga.Payment)
				h.mu.Lock()
				h.outcome, h.outcomeT = &p, env.Now()
				h.mu.Unlock()
			},
		})
	}, 0)
	return h
}

func (h *harness) run(t *testing.T) paysaga.Payment {
	t.Helper()
	h.start = h.env.Now()
	h.env.ExecuteWorkflow(PaymentWorkflowName, testInput())
	require.True(t, h.env.IsWorkflowCompleted())
	require.NoError(t, h.env.GetWorkflowError())
	var p paysaga.Payment
	require.NoError(t, h.env.GetWorkflowResult(&p))
	return p
}

// A payment started with PaymentStatus=PENDING (by an API from before the attributes said
// PROCESSING at start, during a rolling deploy) still gets its PROCESSING upsert: the workflow
// decides from the attributes it was started with, never from its own version.
func TestPaymentStartedAsPendingStillUpsertsProcessing(t *testing.T) {
	steps := &fakeSteps{debitFn: succeedDebit}
	h := newHarness(t, steps)
	sa := SearchAttributesForStart(testInput())
	cust, _ := sa.GetKeyword(SearchCustomerID)
	merch, _ := sa.GetKeyword(SearchMerchantID)
	require.NoError(t, h.env.SetTypedSearchAttributesOnStart(temporal.NewSearchAttributes(
		SearchPaymentStatus.ValueSet(string(paysaga.PaymentPending)), SearchCustomerID.ValueSet(cust),
		SearchMerchantID.ValueSet(merch), SearchNeedsAttention.ValueSet(false))))
	p := h.run(t)
	require.Equal(t, paysaga.PaymentSucceeded, p.Status)
	require.Equal(t, []string{"PROCESSING", "SUCCEEDED"}, h.statusAttrs())
}

func (h *harness) statusAttrs() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, sa := range h.attrs {
		v, _ := sa.GetKeyword(SearchPaymentStatus)
		out = append(out, v)
	}
	return out
}

func TestPaymentSucceeds(t *testing.T) {
	steps := &fakeSteps{debitFn: succeedDebit}
	h := newHarness(t, steps)
	p := h.run(t)

	require.Equal(t, paysaga.PaymentSucceeded, p.Status)
	require.Equal(t, int64(15000), p.Amount)
	require.Equal(t, []string{"trf_test0000000000000000001_1"}, steps.debits)
	require.Empty(t, steps.checks)
	require.Equal(t, []paysaga.PaymentStatus{paysaga.PaymentProcessing, paysaga.PaymentSucceeded}, steps.statuses())
	require.Equal(t, []string{EventCreated, EventProcessing, EventSucceeded}, steps.eventTypes())
	require.NotNil(t, steps.records[0].Create, "the first step creates the payment row")
	require.Equal(t, paysaga.PaymentPending, steps.records[0].Create.Status)
	require.Equal(t, "00000", steps.records[1].Events[0].Rpcd)

	require.Equal(t, []string{EventSucceeded}, steps.publishedTypes())
	require.Equal(t, "evt_test0000000000000000001_003", steps.published[0].EventID, "message id = the history row's id")
	require.Equal(t, paysaga.PaymentSucceeded, steps.published[0].Payment.Status)

	require.NotNil(t, h.outcome)
	require.Equal(t, paysaga.PaymentSucceeded, h.outcome.Status)
	require.Equal(t, []string{"SUCCEEDED"}, h.statusAttrs(), "started as PROCESSING: one upsert, at the end")
}

func TestPaymentDeclined(t *testing.T) {
	steps := &fakeSteps{debitFn: func(int, activities.DebitInput) (activities.DebitResult, error) {
		return activities.DebitResult{}, temporal.NewNonRetryableApplicationError("declined", activities.ErrTypeDeclined, nil,
			activities.BankAnswer{Rpcd: "E0301", Rsms: "잔액이 부족합니다."})
	}}
	h := newHarness(t, steps)
	p := h.run(t)

	require.Equal(t, paysaga.PaymentFailed, p.Status)
	require.Equal(t, "E0301", p.FailureCode)
	require.Equal(t, "잔액이 부족합니다.", p.FailureMessage)
	require.Len(t, steps.debits, 1, "a decline is final: never sent again")
	require.Empty(t, steps.checks)
	last := steps.records[len(steps.records)-1]
	require.Equal(t, "E0301", last.FailureCode)
	require.Equal(t, "E0301", last.Events[0].Rpcd)
	require.Equal(t, "잔액이 부족합니다.", last.Events[0].Rsms)
	require.Equal(t, []string{EventFailed}, steps.publishedTypes())
	require.Equal(t, paysaga.PaymentFailed, h.outcome.Status)
	require.Equal(t, []string{"FAILED"}, h.statusAttrs())
}

func TestPaymentLostAnswerExecuted(t *testing.T) {
	steps := &fakeSteps{
		debitFn: func(int, activities.DebitInput) (activities.DebitResult, error) {
			return activities.DebitResult{}, lostAnswer()
		},
		checkFn: func(n int, _ activities.CheckDebitInput) (activities.CheckDebitResult, error) {
			if n < 3 { // the bank is still working on it for a while
				return activities.CheckDebitResult{}, errors.New("in progress")
			}
			return activities.CheckDebitResult{Executed: true, Rpcd: "00000"}, nil
		},
	}
	h := newHarness(t, steps)
	p := h.run(t)

	require.Equal(t, paysaga.PaymentSucceeded, p.Status)
	require.Len(t, steps.debits, 1, "a lost answer is never sent again")
	require.Equal(t, []string{steps.debits[0], steps.debits[0], steps.debits[0]}, steps.checks,
		"the check asks about the original transfer")
	require.Equal(t, []string{EventCreated, EventProcessing, EventDebitUnknown, EventSucceeded}, steps.eventTypes())
	require.Equal(t, []string{EventSucceeded}, steps.publishedTypes())
}

func TestPaymentLostAnswerNotExecutedSendsOneNewTransfer(t *testing.T) {
	steps := &fakeSteps{
		debitFn: func(n int, in activities.DebitInput) (activities.DebitResult, error) {
			if n == 1 {
				return activities.DebitResult{}, lostAnswer()
			}
			return succeedDebit(n, in)
		},
		checkFn: func(int, activities.CheckDebitInput) (activities.CheckDebitResult, error) {
			return activities.CheckDebitResult{Executed: false}, nil
		},
	}
	h := newHarness(t, steps)
	p := h.run(t)

	require.Equal(t, paysaga.PaymentSucceeded, p.Status)
	require.Equal(t, []string{"trf_test0000000000000000001_1", "trf_test0000000000000000001_2"}, steps.debits,
		"exactly one new transfer, with its own ID (and so its own IsTuno)")
	require.Equal(t, []string{"trf_test0000000000000000001_1"}, steps.checks)
	require.Equal(t, []string{EventCreated, EventProcessing, EventDebitUnknown, EventDebitNotExecut, EventSucceeded},
		steps.eventTypes())
	require.Equal(t, []string{EventSucceeded}, steps.publishedTypes())
}

func TestPaymentNeverExecutedFails(t *testing.T) {
	steps := &fakeSteps{debitFn: func(int, activities.DebitInput) (activities.DebitResult, error) {
		return activities.DebitResult{}, temporal.NewNonRetryableApplicationError("not sent", activities.ErrTypeNotExecuted, nil)
	}}
	h := newHarness(t, steps)
	p := h.run(t)

	require.Equal(t, paysaga.PaymentFailed, p.Status)
	require.Equal(t, FailureNotExecuted, p.FailureCode)
	require.Len(t, steps.debits, testConfig.MaxDebitAttempts)
	require.Equal(t, []string{EventFailed}, steps.publishedTypes())
}

func TestPaymentUnknownUntilDeadlineThenResolvedByOperator(t *testing.T) {
	for _, tc := range []struct {
		as            string
		status        paysaga.PaymentStatus
		transferState paysaga.TransferState
		published     string
	}{
		{ResolveSucceeded, paysaga.PaymentSucceeded, paysaga.TransferSucceeded, EventSucceeded},
		{ResolveFailed, paysaga.PaymentFailed, paysaga.TransferNotExecuted, EventFailed},
	} {
		t.Run(tc.as, func(t *testing.T) {
			steps := &fakeSteps{
				debitFn: func(int, activities.DebitInput) (activities.DebitResult, error) {
					return activities.DebitResult{}, lostAnswer()
				},
				checkFn: func(int, activities.CheckDebitInput) (activities.CheckDebitResult, error) {
					return activities.CheckDebitResult{}, errors.New("bank unreachable")
				},
			}
			h := newHarness(t, steps)
			env := h.env
			var early, invalid, resolved error
			var resolvedPayment paysaga.Payment
			var view PaymentView
			// Too early: the payment is still PROCESSING.
			env.RegisterDelayedCallback(func() {
				env.UpdateWorkflow(UpdateResolve, "resolve-early", &testsuite.TestUpdateCallback{
					OnReject: func(err error) { early = err }, OnAccept: func() {}, OnComplete: func(any, error) {},
				}, Resolution{As: tc.as, Reason: "checked", Actor: "usr_operator"})
			}, time.Minute)
			env.RegisterDelayedCallback(func() {
				v, err := env.QueryWorkflow(QueryStatus)
				require.NoError(t, err)
				require.NoError(t, v.Get(&view))
				env.UpdateWorkflow(UpdateResolve, "resolve-invalid", &testsuite.TestUpdateCallback{
					OnReject: func(err error) { invalid = err }, OnAccept: func() {}, OnComplete: func(any, error) {},
				}, Resolution{As: "maybe", Reason: "checked", Actor: "usr_operator"})
				env.UpdateWorkflow(UpdateResolve, "resolve-1", &testsuite.TestUpdateCallback{
					OnReject: func(err error) { t.Errorf("resolution rejected: %v", err) },
					OnAccept: func() {},
					OnComplete: func(v any, err error) {
						resolved = err
						resolvedPayment = v.(paysaga.Payment)
					},
				}, Resolution{As: tc.as, Reason: "bank statement checked", Actor: "usr_operator"})
			}, 2*time.Hour)
			p := h.run(t)

			require.Error(t, early, "a resolution is refused while the bank is still being asked")
			require.Contains(t, early.Error(), "not waiting")
			require.Error(t, invalid)

			require.Equal(t, paysaga.PaymentUnknown, view.Payment.Status)
			require.True(t, view.NeedsAttention)
			require.True(t, view.AwaitingResolution)
			require.Equal(t, paysaga.PaymentUnknown, h.outcome.Status, "the outcome update answers UNKNOWN")
			require.WithinDuration(t, h.start.Add(testConfig.UnknownDeadline), h.outcomeT, time.Minute,
				"the bank is asked until the deadline")

			require.NoError(t, resolved)
			require.Equal(t, tc.status, resolvedPayment.Status)
			require.Equal(t, tc.status, p.Status)
			require.Len(t, steps.debits, 1, "never sent again")
			require.Equal(t, []string{"UNKNOWN", string(tc.status)}, h.statusAttrs())
			h.mu.Lock()
			na, _ := h.attrs[0].GetBool(SearchNeedsAttention)
			require.True(t, na)
			na, _ = h.attrs[1].GetBool(SearchNeedsAttention)
			require.False(t, na)
			h.mu.Unlock()
			last := steps.records[len(steps.records)-1]
			require.Equal(t, &activities.TransferUpdate{TransferID: steps.debits[0], State: tc.transferState}, last.Transfer)
			require.Equal(t, "usr_operator", last.Events[0].Actor)
			require.Equal(t, "bank statement checked", last.Events[0].Reason)
			require.Equal(t, []string{EventUnknown, tc.published}, steps.publishedTypes())
		})
	}
}

func TestPaymentBrokerDownDelaysEventsOnly(t *testing.T) {
	steps := &fakeSteps{
		debitFn: succeedDebit,
		publishFn: func(n int) error {
			if n <= 6 {
				return errors.New("broker unreachable")
			}
			return nil
		},
	}
	h := newHarness(t, steps)
	p := h.run(t)

	require.Equal(t, paysaga.PaymentSucceeded, p.Status)
	require.NotNil(t, h.outcome)
	require.Equal(t, paysaga.PaymentSucceeded, h.outcome.Status)
	require.Equal(t, []string{EventSucceeded}, steps.publishedTypes(), "published once the broker is back")
	require.Equal(t, 7, steps.publishN)
	require.True(t, h.outcomeT.Before(steps.publishedAt),
		"the outcome was answered (%s) before the event could be published (%s)", h.outcomeT, steps.publishedAt)
}

// manualHarness is the payment harness with the refund saga and its fake steps, for the
// cancellation of manual-capture payments.
func manualHarness(t *testing.T) (*harness, *fakeRefundSteps, PaymentInput) {
	t.Helper()
	steps := &fakeSteps{debitFn: succeedDebit}
	refunds := &fakeRefundSteps{creditFn: creditOK}
	h := newHarness(t, steps, func(env *testsuite.TestWorkflowEnvironment) {
		env.RegisterWorkflowWithOptions(NewRefunds(testRefundConfig).RefundWorkflow, workflow.RegisterOptions{Name: RefundWorkflowName})
		env.RegisterActivityWithOptions(refunds.reserve, activity.RegisterOptions{Name: activities.ReserveRefundName})
		env.RegisterActivityWithOptions(refunds.credit, activity.RegisterOptions{Name: activities.CreditName})
		env.RegisterActivityWithOptions(refunds.settle, activity.RegisterOptions{Name: activities.SettleRefundName})
		env.RegisterActivityWithOptions(refunds.publish, activity.RegisterOptions{Name: activities.PublishRefundEventName})
	})
	in := testInput()
	in.CaptureMode = paysaga.CaptureManual
	return h, refunds, in
}

func (h *harness) decide(t *testing.T, update string, after time.Duration, got *paysaga.Payment) {
	t.Helper()
	h.env.RegisterDelayedCallback(func() {
		h.env.UpdateWorkflow(update, update+"-1", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { t.Errorf("%s rejected: %v", update, err) },
			OnAccept: func() {},
			OnComplete: func(v any, err error) {
				require.NoError(t, err)
				*got = v.(paysaga.Payment)
			},
		}, CaptureDecision{Actor: "usr_merchant", Reason: "order " + update})
	}, after)
}

func TestPaymentManualCaptureCaptured(t *testing.T) {
	h, refunds, in := manualHarness(t)
	var captured paysaga.Payment
	h.decide(t, UpdateCapture, time.Hour, &captured)
	h.env.ExecuteWorkflow(PaymentWorkflowName, in)
	require.NoError(t, h.env.GetWorkflowError())
	var p paysaga.Payment
	require.NoError(t, h.env.GetWorkflowResult(&p))

	require.Equal(t, paysaga.PaymentAuthorized, h.outcome.Status, "the outcome the API answers first: debited, not captured")
	require.Equal(t, paysaga.PaymentSucceeded, p.Status)
	require.Equal(t, paysaga.PaymentSucceeded, captured.Status)
	require.Len(t, h.steps.debits, 1)
	require.Empty(t, refunds.credits)
	require.Equal(t, []string{EventAuthorized, EventSucceeded}, h.steps.publishedTypes())
}

func TestPaymentManualCaptureCanceledRefundsOnce(t *testing.T) {
	h, refunds, in := manualHarness(t)
	var canceled paysaga.Payment
	h.decide(t, UpdateCancel, time.Hour, &canceled)
	h.env.ExecuteWorkflow(PaymentWorkflowName, in)
	require.NoError(t, h.env.GetWorkflowError())
	var p paysaga.Payment
	require.NoError(t, h.env.GetWorkflowResult(&p))

	require.Equal(t, paysaga.PaymentCanceled, p.Status)
	require.Equal(t, paysaga.PaymentCanceled, canceled.Status)
	require.Len(t, refunds.credits, 1, "the customer is refunded once")
	require.Equal(t, []paysaga.RefundStatus{paysaga.RefundSucceeded}, refunds.settledStatuses())
	require.Equal(t, []string{EventAuthorized, EventCanceled}, h.steps.publishedTypes())
	require.Equal(t, []string{EventRefundSucceeded}, refunds.publishedTypes())
}

func TestPaymentManualCaptureDeadlineCancels(t *testing.T) {
	h, refunds, in := manualHarness(t)
	in.CaptureBy = in.CreatedAt.Add(30 * time.Minute)
	h.env.ExecuteWorkflow(PaymentWorkflowName, in)
	require.NoError(t, h.env.GetWorkflowError())
	var p paysaga.Payment
	require.NoError(t, h.env.GetWorkflowResult(&p))

	require.Equal(t, paysaga.PaymentCanceled, p.Status)
	require.Len(t, refunds.credits, 1)
	var canceled bool
	for _, r := range h.steps.records {
		for _, e := range r.Events {
			if e.Type == EventCanceled {
				canceled = true
				require.Equal(t, "system", e.Actor, "the deadline canceled it, not a person")
			}
		}
	}
	require.True(t, canceled)
}

func TestPaymentCaptureRefusedUnlessAuthorized(t *testing.T) {
	steps := &fakeSteps{debitFn: succeedDebit}
	h := newHarness(t, steps)
	var rejected error
	h.env.RegisterDelayedCallback(func() {
		h.env.UpdateWorkflow(UpdateCapture, "capture-1", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { rejected = err }, OnAccept: func() {}, OnComplete: func(any, error) {},
		}, CaptureDecision{Actor: "usr_merchant"})
	}, 0)
	p := h.run(t)
	require.Equal(t, paysaga.PaymentSucceeded, p.Status)
	require.Error(t, rejected, "an automatic payment has nothing to capture")
	require.Equal(t, paysaga.ECONFLICT, errType(rejected))
}

func TestSearchAttributeFlags(t *testing.T) {
	// No amount in visibility (issue 14): Temporal keeps search attributes in plaintext.
	require.Equal(t, []string{"PaymentStatus=Keyword", "CustomerId=Keyword", "MerchantId=Keyword",
		"NeedsAttention=Bool"}, SearchAttributeFlags())
	sa := SearchAttributesForStart(testInput())
	status, _ := sa.GetKeyword(SearchPaymentStatus)
	_, hasAmount := sa.GetInt64(SearchAmountKRW.SearchAttributeKeyInt64)
	require.Equal(t, "PROCESSING", status, "what the workflow's first step records: no upsert for it")
	require.False(t, hasAmount, "a payment's amount is a search attribute")
	_, hasAmount = SearchAttributesForRefund(RefundInput{Amount: 700}).GetInt64(SearchAmountKRW.SearchAttributeKeyInt64)
	require.False(t, hasAmount, "a refund's amount is a search attribute")
	require.Equal(t, "payment:pay_x", PaymentWorkflowID("pay_x"))
}
