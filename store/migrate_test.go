package store_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/stretchr/testify/require"

	"paysaga/store"
	"paysaga/store/storetest"
)

var allTables = []string{
	"users", "refresh_tokens", "accounts", "payments", "refunds", "bank_transfers",
	"istuno_sequences", "payment_events", "idempotency_keys", "bun_migrations_dirty",
}

func TestMigrate(t *testing.T) {
	for _, driver := range storetest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			cfg := storetest.NewConfig(t, driver)

			// Two migrators in one process starting at once: both succeed, each version is
			// applied once.
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
			require.GreaterOrEqual(t, v, 4)

			// Again: a no-op.
			require.NoError(t, db.Migrate(ctx))
			applied := appliedMigrations(t, db)
			require.Len(t, applied, v, "every version recorded once: %v", applied)
			for name, group := range applied {
				require.EqualValues(t, 1, group, "version %s applied by the first run", name)
			}

			for _, table := range allTables {
				n, err := db.Bun().NewSelect().Table(table).Count(ctx)
				require.NoError(t, err, "table %s", table)
				require.Zero(t, n, "table %s", table)
			}
		})
	}
}

// appliedMigrations returns bun_migrations: version → the group of the run that applied it.
func appliedMigrations(t *testing.T, db *store.DB) map[string]int64 {
	t.Helper()
	var rows []struct {
		Name    string `bun:"name"`
		GroupID int64  `bun:"group_id"`
	}
	require.NoError(t, db.Bun().NewSelect().Table("bun_migrations").Column("name", "group_id").Scan(context.Background(), &rows))
	out := map[string]int64{}
	for _, r := range rows {
		_, twice := out[r.Name]
		require.False(t, twice, "version %s recorded twice", r.Name)
		out[r.Name] = r.GroupID
	}
	return out
}

// tables lists the database's tables.
func tables(t *testing.T, db *store.DB) []string {
	t.Helper()
	q := "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
	if db.Dialect() == store.DriverMySQL {
		q = "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() ORDER BY table_name"
	}
	rows, err := db.Bun().QueryContext(context.Background(), q)
	require.NoError(t, err)
	defer rows.Close()
	var out []string
	for rows.Next() {
		var name string
		require.NoError(t, rows.Scan(&name))
		out = append(out, name)
	}
	require.NoError(t, rows.Err())
	return out
}

// Two `paysaga migrate` processes at once on a fresh database: both succeed and every version
// is applied exactly once (MySQL: the named lock; SQLite: the write lock).
func TestMigrateProcesses(t *testing.T) {
	exe, err := os.Executable()
	require.NoError(t, err)
	for _, driver := range storetest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			cfg := storetest.NewConfig(t, driver)
			const n = 3
			cmds := make([]*exec.Cmd, n)
			outs := make([]*bytes.Buffer, n)
			for i := range cmds {
				cmd := exec.Command(exe, "-test.run=^$")
				cmd.Env = append(os.Environ(), envMigrateChildDriver+"="+driver, envMigrateChildDSN+"="+cfg.DSN)
				outs[i] = &bytes.Buffer{}
				cmd.Stdout, cmd.Stderr = outs[i], outs[i]
				require.NoError(t, cmd.Start())
				cmds[i] = cmd
			}
			for i, cmd := range cmds {
				require.NoError(t, cmd.Wait(), "migrate process %d: %s", i, outs[i])
			}
			db, err := store.Open(context.Background(), cfg)
			require.NoError(t, err)
			t.Cleanup(func() { _ = db.Close() })
			v, err := db.SchemaVersion(context.Background())
			require.NoError(t, err)
			applied := appliedMigrations(t, db)
			require.Len(t, applied, v, "%v", applied)
			for name, group := range applied {
				require.EqualValues(t, 1, group, "version %s applied by one run, once", name)
			}
		})
	}
}

// Every version's down script undoes its up script on both dialects: rolled back, only the
// migrator's own tables are left; migrated again, the same tables are back.
func TestMigrateDownAndUpAgain(t *testing.T) {
	for _, driver := range storetest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			db := storetest.Open(t, driver)
			before := tables(t, db)
			v, err := db.SchemaVersion(ctx)
			require.NoError(t, err)

			rolled, err := db.Rollback(ctx)
			require.NoError(t, err)
			require.Len(t, rolled, v, "the first run applied every version")
			require.Equal(t, "0001_init", rolled[len(rolled)-1], "newest first")
			require.ElementsMatch(t, []string{"bun_migrations", "bun_migration_locks", "bun_migrations_dirty"}, tables(t, db))
			after, err := db.SchemaVersion(ctx)
			require.NoError(t, err)
			require.Zero(t, after)

			require.NoError(t, db.Migrate(ctx))
			require.Equal(t, before, tables(t, db))
			again, err := db.SchemaVersion(ctx)
			require.NoError(t, err)
			require.Equal(t, v, again)
		})
	}
}

// A database the old migrator (schema_migrations) brought to version 4 upgrades in place: its
// versions are marked applied without being run again, its rows stay, the later ones run.
func TestMigrateUpgradesTheOldMigratorsDatabase(t *testing.T) {
	for _, driver := range storetest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			cfg := storetest.NewConfig(t, driver)
			db, err := store.Open(ctx, cfg)
			require.NoError(t, err)
			t.Cleanup(func() { _ = db.Close() })

			legacy := "CREATE TABLE schema_migrations (version INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMP NOT NULL)"
			if driver == store.DriverMySQL {
				legacy = "CREATE TABLE schema_migrations (version INT NOT NULL, name VARCHAR(255) NOT NULL, applied_at DATETIME(6) NOT NULL, PRIMARY KEY (version))"
			}
			_, err = db.Bun().ExecContext(ctx, legacy)
			require.NoError(t, err)
			for v, name := range []string{"init", "account_registrations", "refund_destinations", "account_number_claims"} {
				script, err := os.ReadFile(filepath.Join("migrations", fmt.Sprintf("%04d_%s.%s.sql", v+1, name, driver)))
				require.NoError(t, err)
				conn, err := db.Bun().Conn(ctx)
				require.NoError(t, err)
				for _, stmt := range store.Statements(string(script)) {
					_, err := conn.ExecContext(ctx, stmt)
					require.NoError(t, err)
				}
				require.NoError(t, conn.Close())
				_, err = db.Bun().NewInsert().TableExpr("schema_migrations").Model(&map[string]any{
					"version": v + 1, "name": name, "applied_at": db.Now()}).Exec(ctx)
				require.NoError(t, err)
			}
			_, err = db.Bun().NewInsert().TableExpr("users").Model(&map[string]any{
				"id": "usr_1", "email": "a@example.com", "name": "A", "password_hash": "h", "role": "customer", "created_at": db.Now(),
			}).Exec(ctx)
			require.NoError(t, err)

			require.NoError(t, db.Migrate(ctx))
			applied := appliedMigrations(t, db)
			for _, old := range []string{"0001", "0002", "0003", "0004"} {
				require.EqualValues(t, 1, applied[old], "version %s imported, not run again", old)
			}
			v, err := db.SchemaVersion(ctx)
			require.NoError(t, err)
			require.Len(t, applied, v)
			for name, group := range applied {
				if name > "0004" {
					require.EqualValues(t, 2, group, "version %s run by the upgrade", name)
				}
			}
			n, err := db.Bun().NewSelect().Table("users").Count(ctx)
			require.NoError(t, err)
			require.EqualValues(t, 1, n)
			require.NoError(t, db.Migrate(ctx), "and again: a no-op")
			require.Equal(t, applied, appliedMigrations(t, db))
		})
	}
}

// A version that fails half-way: on SQLite nothing of it stays (one transaction); on MySQL
// (DDL is not transactional) it is dirty, and the migrator refuses until an operator clears it.
func TestMigrateDirty(t *testing.T) {
	broken := fstest.MapFS{
		"0001_one.mysql.sql":  {Data: []byte("CREATE TABLE dirty_a (id INT NOT NULL);\nCREATE TABLE dirty_b (id NOT A TYPE);\n")},
		"0001_one.sqlite.sql": {Data: []byte("CREATE TABLE dirty_a (id INTEGER NOT NULL);\nCREATE TABLE dirty_b (id INTEGER,, );\n")},
	}
	fixed := fstest.MapFS{
		"0001_one.mysql.sql":  {Data: []byte("CREATE TABLE IF NOT EXISTS dirty_a (id INT NOT NULL);\nCREATE TABLE dirty_b (id INT);\n")},
		"0001_one.sqlite.sql": {Data: []byte("CREATE TABLE IF NOT EXISTS dirty_a (id INTEGER NOT NULL);\nCREATE TABLE dirty_b (id INTEGER);\n")},
	}
	for _, driver := range storetest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			db, err := store.Open(ctx, storetest.NewConfig(t, driver))
			require.NoError(t, err)
			t.Cleanup(func() { _ = db.Close() })

			err = db.MigrateFrom(ctx, broken)
			require.Error(t, err)
			require.Contains(t, err.Error(), "statement 2")
			v, err := db.SchemaVersion(ctx)
			require.NoError(t, err)
			require.Zero(t, v, "not recorded applied")

			if driver == store.DriverSQLite {
				require.NotContains(t, tables(t, db), "dirty_a", "the whole run rolled back")
				require.NoError(t, db.MigrateFrom(ctx, fixed))
			} else {
				require.Contains(t, tables(t, db), "dirty_a", "MySQL kept the first statement")
				err = db.MigrateFrom(ctx, fixed)
				require.ErrorIs(t, err, store.ErrDirty)
				require.Contains(t, err.Error(), "0001_one")
				require.NotContains(t, tables(t, db), "dirty_b", "refused: nothing run")

				// The operator finds dirty_a there, dirty_b missing: not applied; the fixed
				// script is re-runnable.
				require.NoError(t, db.ClearDirty(ctx, "0001", false))
				require.Error(t, db.ClearDirty(ctx, "0001", false), "no longer dirty")
				require.NoError(t, db.MigrateFrom(ctx, fixed))
			}
			require.Subset(t, tables(t, db), []string{"dirty_a", "dirty_b"})
			v, err = db.SchemaVersion(ctx)
			require.NoError(t, err)
			require.Equal(t, 1, v)
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

// An in-memory SQLite database lives in the one connection of its pool: the migrator runs
// through that connection (a second one would be another, empty database) and does not wait
// for itself.
func TestMigrateInMemorySQLite(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := store.Open(ctx, store.Config{Driver: store.DriverSQLite, DSN: "file:migrate-test?mode=memory"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	require.NoError(t, db.Migrate(ctx))
	require.NoError(t, db.Migrate(ctx))
	v, err := db.SchemaVersion(ctx)
	require.NoError(t, err)
	require.Len(t, appliedMigrations(t, db), v)
	require.Subset(t, tables(t, db), []string{"payments", "refunds"})
}
