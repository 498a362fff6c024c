package workflows

import (
	"errors"
	"fmt"
	"strings"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"paysaga"
	"paysaga/activities"
)

// step is one change of the payment, written by one RecordPayment local activity.
type step struct {
	create                      bool
	status                      paysaga.PaymentStatus
	failureCode, failureMessage string
	needsAttention              bool
	transfer                    *activities.TransferUpdate
	events                      []paysaga.PaymentEvent
}

// record writes a step to the database, then mirrors it in the workflow's state and, on a
// status change, in the search attributes.
func (s *paymentRun) record(ctx workflow.Context, st step) error {
	in := activities.RecordPaymentInput{
		PaymentID:      s.p.ID,
		Status:         st.status,
		FailureCode:    st.failureCode,
		FailureMessage: st.failureMessage,
		Events:         st.events,
		Transfer:       st.transfer,
	}
	if st.create {
		p := s.p
		p.Status = paysaga.PaymentPending
		in.Create = &p
	}
	err := persist(ctx, s.cfg.StoreAttentionAfter, s.storeStalled, activities.RecordPaymentName, in, nil)
	if err != nil {
		if !s.mayHaveMoved || errors.Is(err, errGiveUp) || temporal.IsCanceledError(err) {
			// Nothing was sent (or a history from before store-retry-forever): the run may fail.
			return fmt.Errorf("record payment %s %s: %w", s.p.ID, st.status, err)
		}
		return s.storeRefused(ctx, st, err)
	}
	changed := s.p.Status != st.status || s.needsAttention != st.needsAttention
	s.p.Status = st.status
	s.p.FailureCode, s.p.FailureMessage = st.failureCode, st.failureMessage
	s.p.UpdatedAt = workflow.Now(ctx)
	s.needsAttention = st.needsAttention
	if !changed {
		return nil
	}
	current := workflow.GetTypedSearchAttributes(ctx)
	status, _ := current.GetKeyword(SearchPaymentStatus)
	attention, _ := current.GetBool(SearchNeedsAttention)
	_, started := current.GetKeyword(SearchCustomerID)
	if started && status == string(s.p.Status) && attention == s.needsAttention {
		// The attributes already say so — a payment started as PROCESSING (see
		// SearchAttributesForStart) records PROCESSING first: no upsert, one event less. What
		// they say comes from the history, so a replay decides the same.
		return nil
	}
	updates := []temporal.SearchAttributeUpdate{
		SearchPaymentStatus.ValueSet(string(s.p.Status)),
		SearchNeedsAttention.ValueSet(s.needsAttention),
	}
	if !started {
		// Started without them (they are meant to be set at start, which costs no event).
		updates = append(updates,
			SearchCustomerID.ValueSet(s.p.CustomerID),
			SearchMerchantID.ValueSet(s.p.MerchantID),
			SearchAmountKRW.ValueSet(s.p.Amount))
	}
	return workflow.UpsertTypedSearchAttributes(ctx, updates...)
}

// event returns the next history event of the payment, with a stable ID.
func (s *paymentRun) event(ctx workflow.Context, typ string, status paysaga.PaymentStatus) paysaga.PaymentEvent {
	s.eventSeq++
	return paysaga.PaymentEvent{
		ID:        eventID(s.p.ID, s.eventSeq),
		PaymentID: s.p.ID,
		Type:      typ,
		Status:    status,
		CreatedAt: workflow.Now(ctx),
	}
}

// announce queues an outcome event for publishing; the publisher goroutine sends it.
func (s *paymentRun) announce(ev paysaga.PaymentEvent) {
	s.outbox = append(s.outbox, activities.PublishPaymentEventInput{
		EventID: ev.ID, Type: ev.Type, Payment: s.p, OccurredAt: ev.CreatedAt,
	})
}

// transferID is the ID of the attempt-th transfer of a payment: stable, so that a retried
// activity finds the row it wrote before.
func transferID(paymentID string, attempt int) string {
	return fmt.Sprintf("%s%s_%d", paysaga.PrefixTransfer, strings.TrimPrefix(paymentID, paysaga.PrefixPayment), attempt)
}

// eventID is the ID of the seq-th history event of a payment: stable across retries, and
// sorting in the order the events were written.
func eventID(paymentID string, seq int) string {
	return fmt.Sprintf("%s%s_%03d", paysaga.PrefixEvent, strings.TrimPrefix(paymentID, paysaga.PrefixPayment), seq)
}
