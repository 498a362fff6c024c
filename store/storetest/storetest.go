// Package storetest opens fresh, migrated, isolated databases for tests, on either dialect:
// SQLite in a temporary directory, or a throwaway database on the MySQL/MariaDB server named by
// PAYSAGA_TEST_MYSQL_DSN. An unreachable server fails the test: it is never skipped.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"paysaga/store"
)

// DefaultMySQLDSN is used when PAYSAGA_TEST_MYSQL_DSN is not set.
const DefaultMySQLDSN = "root@tcp(127.0.0.1:3306)/test?parseTime=true"

// Drivers lists the dialects every store test runs on.
func Drivers() []string { return []string{store.DriverSQLite, store.DriverMySQL} }

// Open returns a freshly migrated database of the given driver, closed (and, on MySQL, dropped)
// when the test ends.
func Open(t testing.TB, driver string) *store.DB {
	t.Helper()
	cfg := NewConfig(t, driver)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db, err := store.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("storetest: open %s: %v", driver, err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatalf("storetest: migrate %s: %v", driver, err)
	}
	return db
}

// NewConfig creates an empty database (not migrated) for the test and returns how to open it.
// Tests of Migrate itself use it; others use Open.
func NewConfig(t testing.TB, driver string) store.Config {
	t.Helper()
	switch driver {
	case store.DriverSQLite:
		return store.Config{Driver: driver, DSN: filepath.Join(t.TempDir(), "paysaga.db")}
	case store.DriverMySQL:
		return store.Config{Driver: driver, DSN: newMySQLDatabase(t)}
	default:
		t.Fatalf("storetest: unknown driver %q", driver)
		return store.Config{}
	}
}

func newMySQLDatabase(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("PAYSAGA_TEST_MYSQL_DSN")
	if dsn == "" {
		dsn = DefaultMySQLDSN
	}
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatalf("storetest: PAYSAGA_TEST_MYSQL_DSN is not a valid MySQL DSN")
	}
	cfg.Timeout = 5 * time.Second
	admin, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatalf("storetest: open MySQL admin connection: %v", err)
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := admin.PingContext(ctx); err != nil {
		t.Fatalf("storetest: MySQL/MariaDB at %s is unreachable (%v); start it or set PAYSAGA_TEST_MYSQL_DSN", cfg.Addr, err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "paysaga_t_" + hex.EncodeToString(b[:])
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE `"+name+"` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"); err != nil {
		t.Fatalf("storetest: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		a, err := sql.Open("mysql", cfg.FormatDSN())
		if err != nil {
			t.Errorf("storetest: drop database %s: %v", name, err)
			return
		}
		defer a.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := a.ExecContext(ctx, "DROP DATABASE IF EXISTS `"+name+"`"); err != nil {
			t.Errorf("storetest: drop database %s: %v", name, err)
		}
	})
	cfg.DBName = name
	return cfg.FormatDSN()
}
