package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paysaga"
	"paysaga/store"
	"paysaga/store/storetest"
)

func TestIdempotencyKeys(t *testing.T) {
	for _, driver := range storetest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			clk := newClock()
			db := storetest.Open(t, driver).WithClock(clk.Now)
			const ttl = 24 * time.Hour

			// Concurrent duplicates: exactly one winner, the others see its record.
			const n = 20
			recs := make([]*store.IdempotencyRecord, n)
			created := make([]bool, n)
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					recs[i], created[i], errs[i] = db.ClaimIdempotencyKey(ctx, "usr_1:payments.create", "key-1", "hash-a", ttl)
				})
			}
			wg.Wait()
			winners := 0
			for i := range n {
				require.NoError(t, errs[i])
				require.Equal(t, "hash-a", recs[i].RequestHash)
				require.Equal(t, store.IdempotencyPending, recs[i].State)
				if created[i] {
					winners++
				}
			}
			require.Equal(t, 1, winners)

			// The same key in another scope is another key.
			_, created1, err := db.ClaimIdempotencyKey(ctx, "usr_2:payments.create", "key-1", "hash-b", ttl)
			require.NoError(t, err)
			require.True(t, created1)

			require.NoError(t, db.SetIdempotencyResource(ctx, "usr_1:payments.create", "key-1", "pay_1"))
			rec, createdAgain, err := db.ClaimIdempotencyKey(ctx, "usr_1:payments.create", "key-1", "hash-other", ttl)
			require.NoError(t, err)
			require.False(t, createdAgain)
			require.Equal(t, "hash-a", rec.RequestHash, "the stored hash, for the caller to compare")
			require.Equal(t, "pay_1", rec.ResourceID)
			require.False(t, rec.Completed())

			body := []byte(`{"id":"pay_1","status":"SUCCEEDED"}`)
			require.NoError(t, db.CompleteIdempotencyKey(ctx, "usr_1:payments.create", "key-1", 200, body, ""))
			require.NoError(t, db.CompleteIdempotencyKey(ctx, "usr_1:payments.create", "key-1", 200, body, ""), "twice is harmless")
			rec, err = db.IdempotencyKey(ctx, "usr_1:payments.create", "key-1")
			require.NoError(t, err)
			require.True(t, rec.Completed())
			require.Equal(t, 200, rec.ResponseStatus)
			require.Equal(t, body, rec.ResponseBody)
			require.Equal(t, "pay_1", rec.ResourceID, "an empty resource id keeps the one set before")
			require.True(t, rec.ExpiresAt.Equal(clk.Now().Add(ttl)))

			// After the TTL the key is absent: reads miss, a claim starts afresh, purge deletes.
			clk.Advance(ttl)
			_, err = db.IdempotencyKey(ctx, "usr_1:payments.create", "key-1")
			require.Equal(t, paysaga.ENOTFOUND, paysaga.ErrorCode(err))
			require.Equal(t, paysaga.ENOTFOUND, paysaga.ErrorCode(
				db.CompleteIdempotencyKey(ctx, "usr_1:payments.create", "key-1", 201, nil, "")))
			rec, createdAfter, err := db.ClaimIdempotencyKey(ctx, "usr_1:payments.create", "key-1", "hash-c", ttl)
			require.NoError(t, err)
			require.True(t, createdAfter)
			require.Equal(t, "hash-c", rec.RequestHash)
			require.Empty(t, rec.ResourceID)

			purged, err := db.PurgeExpiredIdempotencyKeys(ctx)
			require.NoError(t, err)
			require.EqualValues(t, 1, purged, "only usr_2's key had expired")
			_, err = db.IdempotencyKey(ctx, "usr_1:payments.create", "key-1")
			require.NoError(t, err, "the live key survives the purge")

			for name, args := range map[string][2]string{
				"empty key":   {"s", ""},
				"long key":    {"s", string(make([]byte, 256))},
				"empty scope": {"", "k"},
			} {
				_, _, err := db.ClaimIdempotencyKey(ctx, args[0], args[1], "h", ttl)
				require.Equal(t, paysaga.EINVALID, paysaga.ErrorCode(err), name)
			}
			require.Equal(t, paysaga.ENOTFOUND, paysaga.ErrorCode(db.SetIdempotencyResource(ctx, "s", "nope", "pay_x")))
		})
	}
}

// Of concurrent claims that each propose their own resource ID, all end up with the winner's:
// this is what makes twenty retries of one payment start one workflow.
func TestClaimIdempotencyKeyForSharesTheWinnersResource(t *testing.T) {
	for _, driver := range storetest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			db := storetest.Open(t, driver)
			const n = 20
			recs := make([]*store.IdempotencyRecord, n)
			created := make([]bool, n)
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					recs[i], created[i], errs[i] = db.ClaimIdempotencyKeyFor(ctx, "usr_1:payments", "k", "h", fmt.Sprintf("pay_%d", i), time.Hour)
				})
			}
			wg.Wait()
			winner := -1
			for i := range n {
				require.NoError(t, errs[i])
				if created[i] {
					require.Equal(t, -1, winner, "two winners")
					winner = i
				}
			}
			require.NotEqual(t, -1, winner)
			for i := range n {
				require.Equal(t, fmt.Sprintf("pay_%d", winner), recs[i].ResourceID)
			}
		})
	}
}

// Issue 11, item 5: a key whose payment exists is never re-minted nor purged. A retry after its
// time is up — its answer stored or not (202, UNKNOWN) — finds the same key and so the same
// payment; a key that created nothing expires as before.
func TestIdempotencyKeyOfAnExistingPaymentOutlivesItsTTL(t *testing.T) {
	for _, driver := range storetest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			clk := newClock()
			db := storetest.Open(t, driver).WithClock(clk.Now)
			const ttl = 24 * time.Hour
			customer, account := seedPayer(t, db)
			pending := newTestPayment(customer, account, 1000, time.Time{})
			done := newTestPayment(customer, account, 2000, time.Time{})
			for _, p := range []*paysaga.Payment{pending, done} {
				_, _, err := db.CreatePayment(ctx, p)
				require.NoError(t, err)
			}
			scope := "payments:" + customer
			_, created, err := db.ClaimIdempotencyKeyFor(ctx, scope, "k-pending", "h1", pending.ID, ttl)
			require.NoError(t, err)
			require.True(t, created)
			_, _, err = db.ClaimIdempotencyKeyFor(ctx, scope, "k-done", "h2", done.ID, ttl)
			require.NoError(t, err)
			require.NoError(t, db.CompleteIdempotencyKey(ctx, scope, "k-done", 200, []byte(`{"id":"`+done.ID+`"}`), done.ID))
			_, _, err = db.ClaimIdempotencyKeyFor(ctx, scope, "k-nothing", "h3", paysaga.NewID(paysaga.PrefixPayment), ttl)
			require.NoError(t, err)

			clk.Advance(30 * 24 * time.Hour)
			purged, err := db.PurgeExpiredIdempotencyKeys(ctx)
			require.NoError(t, err)
			require.EqualValues(t, 1, purged, "only the key that created nothing")

			rec, created, err := db.ClaimIdempotencyKeyFor(ctx, scope, "k-pending", "h1", paysaga.NewID(paysaga.PrefixPayment), ttl)
			require.NoError(t, err)
			require.False(t, created, "never re-minted")
			require.Equal(t, pending.ID, rec.ResourceID)
			require.False(t, rec.Completed())
			require.True(t, rec.ExpiresAt.Equal(clk.Now().Add(ttl)), "its time starts afresh")

			rec, created, err = db.ClaimIdempotencyKeyFor(ctx, scope, "k-done", "h2", paysaga.NewID(paysaga.PrefixPayment), ttl)
			require.NoError(t, err)
			require.False(t, created)
			require.Equal(t, done.ID, rec.ResourceID)
			require.True(t, rec.Completed())
			require.Equal(t, `{"id":"`+done.ID+`"}`, string(rec.ResponseBody))

			fresh, created, err := db.ClaimIdempotencyKeyFor(ctx, scope, "k-nothing", "h3", "pay_new", ttl)
			require.NoError(t, err)
			require.True(t, created, "a key that created nothing starts afresh")
			require.Equal(t, "pay_new", fresh.ResourceID)
		})
	}
}
