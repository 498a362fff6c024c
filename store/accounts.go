package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"paysaga"
)

type accountRow struct {
	bun.BaseModel `bun:"table:accounts"`

	ID               string    `bun:"id,pk"`
	OwnerID          string    `bun:"owner_id"`
	BankCode         string    `bun:"bank_code"`
	NumberCiphertext []byte    `bun:"number_ciphertext"`
	NumberKeyID      string    `bun:"number_key_id"`
	NumberHash       string    `bun:"number_hash"`
	MaskedNumber     string    `bun:"masked_number"`
	Nickname         string    `bun:"nickname"`
	FinAccount       string    `bun:"fin_account"`
	Rgno             string    `bun:"rgno"`
	Status           string    `bun:"status"`
	FailureCode      string    `bun:"failure_code"`
	FailureMessage   string    `bun:"failure_message"`
	CreatedAt        time.Time `bun:"created_at"`
	UpdatedAt        time.Time `bun:"updated_at"`
}

func (r *accountRow) account() *paysaga.Account {
	return &paysaga.Account{
		ID: r.ID, OwnerID: r.OwnerID, BankCode: r.BankCode, MaskedNumber: r.MaskedNumber,
		Nickname: r.Nickname, Status: paysaga.AccountStatus(r.Status), FailureCode: r.FailureCode,
		FailureMessage: r.FailureMessage, FinAccount: r.FinAccount,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
	}
}

// SealedAccountNumber is an account number as the database keeps it: never in clear. The
// caller seals it (encrypts it with a key it names, and computes a keyed hash that makes
// "this account is registered already" checkable without decrypting anything).
type SealedAccountNumber struct {
	Ciphertext []byte
	KeyID      string
	// Hash is unique per bank code and owner; only one ACTIVE account holds it (see
	// FailureNumberRegistered).
	Hash string
}

// CreateAccount stores a registered bank account: its owner, bank, masked number, sealed
// number, fin account and status. The same account number (by hash) at the same bank twice for
// one owner, an ACTIVE one while another account is ACTIVE with it, or an ID already used, is
// ECONFLICT. Zero times are now.
func (db *DB) CreateAccount(ctx context.Context, a *paysaga.Account, number SealedAccountNumber) error {
	if a.ID == "" || a.OwnerID == "" || a.BankCode == "" || a.MaskedNumber == "" {
		return paysaga.Errorf(paysaga.EINVALID, "an account needs an id, an owner, a bank code and a masked number")
	}
	if number.Hash == "" || len(number.Ciphertext) == 0 {
		return paysaga.Errorf(paysaga.EINVALID, "an account needs its sealed number")
	}
	if a.Status == "" {
		a.Status = paysaga.AccountPending
	}
	now := db.Now()
	if a.CreatedAt.IsZero() {
		a.CreatedAt = now
	}
	a.CreatedAt = a.CreatedAt.UTC().Truncate(time.Microsecond)
	if a.UpdatedAt.IsZero() {
		a.UpdatedAt = a.CreatedAt
	}
	a.UpdatedAt = a.UpdatedAt.UTC().Truncate(time.Microsecond)
	row := &accountRow{
		ID: a.ID, OwnerID: a.OwnerID, BankCode: a.BankCode, NumberCiphertext: number.Ciphertext,
		NumberKeyID: number.KeyID, NumberHash: number.Hash, MaskedNumber: a.MaskedNumber,
		Nickname: a.Nickname, FinAccount: a.FinAccount, Status: string(a.Status),
		FailureCode: a.FailureCode, FailureMessage: a.FailureMessage,
		CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt,
	}
	err := db.bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewInsert().Model(row).Exec(ctx); err != nil {
			return err
		}
		if a.Status == paysaga.AccountActive {
			return claimNumber(ctx, tx, a.ID, a.BankCode, number.Hash)
		}
		return nil
	})
	if IsDuplicate(err) || errors.Is(err, errNumberRegistered) {
		return paysaga.Errorf(paysaga.ECONFLICT, "account is already registered")
	}
	if err != nil {
		return fmt.Errorf("create account: %w", err)
	}
	return nil
}

// GetAccount finds an account by ID, fin account included (it never leaves the server: its
// JSON tag hides it); ENOTFOUND when there is none.
func (db *DB) GetAccount(ctx context.Context, id string) (*paysaga.Account, error) {
	var row accountRow
	if err := db.bun.NewSelect().Model(&row).Where("id = ?", id).Limit(1).Scan(ctx); err != nil {
		if isNoRows(err) {
			return nil, paysaga.Errorf(paysaga.ENOTFOUND, "account not found")
		}
		return nil, fmt.Errorf("get account: %w", err)
	}
	return row.account(), nil
}
