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
