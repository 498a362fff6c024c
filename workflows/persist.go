package workflows

import (
	"errors"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// storeRetryChange versions writes to the store that are retried without end. Before it, a
// store write gave up after an hour and the run failed — even when the customer had been
// debited. Its marker is written on the first write that fails past its quick retries, so runs
// whose writes all land emit the same commands as before and recorded histories replay.
const storeRetryChange = "store-retry-forever"

// Defaults of PaymentConfig's store fields.
const (
	defaultStoreAttentionAfter = 5 * time.Minute
	maxStoreBackoff            = time.Minute
)

// errGiveUp is returned by persist on histories recorded before storeRetryChange, where a
// failed write failed the run.
var errGiveUp = errors.New("store write abandoned (before store-retry-forever)")

// persist runs the store-writing local activity name until it lands. A failure the activity
// marks final (a non-retryable application error) is returned for the caller to decide; a
// cancellation too. Anything else — the database is down, slow or
// locked — is retried without end: quick retries inside the local activity, then timers with a
// backoff capped at a minute (cheap in history, and an hour-long outage costs about sixty
// timers). Once the writes have failed for cfg.StoreAttentionAfter, stalled is called, once,
// so that the run can say it needs attention; the caller clears that when its state changes.
// attentionAfter: see PaymentConfig.StoreAttentionAfter.
func persist(ctx workflow.Context, attentionAfter time.Duration, stalled func(workflow.Context),
	name string, in any, out any) error {
	lctx := localStoreOptions(ctx, time.Minute, 10*time.Second)
	var (
		since    time.Time
		backoff  = 5 * time.Second
		reported bool
	)
	for {
		err := workflow.ExecuteLocalActivity(lctx, name, in).Get(ctx, out)
		if err == nil {
			return nil
		}
		if temporal.IsCanceledError(err) || finalError(err) {
			return err
		}
		if workflow.GetVersion(ctx, storeRetryChange, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
			return errors.Join(errGiveUp, err)
		}
		now := workflow.Now(ctx)
		if since.IsZero() {
			since = now.Add(-time.Minute) // the local activity's own retries
		}
		if !reported && now.Sub(since) >= attentionAfter {
			reported = true
			workflow.GetLogger(ctx).Error("store writes keep failing; needs attention, still retrying",
				"activity", name, "failing_for", now.Sub(since).String(), "error", err)
			if stalled != nil {
				stalled(ctx)
			}
		}
		if err := workflow.Sleep(ctx, backoff); err != nil {
			return err
		}
		backoff = min(2*backoff, maxStoreBackoff)
	}
}

// finalError reports whether a local activity's error is one that retrying cannot help.
func finalError(err error) bool {
	var appErr *temporal.ApplicationError
	return errors.As(err, &appErr) && appErr.NonRetryable()
}
