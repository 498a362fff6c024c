package store

import (
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"paysaga"
)

// Idempotency key states.
const (
	IdempotencyPending   = "pending"   // the first request is still running
	IdempotencyCompleted = "completed" // its answer is stored
)

// IdempotencyRecord is what the store remembers of one Idempotency-Key within a scope (the
// caller and the operation).
type IdempotencyRecord struct {
	bun.BaseModel `bun:"table:idempotency_keys"`

	Scope          string    `bun:"scope,pk"`
	Key            string    `bun:"idem_key,pk"`
	RequestHash    string    `bun:"request_hash"`
	State          string    `bun:"state"`
	ResponseStatus int       `bun:"response_status"`
	ResponseBody   []byte    `bun:"response_body"`
	ResourceID     string    `bun:"resource_id"`
	CreatedAt      time.Time `bun:"created_at"`
	ExpiresAt      time.Time `bun:"expires_at"`
}

// Completed reports whether the first request's answer is stored.
func (r *IdempotencyRecord) Completed() bool { return r.State == IdempotencyCompleted }

// Column limits of idempotency_keys.
const (
	maxIdempotencyScope = 128
	maxIdempotencyKey   = 255
)

// ClaimIdempotencyKey inserts the key in state pending, or returns the record already there.
// created tells which: of concurrent claims of one key exactly one is created. An expired
// record counts as absent and is replaced — unless the payment or refund it created exists:
// then it lives again and is returned. The caller compares RequestHash itself.
func (db *DB) ClaimIdempotencyKey(ctx context.Context, scope, key, requestHash string, ttl time.Duration) (rec *IdempotencyRecord, created bool, err error) {
	return db.ClaimIdempotencyKeyFor(ctx, scope, key, requestHash, "", ttl)
}

// ClaimIdempotencyKeyFor is ClaimIdempotencyKey with the ID of the resource the request will
// create stored in the same insert: every concurrent duplicate then reads the winner's ID and
// joins the same resource, with no window in which the key exists without it.
func (db *DB) ClaimIdempotencyKeyFor(ctx context.Context, scope, key, requestHash, resourceID string, ttl time.Duration) (rec *IdempotencyRecord, created bool, err error) {
	if scope == "" || len(scope) > maxIdempotencyScope {
		return nil, false, paysaga.Errorf(paysaga.EINVALID, "idempotency scope must be 1 to %d bytes", maxIdempotencyScope)
	}
	if key == "" || len(key) > maxIdempotencyKey {
		return nil, false, paysaga.Errorf(paysaga.EINVALID, "Idempotency-Key must be 1 to %d bytes", maxIdempotencyKey)
	}
	if ttl <= 0 {
		return nil, false, paysaga.Errorf(paysaga.EINVALID, "idempotency TTL must be positive")
	}
	err = db.retry(ctx, func() error {
		rec, created, err = db.claimIdempotencyKey(ctx, scope, key, requestHash, resourceID, ttl)
		return err
	})
	return rec, created, err
}

func (db *DB) claimIdempotencyKey(ctx context.Context, scope, key, requestHash, resourceID string, ttl time.Duration) (*IdempotencyRecord, bool, error) {
	now := db.Now()
	rec := &IdempotencyRecord{
		Scope: scope, Key: key, RequestHash: requestHash, State: IdempotencyPending, ResourceID: resourceID,
		CreatedAt: now, ExpiresAt: now.Add(ttl).Truncate(time.Microsecond),
	}
	// A new key is the common case: one insert claims it. The insert is what decides the one
	// winner of concurrent claims, here and below.
	if created, err := db.insertIdempotencyKey(ctx, rec); err != nil {
		return nil, false, err
	} else if created {
		return rec, true, nil
	}
	// The key is there. A key whose time is up is absent — unless what it created exists: one
	// key, one payment (or refund), forever. Such a key lives again (its time starts afresh)
	// and answers as it did; it is never given a new resource (that would be a second payment,
	// a second debit).
	if _, err := db.bun.NewUpdate().Model((*IdempotencyRecord)(nil)).
		Set("expires_at = ?", rec.ExpiresAt).
		Where("scope = ? AND idem_key = ? AND expires_at <= ?", scope, key, now).
		Where("(" + createdResourceExists + ")").
		Exec(ctx); err != nil {
		return nil, false, fmt.Errorf("claim idempotency key: revive: %w", err)
	}
	// Any other expired key is absent: delete it so that the insert can take its place. A live
	// key is never deleted here, so the insert still decides the one winner.
	if res, err := db.bun.NewDelete().Model((*IdempotencyRecord)(nil)).
		Where("scope = ? AND idem_key = ? AND expires_at <= ?", scope, key, now).
		Exec(ctx); err != nil {
		return nil, false, fmt.Errorf("claim idempotency key: %w", err)
	} else if n, _ := res.RowsAffected(); n > 0 {
		if created, err := db.insertIdempotencyKey(ctx, rec); err != nil {
			return nil, false, err
		} else if created {
			return rec, true, nil
		}
	}
	existing, err := db.IdempotencyKey(ctx, scope, key)
	if err != nil {
		if paysaga.ErrorCode(err) == paysaga.ENOTFOUND {
			// It expired between our insert and this read; the caller may simply retry.
			return nil, false, paysaga.Errorf(paysaga.ECONFLICT, "idempotency key changed concurrently; retry")
		}
		return nil, false, err
	}
	return existing, false, nil
}

// insertIdempotencyKey inserts rec: created is false (and err nil) when the key is already there.
func (db *DB) insertIdempotencyKey(ctx context.Context, rec *IdempotencyRecord) (created bool, err error) {
	if _, err := db.bun.NewInsert().Model(rec).Exec(ctx); err == nil {
		return true, nil
	} else if !IsDuplicate(err) {
		return false, fmt.Errorf("claim idempotency key: %w", err)
	}
	return false, nil
}

// IdempotencyKey returns the live record of a key; ENOTFOUND when there is none or it expired.
func (db *DB) IdempotencyKey(ctx context.Context, scope, key string) (*IdempotencyRecord, error) {
	var rec IdempotencyRecord
	err := db.bun.NewSelect().Model(&rec).
		Where("scope = ? AND idem_key = ? AND expires_at > ?", scope, key, db.Now()).
		Limit(1).Scan(ctx)
	if err != nil {
		if isNoRows(err) {
			return nil, paysaga.Errorf(paysaga.ENOTFOUND, "idempotency key not found")
		}
		return nil, fmt.Errorf("find idempotency key: %w", err)
	}
	rec.CreatedAt, rec.ExpiresAt = rec.CreatedAt.UTC(), rec.ExpiresAt.UTC()
	return &rec, nil
}

// CompleteIdempotencyKey stores the answer of the first request (status, body, and the ID of
// what it created, if anything). ENOTFOUND when the key is absent or expired; completing twice
// overwrites, so a retried completion is harmless.
func (db *DB) CompleteIdempotencyKey(ctx context.Context, scope, key string, status int, body []byte, resourceID string) error {
	if body == nil {
		body = []byte{}
	}
	q := db.bun.NewUpdate().Model((*IdempotencyRecord)(nil)).
		Set("state = ?", IdempotencyCompleted).
		Set("response_status = ?", status).
		Set("response_body = ?", body)
	if resourceID != "" {
		q = q.Set("resource_id = ?", resourceID)
	}
	return db.updateIdempotencyKey(ctx, q, scope, key)
}

// SetIdempotencyResource records the ID of the resource the first request created, before its
// answer is known (so a duplicate arriving meanwhile can point at it). ENOTFOUND when the key
// is absent or expired.
func (db *DB) SetIdempotencyResource(ctx context.Context, scope, key, resourceID string) error {
	q := db.bun.NewUpdate().Model((*IdempotencyRecord)(nil)).Set("resource_id = ?", resourceID)
	return db.updateIdempotencyKey(ctx, q, scope, key)
}

func (db *DB) updateIdempotencyKey(ctx context.Context, q *bun.UpdateQuery, scope, key string) error {
	res, err := q.Where("scope = ? AND idem_key = ? AND expires_at > ?", scope, key, db.Now()).Exec(ctx)
	if err != nil {
		return fmt.Errorf("update idempotency key: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		// MySQL reports 0 for a row it found but did not change; tell that apart from absence.
		if _, err := db.IdempotencyKey(ctx, scope, key); err != nil {
			return err
		}
	}
	return nil
}

// DeleteIdempotencyKey forgets a key, e.g. when the first request failed before doing anything
// and a retry with the same key should run afresh.
func (db *DB) DeleteIdempotencyKey(ctx context.Context, scope, key string) error {
	if _, err := db.bun.NewDelete().Model((*IdempotencyRecord)(nil)).
		Where("scope = ? AND idem_key = ?", scope, key).Exec(ctx); err != nil {
		return fmt.Errorf("delete idempotency key: %w", err)
	}
	return nil
}

// createdResourceExists is true for an idempotency_keys row whose resource is a payment or a
// refund that exists. Such a key is never purged nor re-minted: a retry, however late, names
// the payment it created (issue 11, item 5) — whether its answer was stored (final) or not
// (202, UNKNOWN: the handler re-reads the payment).
// (Uncorrelated subqueries: bun aliases the table in some statements and dialects, not others.)
const createdResourceExists = `resource_id <> '' AND (
	resource_id IN (SELECT id FROM payments) OR resource_id IN (SELECT id FROM refunds))`

// PurgeExpiredIdempotencyKeys deletes the keys whose time is up and returns how many. A key
// whose payment or refund exists is kept, whatever its age (see createdResourceExists): the
// table keeps one small row per payment, the price of "one key, one payment, forever".
func (db *DB) PurgeExpiredIdempotencyKeys(ctx context.Context) (int64, error) {
	res, err := db.bun.NewDelete().Model((*IdempotencyRecord)(nil)).
		Where("expires_at <= ?", db.Now()).
		Where("NOT (" + createdResourceExists + ")").Exec(ctx)
	if err != nil {
		return 0, fmt.Errorf("purge idempotency keys: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}
