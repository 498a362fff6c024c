// Package saga starts paysaga's sagas on Temporal and talks to the running ones: the payment,
// refund and fin-account registration workflows. It is the one place that knows how they are
// started (workflow IDs, conflict and reuse policies, search attributes), which Updates they
// take and under which Update IDs, and how a wait that ran out, a workflow that has closed and
// a refusal are told apart from a failure. The HTTP API (package api) and the operators' tool
// (payctl) both call it; neither imports the other.
//
// Every call waits a bounded time for the saga's answer: (nil, nil) means the saga runs on and
// its answer is not known yet; an error carries a paysaga code (EUNAVAILABLE: ask again with
// the same request, ECONFLICT or EINVALID: the saga refused).
package saga

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"paysaga"
	"paysaga/workflows"
)

// outcome is one Update-with-Start: the saga's workflow, started or joined, and its "outcome"
// Update, which answers once the saga knows how it ended.
type outcome struct {
	options  client.StartWorkflowOptions
	workflow string
	input    any
	updateID string
	// rejoin asks again (three attempts in all) when a start that raced another one was told
	// "already started" about a run it may simply join.
	rejoin bool
}

// await starts o's workflow, or joins the run there is, and waits on its outcome Update until
// waitCtx ends, decoding the answer into out.
func (o outcome) await(waitCtx context.Context, c client.Client, out any) error {
	for attempt := 1; ; attempt++ {
		handle, err := c.UpdateWithStartWorkflow(waitCtx, client.UpdateWithStartWorkflowOptions{
			StartWorkflowOperation: c.NewWithStartWorkflowOperation(o.options, o.workflow, o.input),
			UpdateOptions: client.UpdateWorkflowOptions{
				UpdateID:     o.updateID,
				UpdateName:   workflows.UpdateOutcome,
				WaitForStage: client.WorkflowUpdateStageCompleted,
			},
		})
		if err == nil {
			if err = handle.Get(waitCtx, out); err == nil {
				return nil
			}
		}
		if !o.rejoin || !isClosed(err) || attempt == 3 || waitCtx.Err() != nil {
			return err
		}
		select {
		case <-waitCtx.Done():
		case <-time.After(time.Duration(attempt) * 100 * time.Millisecond):
		}
	}
}

// update sends Update name (with arg, under Update ID id) to the running workflow wid and waits
// until waitCtx ends for its answer, decoded into out.
func update(waitCtx context.Context, c client.Client, wid, name, id string, arg, out any) error {
	handle, err := c.UpdateWorkflow(waitCtx, client.UpdateWorkflowOptions{
		WorkflowID:   wid,
		UpdateName:   name,
		UpdateID:     id,
		Args:         []any{arg},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err != nil {
		return err
	}
	return handle.Get(waitCtx, out)
}

// unanswered sorts out a wait on a saga's outcome that ended without it: (false, nil) when the
// wait ran out and the server confirms workflow wid exists (it runs on; the client polls), (true,
// nil) when the workflow has closed (the store has the answer), and otherwise an EUNAVAILABLE
// error for the saga (noun, e.g. "payment") with this id: the client asks again.
func unanswered(ctx, waitCtx context.Context, c client.Client, noun, id, wid string, err error) (closed bool, _ error) {
	switch {
	case stillRunning(ctx, waitCtx, err):
		// The wait ran out — but a start that never reached the server runs out the same way.
		// Running only for a workflow the server confirms; else the client retries.
		if cerr := confirmStarted(ctx, c, wid); cerr != nil {
			return false, unavailable(noun, id, "the "+noun+" could not be confirmed as started", cerr)
		}
		return false, nil
	case isClosed(err):
		return true, nil
	default:
		return false, unavailable(noun, id, "the "+noun+" could not be started", err)
	}
}

// unavailable is the EUNAVAILABLE error of a saga that could not be started or confirmed.
func unavailable(noun, id, detail string, err error) error {
	return fmt.Errorf("%s %s: %w", noun, id, errors.Join(
		paysaga.Errorf(paysaga.EUNAVAILABLE, "%s; retry with the same Idempotency-Key", detail), err))
}

// stillRunning reports whether a call that waited on a workflow's update ended because the
// wait ran out (the workflow goes on; the client polls) rather than because of a failure. The
// SDK may report the timeout a moment before waitCtx's own deadline, as its own error type.
func stillRunning(ctx, waitCtx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	var timedOut *client.WorkflowUpdateServiceTimeoutOrCanceledError
	return waitCtx.Err() != nil || errors.As(err, &timedOut)
}

// isClosed reports whether err says the workflow has closed: a start refused by the reuse
// policy, or an Update sent to no running workflow.
func isClosed(err error) bool {
	var already *serviceerror.WorkflowExecutionAlreadyStarted
	var notFound *serviceerror.NotFound
	return errors.As(err, &already) || errors.As(err, &notFound)
}

// confirmWait bounds the call that confirms a workflow exists after a wait ran out.
const confirmWait = 2 * time.Second

// confirmStarted asks the server whether workflow id exists (running or closed). An error
// means it could not be confirmed: not started, or the server cannot say.
func confirmStarted(ctx context.Context, c client.Client, id string) error {
	cctx, cancel := context.WithTimeout(ctx, confirmWait)
	defer cancel()
	if _, err := c.DescribeWorkflowExecution(cctx, id, ""); err != nil {
		return fmt.Errorf("describe workflow %s: %w", id, err)
	}
	return nil
}

// refusal turns the workflow's refusal (an application error typed with a paysaga code) into
// the domain error, nil for anything else.
func refusal(err error) error {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && (appErr.Type() == paysaga.ECONFLICT || appErr.Type() == paysaga.EINVALID) {
		return paysaga.Errorf(appErr.Type(), "%s", appErr.Message())
	}
	return nil
}
