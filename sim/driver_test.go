package sim

import (
	"errors"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"paysaga"
	"paysaga/workflows"
)

// The driver is a test-only workflow standing in for the API and payctl: at the times of the
// plan it writes each payment's row and starts the payment workflows and the refund workflows
// as children (with the workflow IDs, the task queue and the reuse policies the API uses), starts
// them again as an API retry would, and starts refund replays when an operator asks for one
// (signalReplay). Everything else (Updates, queries, cancellation requests, faults) comes from
// delayed callbacks of the test environment.
const (
	driverName          = "SimDriver"
	createPaymentName   = "SimCreatePayment"
	signalReplay        = "replay"
	operatorActor       = "sim-operator"
	merchantActor       = "sim-merchant"
	replayReasonDefault = "replayed by the simulator's operator"
	// updateReplayCancel is the payment workflow's Update for the replay of a failed
	// cancellation (workflows.UpdateReplayCancel, spelled out so that the simulator also builds
	// against code from before it existed).
	updateReplayCancel = "replay-cancel"
)

type driverInput struct {
	Payments []planPayment
	Refunds  []planRefund
	Horizon  time.Duration
}

// replayRequest is an operator's `payctl refund replay`.
type replayRequest struct {
	RefundID     string
	PaymentID    string
	Amount       int64
	Cancellation bool
}

// startResult is what the driver saw of one start it made.
type startResult struct {
	WorkflowID string
	Kind       string // payment, refund, replay
	Duplicate  bool
	At         time.Time
	Started    bool
	Err        string
}

func simDriver(ctx workflow.Context, in driverInput) ([]startResult, error) {
	var out []startResult
	payments := map[string]planPayment{}
	for _, p := range in.Payments {
		payments[p.ID] = p
	}
	rowCtx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout:    10 * time.Second,
		ScheduleToCloseTimeout: 7 * 24 * time.Hour,
		// The API answers 503 while the database is down; the client retries with its key.
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute},
	})
	sleepUntil := func(ctx workflow.Context, at time.Duration) {
		start := workflow.GetInfo(ctx).WorkflowStartTime
		if d := start.Add(at).Sub(workflow.Now(ctx)); d > 0 {
			_ = workflow.Sleep(ctx, d)
		}
	}
	start := func(ctx workflow.Context, kind, id, wfType string, input any, reuse enumspb.WorkflowIdReusePolicy,
		sa temporal.SearchAttributes, dup bool) {
		cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
			WorkflowID:            id,
			TaskQueue:             workflows.TaskQueue,
			ParentClosePolicy:     enumspb.PARENT_CLOSE_POLICY_ABANDON,
			WorkflowIDReusePolicy: reuse,
			// A cancellation request reaches the workflow, which decides what to do with it
			// (without this the test environment ends the child at once).
			WaitForCancellation:   true,
			TypedSearchAttributes: sa,
		})
		r := startResult{WorkflowID: id, Kind: kind, Duplicate: dup, At: workflow.Now(ctx)}
		f := workflow.ExecuteChildWorkflow(cctx, wfType, input)
		var we workflow.Execution
		if err := f.GetChildWorkflowExecution().Get(ctx, &we); err != nil {
			r.Err = err.Error()
			if alreadyStarted(err) {
				r.Err = "already started"
			}
			out = append(out, r)
			return
		}
		r.Started = true
		out = append(out, r)
		_ = f.Get(ctx, nil) // the outcome is recorded by the completion listener
	}

	for _, p := range in.Payments {
		workflow.Go(ctx, func(ctx workflow.Context) {
			sleepUntil(ctx, p.At)
			// The API writes the row (PENDING) before it starts the workflow.
			if err := workflow.ExecuteLocalActivity(rowCtx, createPaymentName, p).Get(ctx, nil); err != nil {
				out = append(out, startResult{WorkflowID: workflows.PaymentWorkflowID(p.ID), Kind: "payment", At: workflow.Now(ctx),
					Err: "payment row not written: " + err.Error()})
				return
			}
			mode := paysaga.CaptureAutomatic
			if p.Manual {
				mode = paysaga.CaptureManual
			}
			pin := workflows.PaymentInput{
				PaymentID: p.ID, CustomerID: p.CustomerID, MerchantID: merchantID, AccountID: p.AccountID,
				Amount: p.Amount, Description: "sim " + p.ID, CaptureMode: mode, CreatedAt: workflow.Now(ctx),
			}
			id := workflows.PaymentWorkflowID(p.ID)
			sa := workflows.SearchAttributesForStart(pin)
			for i, at := range append([]time.Duration{p.At}, p.Dups...) {
				if i == 0 {
					workflow.Go(ctx, func(ctx workflow.Context) {
						start(ctx, "payment", id, workflows.PaymentWorkflowName, pin, enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE, sa, false)
					})
					continue
				}
				sleepUntil(ctx, at)
				workflow.Go(ctx, func(ctx workflow.Context) {
					start(ctx, "payment", id, workflows.PaymentWorkflowName, pin, enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE, sa, true)
				})
			}
		})
	}
	refundInput := func(ctx workflow.Context, id, paymentID string, amount int64) workflows.RefundInput {
		p := payments[paymentID]
		return workflows.RefundInput{
			RefundID: id, PaymentID: paymentID, CustomerID: p.CustomerID, MerchantID: merchantID,
			Amount: amount, Reason: "sim refund", Actor: merchantActor, CreatedAt: workflow.Now(ctx),
		}
	}
	for _, r := range in.Refunds {
		workflow.Go(ctx, func(ctx workflow.Context) {
			for i, at := range append([]time.Duration{r.At}, r.Dups...) {
				sleepUntil(ctx, at)
				rin := refundInput(ctx, r.ID, r.PaymentID, r.Amount)
				workflow.Go(ctx, func(ctx workflow.Context) {
					start(ctx, "refund", workflows.RefundWorkflowID(r.ID), workflows.RefundWorkflowName, rin,
						enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE, workflows.SearchAttributesForRefund(rin), i > 0)
				})
			}
		})
	}
	workflow.Go(ctx, func(ctx workflow.Context) {
		ch := workflow.GetSignalChannel(ctx, signalReplay)
		for {
			var rr replayRequest
			ch.Receive(ctx, &rr)
			rin := refundInput(ctx, rr.RefundID, rr.PaymentID, rr.Amount)
			rin.Actor, rin.Reason, rin.Replay, rin.Cancellation = operatorActor, replayReasonDefault, true, rr.Cancellation
			workflow.Go(ctx, func(ctx workflow.Context) {
				start(ctx, "replay", workflows.RefundWorkflowID(rr.RefundID), workflows.RefundWorkflowName, rin,
					enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE, workflows.SearchAttributesForRefund(rin), false)
			})
		}
	})
	sleepUntil(ctx, in.Horizon)
	return out, nil
}

func alreadyStarted(err error) bool {
	var e *temporal.ChildWorkflowExecutionAlreadyStartedError
	return errors.As(err, &e) || strings.Contains(err.Error(), "already started")
}
