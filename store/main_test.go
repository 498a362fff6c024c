package store_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	"paysaga/store"
)

// Set in the environment of a copy of the test binary started to run Migrate as a process of
// its own (TestMigrateProcesses).
const (
	envMigrateChildDriver = "PAYSAGA_STORE_TEST_MIGRATE_DRIVER"
	envMigrateChildDSN    = "PAYSAGA_STORE_TEST_MIGRATE_DSN"
)

func TestMain(m *testing.M) {
	if driver := os.Getenv(envMigrateChildDriver); driver != "" {
		os.Exit(migrateChild(driver, os.Getenv(envMigrateChildDSN)))
	}
	os.Exit(m.Run())
}

// migrateChild is `paysaga migrate` in a test: open, migrate, close.
func migrateChild(driver, dsn string) int {
	ctx := context.Background()
	db, err := store.Open(ctx, store.Config{Driver: driver, DSN: dsn})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}
