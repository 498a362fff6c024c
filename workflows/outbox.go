package workflows

import (
	"errors"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// publishRetryChange versions an event whose publishing activity gave up (its retries ran out,
// or Temporal's test environment capped them): before it the event was dropped; now the run
// waits a minute and tries again until the event is out. The marker is written only then.
const publishRetryChange = "publish-until-out"

// publishLoop publishes the events queued in *outbox in order, with the activity name, beside
// the saga: a broker outage delays the events, never the outcome or the answer to
// UpdateOutcome. logArgs names an event in the logs.
func publishLoop[T any](ctx workflow.Context, outbox *[]T, name string, logArgs func(T) []any) {
	for {
		if err := workflow.Await(ctx, func() bool { return len(*outbox) > 0 }); err != nil {
			return
		}
		publishEvent(ctx, name, (*outbox)[0], logArgs((*outbox)[0])...)
		*outbox = (*outbox)[1:]
	}
}

// publishEvent publishes one outcome event of a payment or refund (the activity name, its input)
// beside the saga: a quick local activity first (no extra history events when the broker is
// up), then an activity retried with a backoff capped at a minute, and — should that give up —
// again a minute later, until the event is out. Only an error the activity marks final (the
// event cannot be encoded) drops it, with an error log: at least once, never silently.
func publishEvent(ctx workflow.Context, name string, in any, logArgs ...any) {
	lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout:    5 * time.Second,
		ScheduleToCloseTimeout: 10 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    500 * time.Millisecond,
			BackoffCoefficient: 2,
			MaximumAttempts:    2,
		},
	})
	err := workflow.ExecuteLocalActivity(lctx, name, in).Get(ctx, nil)
	if err == nil {
		return
	}
	logger := workflow.GetLogger(ctx)
	logger.Warn("event not published; retrying in the background", append(logArgs, "error", err)...)
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    time.Minute,
			MaximumAttempts:    0, // until the broker is back
		},
	})
	for {
		err := workflow.ExecuteActivity(actx, name, in).Get(ctx, nil)
		if err == nil {
			return
		}
		var appErr *temporal.ApplicationError
		final := temporal.IsCanceledError(err) || (errors.As(err, &appErr) && appErr.NonRetryable())
		if final || workflow.GetVersion(ctx, publishRetryChange, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
			logger.Error("event not published", append(logArgs, "error", err)...)
			return
		}
		logger.Warn("event still not published; trying again in a minute", append(logArgs, "error", err)...)
		if err := workflow.Sleep(ctx, time.Minute); err != nil {
			return
		}
	}
}
