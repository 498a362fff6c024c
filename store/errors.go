package store

import (
	"database/sql"
	"errors"

	"github.com/go-sql-driver/mysql"
	"modernc.org/sqlite"
)

// SQLite extended result codes (sqlite3.h).
const (
	sqliteBusy              = 5
	sqliteLocked            = 6
	sqliteConstraintPK      = 1555
	sqliteConstraintUnique  = 2067
	sqliteBusySnapshot      = 517
	mysqlErrDupEntry        = 1062
	mysqlErrLockWaitTimeout = 1205
	mysqlErrDeadlock        = 1213
)

// IsDuplicate reports whether err is a unique or primary key violation on either dialect.
func IsDuplicate(err error) bool {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number == mysqlErrDupEntry
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqliteConstraintUnique || se.Code() == sqliteConstraintPK
	}
	return false
}

// IsRetryable reports whether err is a transient lock conflict (a MySQL deadlock or lock wait
// timeout, SQLite busy) after which the whole transaction can simply be run again.
func IsRetryable(err error) bool {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number == mysqlErrDeadlock || me.Number == mysqlErrLockWaitTimeout
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		c := se.Code()
		return c&0xff == sqliteBusy || c&0xff == sqliteLocked || c == sqliteBusySnapshot
	}
	return false
}

// isNoRows reports whether a single-row query found nothing.
func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }
