package saga

import (
	"context"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"paysaga"
	"paysaga/workflows"
)

// StartRefund starts the refund's workflow (or joins the running one) with Update-with-Start and
// waits up to wait for its outcome: the refund, (nil, nil) when it is not known in time, or an
// ECONFLICT error saying why the refund was refused. A replay (in.Replay, payctl's) may start a
// new run of a refund whose last run has closed; a first request never does.
func (t Payments) StartRefund(ctx context.Context, in workflows.RefundInput, wait time.Duration) (*paysaga.Refund, error) {
	reuse := enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE
	if in.Replay {
		reuse = enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE
	}
	wid := workflows.RefundWorkflowID(in.RefundID)
	o := outcome{
		options: client.StartWorkflowOptions{
			ID:                       wid,
			TaskQueue:                workflows.TaskQueue,
			WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
			WorkflowIDReusePolicy:    reuse,
			TypedSearchAttributes:    workflows.SearchAttributesForRefund(in),
		},
		workflow: workflows.RefundWorkflowName, input: in,
		// One update per refund request, so that every retry shares its result.
		updateID: workflows.UpdateOutcome,
		// Two starts racing (two replays, or a retry of the first request) can leave the loser
		// with "already started" for a run it may simply join.
		rejoin: in.Replay,
	}
	waitCtx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	if in.Replay {
		// A replay joins another replay's run, never the run that failed: that one may still
		// be finishing (publishing its event), and its outcome is the failure being replayed.
		o.options.Memo = map[string]any{replayMemo: true}
		t.awaitFailedRun(waitCtx, wid)
		// A replay asks afresh: the server keeps the outcome of a closed run's update and would
		// answer with the failure being replayed.
		o.updateID = "replay-" + paysaga.NewID("")
	}
	var r paysaga.Refund
	err := o.await(waitCtx, t.Client, &r)
	if err == nil {
		return &r, nil
	}
	if refused := refusal(err); refused != nil {
		return nil, refused
	}
	if closed, err := unanswered(ctx, waitCtx, t.Client, "refund", in.RefundID, wid, err); !closed {
		return nil, err
	}
	// The workflow finished already: the database has the refund, or the workflow's result
	// says why there is none.
	if got, gerr := t.Store.GetRefund(ctx, in.RefundID); gerr == nil {
		return got, nil
	}
	gerr := t.Client.GetWorkflow(waitCtx, wid, "").Get(waitCtx, &r)
	if refused := refusal(gerr); refused != nil {
		return nil, refused
	}
	if gerr != nil {
		return nil, fmt.Errorf("refund %s: %w", in.RefundID, gerr)
	}
	return &r, nil
}

// replayMemo marks the runs of a refund workflow started by a replay.
const replayMemo = "replay"

// awaitFailedRun waits for the open run of workflow id to close, unless it is a replay's.
func (t Payments) awaitFailedRun(ctx context.Context, id string) {
	desc, err := t.Client.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		return
	}
	info := desc.GetWorkflowExecutionInfo()
	if info.GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		return
	}
	if _, replay := info.GetMemo().GetFields()[replayMemo]; replay {
		return
	}
	_ = t.Client.GetWorkflow(ctx, id, info.GetExecution().GetRunId()).Get(ctx, nil)
}
