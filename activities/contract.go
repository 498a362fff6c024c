// Package activities holds the steps of the workflows: database writes, bank calls through the
// nh client and event publishing. Every activity is idempotent: it can run again after a crash,
// a timeout or a retry and leave the same result. Bank errors are classified once, here, into
// Temporal application errors whose types (the ErrType… constants, errors.go) the workflows
// switch on.
//
// Sensitive data never travels through workflow history: activities receive IDs and look the
// fin account up themselves.
package activities

import (
	"context"
	"log/slog"
	"time"

	"go.temporal.io/sdk/activity"

	"paysaga"
)

// Activity names, as registered by the worker and called by the workflows.
const (
	// RecordPaymentName writes a payment's status change and history (a local activity).
	RecordPaymentName = "RecordPayment"
	// DebitName sends one DrawingTransfer, through a transfer row written before the request.
	DebitName = "Debit"
	// CheckDebitName resolves a debit whose outcome is unknown with CheckOnDrawingTransfer.
	CheckDebitName = "CheckDebit"
	// PublishPaymentEventName publishes a payment's outcome event.
	PublishPaymentEventName = "PublishPaymentEvent"
)

// TransferUpdate sets the state of a transfer row, for an operator's resolution.
type TransferUpdate struct {
	TransferID string                `json:"transfer_id"`
	State      paysaga.TransferState `json:"state"`
}

// RecordPaymentInput is one change of a payment, written in one database transaction:
// the row is created when Create is set (idempotently, on its ID), moved to Status (a no-op when
// it is already there), its history Events appended (idempotently, on their stable IDs), and an
// optional transfer updated.
type RecordPaymentInput struct {
	Create         *paysaga.Payment       `json:"create,omitempty"`
	PaymentID      string                 `json:"payment_id"`
	Status         paysaga.PaymentStatus  `json:"status"`
	FailureCode    string                 `json:"failure_code,omitempty"`
	FailureMessage string                 `json:"failure_message,omitempty"`
	Events         []paysaga.PaymentEvent `json:"events,omitempty"`
	Transfer       *TransferUpdate        `json:"transfer,omitempty"`
}

// DebitInput names the payment to debit and the transfer to debit it with. The workflow picks
// TransferID (one per attempt); the activity reads the amount and the account from the
// database and allocates the IsTuno.
type DebitInput struct {
	PaymentID  string `json:"payment_id"`
	TransferID string `json:"transfer_id"`
}

// DebitResult is the bank's answer to an executed debit.
type DebitResult struct {
	TransferID string `json:"transfer_id"`
	Tsymd      string `json:"tsymd"`
	IsTuno     string `json:"is_tuno"`
	Rpcd       string `json:"rpcd"`
	Rsms       string `json:"rsms"`
}

// CheckDebitInput names a transfer whose outcome is unknown.
type CheckDebitInput struct {
	PaymentID  string `json:"payment_id"`
	TransferID string `json:"transfer_id"`
	// SendableFor is how long after the transfer was recorded the attempt that recorded it may
	// still send it (its start-to-close timeout, plus a margin for clocks and the network):
	// until then the bank's "not executed" is not yet an answer, and the check asks again then.
	// Zero (histories from before it) trusts the bank's answer at once.
	SendableFor time.Duration `json:"sendable_for,omitempty"`
}

// stillSendable reports until when a transfer recorded at created may still be sent by the
// attempt that recorded it, and whether that is after now.
func stillSendable(created time.Time, sendableFor time.Duration, now time.Time) (time.Time, bool) {
	if sendableFor <= 0 {
		return time.Time{}, false
	}
	until := created.Add(sendableFor)
	return until, now.Before(until)
}

// CheckDebitResult is what the bank says became of the transfer.
type CheckDebitResult struct {
	Executed bool   `json:"executed"`
	Rpcd     string `json:"rpcd,omitempty"`
	Rsms     string `json:"rsms,omitempty"`
}

// PublishPaymentEventInput is a payment's outcome to announce. EventID is the stable id of
// the history row written with the outcome; it becomes the message id, so consumers can drop
// duplicates of an at-least-once delivery.
type PublishPaymentEventInput struct {
	EventID    string          `json:"event_id"`
	Type       string          `json:"type"`
	Payment    paysaga.Payment `json:"payment"`
	OccurredAt time.Time       `json:"occurred_at"`
}

// activityLogger returns base (or a discarding logger) with the given attributes and, when ctx
// is an activity's, the workflow ID: every log line of a step can be traced to its workflow.
func activityLogger(ctx context.Context, base *slog.Logger, args ...any) *slog.Logger {
	if base == nil {
		base = slog.New(slog.DiscardHandler)
	}
	l := base.With(args...)
	if activity.IsActivity(ctx) {
		l = l.With("workflow_id", activity.GetInfo(ctx).WorkflowExecution.ID)
	}
	return l
}

// clock returns now() or, when it is nil, the wall clock.
func clock(now func() time.Time) time.Time {
	if now != nil {
		return now()
	}
	return time.Now()
}
