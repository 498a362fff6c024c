package store

import (
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"paysaga"
)

// maxIsTunoSeq is the largest 12-digit sequence number.
const maxIsTunoSeq = 999_999_999_999

// NextIsTuno allocates the next IsTuno of day tsymd (YYYYMMDD): tsymd followed by a 12-digit
// zero-padded per-day sequence, 20 digits in all (the shape of nh.FormatIsTuno). A number is
// never handed out twice, across processes and restarts: the counter is a row per day,
// incremented in a transaction that holds its lock. It implements nh.Sequencer.
func (db *DB) NextIsTuno(ctx context.Context, tsymd string) (string, error) {
	if len(tsymd) != 8 || !allDigits(tsymd) {
		return "", paysaga.Errorf(paysaga.EINVALID, "tsymd must be 8 digits (YYYYMMDD)")
	}
	var seq int64
	err := db.retry(ctx, func() error {
		return db.bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			var upsert string
			if db.dialect == DriverMySQL {
				upsert = "INSERT INTO istuno_sequences (tsymd, last_value) VALUES (?, 1) " +
					"ON DUPLICATE KEY UPDATE last_value = last_value + 1"
			} else {
				upsert = "INSERT INTO istuno_sequences (tsymd, last_value) VALUES (?, 1) " +
					"ON CONFLICT (tsymd) DO UPDATE SET last_value = last_value + 1"
			}
			if _, err := tx.ExecContext(ctx, upsert, tsymd); err != nil {
				return err
			}
			// The row is locked by this transaction until commit, so this reads our own value.
			return tx.QueryRowContext(ctx,
				"SELECT last_value FROM istuno_sequences WHERE tsymd = ?", tsymd).Scan(&seq)
		})
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
