package store

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"

	"github.com/uptrace/bun"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migration is one schema version with its statements for each dialect.
type migration struct {
	Version int
	Name    string
	SQL     map[string]string // driver → script
}

// migrations reads migrations/NNNN_name.<driver>.sql and checks that every version has a
// variant for both dialects.
func migrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	byVersion := map[int]*migration{}
	for _, e := range entries {
		base := strings.TrimSuffix(e.Name(), ".sql")
		stem, driver, ok := strings.Cut(base, ".")
		if !ok {
			return nil, fmt.Errorf("migration %s: want NNNN_name.<driver>.sql", e.Name())
		}
		num, name, _ := strings.Cut(stem, "_")
		v, err := strconv.Atoi(num)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: bad version", e.Name())
		}
		body, err := migrationFiles.ReadFile("migrations/" + e.Name())
		if err != nil {
			return nil, err
		}
		m := byVersion[v]
		if m == nil {
			m = &migration{Version: v, Name: name, SQL: map[string]string{}}
			byVersion[v] = m
		}
		m.SQL[driver] = string(body)
	}
	out := make([]migration, 0, len(byVersion))
	for _, m := range byVersion {
		for _, d := range []string{DriverMySQL, DriverSQLite} {
			if m.SQL[d] == "" {
				return nil, fmt.Errorf("migration %d has no %s variant", m.Version, d)
			}
		}
		out = append(out, *m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// statements splits a script on semicolons ending a line, dropping "--" comment lines. Scripts
// must not put a semicolon at the end of a line inside a string literal.
func statements(script string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(script, "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "--") {
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
		if strings.HasSuffix(trimmed, ";") {
			out = append(out, strings.TrimSuffix(strings.TrimSpace(cur.String()), ";"))
			cur.Reset()
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		out = append(out, s)
	}
	return out
}

const schemaMigrationsMySQL = `CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INT          NOT NULL,
    name       VARCHAR(255) NOT NULL,
    applied_at DATETIME(6)  NOT NULL,
    PRIMARY KEY (version)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`

const schemaMigrationsSQLite = `CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER   NOT NULL PRIMARY KEY,
    name       TEXT      NOT NULL,
    applied_at TIMESTAMP NOT NULL
)`

// Migrate applies the migrations not applied yet, in order. Running it again is a no-op, and
// two processes may run it at once: on MySQL they take turns on a named lock (DDL is not
// transactional there, so each script is written to be re-runnable), on SQLite the whole run is
// one transaction holding the write lock.
func (db *DB) Migrate(ctx context.Context) error {
	all, err := migrations()
	if err != nil {
		return err
	}
	switch db.dialect {
	case DriverMySQL:
		return db.migrateMySQL(ctx, all)
	default:
		return db.bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			return db.apply(ctx, tx, all, schemaMigrationsSQLite)
		})
	}
}

func (db *DB) migrateMySQL(ctx context.Context, all []migration) error {
	// GET_LOCK belongs to a session, so everything runs on one connection.
	conn, err := db.bun.Conn(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer conn.Close()
	// The lock name is per database (at most 64 characters), so tests migrating separate
	// databases on one server do not wait for each other.
	const lockName = "CONCAT('paysaga.migrate.', SHA1(DATABASE()))"
	var got *int
	if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK("+lockName+", 60)").Scan(&got); err != nil {
		return fmt.Errorf("migrate: take lock: %w", err)
	}
	if got == nil || *got != 1 {
		return fmt.Errorf("migrate: could not take the migration lock in 60s (another process migrating, or no database named in the DSN)")
	}
	defer func() {
		// A fresh context: the lock must be released even when ctx is done.
		_, _ = conn.ExecContext(context.WithoutCancel(ctx), "SELECT RELEASE_LOCK("+lockName+")")
	}()
	return db.apply(ctx, conn, all, schemaMigrationsMySQL)
}

func (db *DB) apply(ctx context.Context, idb bun.IDB, all []migration, createTable string) error {
	if _, err := idb.ExecContext(ctx, createTable); err != nil {
		return fmt.Errorf("migrate: create schema_migrations: %w", err)
	}
	var applied []int
	if err := idb.NewSelect().Table("schema_migrations").Column("version").Scan(ctx, &applied); err != nil {
		return fmt.Errorf("migrate: read schema_migrations: %w", err)
	}
	done := map[int]bool{}
	for _, v := range applied {
		done[v] = true
	}
	for _, m := range all {
		if done[m.Version] {
			continue
		}
		for i, stmt := range statements(m.SQL[db.dialect]) {
			if _, err := idb.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("migrate: %04d_%s statement %d: %w", m.Version, m.Name, i+1, err)
			}
		}
		row := map[string]any{"version": m.Version, "name": m.Name, "applied_at": db.Now()}
		if _, err := idb.NewInsert().Model(&row).TableExpr("schema_migrations").Exec(ctx); err != nil {
			return fmt.Errorf("migrate: record %04d_%s: %w", m.Version, m.Name, err)
		}
	}
	return nil
}

// SchemaVersion returns the highest applied migration version (0 before the first Migrate).
func (db *DB) SchemaVersion(ctx context.Context) (int, error) {
	var v *int
	err := db.bun.NewSelect().Table("schema_migrations").ColumnExpr("MAX(version)").Scan(ctx, &v)
	if err != nil {
		return 0, fmt.Errorf("schema version: %w", err)
	}
	if v == nil {
		return 0, nil
	}
	return *v, nil
}
