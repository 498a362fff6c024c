package app

import (
	"context"
	"errors"
	"log/slog"

	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"

	"paysaga/activities"
	"paysaga/nh"
)

// TemporalLogger is the Temporal SDK's logger on logger. The SDK logs every failed activity
// attempt as an ERROR ("Activity error."); for a bank answer — a refusal, "still in progress",
// a call that failed and is retried — the activity has logged it already, once, with the
// payment or refund it concerns and at the level it deserves, so the SDK's line is lowered to
// DEBUG. Every other record passes as it is.
func TemporalLogger(logger *slog.Logger) tlog.Logger {
	return tlog.NewStructuredLogger(slog.New(bankOutcomeHandler{logger.Handler()}))
}

type bankOutcomeHandler struct{ next slog.Handler }

func (h bankOutcomeHandler) Enabled(ctx context.Context, l slog.Level) bool {
	// Asked before the record is seen: a record lowered later is checked again in Handle.
	return h.next.Enabled(ctx, l)
}

func (h bankOutcomeHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError && r.Message == "Activity error." {
		var err error
		r.Attrs(func(a slog.Attr) bool {
			if e, ok := a.Value.Any().(error); ok && a.Key == "Error" {
				err = e
				return false
			}
			return true
		})
		if bankOutcome(err) {
			r.Level = slog.LevelDebug
			if !h.next.Enabled(ctx, r.Level) {
				return nil
			}
		}
	}
	return h.next.Handle(ctx, r)
}

func (h bankOutcomeHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return bankOutcomeHandler{h.next.WithAttrs(as)}
}

func (h bankOutcomeHandler) WithGroup(name string) slog.Handler {
	return bankOutcomeHandler{h.next.WithGroup(name)}
}

// bankOutcome reports whether an activity's error is a bank answer its activity logged: an
// error of the nh client in its chain, or an activity error type its activity logged
// (activities.LoggedByActivity).
func bankOutcome(err error) bool {
	if err == nil {
		return false
	}
	var (
		declined   *nh.DeclinedError
		inProgress *nh.InProgressError
		unknown    *nh.UnknownOutcomeError
		transport  *nh.TransportError
		invalid    *nh.InvalidRequestError
		appErr     *temporal.ApplicationError
	)
	if errors.As(err, &declined) || errors.As(err, &inProgress) || errors.As(err, &unknown) ||
		errors.As(err, &transport) || errors.As(err, &invalid) {
		return true
	}
	if !errors.As(err, &appErr) {
		return false
	}
	return activities.LoggedByActivity(appErr.Type())
}
