package store_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paysaga"
	"paysaga/store"
	"paysaga/store/storetest"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

func createUser(t *testing.T, db *store.DB) *paysaga.User {
	t.Helper()
	u := &paysaga.User{ID: paysaga.NewID(paysaga.PrefixUser), Email: paysaga.NewID("") + "@example.com",
		Name: "Test", Role: paysaga.RoleCustomer, PasswordHash: "h"}
	require.NoError(t, db.CreateUser(context.Background(), u))
	return u
}

func newToken(userID, family, hash string, expires time.Time) *store.RefreshToken {
	return &store.RefreshToken{ID: paysaga.NewID("rt_"), UserID: userID, FamilyID: family, TokenHash: hash, ExpiresAt: expires}
}

func TestRefreshTokens(t *testing.T) {
	for _, driver := range storetest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			clk := newClock()
			db := storetest.Open(t, driver).WithClock(clk.Now)
			u := createUser(t, db)

			first := newToken(u.ID, "fam1", "hash-1", clk.Now().Add(time.Hour))
			require.NoError(t, db.CreateRefreshToken(ctx, first))
			require.Equal(t, paysaga.ECONFLICT, paysaga.ErrorCode(db.CreateRefreshToken(ctx,
				newToken(u.ID, "fam1", "hash-1", clk.Now().Add(time.Hour)))), "token hash is unique")

			got, err := db.RefreshTokenByHash(ctx, "hash-1")
			require.NoError(t, err)
			require.Equal(t, first.ID, got.ID)
			require.Nil(t, got.UsedAt)
			require.Nil(t, got.RevokedAt)
			require.True(t, got.ExpiresAt.Equal(first.ExpiresAt))

			// Rotation: exactly one of many concurrent rotations of the same token wins.
			var wins atomic.Int32
			var wg sync.WaitGroup
			for i := range 10 {
				wg.Go(func() {
					next := newToken(u.ID, "fam1", "hash-2-"+string(rune('a'+i)), clk.Now().Add(time.Hour))
					err := db.RotateRefreshToken(ctx, first.ID, next)
					if err == nil {
						wins.Add(1)
						return
					}
					require.Equal(t, paysaga.ECONFLICT, paysaga.ErrorCode(err))
				})
			}
			wg.Wait()
			require.EqualValues(t, 1, wins.Load())
			n, err := db.Bun().NewSelect().Model((*store.RefreshToken)(nil)).Where("family_id = ?", "fam1").Count(ctx)
			require.NoError(t, err)
			require.EqualValues(t, 2, n, "the losers' new tokens were not stored")

			got, err = db.RefreshTokenByHash(ctx, "hash-1")
			require.NoError(t, err)
			require.NotNil(t, got.UsedAt)
			require.True(t, got.UsedAt.Equal(clk.Now()))
			require.Equal(t, paysaga.ECONFLICT, paysaga.ErrorCode(db.UseRefreshToken(ctx, first.ID)), "used twice")

			// An expired token cannot be used.
			old := newToken(u.ID, "fam2", "hash-old", clk.Now().Add(time.Minute))
			require.NoError(t, db.CreateRefreshToken(ctx, old))
			clk.Advance(time.Minute)
			require.Equal(t, paysaga.ECONFLICT, paysaga.ErrorCode(db.UseRefreshToken(ctx, old.ID)))

			// Revoking the family revokes every token in it, and only those.
			other := newToken(u.ID, "fam3", "hash-other", clk.Now().Add(time.Hour))
			require.NoError(t, db.CreateRefreshToken(ctx, other))
			revoked, err := db.RevokeRefreshTokenFamily(ctx, "fam1")
			require.NoError(t, err)
			require.EqualValues(t, 2, revoked)
			var live []store.RefreshToken
			require.NoError(t, db.Bun().NewSelect().Model(&live).Where("family_id = ?", "fam1").Where("revoked_at IS NULL").Scan(ctx))
			require.Empty(t, live)
			require.NoError(t, db.UseRefreshToken(ctx, other.ID), "another family is untouched")

			// Revoking one token by hash; a revoked token cannot be used.
			fresh := newToken(u.ID, "fam4", "hash-fresh", clk.Now().Add(time.Hour))
			require.NoError(t, db.CreateRefreshToken(ctx, fresh))
			require.NoError(t, db.RevokeRefreshToken(ctx, "hash-fresh"))
			require.NoError(t, db.RevokeRefreshToken(ctx, "hash-fresh"), "revoking twice is fine")
			require.Equal(t, paysaga.ECONFLICT, paysaga.ErrorCode(db.UseRefreshToken(ctx, fresh.ID)))

			_, err = db.RefreshTokenByHash(ctx, "nope")
			require.Equal(t, paysaga.ENOTFOUND, paysaga.ErrorCode(err))
			require.Equal(t, paysaga.ENOTFOUND, paysaga.ErrorCode(db.RevokeRefreshToken(ctx, "nope")))
		})
	}
}
