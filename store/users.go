package store

import (
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"paysaga"
)

type userRow struct {
	bun.BaseModel `bun:"table:users"`

	ID           string    `bun:"id,pk"`
	Email        string    `bun:"email"`
	Name         string    `bun:"name"`
	PasswordHash string    `bun:"password_hash"`
	Role         string    `bun:"role"`
	CreatedAt    time.Time `bun:"created_at"`
}

func (r *userRow) user() *paysaga.User {
	return &paysaga.User{
		ID: r.ID, Email: r.Email, Name: r.Name, Role: paysaga.Role(r.Role),
		PasswordHash: r.PasswordHash, CreatedAt: r.CreatedAt.UTC(),
	}
}

// CreateUser inserts u. A zero CreatedAt is set from the store's clock. An email already taken
// is ECONFLICT. Emails are compared exactly; callers normalize them first.
func (db *DB) CreateUser(ctx context.Context, u *paysaga.User) error {
	if u.CreatedAt.IsZero() {
		u.CreatedAt = db.Now()
	}
	u.CreatedAt = u.CreatedAt.UTC().Truncate(time.Microsecond)
	row := &userRow{
		ID: u.ID, Email: u.Email, Name: u.Name, PasswordHash: u.PasswordHash,
		Role: string(u.Role), CreatedAt: u.CreatedAt,
	}
	if _, err := db.bun.NewInsert().Model(row).Exec(ctx); err != nil {
		if IsDuplicate(err) {
			return paysaga.Errorf(paysaga.ECONFLICT, "email is already registered")
		}
		return fmt.Errorf("create user: %w", err)
	}
	return nil
}

// UserByEmail finds a user by exact email; ENOTFOUND when there is none.
func (db *DB) UserByEmail(ctx context.Context, email string) (*paysaga.User, error) {
	return db.userWhere(ctx, "email = ?", email)
}

// UserByID finds a user by ID; ENOTFOUND when there is none.
func (db *DB) UserByID(ctx context.Context, id string) (*paysaga.User, error) {
	return db.userWhere(ctx, "id = ?", id)
}

func (db *DB) userWhere(ctx context.Context, where string, arg any) (*paysaga.User, error) {
	var row userRow
	if err := db.bun.NewSelect().Model(&row).Where(where, arg).Limit(1).Scan(ctx); err != nil {
		if isNoRows(err) {
			return nil, paysaga.Errorf(paysaga.ENOTFOUND, "user not found")
		}
		return nil, fmt.Errorf("find user: %w", err)
	}
	return row.user(), nil
}

// SetUserRole changes the role of the user with this exact email; ENOTFOUND when there is none.
func (db *DB) SetUserRole(ctx context.Context, email string, role paysaga.Role) error {
	if !role.Valid() {
		return paysaga.Errorf(paysaga.EINVALID, "unknown role %q", role)
	}
	res, err := db.bun.NewUpdate().Model((*userRow)(nil)).
		Set("role = ?", string(role)).Where("email = ?", email).Exec(ctx)
	if err != nil {
		return fmt.Errorf("set user role: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		// MySQL counts only changed rows: the user may exist with this role already.
		if _, err := db.UserByEmail(ctx, email); err != nil {
			return err
		}
	}
	return nil
}
