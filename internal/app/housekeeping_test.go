package app_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paysaga/internal/app"
	"paysaga/store/storetest"
)

func TestHousekeepingPurgesExpiredIdempotencyKeys(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	db := storetest.Open(t, "sqlite")
	// One key claimed two days ago (expired), one now (live).
	past := db.WithClock(func() time.Time { return time.Now().Add(-48 * time.Hour) })
	_, _, err := past.ClaimIdempotencyKey(ctx, "usr_1:payments", "old", "h", 24*time.Hour)
	require.NoError(t, err)
	_, _, err = db.ClaimIdempotencyKey(ctx, "usr_1:payments", "new", "h", 24*time.Hour)
	require.NoError(t, err)

	done := make(chan struct{})
	go func() {
		defer close(done)
		app.Housekeeping(ctx, db, slog.New(slog.DiscardHandler), time.Hour)
	}()
	require.Eventually(t, func() bool {
		n, err := db.Bun().NewSelect().Table("idempotency_keys").Count(ctx)
		return err == nil && n == 1
	}, 10*time.Second, 10*time.Millisecond, "the expired key is deleted, the live one kept")
	_, err = db.IdempotencyKey(ctx, "usr_1:payments", "new")
	require.NoError(t, err)
	cancel()
	<-done
}
