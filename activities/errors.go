package activities

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.temporal.io/sdk/temporal"

	"paysaga"
	"paysaga/nh"
)

// Application error types returned by the activities: the one error vocabulary of the sagas.
// The nh client classifies the bank's answers (nh.Classify); the activities turn them, and the
// store's verdicts, into these types, once, with newError; the workflows switch on the types.
// Whether a type is retried is said by errorTypes below and nowhere else: newError marks the
// error non-retryable from it, so the workflows' retry policies do not list types. The type
// strings are stable: workflow histories recorded with them must keep replaying.
const (
	// ErrTypeDeclined: the bank processed the request and refused it. Final; the error's details
	// hold a BankAnswer.
	ErrTypeDeclined = "BankDeclined"
	// ErrTypeUnknownOutcome: the request may have moved money and no answer arrived. Never sent
	// again: resolve it with CheckDebit or CheckCredit.
	ErrTypeUnknownOutcome = "BankUnknownOutcome"
	// ErrTypeNotExecuted: the transfer certainly did not move money (it never left this process,
	// or an earlier check said so). A new transfer with a new IsTuno is safe.
	ErrTypeNotExecuted = "BankNotExecuted"
	// ErrTypeInvalidRequest: the bank client refused to send a malformed request; nothing was
	// sent and retrying the same input cannot help.
	ErrTypeInvalidRequest = "BankInvalidRequest"
	// ErrTypeInProgress: the bank is still at it (A0017, the fin account is being issued).
	// Retryable: the workflow's retry policy is the polling loop. Details: a BankAnswer.
	ErrTypeInProgress = "BankInProgress"
	// ErrTypeStillSendable: the bank said "not executed" while the attempt that recorded the
	// transfer could still send it. Retryable: the check asks again once that has passed.
	ErrTypeStillSendable = "StillSendable"
	// ErrTypeAccountUnusable: the account to debit or credit is missing, not active, or not the
	// customer's. Nothing was sent.
	ErrTypeAccountUnusable = "AccountUnusable"
	// ErrTypeStateConflict: the database holds a state that forbids the change (a bug, a manual
	// edit, a call from the wrong workflow); retrying cannot help.
	ErrTypeStateConflict = "StateConflict"
	// ErrTypeRefundRefused: the reservation was refused (more than is left to refund, a
	// payment that cannot be refunded, a refund that already succeeded). Nothing was written;
	// the message says why and is safe to show a client.
	ErrTypeRefundRefused = "RefundRefused"
	// ErrTypeNameMismatch: the holder of a typed-in account is not who the refund is for.
	// Nothing was sent.
	ErrTypeNameMismatch = "DepositorNameMismatch"
	// ErrTypeCreditExecuted: a FAILED settlement was refused because a credit of the refund
	// executed: the money went out, the refund succeeded.
	ErrTypeCreditExecuted = "CreditExecuted"
	// ErrTypeNotPending: the account is not being registered (any more): a run started after
	// another run finished it. Final; the details hold the account as it is (paysaga.Account).
	ErrTypeNotPending = "AccountNotPending"
)

// errorType is what the sagas and the process make of an error type.
type errorType struct {
	// retryable: Temporal retries the activity (within the workflow's retry policy).
	retryable bool
	// logged: a bank answer the activity has logged already, with its payment or refund;
	// the SDK's own line about the failed attempt adds nothing (see LoggedByActivity).
	logged bool
}

// errorTypes is the taxonomy: every type an activity returns, and how it is treated.
var errorTypes = map[string]errorType{
	ErrTypeDeclined:        {logged: true},
	ErrTypeUnknownOutcome:  {logged: true},
	ErrTypeNotExecuted:     {logged: true},
	ErrTypeInvalidRequest:  {logged: true},
	ErrTypeInProgress:      {retryable: true, logged: true},
	ErrTypeStillSendable:   {retryable: true, logged: true},
	ErrTypeAccountUnusable: {},
	ErrTypeStateConflict:   {},
	ErrTypeRefundRefused:   {logged: true},
	ErrTypeNameMismatch:    {logged: true},
	ErrTypeCreditExecuted:  {},
	ErrTypeNotPending:      {},
}

// Retryable reports whether an activity error of type typ is retried. A type outside the
// taxonomy is not an activity's verdict (a database or transport failure wrapped plainly is
// retried as any error is): true.
func Retryable(typ string) bool {
	t, ok := errorTypes[typ]
	return !ok || t.retryable
}

// LoggedByActivity reports whether an activity error of type typ is a bank answer the activity
// has logged itself, once, at the level it deserves.
func LoggedByActivity(typ string) bool { return errorTypes[typ].logged }

// newError is an activity's error of type typ, retryable as errorTypes says, with its cause and
// details (the details are what the workflow reads: a BankAnswer, an Account).
func newError(typ, msg string, cause error, details ...any) error {
	return temporal.NewApplicationErrorWithOptions(msg, typ, temporal.ApplicationErrorOptions{
		NonRetryable: !Retryable(typ), Cause: cause, Details: details,
	})
}

// BankAnswer is the bank's code and message, the details of an ErrTypeDeclined or
// ErrTypeInProgress error.
type BankAnswer struct {
	Rpcd string `json:"rpcd"`
	Rsms string `json:"rsms"`
}

func declinedError(rpcd, rsms string) error {
	return newError(ErrTypeDeclined, "bank declined: "+rpcd, nil, BankAnswer{Rpcd: rpcd, Rsms: rsms})
}

// storeError makes the store's verdicts on impossible states non-retryable; other errors (a
// database outage) stay retryable.
func storeError(err error) error {
	switch paysaga.ErrorCode(err) {
	case paysaga.ECONFLICT, paysaga.EINVALID, paysaga.ENOTFOUND:
		return newError(ErrTypeStateConflict, err.Error(), err)
	}
	return err
}

// errStillSendable is the retryable answer of a check whose transfer its attempt may still
// send, retried when the attempt's time is up.
func errStillSendable(transferID string, until, now time.Time) error {
	return temporal.NewApplicationErrorWithOptions(
		fmt.Sprintf("transfer %s not executed yet, but its attempt may still send it until %s: asking again then",
			transferID, until.UTC().Format(time.RFC3339)),
		ErrTypeStillSendable, temporal.ApplicationErrorOptions{NextRetryDelay: until.Sub(now) + 10*time.Millisecond})
}

// inquiryError classifies the error of a bank call that moves no money (a registration, a
// depositor inquiry), once, and logs it: a refusal is final with the bank's answer, "still in
// progress" is retried (ErrTypeInProgress), a malformed request is final, anything else (the
// bank could not be reached) is retried. what names the call in logs and errors.
func inquiryError(log *slog.Logger, what string, err error) error {
	var (
		d *nh.DeclinedError
		p *nh.InProgressError
	)
	switch nh.Classify(err) {
	case nh.OutcomeDeclined:
		errors.As(err, &d)
		log.Info(what+" refused by the bank", "rpcd", d.Rpcd)
		return declinedError(d.Rpcd, d.Rsms)
	case nh.OutcomeInProgress:
		errors.As(err, &p)
		return newError(ErrTypeInProgress, what+": not done yet at the bank", nil, BankAnswer{Rpcd: p.Rpcd, Rsms: p.Rsms})
	case nh.OutcomeInvalid:
		log.Error(what+" refused by the bank client as malformed", "error", err)
		return newError(ErrTypeInvalidRequest, err.Error(), nil)
	}
	log.Warn(what+" failed; asking again", "error", err)
	return fmt.Errorf("%s: %w", what, err)
}
