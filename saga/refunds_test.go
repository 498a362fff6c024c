package saga_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"paysaga"
	"paysaga/saga"
	"paysaga/workflows"
)

func refundInput(replay bool) workflows.RefundInput {
	return workflows.RefundInput{RefundID: paysaga.NewID(paysaga.PrefixRefund), PaymentID: paysaga.NewID(paysaga.PrefixPayment),
		CustomerID: "usr_c", MerchantID: "usr_m", Amount: 5_000, Actor: "usr_m", Replay: replay, CreatedAt: time.Now()}
}

// A first request starts the refund once; its retries share the one outcome Update. The
// workflow's refusal (more than is left to refund) is ECONFLICT with the workflow's words.
func TestStartRefund(t *testing.T) {
	in := refundInput(false)
	tc := &fakeTemporal{answer: func(context.Context, client.UpdateWorkflowOptions) (any, error) {
		return paysaga.Refund{ID: in.RefundID, Status: paysaga.RefundSucceeded}, nil
	}}
	starter := saga.Payments{Client: tc, Store: fakeStore{}}
	r, err := starter.StartRefund(context.Background(), in, time.Second)
	require.NoError(t, err)
	require.Equal(t, paysaga.RefundSucceeded, r.Status)
	start := tc.Starts()[0]
	require.Equal(t, workflows.RefundWorkflowID(in.RefundID), start.ID)
	require.Equal(t, enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE, start.WorkflowIDReusePolicy)
	require.Equal(t, enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING, start.WorkflowIDConflictPolicy)
	require.Nil(t, start.Memo)
	require.Equal(t, workflows.UpdateOutcome, tc.Updates()[0].UpdateID)

	tc.answer = func(context.Context, client.UpdateWorkflowOptions) (any, error) {
		return temporal.NewApplicationError("only 6000 won are left to refund", paysaga.ECONFLICT), nil
	}
	_, err = starter.StartRefund(context.Background(), in, time.Second)
	require.Equal(t, paysaga.ECONFLICT, paysaga.ErrorCode(err))
	require.Equal(t, "only 6000 won are left to refund", paysaga.ErrorMessage(err))

	tc.answer, tc.describe = nil, down
	_, err = starter.StartRefund(context.Background(), in, 20*time.Millisecond)
	require.Equal(t, paysaga.EUNAVAILABLE, paysaga.ErrorCode(err))
	require.Equal(t, "the refund could not be confirmed as started; retry with the same Idempotency-Key", paysaga.ErrorMessage(err))
}

// A first request whose workflow has closed is answered by the store, or else by the
// workflow's own result (a refusal); it is never asked again.
func TestStartRefundOfAClosedWorkflow(t *testing.T) {
	in := refundInput(false)
	closed := func(context.Context, client.UpdateWorkflowOptions) (any, error) {
		return nil, serviceerror.NewWorkflowExecutionAlreadyStarted("closed", "", "")
	}
	stored := &paysaga.Refund{ID: in.RefundID, Status: paysaga.RefundFailed}
	tc := &fakeTemporal{answer: closed}
	r, err := saga.Payments{Client: tc, Store: fakeStore{refunds: map[string]*paysaga.Refund{in.RefundID: stored}}}.
		StartRefund(context.Background(), in, time.Second)
	require.NoError(t, err)
	require.Equal(t, stored, r)
	require.Len(t, tc.Updates(), 1, "a first request does not ask again")

	tc.result = func() (any, error) {
		return nil, temporal.NewApplicationError("the payment is FAILED", paysaga.ECONFLICT)
	}
	_, err = saga.Payments{Client: tc, Store: fakeStore{}}.StartRefund(context.Background(), in, time.Second)
	require.Equal(t, paysaga.ECONFLICT, paysaga.ErrorCode(err))
	require.Equal(t, "the payment is FAILED", paysaga.ErrorMessage(err))
}

// A replay may start a new run of the closed refund, marked as a replay's, with an Update of
// its own; it waits for a failed run still finishing, and when it loses a race to another
// replay's start ("already started") it asks again and joins that run.
func TestStartRefundReplay(t *testing.T) {
	in := refundInput(true)
	var asked atomic.Int32
	var failedRunDone atomic.Bool
	tc := &fakeTemporal{
		answer: func(context.Context, client.UpdateWorkflowOptions) (any, error) {
			if asked.Add(1) < 3 {
				return nil, serviceerror.NewWorkflowExecutionAlreadyStarted("racing", "", "")
			}
			return paysaga.Refund{ID: in.RefundID, Status: paysaga.RefundSucceeded}, nil
		},
		describe: func(string) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
			return &workflowservice.DescribeWorkflowExecutionResponse{WorkflowExecutionInfo: &workflowpb.WorkflowExecutionInfo{
				Status:    enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING,
				Execution: &commonpb.WorkflowExecution{RunId: "failed-run"},
			}}, nil
		},
		result: func() (any, error) { failedRunDone.Store(true); return nil, nil },
	}
	r, err := saga.Payments{Client: tc, Store: fakeStore{}}.StartRefund(context.Background(), in, 5*time.Second)
	require.NoError(t, err)
	require.Equal(t, paysaga.RefundSucceeded, r.Status)
	require.True(t, failedRunDone.Load(), "the failed run was waited for")

	starts, updates := tc.Starts(), tc.Updates()
	require.Len(t, starts, 3, "asked three times")
	require.Equal(t, enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE, starts[0].WorkflowIDReusePolicy)
	require.Equal(t, map[string]any{"replay": true}, starts[0].Memo)
	require.NotEqual(t, workflows.UpdateOutcome, updates[0].UpdateID, "a replay asks afresh")
	require.Equal(t, updates[0].UpdateID, updates[2].UpdateID, "one replay, one Update")
}
