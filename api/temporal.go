package api

import (
	"context"
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"paysaga"
	"paysaga/workflows"
)

// TemporalPayments starts payment workflows on Temporal with Update-with-Start: one round trip
// starts the workflow (or joins the one already running for the payment) and waits on its
// "outcome" Update.
type TemporalPayments struct {
	Client client.Client
	// Payments reads a payment whose workflow has already closed.
	Payments interface {
		GetPayment(ctx context.Context, id string) (*paysaga.Payment, error)
	}
}

// StartPayment implements PaymentStarter.
func (t TemporalPayments) StartPayment(ctx context.Context, in workflows.PaymentInput, wait time.Duration) (*paysaga.Payment, error) {
	start := t.Client.NewWithStartWorkflowOperation(client.StartWorkflowOptions{
		ID:        workflows.PaymentWorkflowID(in.PaymentID),
		TaskQueue: workflows.TaskQueue,
		// A retry joins the running payment; a payment whose workflow has closed is never
		// started again (that would be a second debit).
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		TypedSearchAttributes:    workflows.SearchAttributesForStart(in),
	}, workflows.PaymentWorkflowName, in)

	waitCtx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	handle, err := t.Client.UpdateWithStartWorkflow(waitCtx, client.UpdateWithStartWorkflowOptions{
		StartWorkflowOperation: start,
		UpdateOptions: client.UpdateWorkflowOptions{
			// One update per payment: every retry gets the same update and its one result.
			UpdateID:     workflows.UpdateOutcome,
			UpdateName:   workflows.UpdateOutcome,
			WaitForStage: client.WorkflowUpdateStageCompleted,
		},
	})
	if err == nil {
		var p paysaga.Payment
		if err = handle.Get(waitCtx, &p); err == nil {
			return &p, nil
		}
	}
	switch {
	case stillRunning(ctx, waitCtx, err):
		// The wait ran out — but a start that never reached the server runs out the same way.
		// 202 only for a workflow the server confirms; else the client retries with its key.
		if cerr := t.confirmStarted(ctx, workflows.PaymentWorkflowID(in.PaymentID)); cerr != nil {
			return nil, fmt.Errorf("payment %s: %w", in.PaymentID, errors.Join(
				paysaga.Errorf(paysaga.EUNAVAILABLE, "the payment could not be confirmed as started; retry with the same Idempotency-Key"), cerr))
		}
		return nil, nil // still running: the client polls
	case isClosed(err):
		// The workflow already finished (a retry after the outcome was recorded): the store
		// has the answer.
		p, gerr := t.Payments.GetPayment(ctx, in.PaymentID)
		if gerr != nil {
			return nil, fmt.Errorf("payment %s: workflow closed, read payment: %w", in.PaymentID, gerr)
		}
		return p, nil
	default:
		return nil, fmt.Errorf("payment %s: %w", in.PaymentID, errors.Join(
			paysaga.Errorf(paysaga.EUNAVAILABLE, "the payment could not be started; retry with the same Idempotency-Key"), err))
	}
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

func isClosed(err error) bool {
	var already *serviceerror.WorkflowExecutionAlreadyStarted
	var notFound *serviceerror.NotFound
	return errors.As(err, &already) || errors.As(err, &notFound)
}

// confirmWait bounds the call that confirms a workflow exists after a wait ran out.
const confirmWait = 2 * time.Second

// confirmStarted asks the server whether workflow id exists (running or closed). An error
// means it could not be confirmed: not started, or the server cannot say.
func (t TemporalPayments) confirmStarted(ctx context.Context, id string) error {
	cctx, cancel := context.WithTimeout(ctx, confirmWait)
	defer cancel()
	if _, err := t.Client.DescribeWorkflowExecution(cctx, id, ""); err != nil {
		return fmt.Errorf("describe workflow %s: %w", id, err)
	}
	return nil
}
