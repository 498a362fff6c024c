package saga

import (
	"context"
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"paysaga"
	"paysaga/workflows"
)

// Store reads a payment or refund whose workflow has closed: the store has its outcome.
// *store.DB implements it.
type Store interface {
	GetPayment(ctx context.Context, id string) (*paysaga.Payment, error)
	GetRefund(ctx context.Context, id string) (*paysaga.Refund, error)
}

// Payments starts payment and refund workflows and sends payment workflows the Updates of
// merchants (capture, cancel) and operators (resolve, replay a cancellation).
type Payments struct {
	Client client.Client
	// Store reads the outcome of a saga whose workflow has closed. Resolve needs none.
	Store Store
}

// StartPayment starts the payment's workflow with Update-with-Start — one round trip starts it
// (or joins the one already running for the payment) and waits on its outcome Update — for up
// to wait. It returns the payment, or (nil, nil) when its outcome is not known in time: the
// payment goes on, and the client polls.
func (t Payments) StartPayment(ctx context.Context, in workflows.PaymentInput, wait time.Duration) (*paysaga.Payment, error) {
	wid := workflows.PaymentWorkflowID(in.PaymentID)
	o := outcome{
		options: client.StartWorkflowOptions{
			ID:        wid,
			TaskQueue: workflows.TaskQueue,
			// A retry joins the running payment; a payment whose workflow has closed is never
			// started again (that would be a second debit).
			WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
			WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
			TypedSearchAttributes:    workflows.SearchAttributesForStart(in),
		},
		workflow: workflows.PaymentWorkflowName, input: in,
		// One update per payment: every retry gets the same update and its one result.
		updateID: workflows.UpdateOutcome,
	}
	waitCtx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	var p paysaga.Payment
	err := o.await(waitCtx, t.Client, &p)
	if err == nil {
		return &p, nil
	}
	if closed, err := unanswered(ctx, waitCtx, t.Client, "payment", in.PaymentID, wid, err); !closed {
		return nil, err
	}
	// The workflow already finished (a retry after the outcome was recorded): the store has
	// the answer.
	got, err := t.Store.GetPayment(ctx, in.PaymentID)
	if err != nil {
		return nil, fmt.Errorf("payment %s: workflow closed, read payment: %w", in.PaymentID, err)
	}
	return got, nil
}

// DecidePayment sends a merchant's decision on an AUTHORIZED manual-capture payment
// (workflows.UpdateCapture or UpdateCancel) and waits up to wait for the payment to leave
// AUTHORIZED; (nil, nil) when it has not in time. The Update ID is the decision's name, so that
// a retried capture (or cancel) gets the first one's result; the other decision afterwards is
// an ECONFLICT error.
func (t Payments) DecidePayment(ctx context.Context, paymentID, name string, d workflows.CaptureDecision, wait time.Duration) (*paysaga.Payment, error) {
	waitCtx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	var p paysaga.Payment
	err := update(waitCtx, t.Client, workflows.PaymentWorkflowID(paymentID), name, name, d, &p)
	if err == nil {
		return &p, nil
	}
	if refused := refusal(err); refused != nil {
		return nil, refused
	}
	switch {
	case stillRunning(ctx, waitCtx, err):
		return nil, nil
	case isClosed(err):
		got, gerr := t.Store.GetPayment(ctx, paymentID)
		if gerr != nil {
			return nil, gerr
		}
		if (name == workflows.UpdateCapture && got.Status == paysaga.PaymentSucceeded) ||
			(name == workflows.UpdateCancel && got.Status == paysaga.PaymentCanceled) {
			return got, nil
		}
		return nil, paysaga.Errorf(paysaga.ECONFLICT, "payment %s is %s and not waiting for a capture or a cancellation", paymentID, got.Status)
	}
	return nil, fmt.Errorf("payment %s: %s: %w", paymentID, name, errors.Join(
		paysaga.Errorf(paysaga.EUNAVAILABLE, "the %s could not be sent; retry", name), err))
}

// ReplayCancellation runs again the failed refund of a canceled manual-capture payment through
// the payment's workflow (workflows.UpdateReplayCancel), which stays open for it, and waits up
// to wait for the payment it answers; (nil, nil) when it has not answered in time. The workflow
// refusing (ECONFLICT, EINVALID) or having closed (ECONFLICT) is a domain error.
func (t Payments) ReplayCancellation(ctx context.Context, paymentID string, d workflows.CaptureDecision, wait time.Duration) (*paysaga.Payment, error) {
	waitCtx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	var p paysaga.Payment
	// A replay of its own: the server would answer a reused Update ID with the last one's result.
	err := update(waitCtx, t.Client, workflows.PaymentWorkflowID(paymentID), workflows.UpdateReplayCancel,
		"replay-cancel-"+paysaga.NewID(""), d, &p)
	if refused := refusal(err); refused != nil {
		return nil, refused
	}
	switch {
	case isClosed(err):
		return nil, paysaga.Errorf(paysaga.ECONFLICT, "the payment's workflow is closed: its cancellation cannot be replayed from here")
	case waitCtx.Err() != nil:
		return nil, nil
	case err != nil:
		return nil, err
	}
	return &p, nil
}

// ResolveUpdateID is the Update ID of every resolution: an operator who retries after a lost
// answer gets the first call's result instead of a refusal, and nothing runs twice.
const ResolveUpdateID = "resolve"

// resolveWait bounds the wait for a workflow's answer to a resolution.
const resolveWait = 30 * time.Second

// ResolvePayment tells the workflow of a payment left UNKNOWN what became of its debit (the
// resolve Update) and returns the payment as the workflow answers it. Someone else's verdict
// sent first is answered instead (the Update ID is fixed): the caller compares the status. A
// workflow that refuses the verdict answers ECONFLICT (not waiting for one) or EINVALID.
func (t Payments) ResolvePayment(ctx context.Context, paymentID string, r workflows.Resolution) (*paysaga.Payment, error) {
	var p paysaga.Payment
	if err := t.resolve(ctx, workflows.PaymentWorkflowID(paymentID), workflows.UpdateResolve, r, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// ResolveRefund is ResolvePayment for a refund left UNKNOWN (its credit's answer lost).
func (t Payments) ResolveRefund(ctx context.Context, refundID string, r workflows.Resolution) (*paysaga.Refund, error) {
	var ref paysaga.Refund
	if err := t.resolve(ctx, workflows.RefundWorkflowID(refundID), workflows.UpdateResolveRefund, r, &ref); err != nil {
		return nil, err
	}
	return &ref, nil
}

func (t Payments) resolve(ctx context.Context, wid, name string, r workflows.Resolution, out any) error {
	uctx, cancel := context.WithTimeout(ctx, resolveWait)
	defer cancel()
	err := update(uctx, t.Client, wid, name, ResolveUpdateID, r, out)
	if refused := refusal(err); refused != nil {
		return refused
	}
	return err
}
