package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.temporal.io/sdk/temporal"

	"paysaga"
	"paysaga/events"
	"paysaga/nh"
	"paysaga/store"
)

// recordAnswer records the bank's answer to a money-moving call on the transfer row written
// before the call, and classifies it once for the workflow. On success it returns the bank's
// Rpcd and Rsms. Otherwise the error is a non-retryable application error of the matching type:
// declined (final, with the bank's code and message), not executed (the request provably never
// left this process), invalid request, or unknown outcome — which the workflow resolves with
// the matching CheckOn… call and never by sending again. what names the movement in logs and
// errors ("debit", "refund credit").
func recordAnswer(ctx context.Context, db *store.DB, log *slog.Logger, what, transferID string, h nh.Header, err error) (rpcd, rsms string, _ error) {
	switch nh.Classify(err) {
	case nh.OutcomeSuccess:
		if err := db.UpdateTransfer(ctx, transferID, store.TransferUpdate{State: paysaga.TransferSucceeded, Rpcd: h.Rpcd, Rsms: h.Rsms}); err != nil {
			// The money moved; a retry finds the row SENT and the check will say so.
			return "", "", fmt.Errorf("record executed %s %s: %w", what, transferID, err)
		}
		log.Info(what+" executed", "rpcd", h.Rpcd)
		return h.Rpcd, h.Rsms, nil
	case nh.OutcomeDeclined:
		var d *nh.DeclinedError
		errors.As(err, &d)
		if uerr := db.UpdateTransfer(ctx, transferID, store.TransferUpdate{State: paysaga.TransferDeclined, Rpcd: d.Rpcd, Rsms: d.Rsms}); uerr != nil {
			return "", "", fmt.Errorf("record declined %s %s: %w", what, transferID, uerr)
		}
		log.Info(what+" declined", "rpcd", d.Rpcd)
		return "", "", declinedError(d.Rpcd, d.Rsms)
	case nh.OutcomeTransient:
		// The request provably never left this process: nothing can have moved.
		markTransfer(ctx, db, log, transferID, paysaga.TransferNotExecuted)
		log.Warn(what+" not sent", "error", err)
		return "", "", newError(ErrTypeNotExecuted, what+" not sent: "+err.Error(), nil)
	case nh.OutcomeInvalid:
		markTransfer(ctx, db, log, transferID, paysaga.TransferNotExecuted)
		log.Error(what+" refused by the bank client as malformed", "error", err)
		return "", "", newError(ErrTypeInvalidRequest, err.Error(), nil)
	default: // unknown outcome, or an in-progress answer to a transfer
		markTransfer(ctx, db, log, transferID, paysaga.TransferUnknown)
		log.Warn(what+" outcome unknown", "error", err)
		return "", "", newError(ErrTypeUnknownOutcome, what+" outcome unknown: "+err.Error(), nil)
	}
}

// markTransfer records what is known of a transfer after the bank call. Failing to record it
// is harmless: the row stays SENT, which reads as "unknown outcome" and is resolved by a check.
func markTransfer(ctx context.Context, db *store.DB, log *slog.Logger, id string, state paysaga.TransferState) {
	if err := db.UpdateTransfer(ctx, id, store.TransferUpdate{State: state}); err != nil {
		log.Warn("transfer state not recorded", "state", state, "error", err)
	}
}

// sendContext is ctx without its cancellation but with its deadline: a money-moving call that
// has been recorded goes out whole or not at all (a cancelled call would be an unknown
// outcome), and still never after the activity's deadline, past which the workflow may ask the
// bank and act on its answer.
func sendContext(ctx context.Context) (context.Context, context.CancelFunc) {
	out := context.WithoutCancel(ctx)
	if dl, ok := ctx.Deadline(); ok {
		return context.WithDeadline(out, dl)
	}
	return out, func() {}
}

// settledTransfer answers a money-moving step for a transfer that exists already, from its row:
// the bank's code and message when it executed, otherwise the final error its state says
// (declined, not executed, or an unknown outcome to resolve with a check).
func settledTransfer(tr *paysaga.Transfer) (rpcd, rsms string, _ error) {
	switch tr.State {
	case paysaga.TransferSucceeded:
		return tr.Rpcd, tr.Rsms, nil
	case paysaga.TransferDeclined:
		return "", "", declinedError(tr.Rpcd, tr.Rsms)
	case paysaga.TransferNotExecuted:
		return "", "", newError(ErrTypeNotExecuted, "transfer "+tr.ID+" did not execute", nil)
	}
	return "", "", newError(ErrTypeUnknownOutcome, "transfer "+tr.ID+" was sent and its outcome is unknown", nil)
}

// checked is what the bank said became of a transfer whose answer was lost.
type checked struct {
	executed   bool
	rpcd, rsms string
}

// recordCheck records on transfer tr's row the bank's answer (res, err) to a CheckOn… inquiry
// about it, for CheckDebit and CheckCredit (what names the movement in logs and errors).
// Executed: the row is SUCCEEDED. Not executed: NOT_EXECUTED — unless the attempt that recorded
// the transfer may still send it (sendableFor), a retryable ErrTypeStillSendable then. Still in
// progress, or a failed inquiry: a retryable error, asked again. A request the client refused as
// malformed: a non-retryable ErrTypeStateConflict (the row holds what cannot be asked about).
func recordCheck(ctx context.Context, db *store.DB, log *slog.Logger, what string, tr *paysaga.Transfer,
	sendableFor time.Duration, now time.Time, res *nh.CheckResult, err error) (checked, error) {
	if err != nil {
		if nh.Classify(err) == nh.OutcomeInvalid {
			return checked{}, newError(ErrTypeStateConflict, err.Error(), nil)
		}
		log.Warn("check on "+what+" failed; asking again later", "error", err)
		return checked{}, fmt.Errorf("check on transfer %s: %w", tr.ID, err)
	}
	switch {
	case res.Executed():
		rpcd, rsms := res.Header.Rpcd, res.Header.Rsms
		if err := db.UpdateTransfer(ctx, tr.ID, store.TransferUpdate{State: paysaga.TransferSucceeded, Rpcd: rpcd, Rsms: rsms}); err != nil {
			return checked{}, fmt.Errorf("record executed %s %s: %w", what, tr.ID, err)
		}
		log.Info("lost "+what+" answer resolved: executed", "rpcd", rpcd)
		return checked{executed: true, rpcd: rpcd, rsms: rsms}, nil
	case res.NotExecuted():
		if until, ok := stillSendable(tr.CreatedAt, sendableFor, now); ok {
			log.Info("bank says not executed, but the attempt could still send the " + what + "; asking again later")
			return checked{}, errStillSendable(tr.ID, until, now)
		}
		if err := db.UpdateTransfer(ctx, tr.ID, store.TransferUpdate{State: paysaga.TransferNotExecuted}); err != nil {
			return checked{}, fmt.Errorf("record %s %s not executed: %w", what, tr.ID, err)
		}
		log.Info("lost " + what + " answer resolved: not executed")
		return checked{}, nil
	}
	log.Info(what + " still in progress at the bank")
	return checked{}, fmt.Errorf("transfer %s still in progress at the bank", tr.ID)
}

// final reports whether err is an activity error retrying cannot help.
func final(err error) bool {
	var appErr *temporal.ApplicationError
	return errors.As(err, &appErr) && appErr.NonRetryable()
}

// publish publishes an outcome event with its stable ID as message id. Any failure is
// retryable (the workflow retries until the broker is back), except a body that cannot be
// encoded.
func publish(ctx context.Context, pub events.Publisher, log *slog.Logger, id, typ string, at time.Time, body any) error {
	data, err := json.Marshal(body)
	if err != nil {
		return newError(ErrTypeStateConflict, "encode event: "+err.Error(), nil)
	}
	if err := pub.Publish(ctx, events.Event{ID: id, Type: typ, OccurredAt: at, Data: data}); err != nil {
		log.Warn("event not published", "event_id", id, "error", err)
		return err
	}
	return nil
}

// earlierCredit answers a credit step from the credits already written for the same thing
// (what: "refund"): the step's own transfer answers from its row; another credit that
// executed is the answer (nothing is sent again); another whose outcome is unknown is
// ErrTypeUnknownOutcome (resolve it with a check first). done is false when nothing was written
// yet that answers: the step may send.
func earlierCredit(log *slog.Logger, what string, transfers []*paysaga.Transfer, transferID string) (_ CreditResult, done bool, _ error) {
	for _, tr := range transfers {
		if tr.ID == transferID {
			res, err := settledCredit(tr)
			return res, true, err
		}
	}
	for _, tr := range transfers {
		switch tr.State {
		case paysaga.TransferSucceeded:
			log.Warn(what+" already credited; not sending again", "transfer_id", tr.ID)
			return CreditResult{TransferID: tr.ID, Rpcd: tr.Rpcd, Rsms: tr.Rsms}, true, nil
		case paysaga.TransferSent, paysaga.TransferUnknown:
			return CreditResult{}, true, newError(ErrTypeUnknownOutcome, "credit "+tr.ID+" of this "+what+" has an unknown outcome", nil)
		}
	}
	return CreditResult{}, false, nil
}

// checkCredits answers a check step from a thing's credits (what: "credit", "payout"), in
// order: one that succeeded is the answer; each one whose outcome is unknown (SENT, UNKNOWN) is
// asked about with ask — which returns the bank's answer and its error, or err when it could
// not ask (the step fails with it) — and the answer recorded (recordCheck). Executed when one
// moved the money; not executed when none did; a retryable error while one is still unknown.
func checkCredits(ctx context.Context, db *store.DB, log *slog.Logger, what string, transfers []*paysaga.Transfer,
	sendableFor time.Duration, now time.Time,
	ask func(tr *paysaga.Transfer) (res *nh.CheckResult, bankErr, err error)) (CheckCreditResult, error) {
	var pending error
	for _, tr := range transfers {
		if tr.State == paysaga.TransferSucceeded {
			return CheckCreditResult{Executed: true, TransferID: tr.ID, Rpcd: tr.Rpcd, Rsms: tr.Rsms}, nil
		}
		if tr.State != paysaga.TransferSent && tr.State != paysaga.TransferUnknown {
			continue
		}
		res, bankErr, err := ask(tr)
		if err != nil {
			return CheckCreditResult{}, err
		}
		c, err := recordCheck(ctx, db, log.With("transfer_id", tr.ID), what, tr, sendableFor, now, res, bankErr)
		switch {
		case final(err):
			return CheckCreditResult{}, err
		case err != nil:
			pending = err // asked again; the others first
		case c.executed:
			return CheckCreditResult{Executed: true, TransferID: tr.ID, Rpcd: c.rpcd, Rsms: c.rsms}, nil
		}
	}
	if pending != nil {
		return CheckCreditResult{}, pending
	}
	return CheckCreditResult{Executed: false}, nil
}
