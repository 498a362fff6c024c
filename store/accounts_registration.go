package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"paysaga"
)

// The registration of a bank account (FinAccountWorkflow) and the customer's management of
// their accounts. An account is PENDING while the bank issues its fin account, then ACTIVE or
// FAILED; the customer may delete it (DELETED: history kept, no new payments). The holder's
// birth date is kept sealed in account_registrations only while the account is PENDING.

// SealedSecret is a secret sealed by the caller (package seal): ciphertext and key id.
type SealedSecret struct {
	Ciphertext []byte
	KeyID      string
}

type accountRegistrationRow struct {
	bun.BaseModel `bun:"table:account_registrations"`

	AccountID       string    `bun:"account_id,pk"`
	BirthCiphertext []byte    `bun:"birth_ciphertext"`
	BirthKeyID      string    `bun:"birth_key_id"`
	CreatedAt       time.Time `bun:"created_at"`
}

// AccountRegistration is what the registration steps need of a PENDING account: the sealed
// number and birth date, and the bank's registration number once the account was opened.
type AccountRegistration struct {
	Account *paysaga.Account
	Number  SealedSecret
	Birth   SealedSecret
	// Rgno is the bank's registration number; empty until OpenFinAccountDirect answered.
	Rgno string
}

// Who holds a bank account number. A customer has one account row per (bank, number), which
// they register again after a failure or a deletion; any number of customers may have one.
// Only an ACTIVE account — one the bank verified, birth date and all — holds the number: its
// row in account_number_claims (primary key bank code and number hash) is written in the
// transaction that makes it ACTIVE and deleted in the one that deletes it. PENDING, FAILED and
// DELETED rows hold nothing. So:
//   - a stranger who types someone's number with a wrong birth date gets the bank's refusal
//     and blocks nobody, not even while the bank is still answering (PENDING blocks no one:
//     a registration in flight could otherwise be used to hold a number for ten minutes at a
//     time, over and over);
//   - the number is taken by the first registration the bank verifies; a second one verified
//     later (someone who also knows the holder's birth date) ends FAILED with
//     FailureNumberRegistered instead of ACTIVE;
//   - nothing answers "this number is registered here" before the bank has verified the
//     caller: every registration goes to the bank, so a stranger sees exactly what they would
//     see for a number never registered here.

// FailureNumberRegistered is the failure code of a registration the bank verified while the
// same number at the same bank was already ACTIVE for another customer. Only someone the bank
// accepted as the holder can see it.
const FailureNumberRegistered = "number_in_use" // at most 16 bytes (failure_code)

// failureNumberRegisteredMessage is the message stored with FailureNumberRegistered.
const failureNumberRegisteredMessage = "this account is already registered with the service by another customer; if it is yours, contact support"

type accountNumberClaimRow struct {
	bun.BaseModel `bun:"table:account_number_claims"`

	BankCode   string `bun:"bank_code,pk"`
	NumberHash string `bun:"number_hash,pk"`
	AccountID  string `bun:"account_id"`
}

// errNumberRegistered: the claim of an activation found the number held by another account.
var errNumberRegistered = errors.New("store: the account number is held by another ACTIVE account")

// claimNumber records that the account holds its number (it is becoming ACTIVE, in tx). Held
// already by this account: nothing to do; by another: errNumberRegistered.
func claimNumber(ctx context.Context, tx bun.IDB, accountID, bankCode, numberHash string) error {
	var held accountNumberClaimRow
	err := tx.NewSelect().Model(&held).Where("bank_code = ? AND number_hash = ?", bankCode, numberHash).Limit(1).Scan(ctx)
	switch {
	case err == nil && held.AccountID == accountID:
		return nil
	case err == nil:
		return errNumberRegistered
	case !isNoRows(err):
		return err
	}
	_, err = tx.NewInsert().Model(&accountNumberClaimRow{BankCode: bankCode, NumberHash: numberHash, AccountID: accountID}).Exec(ctx)
	if IsDuplicate(err) {
		// Another activation of the same number won the race since the read.
		return errNumberRegistered
	}
	return err
}

// RegisterAccount stores a new account, PENDING, with its sealed number and the holder's sealed
// birth date, in one transaction. When the owner already has an account with the same number at
// the same bank, nothing is written and that account is returned with created false. Other
// customers' accounts with the number are neither seen nor touched: see FailureNumberRegistered.
func (db *DB) RegisterAccount(ctx context.Context, a *paysaga.Account, number SealedAccountNumber, birth SealedSecret) (stored *paysaga.Account, created bool, err error) {
	if a.ID == "" || a.OwnerID == "" || a.BankCode == "" || a.MaskedNumber == "" {
		return nil, false, paysaga.Errorf(paysaga.EINVALID, "an account needs an id, an owner, a bank code and a masked number")
	}
	if number.Hash == "" || len(number.Ciphertext) == 0 || len(birth.Ciphertext) == 0 {
		return nil, false, paysaga.Errorf(paysaga.EINVALID, "an account needs its sealed number and birth date")
	}
	now := db.Now()
	row := &accountRow{
		ID: a.ID, OwnerID: a.OwnerID, BankCode: a.BankCode, NumberCiphertext: number.Ciphertext,
		NumberKeyID: number.KeyID, NumberHash: number.Hash, MaskedNumber: a.MaskedNumber,
		Nickname: a.Nickname, Status: string(paysaga.AccountPending), CreatedAt: now, UpdatedAt: now,
	}
	err = db.retry(ctx, func() error {
		return db.bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			if _, err := tx.NewInsert().Model(row).Exec(ctx); err != nil {
				return err
			}
			_, err := tx.NewInsert().Model(&accountRegistrationRow{
				AccountID: a.ID, BirthCiphertext: birth.Ciphertext, BirthKeyID: birth.KeyID, CreatedAt: now,
			}).Exec(ctx)
			return err
		})
	})
	if err == nil {
		return row.account(), true, nil
	}
	if !IsDuplicate(err) {
		return nil, false, fmt.Errorf("register account %s: %w", a.ID, err)
	}
	existing, gerr := db.OwnerAccountByNumber(ctx, a.OwnerID, a.BankCode, number.Hash)
	if paysaga.ErrorCode(gerr) == paysaga.ENOTFOUND {
		return nil, false, paysaga.Errorf(paysaga.ECONFLICT, "account id %s is taken", a.ID)
	}
	if gerr != nil {
		return nil, false, gerr
	}
	return existing, false, nil
}

// OwnerAccountByNumber finds the owner's account with this number hash at this bank;
// ENOTFOUND when they have none (whoever else may).
func (db *DB) OwnerAccountByNumber(ctx context.Context, owner, bankCode, hash string) (*paysaga.Account, error) {
	var row accountRow
	err := db.bun.NewSelect().Model(&row).
		Where("owner_id = ? AND bank_code = ? AND number_hash = ?", owner, bankCode, hash).Limit(1).Scan(ctx)
	if err != nil {
		if isNoRows(err) {
			return nil, paysaga.Errorf(paysaga.ENOTFOUND, "account not found")
		}
		return nil, fmt.Errorf("find account by number: %w", err)
	}
	return row.account(), nil
}

// RestartAccountRegistration sends a FAILED or DELETED account back to PENDING with a new
// sealed birth date, forgetting the previous registration (Rgno, fin account, failure), so that
// a new FinAccountWorkflow run registers it again. An account already PENDING is returned as is
// (a concurrent restart won); an ACTIVE one is ECONFLICT.
func (db *DB) RestartAccountRegistration(ctx context.Context, id string, birth SealedSecret) (*paysaga.Account, error) {
	if len(birth.Ciphertext) == 0 {
		return nil, paysaga.Errorf(paysaga.EINVALID, "a registration needs the sealed birth date")
	}
	var out *paysaga.Account
	err := db.retry(ctx, func() error {
		return db.bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			now := db.Now()
			res, err := tx.NewUpdate().Model((*accountRow)(nil)).
				Set("status = ?", string(paysaga.AccountPending)).
				Set("rgno = ''").Set("fin_account = ''").
				Set("failure_code = ''").Set("failure_message = ''").
				Set("updated_at = ?", now).
				Where("id = ? AND status IN (?)", id, bun.List([]string{string(paysaga.AccountFailed), string(paysaga.AccountDeleted)})).
				Exec(ctx)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 0 {
				a, err := getAccountTx(ctx, tx, id)
				if err != nil {
					return err
				}
				if a.Status != paysaga.AccountPending {
					return paysaga.Errorf(paysaga.ECONFLICT, "account is %s", a.Status)
				}
				out = a
				return nil
			}
			if _, err := tx.NewDelete().Model((*accountRegistrationRow)(nil)).Where("account_id = ?", id).Exec(ctx); err != nil {
				return err
			}
			if _, err := tx.NewInsert().Model(&accountRegistrationRow{
				AccountID: id, BirthCiphertext: birth.Ciphertext, BirthKeyID: birth.KeyID, CreatedAt: now,
			}).Exec(ctx); err != nil {
				return err
			}
			out, err = getAccountTx(ctx, tx, id)
			return err
		})
	})
	if err != nil {
		return nil, accountErr(err, "restart registration of account "+id)
	}
	return out, nil
}

// AccountRegistration returns what the registration steps need of a PENDING account. An
// account in another status is ECONFLICT; a PENDING one without its sealed birth date (a
// manual edit) is EINVALID.
func (db *DB) AccountRegistration(ctx context.Context, id string) (*AccountRegistration, error) {
	var row accountRow
	if err := db.bun.NewSelect().Model(&row).Where("id = ?", id).Limit(1).Scan(ctx); err != nil {
		if isNoRows(err) {
			return nil, paysaga.Errorf(paysaga.ENOTFOUND, "account not found")
		}
		return nil, fmt.Errorf("get account registration %s: %w", id, err)
	}
	if row.Status != string(paysaga.AccountPending) {
		return nil, paysaga.Errorf(paysaga.ECONFLICT, "account %s is %s, not being registered", id, row.Status)
	}
	var reg accountRegistrationRow
	if err := db.bun.NewSelect().Model(&reg).Where("account_id = ?", id).Limit(1).Scan(ctx); err != nil {
		if isNoRows(err) {
			return nil, paysaga.Errorf(paysaga.EINVALID, "account %s has no registration data", id)
		}
		return nil, fmt.Errorf("get account registration %s: %w", id, err)
	}
	return &AccountRegistration{
		Account: row.account(),
		Number:  SealedSecret{Ciphertext: row.NumberCiphertext, KeyID: row.NumberKeyID},
		Birth:   SealedSecret{Ciphertext: reg.BirthCiphertext, KeyID: reg.BirthKeyID},
		Rgno:    row.Rgno,
	}, nil
}

// SetAccountRgno records the bank's registration number of a PENDING account (idempotent).
func (db *DB) SetAccountRgno(ctx context.Context, id, rgno string) error {
	if rgno == "" {
		return paysaga.Errorf(paysaga.EINVALID, "empty registration number")
	}
	res, err := db.bun.NewUpdate().Model((*accountRow)(nil)).
		Set("rgno = ?", rgno).Set("updated_at = ?", db.Now()).
		Where("id = ? AND status = ?", id, string(paysaga.AccountPending)).Exec(ctx)
	if err != nil {
		return fmt.Errorf("set rgno of account %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		a, err := db.GetAccount(ctx, id)
		if err != nil {
			return err
		}
		if a.Status != paysaga.AccountPending {
			return paysaga.Errorf(paysaga.ECONFLICT, "account %s is %s", id, a.Status)
		}
	}
	return nil
}

// ActivateAccount stores the issued fin account of a PENDING account, makes it ACTIVE (the
// account now holds its number) and forgets the holder's birth date, in one transaction.
// Idempotent on an account already ACTIVE; any other status is ECONFLICT. When another account
// is ACTIVE with the same number at the same bank, the account becomes FAILED with
// FailureNumberRegistered instead (returned without error: the registration has ended).
func (db *DB) ActivateAccount(ctx context.Context, id, finAccount string) (*paysaga.Account, error) {
	if finAccount == "" {
		return nil, paysaga.Errorf(paysaga.EINVALID, "empty fin account")
	}
	a, err := db.finishRegistration(ctx, id, paysaga.AccountActive, func(q *bun.UpdateQuery) *bun.UpdateQuery {
		return q.Set("fin_account = ?", finAccount).Set("failure_code = ''").Set("failure_message = ''")
	})
	if errors.Is(err, errNumberRegistered) {
		return db.FailAccountRegistration(ctx, id, FailureNumberRegistered, failureNumberRegisteredMessage)
	}
	return a, err
}

// FailAccountRegistration makes a PENDING account FAILED with the bank's code and message (or
// ours) and forgets the holder's birth date. Idempotent on an account already FAILED; any other
// status is ECONFLICT.
func (db *DB) FailAccountRegistration(ctx context.Context, id, code, message string) (*paysaga.Account, error) {
	return db.finishRegistration(ctx, id, paysaga.AccountFailed, func(q *bun.UpdateQuery) *bun.UpdateQuery {
		return q.Set("failure_code = ?", cutUTF8(code, 16)).Set("failure_message = ?", cutUTF8(message, 1000))
	})
}

func (db *DB) finishRegistration(ctx context.Context, id string, to paysaga.AccountStatus, set func(*bun.UpdateQuery) *bun.UpdateQuery) (*paysaga.Account, error) {
	var out *paysaga.Account
	err := db.retry(ctx, func() error {
		return db.bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			q := tx.NewUpdate().Model((*accountRow)(nil)).
				Set("status = ?", string(to)).Set("updated_at = ?", db.Now()).
				Where("id = ? AND status = ?", id, string(paysaga.AccountPending))
			res, err := set(q).Exec(ctx)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 0 {
				a, err := getAccountTx(ctx, tx, id)
				if err != nil {
					return err
				}
				if a.Status != to {
					return paysaga.Errorf(paysaga.ECONFLICT, "account %s is %s", id, a.Status)
				}
			} else if to == paysaga.AccountActive {
				var row accountRow
				if err := tx.NewSelect().Model(&row).Column("bank_code", "number_hash").Where("id = ?", id).Scan(ctx); err != nil {
					return err
				}
				if err := claimNumber(ctx, tx, id, row.BankCode, row.NumberHash); err != nil {
					return err // the transaction is rolled back: the account stays PENDING
				}
			}
			if _, err := tx.NewDelete().Model((*accountRegistrationRow)(nil)).Where("account_id = ?", id).Exec(ctx); err != nil {
				return err
			}
			out, err = getAccountTx(ctx, tx, id)
			return err
		})
	})
	if err != nil {
		return nil, accountErr(err, fmt.Sprintf("move account %s to %s", id, to))
	}
	return out, nil
}

// AccountFilter selects a customer's accounts. DELETED accounts are listed only when Status
// asks for them.
type AccountFilter struct {
	OwnerID       string
	Status        paysaga.AccountStatus
	Limit         int
	StartingAfter string
}

// AccountPage is one page of accounts, newest first.
type AccountPage struct {
	Accounts []*paysaga.Account
	HasMore  bool
}

// ListAccounts returns an owner's accounts newest first, a page at a time (see ListPayments).
func (db *DB) ListAccounts(ctx context.Context, f AccountFilter) (*AccountPage, error) {
	if f.OwnerID == "" {
		return nil, paysaga.Errorf(paysaga.EINVALID, "an owner is required")
	}
	limit, err := pageLimit(f.Limit)
	if err != nil {
		return nil, err
	}
	switch f.Status {
	case "", paysaga.AccountPending, paysaga.AccountActive, paysaga.AccountFailed, paysaga.AccountDeleted:
	default:
		return nil, paysaga.Errorf(paysaga.EINVALID, "unknown account status %q", f.Status)
	}
	var rows []accountRow
	q := db.bun.NewSelect().Model(&rows).Where("owner_id = ?", f.OwnerID)
	if f.Status != "" {
		q = q.Where("status = ?", string(f.Status))
	} else {
		q = q.Where("status <> ?", string(paysaga.AccountDeleted))
	}
	if f.StartingAfter != "" {
		var err error
		q, err = newestFirstAfter(ctx, q, db.bun.NewSelect().Model((*accountRow)(nil)).
			Where("id = ? AND owner_id = ?", f.StartingAfter, f.OwnerID), "an account", "accounts")
		if err != nil {
			return nil, err
		}
	}
	if err := q.Order("created_at DESC", "id DESC").Limit(int64(limit + 1)).Scan(ctx); err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	page := &AccountPage{Accounts: make([]*paysaga.Account, 0, len(rows))}
	if len(rows) > limit {
		page.HasMore = true
		rows = rows[:limit]
	}
	for i := range rows {
		page.Accounts = append(page.Accounts, rows[i].account())
	}
	return page, nil
}

// SetAccountNickname changes an account's nickname; a DELETED account is ECONFLICT.
func (db *DB) SetAccountNickname(ctx context.Context, id, nickname string) (*paysaga.Account, error) {
	res, err := db.bun.NewUpdate().Model((*accountRow)(nil)).
		Set("nickname = ?", nickname).Set("updated_at = ?", db.Now()).
		Where("id = ? AND status <> ?", id, string(paysaga.AccountDeleted)).Exec(ctx)
	if err != nil {
		return nil, fmt.Errorf("set nickname of account %s: %w", id, err)
	}
	a, err := db.GetAccount(ctx, id)
	if err != nil {
		return nil, err
	}
	if n, _ := res.RowsAffected(); n == 0 && a.Status == paysaga.AccountDeleted {
		return nil, paysaga.Errorf(paysaga.ECONFLICT, "account is deleted")
	}
	return a, nil
}

// DeleteAccount makes an account DELETED: it keeps its history, and payments refuse it (they
// need ACTIVE). Idempotent on a DELETED account; a PENDING one (the bank is registering it) is
// ECONFLICT.
// Deleting releases the number (see FailureNumberRegistered).
func (db *DB) DeleteAccount(ctx context.Context, id string) (*paysaga.Account, error) {
	var changed int64
	err := db.retry(ctx, func() error {
		return db.bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			res, err := tx.NewUpdate().Model((*accountRow)(nil)).
				Set("status = ?", string(paysaga.AccountDeleted)).Set("updated_at = ?", db.Now()).
				Where("id = ? AND status IN (?)", id, bun.List([]string{string(paysaga.AccountActive), string(paysaga.AccountFailed)})).
				Exec(ctx)
			if err != nil {
				return err
			}
			changed, _ = res.RowsAffected()
			_, err = tx.NewDelete().Model((*accountNumberClaimRow)(nil)).Where("account_id = ?", id).Exec(ctx)
			return err
		})
	})
	if err != nil {
		return nil, fmt.Errorf("delete account %s: %w", id, err)
	}
	a, err := db.GetAccount(ctx, id)
	if err != nil {
		return nil, err
	}
	if changed == 0 && a.Status != paysaga.AccountDeleted {
		return nil, paysaga.Errorf(paysaga.ECONFLICT, "account is %s; wait until its registration ends", a.Status)
	}
	return a, nil
}

func getAccountTx(ctx context.Context, idb bun.IDB, id string) (*paysaga.Account, error) {
	var row accountRow
	if err := idb.NewSelect().Model(&row).Where("id = ?", id).Limit(1).Scan(ctx); err != nil {
		if isNoRows(err) {
			return nil, paysaga.Errorf(paysaga.ENOTFOUND, "account not found")
		}
		return nil, fmt.Errorf("get account %s: %w", id, err)
	}
	return row.account(), nil
}

// accountErr keeps domain errors as they are (their code is the answer) and adds context to
// the others.
func accountErr(err error, what string) error {
	if paysaga.ErrorCode(err) != paysaga.EINTERNAL {
		return err
	}
	return fmt.Errorf("%s: %w", what, err)
}

// cutUTF8 cuts s to at most n bytes without splitting a UTF-8 character.
func cutUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xc0 == 0x80 {
		n--
	}
	return s[:n]
}
