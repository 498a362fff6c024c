package store_test

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"paysaga/store"
	"paysaga/store/storetest"
)

var allTables = []string{
	"users", "refresh_tokens", "accounts", "payments", "refunds", "bank_transfers",
	"istuno_sequences", "payment_events", "idempotency_keys", "schema_migrations",
}

func TestMigrate(t *testing.T) {
	for _, driver := range storetest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			cfg := storetest.NewConfig(t, driver)

			// Two processes starting at once: both succeed, each version is applied once.
			dbs := make([]*store.DB, 2)
			for i := range dbs {
				db, err := store.Open(ctx, cfg)
				require.NoError(t, err)
				t.Cleanup(func() { _ = db.Close() })
				dbs[i] = db
			}
			var wg sync.WaitGroup
			errs := make([]error, len(dbs))
			for i, db := range dbs {
				wg.Go(func() { errs[i] = db.Migrate(ctx) })
			}
			wg.Wait()
			for _, err := range errs {
				require.NoError(t, err)
			}

			db := dbs[0]
			v, err := db.SchemaVersion(ctx)
			require.NoError(t, err)
			require.GreaterOrEqual(t, v, 1)

			// Again: a no-op.
			require.NoError(t, db.Migrate(ctx))
			var rows []int
			require.NoError(t, db.Bun().NewSelect().Table("schema_migrations").Column("version").Scan(ctx, &rows))
			seen := map[int]bool{}
			for _, r := range rows {
				require.False(t, seen[r], "version %d recorded twice", r)
				seen[r] = true
			}
			require.Len(t, rows, v)

			for _, table := range allTables {
				n, err := db.Bun().NewSelect().Table(table).Count(ctx)
				require.NoError(t, err, "table %s", table)
				if table != "schema_migrations" {
					require.Zero(t, n, "table %s", table)
				}
			}
		})
	}
}

func TestOpenUnknownDriver(t *testing.T) {
	_, err := store.Open(context.Background(), store.Config{Driver: "postgres", DSN: "x"})
	require.Error(t, err)
}

// The schema's guards hold on both dialects: foreign keys are enforced (SQLite needs them
// switched on per connection) and refunds can never exceed the payment.
func TestSchemaConstraints(t *testing.T) {
	for _, driver := range storetest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			db := storetest.Open(t, driver)
			now := db.Now()

			_, err := db.Bun().NewInsert().Model(&store.RefreshToken{
				ID: "rt_1", UserID: "usr_missing", FamilyID: "f", TokenHash: "h", ExpiresAt: now, CreatedAt: now,
			}).Exec(ctx)
			require.Error(t, err, "refresh token of an unknown user")

			insertPayment := func(id string, refunded, reserved int64) error {
				_, err := db.Bun().NewInsert().TableExpr("payments").Model(&map[string]any{
					"id": id, "customer_id": "usr_1", "merchant_id": "usr_m", "account_id": "acct_1",
					"amount": 1000, "refunded_amount": refunded, "reserved_refund_amount": reserved,
					"status": "SUCCEEDED", "created_at": now, "updated_at": now,
				}).Exec(ctx)
				return err
			}
			require.Error(t, insertPayment("pay_0", 0, 0), "payment of an unknown customer and account")

			_, err = db.Bun().NewInsert().TableExpr("users").Model(&map[string]any{
				"id": "usr_1", "email": "a@example.com", "name": "A", "password_hash": "h", "role": "customer", "created_at": now,
			}).Exec(ctx)
			require.NoError(t, err)
			_, err = db.Bun().NewInsert().TableExpr("accounts").Model(&map[string]any{
				"id": "acct_1", "owner_id": "usr_1", "bank_code": "011", "number_ciphertext": []byte{1},
				"number_key_id": "k1", "number_hash": "nh", "masked_number": "****1234", "status": "ACTIVE",
				"created_at": now, "updated_at": now,
			}).Exec(ctx)
			require.NoError(t, err)
			require.NoError(t, insertPayment("pay_1", 600, 400))
			require.Error(t, insertPayment("pay_2", 600, 401), "refunded + reserved > amount")
		})
	}
}

func TestSQLiteSettings(t *testing.T) {
	ctx := context.Background()
	db := storetest.Open(t, store.DriverSQLite)
	var mode string
	require.NoError(t, db.Bun().QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode))
	require.Equal(t, "wal", mode)
	var fk, busy int
	require.NoError(t, db.Bun().QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk))
	require.Equal(t, 1, fk)
	require.NoError(t, db.Bun().QueryRowContext(ctx, "PRAGMA busy_timeout").Scan(&busy))
	require.Equal(t, 10000, busy)
	require.Equal(t, store.DriverSQLite, db.Dialect())
}
