package workflows

import (
	"errors"
	"fmt"
	"strings"

	"go.temporal.io/sdk/workflow"

	"paysaga"
	"paysaga/activities"
)

// refundUnknownEventChange versions the refund.unknown event (an alert): before it a refund
// left UNKNOWN published nothing.
const refundUnknownEventChange = "refund-unknown-event"

// check asks the bank about the refund's credits whose answer was lost, until the deadline.
func (s *refundRun) check(ctx workflow.Context) (activities.CheckCreditResult, error) {
	var chk activities.CheckCreditResult
	err := workflow.ExecuteActivity(checkOptions(ctx, s.cfg.BankCallTimeout, s.cfg.UnknownDeadline), activities.CheckCreditName,
		activities.CheckCreditInput{RefundID: s.r.ID, SendableFor: s.cfg.BankCallTimeout + s.cfg.SendMargin}).Get(ctx, &chk)
	return chk, err
}

// settle writes the refund's outcome (and the payment's amounts) in one local activity, then
// announces it.
func (s *refundRun) settle(ctx workflow.Context, out creditOutcome) error {
	typ := EventRefundSucceeded
	switch out.status {
	case paysaga.RefundFailed:
		typ = EventRefundFailed
	case paysaga.RefundUnknown:
		typ = EventRefundUnknown
	}
	seq := s.eventSeq
	ev := s.event(ctx, typ)
	ev.Rpcd, ev.Rsms = out.rpcd, out.rsms
	if out.status == paysaga.RefundFailed {
		ev.Reason = out.failureMessage
	}
	if out.actor != "" {
		ev.Actor, ev.Reason = out.actor, out.reason
	}
	var r paysaga.Refund
	// Settling happens whatever: a cancellation of the run does not stop it.
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	err := persist(dctx, s.cfg.StoreAttentionAfter, s.storeStalled, activities.SettleRefundName, activities.SettleRefundInput{
		RefundID: s.r.ID, Status: out.status, FailureCode: out.failureCode, FailureMessage: out.failureMessage,
		ResolveTransfers: out.transfers, Events: []paysaga.PaymentEvent{ev},
	}, &r)
	if err != nil {
		s.eventSeq = seq // the event was not written; its ID is free for the next attempt
		if s.mayHaveMoved && errType(err) == activities.ErrTypeStateConflict && !errors.Is(err, errGiveUp) {
			return s.storeRefused(ctx, out, err)
		}
		return err
	}
	if r.ID == "" {
		return nil // never reserved: nothing to settle
	}
	s.r = r
	s.settled = true
	s.needsAttention = out.status == paysaga.RefundUnknown
	if out.status != paysaga.RefundUnknown ||
		workflow.GetVersion(ctx, refundUnknownEventChange, workflow.DefaultVersion, 1) == 1 {
		// refund.unknown too (an alert: the money may have left), since refundUnknownEventChange.
		s.outbox = append(s.outbox, activities.PublishRefundEventInput{EventID: ev.ID, Type: typ, Refund: s.r, OccurredAt: ev.CreatedAt})
	}
	return workflow.UpsertTypedSearchAttributes(ctx,
		SearchPaymentStatus.ValueSet(string(s.r.Status)),
		SearchNeedsAttention.ValueSet(s.needsAttention))
}

// event returns the next history event of the refund, with an ID stable across retries and
// distinct between runs.
func (s *refundRun) event(ctx workflow.Context, typ string) paysaga.PaymentEvent {
	s.eventSeq++
	return paysaga.PaymentEvent{
		ID:        fmt.Sprintf("%s%s_%s_%02d", paysaga.PrefixEvent, strings.TrimPrefix(s.r.ID, paysaga.PrefixRefund), s.tag, s.eventSeq),
		PaymentID: s.r.PaymentID,
		RefundID:  s.r.ID,
		Type:      typ,
		Status:    "",
		CreatedAt: workflow.Now(ctx),
	}
}

// refundTransferID is the ID of the attempt-th credit of a run of a refund: stable, so that a
// retried activity finds the row it wrote before.
func refundTransferID(refundID, tag string, attempt int) string {
	return fmt.Sprintf("%s%s_%s_%d", paysaga.PrefixTransfer, strings.TrimPrefix(refundID, paysaga.PrefixRefund), tag, attempt)
}
