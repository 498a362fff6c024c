package saga_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"paysaga"
	"paysaga/saga"
	"paysaga/workflows"
)

func paymentInput() workflows.PaymentInput {
	return workflows.PaymentInput{PaymentID: paysaga.NewID(paysaga.PrefixPayment), CustomerID: "usr_c", MerchantID: "usr_m",
		AccountID: "acct_a", Amount: 15_000, CaptureMode: paysaga.CaptureAutomatic, CreatedAt: time.Now()}
}

func down(string) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
	return nil, serviceerror.NewUnavailable("connection refused")
}

// A payment is started once under its workflow ID, joined on a retry, never started again
// after it closed; every retry waits on the same outcome Update.
func TestStartPaymentStartsOnePaymentWorkflow(t *testing.T) {
	in := paymentInput()
	tc := &fakeTemporal{answer: func(context.Context, client.UpdateWorkflowOptions) (any, error) {
		return paysaga.Payment{ID: in.PaymentID, Status: paysaga.PaymentSucceeded}, nil
	}}
	p, err := saga.Payments{Client: tc}.StartPayment(context.Background(), in, time.Second)
	require.NoError(t, err)
	require.Equal(t, paysaga.PaymentSucceeded, p.Status)

	start := tc.Starts()[0]
	require.Equal(t, workflows.PaymentWorkflowID(in.PaymentID), start.ID)
	require.Equal(t, workflows.TaskQueue, start.TaskQueue)
	require.Equal(t, enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING, start.WorkflowIDConflictPolicy)
	require.Equal(t, enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE, start.WorkflowIDReusePolicy, "a closed payment is never debited again")
	u := tc.Updates()[0]
	require.Equal(t, workflows.UpdateOutcome, u.UpdateName)
	require.Equal(t, workflows.UpdateOutcome, u.UpdateID, "one update per payment: retries share its result")
	require.Equal(t, client.WorkflowUpdateStageCompleted, u.WaitForStage)
}

// A wait that runs out is "still running" only for a workflow the server confirms; with the
// server unreachable it is EUNAVAILABLE (the client retries with its key), and the retry asks
// for the same workflow again.
func TestStartPaymentWhenTemporalNeverAnswers(t *testing.T) {
	in := paymentInput()
	tc := &fakeTemporal{describe: down}
	starter := saga.Payments{Client: tc}
	for range 2 {
		p, err := starter.StartPayment(context.Background(), in, 50*time.Millisecond)
		require.Nil(t, p)
		require.Equal(t, paysaga.EUNAVAILABLE, paysaga.ErrorCode(err))
		require.Equal(t, "the payment could not be confirmed as started; retry with the same Idempotency-Key", paysaga.ErrorMessage(err))
	}
	wid := workflows.PaymentWorkflowID(in.PaymentID)
	starts := tc.Starts()
	require.Len(t, starts, 2)
	require.Equal(t, wid, starts[0].ID)
	require.Equal(t, wid, starts[1].ID)

	tc.describe = nil // the server is back, the workflow runs
	p, err := starter.StartPayment(context.Background(), in, 50*time.Millisecond)
	require.NoError(t, err)
	require.Nil(t, p, "still running: the client polls")
}

// A retry after the payment's workflow closed is answered from the store; a start that fails
// otherwise is EUNAVAILABLE.
func TestStartPaymentOfAClosedWorkflowReadsTheStore(t *testing.T) {
	in := paymentInput()
	stored := &paysaga.Payment{ID: in.PaymentID, Status: paysaga.PaymentFailed, FailureCode: "E0001"}
	tc := &fakeTemporal{answer: func(context.Context, client.UpdateWorkflowOptions) (any, error) {
		return nil, serviceerror.NewWorkflowExecutionAlreadyStarted("closed", "", "")
	}}
	starter := saga.Payments{Client: tc, Store: fakeStore{payments: map[string]*paysaga.Payment{in.PaymentID: stored}}}
	p, err := starter.StartPayment(context.Background(), in, time.Second)
	require.NoError(t, err)
	require.Equal(t, stored, p)

	tc.answer = func(context.Context, client.UpdateWorkflowOptions) (any, error) {
		return nil, serviceerror.NewInternal("boom")
	}
	_, err = starter.StartPayment(context.Background(), in, time.Second)
	require.Equal(t, paysaga.EUNAVAILABLE, paysaga.ErrorCode(err))
	require.Equal(t, "the payment could not be started; retry with the same Idempotency-Key", paysaga.ErrorMessage(err))
	require.ErrorContains(t, err, "boom")
}

// A capture or cancel is an Update named and identified by the decision: a retry gets the first
// one's answer. The workflow's refusal is the domain's ECONFLICT; a closed workflow answers with
// the payment if it ended as decided, ECONFLICT otherwise.
func TestDecidePayment(t *testing.T) {
	ctx := context.Background()
	id := paysaga.NewID(paysaga.PrefixPayment)
	d := workflows.CaptureDecision{Actor: "usr_m", Reason: "shipped"}
	tc := &fakeTemporal{answer: func(context.Context, client.UpdateWorkflowOptions) (any, error) {
		return paysaga.Payment{ID: id, Status: paysaga.PaymentSucceeded}, nil
	}}
	db := fakeStore{payments: map[string]*paysaga.Payment{id: {ID: id, Status: paysaga.PaymentSucceeded}}}
	starter := saga.Payments{Client: tc, Store: db}

	p, err := starter.DecidePayment(ctx, id, workflows.UpdateCapture, d, time.Second)
	require.NoError(t, err)
	require.Equal(t, paysaga.PaymentSucceeded, p.Status)
	u := tc.Updates()[0]
	require.Equal(t, workflows.PaymentWorkflowID(id), u.WorkflowID)
	require.Equal(t, workflows.UpdateCapture, u.UpdateName)
	require.Equal(t, workflows.UpdateCapture, u.UpdateID)
	require.Equal(t, []any{d}, u.Args)

	tc.answer = func(context.Context, client.UpdateWorkflowOptions) (any, error) {
		return temporal.NewApplicationError("payment is SUCCEEDED", paysaga.ECONFLICT), nil
	}
	_, err = starter.DecidePayment(ctx, id, workflows.UpdateCancel, d, time.Second)
	require.Equal(t, paysaga.ECONFLICT, paysaga.ErrorCode(err))
	require.Equal(t, "payment is SUCCEEDED", paysaga.ErrorMessage(err))

	tc.answer = func(context.Context, client.UpdateWorkflowOptions) (any, error) {
		return nil, serviceerror.NewNotFound("workflow execution already completed")
	}
	p, err = starter.DecidePayment(ctx, id, workflows.UpdateCapture, d, time.Second)
	require.NoError(t, err, "captured before: the same answer")
	require.Equal(t, paysaga.PaymentSucceeded, p.Status)
	_, err = starter.DecidePayment(ctx, id, workflows.UpdateCancel, d, time.Second)
	require.Equal(t, paysaga.ECONFLICT, paysaga.ErrorCode(err))

	tc.answer = nil // the wait runs out
	p, err = starter.DecidePayment(ctx, id, workflows.UpdateCapture, d, 20*time.Millisecond)
	require.NoError(t, err)
	require.Nil(t, p)

	tc.answer = func(context.Context, client.UpdateWorkflowOptions) (any, error) {
		return nil, serviceerror.NewUnavailable("connection refused")
	}
	_, err = starter.DecidePayment(ctx, id, workflows.UpdateCapture, d, time.Second)
	require.Equal(t, paysaga.EUNAVAILABLE, paysaga.ErrorCode(err))
	require.Equal(t, "the capture could not be sent; retry", paysaga.ErrorMessage(err))
}

// An operator's resolution is sent under one fixed Update ID (a retry after a lost answer gets
// the first verdict); the workflow's refusals are ECONFLICT and EINVALID.
func TestResolve(t *testing.T) {
	ctx := context.Background()
	r := workflows.Resolution{As: workflows.ResolveSucceeded, Reason: "on the statement", Actor: "ops"}
	payID, refID := paysaga.NewID(paysaga.PrefixPayment), paysaga.NewID(paysaga.PrefixRefund)
	tc := &fakeTemporal{answer: func(_ context.Context, o client.UpdateWorkflowOptions) (any, error) {
		if o.WorkflowID == workflows.RefundWorkflowID(refID) {
			return paysaga.Refund{ID: refID, Status: paysaga.RefundSucceeded}, nil
		}
		return paysaga.Payment{ID: payID, Status: paysaga.PaymentSucceeded}, nil
	}}
	sagas := saga.Payments{Client: tc} // no store: resolving reads none

	p, err := sagas.ResolvePayment(ctx, payID, r)
	require.NoError(t, err)
	require.Equal(t, paysaga.PaymentSucceeded, p.Status)
	ref, err := sagas.ResolveRefund(ctx, refID, r)
	require.NoError(t, err)
	require.Equal(t, paysaga.RefundSucceeded, ref.Status)
	us := tc.Updates()
	require.Equal(t, []string{workflows.PaymentWorkflowID(payID), workflows.RefundWorkflowID(refID)}, []string{us[0].WorkflowID, us[1].WorkflowID})
	require.Equal(t, []string{workflows.UpdateResolve, workflows.UpdateResolveRefund}, []string{us[0].UpdateName, us[1].UpdateName})
	require.Equal(t, []string{saga.ResolveUpdateID, saga.ResolveUpdateID}, []string{us[0].UpdateID, us[1].UpdateID})
	require.Equal(t, []any{r}, us[0].Args)

	for _, code := range []string{paysaga.ECONFLICT, paysaga.EINVALID} {
		tc.answer = func(context.Context, client.UpdateWorkflowOptions) (any, error) {
			return temporal.NewApplicationError("not waiting", code), nil
		}
		_, err = sagas.ResolvePayment(ctx, payID, r)
		require.Equal(t, code, paysaga.ErrorCode(err))
		require.Equal(t, "not waiting", paysaga.ErrorMessage(err))
	}
	tc.answer = func(context.Context, client.UpdateWorkflowOptions) (any, error) {
		return nil, serviceerror.NewUnavailable("connection refused")
	}
	_, err = sagas.ResolveRefund(ctx, refID, r)
	require.Error(t, err)
	require.Equal(t, paysaga.EINTERNAL, paysaga.ErrorCode(err), "not a refusal")
}

// A cancellation's refund is replayed through the payment's workflow with an Update of its
// own; a closed workflow cannot replay it (ECONFLICT), a wait that runs out is (nil, nil).
func TestReplayCancellation(t *testing.T) {
	ctx := context.Background()
	id := paysaga.NewID(paysaga.PrefixPayment)
	d := workflows.CaptureDecision{Actor: "ops", Reason: "refund replayed by an operator"}
	tc := &fakeTemporal{answer: func(context.Context, client.UpdateWorkflowOptions) (any, error) {
		return paysaga.Payment{ID: id, Status: paysaga.PaymentCanceled}, nil
	}}
	sagas := saga.Payments{Client: tc}
	for range 2 {
		p, err := sagas.ReplayCancellation(ctx, id, d, time.Second)
		require.NoError(t, err)
		require.Equal(t, paysaga.PaymentCanceled, p.Status)
	}
	us := tc.Updates()
	require.Equal(t, workflows.UpdateReplayCancel, us[0].UpdateName)
	require.NotEqual(t, us[0].UpdateID, us[1].UpdateID, "each replay asks afresh")

	tc.answer = func(context.Context, client.UpdateWorkflowOptions) (any, error) {
		return nil, serviceerror.NewNotFound("workflow execution already completed")
	}
	_, err := sagas.ReplayCancellation(ctx, id, d, time.Second)
	require.Equal(t, paysaga.ECONFLICT, paysaga.ErrorCode(err))
	require.Contains(t, paysaga.ErrorMessage(err), "the payment's workflow is closed")

	tc.answer = func(context.Context, client.UpdateWorkflowOptions) (any, error) {
		return temporal.NewApplicationError("the refund is not FAILED", paysaga.ECONFLICT), nil
	}
	_, err = sagas.ReplayCancellation(ctx, id, d, time.Second)
	require.Equal(t, "the refund is not FAILED", paysaga.ErrorMessage(err))

	tc.answer = nil
	p, err := sagas.ReplayCancellation(ctx, id, d, 20*time.Millisecond)
	require.NoError(t, err)
	require.Nil(t, p)

	tc.answer = func(context.Context, client.UpdateWorkflowOptions) (any, error) { return nil, errors.New("boom") }
	_, err = sagas.ReplayCancellation(ctx, id, d, time.Second)
	require.ErrorContains(t, err, "boom")
}
