package workflows

import (
	"fmt"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"paysaga"
)

// cancelReplayChange versions a failed cancellation: before it the run ended with the payment
// AUTHORIZED and nobody could replay its refund; now it waits for UpdateReplayCancel.
const cancelReplayChange = "cancel-replay"

// manualCaptureChange versions the manual-capture path: histories recorded before it, where
// a manual-capture payment failed at once, replay on DefaultVersion.
const manualCaptureChange = "manual-capture"

// CaptureDecision is who captures or cancels an AUTHORIZED payment, and why.
type CaptureDecision struct {
	Actor  string `json:"actor"`
	Reason string `json:"reason,omitempty"`
	cancel bool
}

// validateDecision refuses a capture or cancel unless the payment is AUTHORIZED and waiting.
func (s *paymentRun) validateDecision(_ workflow.Context, d CaptureDecision) error {
	if s.p.Status != paysaga.PaymentAuthorized || !s.awaitCapture || s.decision != nil {
		return temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("payment %s is %s and not waiting for a capture or a cancellation", s.p.ID, s.p.Status), paysaga.ECONFLICT, nil)
	}
	return checkActor(d.Actor, d.Reason, false)
}

// validateReplayCancel refuses a replay unless the cancellation's refund failed and the
// payment waits for its replay.
func (s *paymentRun) validateReplayCancel(_ workflow.Context, d CaptureDecision) error {
	if !s.awaitReplay || s.replayCancel != nil {
		return temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("payment %s is %s and its cancellation is not waiting for a replay", s.p.ID, s.p.Status), paysaga.ECONFLICT, nil)
	}
	return checkActor(d.Actor, d.Reason, false)
}

// awaitCaptureDecision waits for the merchant's capture or cancel, or the capture deadline.
// Capture: SUCCEEDED. Cancel or deadline: the customer is refunded in full by a child
// RefundWorkflow (one per payment, so exactly once) → CANCELED. If that refund fails, the
// payment stays AUTHORIZED and needs attention: an operator replays the refund, and its
// success cancels the payment in the database.
func (s *paymentRun) awaitCaptureDecision(ctx workflow.Context) error {
	s.awaitCapture = true
	wait := s.cfg.CaptureDeadline
	if !s.in.CaptureBy.IsZero() {
		wait = max(s.in.CaptureBy.Sub(workflow.Now(ctx)), time.Millisecond)
	}
	decided, err := workflow.AwaitWithTimeout(ctx, wait, func() bool { return s.decision != nil })
	if err != nil {
		return err
	}
	if !decided {
		s.decision = &CaptureDecision{Actor: "system", Reason: "not captured before the capture deadline", cancel: true}
	}
	s.awaitCapture = false
	d := *s.decision
	if !d.cancel {
		ev := s.event(ctx, EventSucceeded, paysaga.PaymentSucceeded)
		ev.Actor, ev.Reason = d.Actor, d.Reason
		if err := s.record(ctx, step{status: paysaga.PaymentSucceeded, events: []paysaga.PaymentEvent{ev}}); err != nil {
			return err
		}
		s.announce(ev)
		return nil
	}

	rin := RefundInput{
		RefundID:   paysaga.PrefixRefund + strings.TrimPrefix(s.p.ID, paysaga.PrefixPayment),
		PaymentID:  s.p.ID,
		CustomerID: s.p.CustomerID,
		MerchantID: s.p.MerchantID,
		Amount:     s.p.Amount,
		Reason:     d.Reason,
		Actor:      d.Actor,
		// A cancellation refunds an AUTHORIZED payment.
		Cancellation: true,
		CreatedAt:    workflow.Now(ctx),
	}
	if rin.Reason == "" {
		rin.Reason = "payment canceled"
	}
	for {
		r, err := s.cancellationRefund(ctx, rin)
		if err == nil && r.Status == paysaga.RefundSucceeded {
			break
		}
		workflow.GetLogger(ctx).Error("cancellation refund did not succeed; needs an operator", "payment_id", s.p.ID, "refund_id", rin.RefundID)
		ev := s.event(ctx, EventCancelFailed, paysaga.PaymentAuthorized)
		ev.RefundID, ev.Actor, ev.Reason = rin.RefundID, d.Actor, "the refund of the cancellation failed: replay it"
		if err := s.record(ctx, step{status: paysaga.PaymentAuthorized, needsAttention: true, events: []paysaga.PaymentEvent{ev}}); err != nil {
			return err
		}
		if workflow.GetVersion(ctx, cancelReplayChange, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
			return nil // recorded before: the run ended here, the customer still debited
		}
		// The customer is debited and the merchant canceled: the run stays open until the
		// refund is paid. An operator replays it (payctl refund replay → UpdateReplayCancel).
		s.announce(ev)
		s.awaitReplay, s.replayCancel = true, nil
		if err := workflow.Await(ctx, func() bool { return s.replayCancel != nil }); err != nil {
			return err
		}
		s.awaitReplay = false
		rin.Replay, rin.Actor, rin.CreatedAt = true, s.replayCancel.Actor, workflow.Now(ctx)
		if s.replayCancel.Reason != "" {
			rin.Reason = s.replayCancel.Reason
		}
	}
	ev := s.event(ctx, EventCanceled, paysaga.PaymentCanceled)
	ev.RefundID, ev.Actor, ev.Reason = rin.RefundID, d.Actor, rin.Reason
	if err := s.record(ctx, step{status: paysaga.PaymentCanceled, events: []paysaga.PaymentEvent{ev}}); err != nil {
		return err
	}
	s.p.RefundedAmount = s.p.Amount
	s.announce(ev)
	return nil
}

// cancellationRefund runs the refund of a cancellation (or its replay) as a child workflow
// and returns the refund as it ended.
func (s *paymentRun) cancellationRefund(ctx workflow.Context, rin RefundInput) (paysaga.Refund, error) {
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:            RefundWorkflowID(rin.RefundID),
		TaskQueue:             TaskQueue,
		ParentClosePolicy:     enumspb.PARENT_CLOSE_POLICY_ABANDON,
		TypedSearchAttributes: SearchAttributesForRefund(rin),
	})
	var r paysaga.Refund
	err := workflow.ExecuteChildWorkflow(cctx, RefundWorkflowName, rin).Get(ctx, &r)
	return r, err
}
