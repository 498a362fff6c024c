package store

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/mysqldialect"
	"github.com/uptrace/bun/dialect/sqlitedialect"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// Driver names accepted in Config.Driver.
const (
	DriverMySQL  = "mysql"
	DriverSQLite = "sqlite"
)

// Config says which database to open.
type Config struct {
	// Driver is "mysql" (MySQL 8 / MariaDB) or "sqlite".
	Driver string
	// DSN is a go-sql-driver/mysql DSN ("user:pass@tcp(host:3306)/paysaga") or an SQLite file
	// path, optionally with "file:" and query parameters. Required connection settings (UTC
	// times, WAL, foreign keys, busy timeout) are added by Open.
	DSN string
	// MaxOpenConns bounds the MySQL pool (default 20). SQLite ignores it.
	MaxOpenConns int
	// QueryHook, if set, sees every query (e.g. a tracing span per query).
	QueryHook bun.QueryHook
}

// DB is the database: a Bun handle plus the repositories defined on it.
type DB struct {
	bun     *bun.DB
	dialect string
	now     func() time.Time
	// dsn (with Open's settings) and memory: SQLite's, for the migrator's own connection.
	dsn    string
	memory bool
}

// Open connects to the database and checks that it answers. It does not migrate.
func Open(ctx context.Context, cfg Config) (*DB, error) {
	var (
		sqldb      *sql.DB
		bdb        *bun.DB
		err        error
		liteDSN    string
		liteMemory bool
	)
	switch cfg.Driver {
	case DriverMySQL:
		dsn, derr := mysqlDSN(cfg.DSN)
		if derr != nil {
			return nil, derr
		}
		if sqldb, err = sql.Open("mysql", dsn); err != nil {
			return nil, fmt.Errorf("open mysql: %w", err)
		}
		n := cfg.MaxOpenConns
		if n <= 0 {
			n = 20
		}
		sqldb.SetMaxOpenConns(n)
		sqldb.SetMaxIdleConns(n)
		sqldb.SetConnMaxLifetime(30 * time.Minute)
		sqldb.SetConnMaxIdleTime(5 * time.Minute)
		bdb = bun.NewDB(sqldb, mysqldialect.New())
	case DriverSQLite:
		dsn, memory := sqliteDSN(cfg.DSN)
		if sqldb, err = sql.Open("sqlite", dsn); err != nil {
			return nil, fmt.Errorf("open sqlite: %w", err)
		}
		// Writers serialize on SQLite's file lock: every transaction starts with BEGIN IMMEDIATE
		// (so a transaction never fails half-way when upgrading a read lock to a write lock) and
		// waits up to busy_timeout for the lock. WAL lets readers run next to the writer. An
		// in-memory database exists per connection, so it gets exactly one.
		if memory {
			sqldb.SetMaxOpenConns(1)
		} else {
			sqldb.SetMaxOpenConns(8)
		}
		sqldb.SetMaxIdleConns(8)
		sqldb.SetConnMaxIdleTime(0)
		sqldb.SetConnMaxLifetime(0)
		bdb = bun.NewDB(sqldb, sqlitedialect.New())
		liteDSN, liteMemory = dsn, memory
	default:
		return nil, fmt.Errorf("store: unknown driver %q (want %q or %q)", cfg.Driver, DriverMySQL, DriverSQLite)
	}
	if cfg.QueryHook != nil {
		bdb = bdb.WithQueryHook(cfg.QueryHook)
	}
	db := &DB{bun: bdb, dialect: cfg.Driver, now: time.Now, dsn: liteDSN, memory: liteMemory}
	if err := db.Ping(ctx); err != nil {
		_ = bdb.Close()
		return nil, err
	}
	return db, nil
}

// mysqlDSN forces the settings the store relies on: DATETIME scanned into time.Time in UTC.
func mysqlDSN(dsn string) (string, error) {
	c, err := mysql.ParseDSN(dsn)
	if err != nil {
		// The DSN may contain a password: do not echo it.
		return "", fmt.Errorf("store: malformed mysql DSN")
	}
	c.ParseTime = true
	c.Loc = time.UTC
	if c.Params == nil {
		c.Params = map[string]string{}
	}
	c.Params["time_zone"] = "'+00:00'"
	if c.Timeout == 0 {
		c.Timeout = 5 * time.Second
	}
	return c.FormatDSN(), nil
}

// sqliteDSN adds WAL, foreign keys, a busy timeout and immediate transactions to a path or
// file: URI, and reports whether the database is in memory.
func sqliteDSN(dsn string) (string, bool) {
	path, query, _ := strings.Cut(dsn, "?")
	q, err := url.ParseQuery(query)
	if err != nil {
		q = url.Values{}
	}
	memory := strings.Contains(path, ":memory:") || q.Get("mode") == "memory"
	if !memory {
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous(NORMAL)")
	}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "foreign_keys(ON)")
	q.Set("_txlock", "immediate")
	return path + "?" + q.Encode(), memory
}

// Bun returns the Bun handle, for repositories in this package and for tests.
func (db *DB) Bun() *bun.DB { return db.bun }

// Dialect returns the driver name: "mysql" or "sqlite".
func (db *DB) Dialect() string { return db.dialect }

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.bun.PingContext(ctx); err != nil {
		return fmt.Errorf("ping %s: %w", db.dialect, err)
	}
	return nil
}

// Close closes the connection pool.
func (db *DB) Close() error { return db.bun.Close() }

// WithClock returns a DB sharing the same connections whose repositories read the time from
// now instead of the wall clock (tests use it to expire things without sleeping).
func (db *DB) WithClock(now func() time.Time) *DB {
	c := *db
	c.now = now
	return &c
}

// Now is the store's clock in UTC, truncated to the microsecond precision both dialects keep,
// so that a value written and read back compares equal.
func (db *DB) Now() time.Time { return db.now().UTC().Truncate(time.Microsecond) }

// RunInTx runs fn in a transaction, committing when fn returns nil. On SQLite the transaction
// holds the write lock from its first statement; on MySQL use SELECT … FOR UPDATE or
// conditional UPDATEs for anything two requests could race on.
func (db *DB) RunInTx(ctx context.Context, fn func(ctx context.Context, tx bun.Tx) error) error {
	return db.bun.RunInTx(ctx, nil, fn)
}
