// Package events tells the rest of the company what happened: it publishes events to RabbitMQ
// (a topic exchange, persistent messages, publisher confirms, the stable event id as the
// message id so that consumers drop the duplicates of an at-least-once delivery) and declares
// the topology consumers need, dead-lettering included. It knows nothing of payments: callers
// hand it an Event with a routing key and a JSON body.
//
// Without a broker (the embedded default) NoBroker stands in: events are then only in the
// database history, which the workflows write in any case.
package events

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"
)

// Routing keys of the events the engine publishes.
const (
	PaymentSucceeded = "payment.succeeded"
	PaymentFailed    = "payment.failed"
	PaymentUnknown   = "payment.unknown"
	PaymentCanceled  = "payment.canceled"
	RefundSucceeded  = "refund.succeeded"
	RefundFailed     = "refund.failed"
	RefundUnknown    = "refund.unknown"
	// PaymentCancelFailed: a manual-capture payment's cancellation refund failed; the customer
	// is still debited until an operator replays it.
	PaymentCancelFailed = "payment.cancel_failed"
	AccountRegistered   = "account.registered"
	// Settlement outcomes (issue 17): the body is the settlement, with its merchant_id.
	// SettlementFailed and SettlementUnknown are alerts: an operator retries the payout.
	SettlementPaid    = "settlement.paid"
	SettlementFailed  = "settlement.failed"
	SettlementUnknown = "settlement.unknown"
)

// Event is one thing that happened.
type Event struct {
	// ID is stable: the same event published twice has the same ID (the AMQP message_id).
	ID string `json:"id"`
	// Type is the routing key, e.g. "payment.succeeded".
	Type string `json:"type"`
	// OccurredAt is when it happened (not when it was published).
	OccurredAt time.Time `json:"occurred_at"`
	// Data is the event's body, a JSON object.
	Data json.RawMessage `json:"data"`
}

// Publisher publishes events. Publish returns once the event is safely with the broker (or
// recorded wherever the implementation keeps it); an error means it may not be, and the caller
// publishes it again later — with the same ID.
type Publisher interface {
	Publish(ctx context.Context, ev Event) error
}

// NoBroker is the Publisher of the embedded default, without RabbitMQ: it drops events, which
// the workflows have already written to the payment's history in the database.
type NoBroker struct {
	Logger *slog.Logger
}

// Publish implements Publisher.
func (n NoBroker) Publish(ctx context.Context, ev Event) error {
	if n.Logger != nil {
		n.Logger.DebugContext(ctx, "event kept in the database only (no broker)", "event_id", ev.ID, "event_type", ev.Type)
	}
	return nil
}
