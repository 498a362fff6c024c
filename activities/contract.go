// Package activities holds the steps of the workflows: database writes, bank calls through the
// nh client and event publishing. Every activity is idempotent: it can run again after a crash,
// a timeout or a retry and leave the same result. Bank errors are classified once, here, into
// Temporal application errors whose types (the ErrType… constants) the workflows switch on.
//
// Sensitive data never travels through workflow history: activities receive IDs and look the
// fin account up themselves.
package activities

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

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

// Application error types returned by the activities. They are stable: workflow histories
// recorded with them must keep replaying.
const (
	// ErrTypeDeclined: the bank processed the request and refused it. Final; the error's details
	// hold a BankAnswer.
	ErrTypeDeclined = "BankDeclined"
	// ErrTypeUnknownOutcome: the request may have moved money and no answer arrived. Never sent
	// again: resolve it with CheckDebit.
	ErrTypeUnknownOutcome = "BankUnknownOutcome"
	// ErrTypeNotExecuted: the transfer certainly did not move money (it never left this process,
	// or an earlier check said so). A new transfer with a new IsTuno is safe.
	ErrTypeNotExecuted = "BankNotExecuted"
	// ErrTypeInvalidRequest: the bank client refused to send a malformed request; nothing was
	// sent and retrying the same input cannot help.
	ErrTypeInvalidRequest = "BankInvalidRequest"
	// ErrTypeAccountUnusable: the payment's account is missing, not active, or not the
	// customer's. Nothing was sent.
	ErrTypeAccountUnusable = "AccountUnusable"
	// ErrTypeStateConflict: the database holds a state that forbids the change (a bug or a
	// manual edit); retrying cannot help.
	ErrTypeStateConflict = "StateConflict"
)

// BankAnswer is the bank's code and message, the details of an ErrTypeDeclined error.
type BankAnswer struct {
	Rpcd string `json:"rpcd"`
	Rsms string `json:"rsms"`
}

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

// ErrTypeStillSendable: the bank said "not executed" while the attempt that recorded the
// transfer could still send it. Retryable: the check asks again once that has passed.
const ErrTypeStillSendable = "StillSendable"

// errStillSendable is the retryable answer of such a check, retried when the attempt's time is
// up.
func errStillSendable(transferID string, until, now time.Time) error {
	return temporal.NewApplicationErrorWithOptions(
		fmt.Sprintf("transfer %s not executed yet, but its attempt may still send it until %s: asking again then",
			transferID, until.UTC().Format(time.RFC3339)),
		ErrTypeStillSendable, temporal.ApplicationErrorOptions{NextRetryDelay: until.Sub(now) + 10*time.Millisecond})
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
