package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/sqlitedialect"
	"github.com/uptrace/bun/migrate"
)

// Migrations. The schema is versioned by the SQL files in migrations/, one per dialect per
// version, and applied by bun/migrate:
//
//	migrations/NNNN_name.<driver>.sql       up (driver: mysql or sqlite)
//	migrations/NNNN_name.<driver>.down.sql  down (optional: without it a version cannot be rolled back)
//
// Every version needs an up script for both dialects. A script is split into statements on
// semicolons ending a line ("--" comment lines dropped), run in order on one connection (a
// MySQL script may use session variables and PREPARE). bun_migrations records the applied
// versions (name NNNN, with the group of the Migrate run that applied them).
//
// Locking: on MySQL a run holds the named lock GET_LOCK('paysaga.migrate.<sha1 of the database>')
// on its own connection, waiting up to a minute for another run to finish; the server releases
// it when that connection ends, so a migrator that died leaves no lock behind. On SQLite a run
// is one transaction (BEGIN IMMEDIATE on a connection of its own) holding the database's write
// lock: another run waits for it, and a failed or interrupted run changes nothing.
//
// Dirty: MySQL's DDL is not transactional, so a version that failed or was interrupted half-way
// may have left part of its changes. Before its first statement a version is recorded in
// bun_migrations_dirty, and removed from it once it is applied; while a version is recorded
// there, Migrate and Rollback refuse (ErrDirty) until an operator has checked the schema, put
// it right and called ClearDirty. (On SQLite the dirty row rolls back with the rest.)
//
// Databases migrated by the migrator before bun/migrate (its schema_migrations table) are
// upgraded in place: their recorded versions are marked applied, not run again.

//go:embed migrations/*.sql
var migrationFiles embed.FS

// ErrDirty is why Migrate and Rollback refuse while a version is recorded as half-applied.
var ErrDirty = errors.New("store: a migration was interrupted half-way (dirty)")

const (
	migrationsTable      = "bun_migrations"
	migrationLocksTable  = "bun_migration_locks"
	migrationsDirtyTable = "bun_migrations_dirty"
	legacyMigrationTable = "schema_migrations"
	migrationLockWait    = time.Minute
)

var migrationFileRE = regexp.MustCompile(`^(\d{4})_([0-9a-z_]+)\.(mysql|sqlite)(\.down)?\.sql$`)

// migrationScripts is one version's scripts for one dialect.
type migrationScripts struct {
	version  string // NNNN
	name     string
	up, down string // file names; down may be empty
}

// readMigrations reads fsys's migration files for driver, in version order, and checks that
// every version has an up script for both dialects.
func readMigrations(fsys fs.FS, driver string) ([]migrationScripts, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	type version struct {
		name string
		up   map[string]string
		down map[string]string
	}
	byVersion := map[string]*version{}
	for _, e := range entries {
		m := migrationFileRE.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("migrate: %s: want NNNN_name.<mysql|sqlite>[.down].sql", e.Name())
		}
		v := byVersion[m[1]]
		if v == nil {
			v = &version{name: m[2], up: map[string]string{}, down: map[string]string{}}
			byVersion[m[1]] = v
		}
		if v.name != m[2] {
			return nil, fmt.Errorf("migrate: version %s has two names (%s, %s)", m[1], v.name, m[2])
		}
		if m[4] == "" {
			v.up[m[3]] = e.Name()
		} else {
			v.down[m[3]] = e.Name()
		}
	}
	out := make([]migrationScripts, 0, len(byVersion))
	for num, v := range byVersion {
		for _, d := range []string{DriverMySQL, DriverSQLite} {
			if v.up[d] == "" {
				return nil, fmt.Errorf("migrate: version %s_%s has no %s script", num, v.name, d)
			}
		}
		out = append(out, migrationScripts{version: num, name: v.name, up: v.up[driver], down: v.down[driver]})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
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

// migrationDirty is a version that started and has not been recorded applied.
type migrationDirty struct {
	bun.BaseModel `bun:"table:bun_migrations_dirty"`

	Name      string    `bun:"name,pk"`
	Comment   string    `bun:"comment,notnull"`
	Direction string    `bun:"direction,notnull"`
	StartedAt time.Time `bun:"started_at,notnull"`
}

// migrationSet builds bun's migrations for driver from fsys: each version's statements run on
// one connection, between its dirty mark and the removal of it.
func migrationSet(fsys fs.FS, driver string) (*migrate.Migrations, error) {
	scripts, err := readMigrations(fsys, driver)
	if err != nil {
		return nil, err
	}
	set := migrate.NewMigrations()
	for _, s := range scripts {
		set.Add(migrate.Migration{
			Name: s.version, Comment: s.name,
			Up:   runScript(fsys, s.up, "up"),
			Down: runScript(fsys, s.down, "down"),
		})
	}
	return set, nil
}

func runScript(fsys fs.FS, file, direction string) func(context.Context, *migrate.Migrator, *migrate.Migration) error {
	return func(ctx context.Context, m *migrate.Migrator, mig *migrate.Migration) error {
		if file == "" {
			return fmt.Errorf("migrate: %s has no %s script", mig, direction)
		}
		body, err := fs.ReadFile(fsys, file)
		if err != nil {
			return err
		}
		db := m.DB()
		dirty := &migrationDirty{Name: mig.Name, Comment: mig.Comment, Direction: direction, StartedAt: time.Now().UTC().Truncate(time.Microsecond)}
		if _, err := db.NewInsert().Model(dirty).Exec(ctx); err != nil {
			return fmt.Errorf("migrate: mark %s dirty: %w", mig, err)
		}
		if err := execOnOneConn(ctx, db, file, statements(string(body))); err != nil {
			return err
		}
		if _, err := db.NewDelete().Model(dirty).WherePK().Exec(ctx); err != nil {
			return fmt.Errorf("migrate: clear %s: %w", mig, err)
		}
		return nil
	}
}

// execOnOneConn runs a script's statements in order on one connection, given back before it
// returns (an SQLite run's pool has only that one).
func execOnOneConn(ctx context.Context, db *bun.DB, file string, stmts []string) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	for i, stmt := range stmts {
		if _, err := conn.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("%s statement %d: %w", file, i+1, err)
		}
	}
	return nil
}

// Migrate applies the migrations not applied yet, in order. Running it again is a no-op, and
// any number of processes may run it at once (see the top of this file).
func (db *DB) Migrate(ctx context.Context) error {
	return db.migrateFrom(ctx, nil)
}

// migrateFrom migrates from fsys (the embedded migrations when nil).
func (db *DB) migrateFrom(ctx context.Context, fsys fs.FS) error {
	return db.withMigrator(ctx, fsys, true, func(ctx context.Context, m *migrate.Migrator) error {
		_, err := m.Migrate(ctx)
		return err
	})
}

// Rollback runs the down scripts of the versions the last Migrate run applied (its group), newest
// first, and returns their names (NNNN_name); nothing when nothing is applied. A version without
// a down script stops it with an error before anything of that version is changed.
func (db *DB) Rollback(ctx context.Context) ([]string, error) {
	var names []string
	err := db.withMigrator(ctx, nil, true, func(ctx context.Context, m *migrate.Migrator) error {
		g, err := m.Rollback(ctx)
		for i := len(g.Migrations) - 1; i >= 0; i-- {
			names = append(names, g.Migrations[i].String())
		}
		return err
	})
	return names, err
}

// ClearDirty removes the dirty mark of version (NNNN) once an operator has checked the schema:
// applied says whether the version is to be counted as applied (its changes are all there) or
// not (they were undone; Migrate runs it again).
func (db *DB) ClearDirty(ctx context.Context, version string, applied bool) error {
	return db.withMigrator(ctx, nil, false, func(ctx context.Context, m *migrate.Migrator) error {
		d := &migrationDirty{Name: version}
		if err := m.DB().NewSelect().Model(d).WherePK().Scan(ctx); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("migrate: version %s is not dirty", version)
			}
			return err
		}
		all, err := m.MigrationsWithStatus(ctx)
		if err != nil {
			return err
		}
		for i := range all {
			mig := &all[i]
			if mig.Name != version {
				continue
			}
			switch {
			case applied && !mig.IsApplied():
				mig.GroupID = all.LastGroupID() + 1
				err = m.MarkApplied(ctx, mig)
			case !applied && mig.IsApplied():
				err = m.MarkUnapplied(ctx, mig)
			}
			if err != nil {
				return err
			}
		}
		_, err = m.DB().NewDelete().Model(d).WherePK().Exec(ctx)
		return err
	})
}

// withMigrator runs fn with a migrator over the embedded migrations (or fsys) under the
// migration lock, after creating the bookkeeping tables, importing the old migrator's record
// and, with refuseDirty, checking that no version is dirty.
func (db *DB) withMigrator(ctx context.Context, fsys fs.FS, refuseDirty bool, fn func(context.Context, *migrate.Migrator) error) error {
	if fsys == nil {
		sub, err := fs.Sub(migrationFiles, "migrations")
		if err != nil {
			return err
		}
		fsys = sub
	}
	set, err := migrationSet(fsys, db.dialect)
	if err != nil {
		return err
	}
	return db.migrationLock(ctx, func(ctx context.Context, mdb *bun.DB) error {
		m := migrate.NewMigrator(mdb, set,
			migrate.WithTableName(migrationsTable), migrate.WithLocksTableName(migrationLocksTable),
			// A version is recorded applied once its script ran through, never before.
			migrate.WithMarkAppliedOnSuccess(true))
		if err := m.Init(ctx); err != nil {
			return fmt.Errorf("migrate: init: %w", err)
		}
		if _, err := mdb.NewCreateTable().Model((*migrationDirty)(nil)).IfNotExists().Exec(ctx); err != nil {
			return fmt.Errorf("migrate: init: %w", err)
		}
		if err := importLegacy(ctx, m, db.dialect); err != nil {
			return err
		}
		if refuseDirty {
			var dirty []migrationDirty
			if err := mdb.NewSelect().Model(&dirty).Order("name").Scan(ctx); err != nil {
				return fmt.Errorf("migrate: read %s: %w", migrationsDirtyTable, err)
			}
			if len(dirty) > 0 {
				d := dirty[0]
				return fmt.Errorf("%w: version %s_%s (%s) started at %s and did not finish: check the schema and put it right, then clear the mark "+
					"(store.DB.ClearDirty; by hand: DELETE FROM %s WHERE name = '%s', and when the version is all there, record it in %s)",
					ErrDirty, d.Name, d.Comment, d.Direction, d.StartedAt.Format(time.RFC3339), migrationsDirtyTable, d.Name, migrationsTable)
			}
		}
		return fn(ctx, m)
	})
}

// migrationLock runs fn holding the migration lock, with the handle the migrator is to use.
func (db *DB) migrationLock(ctx context.Context, fn func(context.Context, *bun.DB) error) error {
	if db.dialect == DriverMySQL {
		return db.mysqlMigrationLock(ctx, fn)
	}
	return db.sqliteMigrationLock(ctx, fn)
}

func (db *DB) mysqlMigrationLock(ctx context.Context, fn func(context.Context, *bun.DB) error) error {
	// GET_LOCK belongs to a session: the lock is held by this connection until it is released
	// or the connection ends.
	conn, err := db.bun.Conn(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer conn.Close()
	// Per database (at most 64 characters), so that tests migrating separate databases on one
	// server do not wait for each other.
	const lockName = "CONCAT('paysaga.migrate.', SHA1(DATABASE()))"
	var got *int
	if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK("+lockName+", ?)", int(migrationLockWait.Seconds())).Scan(&got); err != nil {
		return fmt.Errorf("migrate: take lock: %w", err)
	}
	if got == nil || *got != 1 {
		return fmt.Errorf("migrate: could not take the migration lock in %s (another process migrating, or no database named in the DSN)", migrationLockWait)
	}
	defer func() {
		// A fresh context: the lock must be released even when ctx is done.
		_, _ = conn.ExecContext(context.WithoutCancel(ctx), "SELECT RELEASE_LOCK("+lockName+")")
	}()
	return fn(ctx, db.bun)
}

// sqliteMigrationLock runs fn in one transaction on a connection of its own. The migrator
// speaks to a *bun.DB, so the transaction is begun with a plain BEGIN IMMEDIATE on a pool of
// exactly one connection: every statement of the run goes through it, inside the transaction.
func (db *DB) sqliteMigrationLock(ctx context.Context, fn func(context.Context, *bun.DB) error) error {
	var sqldb *sql.DB
	if db.memory {
		// An in-memory database lives in the one connection of the store's pool.
		sqldb = db.bun.DB
	} else {
		var err error
		if sqldb, err = sql.Open("sqlite", db.dsn); err != nil {
			return fmt.Errorf("migrate: open sqlite: %w", err)
		}
		defer sqldb.Close()
		sqldb.SetMaxOpenConns(1)
		sqldb.SetMaxIdleConns(1)
		sqldb.SetConnMaxLifetime(0)
		sqldb.SetConnMaxIdleTime(0)
	}
	mdb := bun.NewDB(sqldb, sqlitedialect.New())
	deadline := time.Now().Add(migrationLockWait)
	for {
		_, err := mdb.ExecContext(ctx, "BEGIN IMMEDIATE")
		if err == nil {
			break
		}
		if !IsRetryable(err) || time.Now().After(deadline) {
			return fmt.Errorf("migrate: take the write lock: %w", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	if err := fn(ctx, mdb); err != nil {
		_, rerr := mdb.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		return errors.Join(err, rerr)
	}
	if _, err := mdb.ExecContext(ctx, "COMMIT"); err != nil {
		_, _ = mdb.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		return fmt.Errorf("migrate: commit: %w", err)
	}
	return nil
}

// importLegacy marks the versions the old migrator recorded in schema_migrations as applied
// (one group), once: when bun_migrations is still empty.
func importLegacy(ctx context.Context, m *migrate.Migrator, dialect string) error {
	mdb := m.DB()
	n, err := mdb.NewSelect().Table(migrationsTable).Count(ctx)
	if err != nil || n > 0 {
		return err
	}
	if exists, err := tableExists(ctx, mdb, dialect, legacyMigrationTable); err != nil || !exists {
		return err
	}
	var versions []int
	if err := mdb.NewSelect().Table(legacyMigrationTable).Column("version").Order("version").Scan(ctx, &versions); err != nil {
		return fmt.Errorf("migrate: read %s: %w", legacyMigrationTable, err)
	}
	all, err := m.MigrationsWithStatus(ctx)
	if err != nil {
		return err
	}
	known := map[string]*migrate.Migration{}
	for i := range all {
		known[all[i].Name] = &all[i]
	}
	for _, v := range versions {
		mig := known[fmt.Sprintf("%04d", v)]
		if mig == nil {
			return fmt.Errorf("migrate: %s records version %d, which this build does not know: a newer build migrated this database", legacyMigrationTable, v)
		}
		mig.GroupID = 1
		if err := m.MarkApplied(ctx, mig); err != nil {
			return fmt.Errorf("migrate: import version %d: %w", v, err)
		}
	}
	return nil
}

// tableExists reports whether the database has table name.
func tableExists(ctx context.Context, idb bun.IDB, dialect, name string) (bool, error) {
	var n int
	q := "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?"
	if dialect == DriverMySQL {
		q = "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?"
	}
	if err := idb.QueryRowContext(ctx, q, name).Scan(&n); err != nil {
		return false, fmt.Errorf("migrate: look for table %s: %w", name, err)
	}
	return n > 0, nil
}

// SchemaVersion returns the highest applied migration version (0 before the first Migrate).
func (db *DB) SchemaVersion(ctx context.Context) (int, error) {
	if exists, err := tableExists(ctx, db.bun, db.dialect, migrationsTable); err != nil || !exists {
		return 0, err
	}
	var names []string
	if err := db.bun.NewSelect().Table(migrationsTable).Column("name").Scan(ctx, &names); err != nil {
		return 0, fmt.Errorf("schema version: %w", err)
	}
	top := 0
	for _, n := range names {
		if v, err := strconv.Atoi(n); err == nil && v > top {
			top = v
		}
	}
	return top, nil
}
