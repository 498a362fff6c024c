package app

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"

	"paysaga/store"
	"paysaga/workflows"
)

// WorkflowDescriber is what housekeeping asks Temporal: whether a workflow exists (client.Client
// implements it).
type WorkflowDescriber interface {
	DescribeWorkflowExecution(ctx context.Context, workflowID, runID string) (*workflowservice.DescribeWorkflowExecutionResponse, error)
}

// UnstartedAfter is how long a payment may stay PENDING (recorded by the API) without a
// workflow before housekeeping ends it: the API answered its client 503 ("retry with the same
// Idempotency-Key") and no retry came.
const UnstartedAfter = 15 * time.Minute

// Housekeeping runs the database's periodic chores until ctx ends, every interval: it deletes
// the idempotency keys whose time is up (expired keys are already ignored; this only keeps the
// table from growing), and — when tc is not nil — ends payments whose workflow never started
// (FailUnstartedPayments). Several processes may run it at once: each chore is idempotent.
func Housekeeping(ctx context.Context, db *store.DB, tc WorkflowDescriber, logger *slog.Logger, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		n, err := db.PurgeExpiredIdempotencyKeys(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			logger.Warn("purge expired idempotency keys", "error", err.Error())
		case n > 0:
			logger.Info("purged expired idempotency keys", "count", n)
		}
		if tc != nil {
			n, err := FailUnstartedPayments(ctx, db, tc, db.Now().Add(-UnstartedAfter))
			switch {
			case err != nil && ctx.Err() == nil:
				logger.Warn("end payments that never started", "error", err.Error())
			case n > 0:
				logger.Info("ended payments whose workflow never started", "count", n)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// FailUnstartedPayments makes FAILED ("not_started": nothing was debited) every payment still
// PENDING since before `before` whose workflow Temporal does not know, and returns how many. A
// payment whose workflow exists (running, perhaps waiting for the database) is left to it. Should
// a client's retry start the workflow at the same moment, its first step finds the payment
// FAILED and stops before any debit; the retry is answered FAILED from the row.
func FailUnstartedPayments(ctx context.Context, db *store.DB, tc WorkflowDescriber, before time.Time) (int, error) {
	stale, err := db.ListStalePendingPayments(ctx, before, 100)
	if err != nil {
		return 0, err
	}
	failed := 0
	for _, p := range stale {
		_, err := tc.DescribeWorkflowExecution(ctx, workflows.PaymentWorkflowID(p.ID), "")
		var notFound *serviceerror.NotFound
		if err == nil || !errors.As(err, &notFound) {
			if err != nil && ctx.Err() != nil {
				return failed, ctx.Err()
			}
			continue // running or ended, or Temporal cannot say now: next time
		}
		// Only while still PENDING, in one conditional statement: a workflow that started
		// meanwhile has moved it to PROCESSING, and then nothing changes here.
		_, changed, err := db.FailUnstartedPayment(ctx, p.ID, before,
			"the payment was never started (the request was answered 503 and not retried); nothing was debited")
		if err != nil {
			return failed, err
		}
		if !changed {
			continue
		}
		failed++
	}
	return failed, nil
}
