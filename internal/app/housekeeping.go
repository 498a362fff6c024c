package app

import (
	"context"
	"log/slog"
	"time"

	"paysaga/store"
)

// Housekeeping runs the database's periodic chores until ctx ends: every interval it deletes
// the idempotency keys whose 24 hours are up. (Expired keys are already ignored; this only
// keeps the table from growing without bound.) Several processes may run it at once: each
// pass is one DELETE of expired rows.
func Housekeeping(ctx context.Context, db *store.DB, logger *slog.Logger, every time.Duration) {
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
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
