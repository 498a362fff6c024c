package store

import (
	"context"
	"fmt"
	"time"

	"paysaga"
)

// maxIsTunoSeq is the largest 12-digit sequence number.
const maxIsTunoSeq = 999_999_999_999

// NextIsTuno allocates the next IsTuno of day tsymd (YYYYMMDD): tsymd followed by a 12-digit
// zero-padded per-day sequence, 20 digits in all (the shape of nh.FormatIsTuno). A number is
// never handed out twice, across processes and restarts: the counter is a row per day,
// incremented and read back by one statement. It implements nh.Sequencer.
func (db *DB) NextIsTuno(ctx context.Context, tsymd string) (string, error) {
	if len(tsymd) != 8 || !allDigits(tsymd) {
		return "", paysaga.Errorf(paysaga.EINVALID, "tsymd must be 8 digits (YYYYMMDD)")
	}
	var seq int64
	err := db.retry(ctx, func() error {
		// One statement, no transaction: the row's lock is held only while it is incremented.
		if db.dialect == DriverMySQL {
			// LAST_INSERT_ID(expr) hands this statement's value back in its own answer (the
			// connection's insert id), whichever of the insert or the update ran.
			res, err := db.bun.ExecContext(ctx, "INSERT INTO istuno_sequences (tsymd, last_value) VALUES (?, LAST_INSERT_ID(1)) "+
				"ON DUPLICATE KEY UPDATE last_value = LAST_INSERT_ID(last_value + 1)", tsymd)
			if err != nil {
				return err
			}
			seq, err = res.LastInsertId()
			return err
		}
		return db.bun.QueryRowContext(ctx, "INSERT INTO istuno_sequences (tsymd, last_value) VALUES (?, 1) "+
			"ON CONFLICT (tsymd) DO UPDATE SET last_value = last_value + 1 RETURNING last_value", tsymd).Scan(&seq)
	})
	if err != nil {
		return "", fmt.Errorf("next IsTuno: %w", err)
	}
	if seq > maxIsTunoSeq {
		return "", paysaga.Errorf(paysaga.EUNAVAILABLE, "IsTuno sequence exhausted for %s", tsymd)
	}
	return fmt.Sprintf("%s%012d", tsymd, seq), nil
}

// retry runs fn again after a deadlock, lock wait timeout or busy database, a few times with a
// short growing pause. fn must be a whole transaction.
func (db *DB) retry(ctx context.Context, fn func() error) error {
	var err error
	for attempt := 0; attempt < 8; attempt++ {
		if err = fn(); err == nil || !IsRetryable(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(attempt+1) * 5 * time.Millisecond):
		}
	}
	return err
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
