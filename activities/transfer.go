package activities

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"paysaga"
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
		if _, err := db.UpdateTransfer(ctx, transferID, store.TransferUpdate{State: paysaga.TransferSucceeded, Rpcd: h.Rpcd, Rsms: h.Rsms}); err != nil {
			// The money moved; a retry finds the row SENT and the check will say so.
			return "", "", fmt.Errorf("record executed %s %s: %w", what, transferID, err)
		}
		log.Info(what+" executed", "rpcd", h.Rpcd)
		return h.Rpcd, h.Rsms, nil
	case nh.OutcomeDeclined:
		var d *nh.DeclinedError
		errors.As(err, &d)
		if _, uerr := db.UpdateTransfer(ctx, transferID, store.TransferUpdate{State: paysaga.TransferDeclined, Rpcd: d.Rpcd, Rsms: d.Rsms}); uerr != nil {
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
	if _, err := db.UpdateTransfer(ctx, id, store.TransferUpdate{State: state}); err != nil {
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
