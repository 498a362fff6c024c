package store

import (
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"paysaga"
)

// RefreshToken is a stored refresh token. Only the SHA-256 of the token is kept; tokens of one
// login share a FamilyID, and rotation marks each used before issuing the next.
type RefreshToken struct {
	bun.BaseModel `bun:"table:refresh_tokens"`

	ID        string     `bun:"id,pk"`
	UserID    string     `bun:"user_id"`
	FamilyID  string     `bun:"family_id"`
	TokenHash string     `bun:"token_hash"`
	ExpiresAt time.Time  `bun:"expires_at"`
	UsedAt    *time.Time `bun:"used_at"`
	RevokedAt *time.Time `bun:"revoked_at"`
	CreatedAt time.Time  `bun:"created_at"`
}

// CreateRefreshToken stores t; a zero CreatedAt is set from the store's clock.
func (db *DB) CreateRefreshToken(ctx context.Context, t *RefreshToken) error {
	return createRefreshToken(ctx, db.bun, db.Now(), t)
}

func createRefreshToken(ctx context.Context, idb bun.IDB, now time.Time, t *RefreshToken) error {
	if t.CreatedAt.IsZero() {
		t.CreatedAt = now
	}
	t.CreatedAt = t.CreatedAt.UTC().Truncate(time.Microsecond)
	t.ExpiresAt = t.ExpiresAt.UTC().Truncate(time.Microsecond)
	if _, err := idb.NewInsert().Model(t).Exec(ctx); err != nil {
		if IsDuplicate(err) {
			return paysaga.Errorf(paysaga.ECONFLICT, "refresh token already exists")
		}
		return fmt.Errorf("create refresh token: %w", err)
	}
	return nil
}

// RefreshTokenByHash finds a token by the hash of its value, whatever its state; ENOTFOUND
// when there is none.
func (db *DB) RefreshTokenByHash(ctx context.Context, hash string) (*RefreshToken, error) {
	var t RefreshToken
	if err := db.bun.NewSelect().Model(&t).Where("token_hash = ?", hash).Limit(1).Scan(ctx); err != nil {
		if isNoRows(err) {
			return nil, paysaga.Errorf(paysaga.ENOTFOUND, "refresh token not found")
		}
		return nil, fmt.Errorf("find refresh token: %w", err)
	}
	return &t, nil
}

// UseRefreshToken marks the token used, if it is still unused, unrevoked and unexpired at the
// store's clock. It is one conditional UPDATE, so of two concurrent calls exactly one succeeds;
// the other gets ECONFLICT.
func (db *DB) UseRefreshToken(ctx context.Context, id string) error {
	return useRefreshToken(ctx, db.bun, db.Now(), id)
}

func useRefreshToken(ctx context.Context, idb bun.IDB, now time.Time, id string) error {
	res, err := idb.NewUpdate().Model((*RefreshToken)(nil)).
		Set("used_at = ?", now).
		Where("id = ?", id).
		Where("used_at IS NULL").
		Where("revoked_at IS NULL").
		Where("expires_at > ?", now).
		Exec(ctx)
	if err != nil {
		return fmt.Errorf("use refresh token: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("use refresh token: %w", err)
	} else if n != 1 {
		return paysaga.Errorf(paysaga.ECONFLICT, "refresh token is used, revoked or expired")
	}
	return nil
}

// RotateRefreshToken marks the token oldID used (as UseRefreshToken, ECONFLICT if it no
// longer may be) and stores next, in one transaction: either both happen or neither.
func (db *DB) RotateRefreshToken(ctx context.Context, oldID string, next *RefreshToken) error {
	now := db.Now()
	return db.bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if err := useRefreshToken(ctx, tx, now, oldID); err != nil {
			return err
		}
		return createRefreshToken(ctx, tx, now, next)
	})
}

// RevokeRefreshTokenFamily revokes every token of the family not revoked yet and returns how
// many it revoked.
func (db *DB) RevokeRefreshTokenFamily(ctx context.Context, familyID string) (int64, error) {
	res, err := db.bun.NewUpdate().Model((*RefreshToken)(nil)).
		Set("revoked_at = ?", db.Now()).
		Where("family_id = ?", familyID).
		Where("revoked_at IS NULL").
		Exec(ctx)
	if err != nil {
		return 0, fmt.Errorf("revoke refresh token family: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// RevokeRefreshToken revokes the one token with this hash; ENOTFOUND when there is none.
// Revoking a revoked token is not an error.
func (db *DB) RevokeRefreshToken(ctx context.Context, hash string) error {
	res, err := db.bun.NewUpdate().Model((*RefreshToken)(nil)).
		Set("revoked_at = ?", db.Now()).
		Where("token_hash = ?", hash).
		Where("revoked_at IS NULL").
		Exec(ctx)
	if err != nil {
		return fmt.Errorf("revoke refresh token: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		if _, err := db.RefreshTokenByHash(ctx, hash); err != nil {
			return err
		}
	}
	return nil
}

// RevokeUserRefreshTokens revokes every live token of a user (all their sessions).
func (db *DB) RevokeUserRefreshTokens(ctx context.Context, userID string) (int64, error) {
	res, err := db.bun.NewUpdate().Model((*RefreshToken)(nil)).
		Set("revoked_at = ?", db.Now()).
		Where("user_id = ?", userID).
		Where("revoked_at IS NULL").
		Exec(ctx)
	if err != nil {
		return 0, fmt.Errorf("revoke user refresh tokens: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}
