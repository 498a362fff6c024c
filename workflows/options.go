package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// Activity options of the sagas' steps. They say how long and how often a step is tried,
// never which errors are final: the activities mark their errors non-retryable from one table
// (activities/errors.go), and a non-retryable error is never retried whatever the policy says.

// sendOptions are the options of a step that sends one money-moving request (Debit, Credit):
// an attempt is bounded by callTimeout, and failures before the request left (a database
// outage, a failed depositor inquiry) are retried until deadline; everything the bank may have
// seen comes back final. With waitForCancellation a cancellation of the run does not abandon
// the request in flight: the run waits for it to end.
func sendOptions(ctx workflow.Context, callTimeout, deadline time.Duration, waitForCancellation bool) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    callTimeout,
		ScheduleToCloseTimeout: deadline,
		WaitForCancellation:    waitForCancellation,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    15 * time.Second,
		},
	})
}

// checkOptions are the options of a step that asks the bank what became of a request whose
// answer was lost (CheckDebit, CheckCredit): asked again and again until deadline, after which
// the outcome is UNKNOWN.
func checkOptions(ctx workflow.Context, callTimeout, deadline time.Duration) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    callTimeout,
		ScheduleToCloseTimeout: deadline,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    2 * time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    time.Minute,
		},
	})
}

// localStoreOptions are the options of a local activity that writes to the store: quick retries,
// backing off to maxInterval, for at most deadline.
func localStoreOptions(ctx workflow.Context, deadline, maxInterval time.Duration) workflow.Context {
	return workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout:    10 * time.Second,
		ScheduleToCloseTimeout: deadline,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    200 * time.Millisecond,
			BackoffCoefficient: 2,
			MaximumInterval:    maxInterval,
		},
	})
}

// orDefault sets a configuration field left unset (zero or negative) to its default.
func orDefault[T int | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}
