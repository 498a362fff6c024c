package store

import (
	"context"
	"io/fs"
)

// MigrateFrom migrates from fsys instead of the embedded migrations (tests of the migrator).
func (db *DB) MigrateFrom(ctx context.Context, fsys fs.FS) error { return db.migrateFrom(ctx, fsys) }

// Statements splits a migration script as the migrator does.
var Statements = statements
