package workflows

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"paysaga"
	"paysaga/activities"
)

// Resolution values of Resolution.As.
const (
	ResolveSucceeded = "succeeded"
	ResolveFailed    = "failed"
)

// Resolution is an operator's verdict on an UNKNOWN payment, after checking with the bank.
type Resolution struct {
	As     string `json:"as"`
	Reason string `json:"reason"`
	Actor  string `json:"actor"`
}

// Column limits of what operators and merchants type (payment_events.actor, refunds.reason):
// checked before a verdict is accepted, so that no input can make a later write fail.
const (
	maxActorLen  = 64
	maxReasonLen = 500
)

// checkActor refuses an actor or a reason the store could not keep.
func checkActor(actor, reason string, reasonRequired bool) error {
	switch {
	case strings.TrimSpace(actor) == "":
		return temporal.NewNonRetryableApplicationError("an actor is required", paysaga.EINVALID, nil)
	case reasonRequired && strings.TrimSpace(reason) == "":
		return temporal.NewNonRetryableApplicationError("a reason is required", paysaga.EINVALID, nil)
	case utf8.RuneCountInString(actor) > maxActorLen:
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("the actor is longer than %d characters", maxActorLen), paysaga.EINVALID, nil)
	case utf8.RuneCountInString(reason) > maxReasonLen:
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("the reason is longer than %d characters", maxReasonLen), paysaga.EINVALID, nil)
	}
	return nil
}

// validateResolution refuses a resolution unless the payment is UNKNOWN and waiting for one.
// Its errors carry a paysaga error code as their type, for payctl and the API.
func (s *paymentRun) validateResolution(_ workflow.Context, r Resolution) error {
	return checkVerdict("payment", s.p.ID, string(s.p.Status), s.p.Status == paysaga.PaymentUnknown && s.awaiting && s.resolution == nil, r)
}

// checkVerdict refuses an operator's verdict on a payment or refund (kind, id, status) unless it
// waits for one, and a verdict that is not succeeded or failed, with an actor and a reason the
// store can keep. Its errors carry a paysaga error code as their type, for payctl and the API.
func checkVerdict(kind, id, status string, waiting bool, r Resolution) error {
	if !waiting {
		return temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("%s %s is %s and not waiting for a resolution", kind, id, status), paysaga.ECONFLICT, nil)
	}
	if r.As != ResolveSucceeded && r.As != ResolveFailed {
		return temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("resolution must be %q or %q", ResolveSucceeded, ResolveFailed), paysaga.EINVALID, nil)
	}
	return checkActor(r.Actor, r.Reason, true)
}

// awaitResolution waits, as long as it takes, for an operator to say what became of an
// UNKNOWN payment, then records the verdict on the payment and on the transfer.
func (s *paymentRun) awaitResolution(ctx workflow.Context, transferID string, manual bool) error {
	s.awaiting = true
	workflow.GetLogger(ctx).Warn("payment outcome unknown; waiting for an operator", "payment_id", s.p.ID)
	if err := workflow.Await(ctx, func() bool { return s.resolution != nil }); err != nil {
		return err
	}
	r := *s.resolution
	status, evType, transferState, code, msg := paysaga.PaymentSucceeded, EventSucceeded, paysaga.TransferSucceeded, "", ""
	if manual {
		status, evType = paysaga.PaymentAuthorized, EventAuthorized
	}
	if r.As == ResolveFailed {
		status, evType, transferState = paysaga.PaymentFailed, EventFailed, paysaga.TransferNotExecuted
		code, msg = FailureOperator, r.Reason
	}
	ev := s.event(ctx, evType, status)
	ev.Actor, ev.Reason = r.Actor, r.Reason
	var tu *activities.TransferUpdate
	if transferID != "" {
		tu = &activities.TransferUpdate{TransferID: transferID, State: transferState}
	}
	if err := s.record(ctx, step{status: status, failureCode: code, failureMessage: msg, transfer: tu,
		events: []paysaga.PaymentEvent{ev}}); err != nil {
		return err
	}
	s.awaiting = false
	s.announce(ev)
	return nil
}

// errStoreRefused ends the saga's normal course: the store refused to record a step after
// money may have moved, and the payment waits for an operator (see storeRefused, repair).
var errStoreRefused = errors.New("the store refused a payment step")

// storeStalled is called once when the payment's store writes have kept failing for
// StoreAttentionAfter: the run says it needs attention and an alert goes out, while it keeps
// retrying. The next status it records clears the flag.
func (s *paymentRun) storeStalled(ctx workflow.Context) {
	s.needsAttention = true
	if err := workflow.UpsertTypedSearchAttributes(ctx, SearchNeedsAttention.ValueSet(true)); err != nil {
		workflow.GetLogger(ctx).Error("needs-attention flag not set", "payment_id", s.p.ID, "error", err)
	}
	ev := s.event(ctx, EventStalled, s.p.Status)
	ev.Reason = "the payment's store writes keep failing; still retrying"
	s.announce(ev)
}

// storeRefused turns a step the store refused (a conflict: the row is not what the saga
// expects) after money may have moved into an UNKNOWN payment waiting for an operator, instead
// of a failed run that nobody would repair.
func (s *paymentRun) storeRefused(ctx workflow.Context, st step, err error) error {
	workflow.GetLogger(ctx).Error("the store refused a payment step after money may have moved; needs an operator",
		"payment_id", s.p.ID, "status", st.status, "error", err)
	s.p.Status = paysaga.PaymentUnknown
	s.p.UpdatedAt = workflow.Now(ctx)
	s.needsAttention = true
	if uerr := workflow.UpsertTypedSearchAttributes(ctx,
		SearchPaymentStatus.ValueSet(string(paysaga.PaymentUnknown)), SearchNeedsAttention.ValueSet(true)); uerr != nil {
		return uerr
	}
	ev := s.event(ctx, EventUnknown, paysaga.PaymentUnknown)
	ev.Reason = fmt.Sprintf("the store refused to record the payment as %s; an operator must check the bank and resolve it", st.status)
	s.announce(ev)
	return errStoreRefused
}

// repair waits for an operator's verdict on a payment whose step the store refused, and
// records it; the verdict is final (succeeded: SUCCEEDED, even for a manual capture — the
// operator decided; failed: FAILED). Refused again: it waits for another verdict.
func (s *paymentRun) repair(ctx workflow.Context) error {
	s.resolution = nil
	s.awaitCapture, s.decision = false, nil
	return s.awaitResolution(ctx, s.transferID, false)
}
