package store

import (
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"paysaga"
)

type transferRow struct {
	bun.BaseModel `bun:"table:bank_transfers"`

	ID        string    `bun:"id,pk"`
	PaymentID string    `bun:"payment_id"`
	RefundID  string    `bun:"refund_id,nullzero"`
	Kind      string    `bun:"kind"`
	Amount    int64     `bun:"amount"`
	Tsymd     string    `bun:"tsymd"`
	IsTuno    string    `bun:"is_tuno"`
	State     string    `bun:"state"`
	Rpcd      string    `bun:"rpcd"`
	Rsms      string    `bun:"rsms"`
	CreatedAt time.Time `bun:"created_at"`
	UpdatedAt time.Time `bun:"updated_at"`
}

func (r *transferRow) transfer() *paysaga.Transfer {
	return &paysaga.Transfer{
		ID: r.ID, PaymentID: r.PaymentID, RefundID: r.RefundID, Kind: paysaga.TransferKind(r.Kind),
		Amount: r.Amount, Tsymd: r.Tsymd, IsTuno: r.IsTuno, State: paysaga.TransferState(r.State),
		Rpcd: r.Rpcd, Rsms: r.Rsms, CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
	}
}

// CreateTransfer records a bank call before it is sent, idempotently on its ID: when a
// transfer with this ID exists already it is returned with created false (whatever its state,
// which tells the caller what became of it). Another transfer with the same (Tsymd, IsTuno) is
// ECONFLICT: an IsTuno is never used twice. An empty state is SENT; zero times are now.
func (db *DB) CreateTransfer(ctx context.Context, t *paysaga.Transfer) (stored *paysaga.Transfer, created bool, err error) {
	return createTransfer(ctx, db.bun, db.Now(), t)
}

// CreateRefundTransfer records a credit of a refund before it is sent (see CreateTransfer), but
// only while the refund is PENDING and none of its other credits may have moved money, under
// the payment's row lock — the lock SettleRefund takes to give a reservation back. So a
// refund settled FAILED (its amount free for another refund) never gets a credit afterwards,
// and a refund with a credit in flight is never settled FAILED: the two cannot interleave.
// Refused: ECONFLICT. An existing transfer with this ID is returned with created false.
func (db *DB) CreateRefundTransfer(ctx context.Context, t *paysaga.Transfer) (stored *paysaga.Transfer, created bool, err error) {
	if t.RefundID == "" {
		return nil, false, paysaga.Errorf(paysaga.EINVALID, "a refund's transfer needs its refund")
	}
	err = db.retry(ctx, func() error {
		return db.bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			if existing, gerr := getTransfer(ctx, tx, t.ID); gerr == nil {
				stored, created = existing, false
				return nil
			} else if paysaga.ErrorCode(gerr) != paysaga.ENOTFOUND {
				return gerr
			}
			if _, err := lockPayment(ctx, tx, db.dialect, t.PaymentID); err != nil {
				return err
			}
			// The refund and its credits as they are now, not as the transaction's snapshot
			// saw them before it waited for the lock (see refundCredits).
			r, err := lockRefund(ctx, tx, db.dialect, t.RefundID)
			if err != nil {
				return err
			}
			if r.PaymentID != t.PaymentID || r.Amount != t.Amount {
				return paysaga.Errorf(paysaga.ECONFLICT, "refund %s has other details than its transfer %s", r.ID, t.ID)
			}
			if r.Status != paysaga.RefundPending {
				return paysaga.Errorf(paysaga.ECONFLICT, "refund %s is %s, not PENDING: no credit is sent", r.ID, r.Status)
			}
			if err := noCreditInDoubt(ctx, tx, db.dialect, r.ID); err != nil {
				return err
			}
			stored, created, err = createTransfer(ctx, tx, db.Now(), t)
			return err
		})
	})
	if err != nil {
		return nil, false, err
	}
	return stored, created, nil
}

// noCreditInDoubt is ECONFLICT when a credit of the refund executed or may have (SENT,
// UNKNOWN, SUCCEEDED). Called under the payment's row lock, it reads the credits as they are now
// (refundCredits).
func noCreditInDoubt(ctx context.Context, tx bun.Tx, dialect, refundID string) error {
	rows, err := refundCredits(ctx, tx, dialect, refundID)
	if err != nil {
		return err
	}
	for _, tr := range rows {
		switch paysaga.TransferState(tr.State) {
		case paysaga.TransferSent, paysaga.TransferUnknown, paysaga.TransferSucceeded:
			return paysaga.Errorf(paysaga.ECONFLICT, "credit %s of refund %s is %s", tr.ID, refundID, tr.State)
		}
	}
	return nil
}

func createTransfer(ctx context.Context, idb bun.IDB, now time.Time, t *paysaga.Transfer) (stored *paysaga.Transfer, created bool, err error) {
	if t.ID == "" || t.PaymentID == "" || t.Kind == "" {
		return nil, false, paysaga.Errorf(paysaga.EINVALID, "a transfer needs an id, a payment and a kind")
	}
	if len(t.Tsymd) != 8 || !allDigits(t.Tsymd) || t.IsTuno == "" || len(t.IsTuno) > 20 || !allDigits(t.IsTuno) {
		return nil, false, paysaga.Errorf(paysaga.EINVALID, "a transfer needs a Tsymd (8 digits) and an IsTuno (1 to 20 digits)")
	}
	if err := paysaga.ValidateAmount(t.Amount); err != nil {
		return nil, false, err
	}
	row := &transferRow{
		ID: t.ID, PaymentID: t.PaymentID, RefundID: t.RefundID, Kind: string(t.Kind), Amount: t.Amount,
		Tsymd: t.Tsymd, IsTuno: t.IsTuno, State: string(t.State), Rpcd: t.Rpcd, Rsms: t.Rsms,
		CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt,
	}
	if row.State == "" {
		row.State = string(paysaga.TransferSent)
	}
	if row.CreatedAt.IsZero() {
		row.CreatedAt = now
	}
	row.CreatedAt = row.CreatedAt.UTC().Truncate(time.Microsecond)
	if row.UpdatedAt.IsZero() {
		row.UpdatedAt = row.CreatedAt
	}
	row.UpdatedAt = row.UpdatedAt.UTC().Truncate(time.Microsecond)
	if _, err := idb.NewInsert().Model(row).Exec(ctx); err != nil {
		if !IsDuplicate(err) {
			return nil, false, fmt.Errorf("create transfer %s: %w", t.ID, err)
		}
		existing, gerr := getTransfer(ctx, idb, t.ID)
		if paysaga.ErrorCode(gerr) == paysaga.ENOTFOUND {
			return nil, false, paysaga.Errorf(paysaga.ECONFLICT, "IsTuno %s of %s is already used", t.IsTuno, t.Tsymd)
		}
		if gerr != nil {
			return nil, false, gerr
		}
		if existing.PaymentID != t.PaymentID || existing.Amount != t.Amount || existing.Kind != t.Kind {
			return nil, false, paysaga.Errorf(paysaga.ECONFLICT, "transfer %s exists with other details", t.ID)
		}
		return existing, false, nil
	}
	return row.transfer(), true, nil
}

// GetTransfer finds a transfer by ID; ENOTFOUND when there is none.
func (db *DB) GetTransfer(ctx context.Context, id string) (*paysaga.Transfer, error) {
	return getTransfer(ctx, db.bun, id)
}

func getTransfer(ctx context.Context, idb bun.IDB, id string) (*paysaga.Transfer, error) {
	var row transferRow
	if err := idb.NewSelect().Model(&row).Where("id = ?", id).Limit(1).Scan(ctx); err != nil {
		if isNoRows(err) {
			return nil, paysaga.Errorf(paysaga.ENOTFOUND, "transfer not found")
		}
		return nil, fmt.Errorf("get transfer %s: %w", id, err)
	}
	return row.transfer(), nil
}

// ListTransfersByPayment returns the transfers of a payment, oldest first.
func (db *DB) ListTransfersByPayment(ctx context.Context, paymentID string) ([]*paysaga.Transfer, error) {
	return db.listTransfers(ctx, "payment_id = ?", paymentID)
}

// ListTransfersByTsymd returns the transfers sent on a transmission day, oldest first: what
// reconciliation compares with the bank's transaction history.
func (db *DB) ListTransfersByTsymd(ctx context.Context, tsymd string) ([]*paysaga.Transfer, error) {
	return db.listTransfers(ctx, "tsymd = ?", tsymd)
}

func (db *DB) listTransfers(ctx context.Context, where string, arg any) ([]*paysaga.Transfer, error) {
	var rows []transferRow
	if err := db.bun.NewSelect().Model(&rows).Where(where, arg).Order("created_at ASC", "id ASC").Scan(ctx); err != nil {
		return nil, fmt.Errorf("list transfers: %w", err)
	}
	out := make([]*paysaga.Transfer, 0, len(rows))
	for i := range rows {
		out = append(out, rows[i].transfer())
	}
	return out, nil
}

// TransferUpdate is what the bank said (or what a check or an operator found out).
type TransferUpdate struct {
	State paysaga.TransferState
	Rpcd  string
	Rsms  string
}

// UpdateTransfer sets a transfer's state and the bank's answer. SENT and UNKNOWN transfers may
// move anywhere; a final one (SUCCEEDED, DECLINED, NOT_EXECUTED) only to the state it has
// (idempotent, the answer kept), anything else being ECONFLICT: what the bank did is never
// rewritten. A missing transfer is ENOTFOUND.
func (db *DB) UpdateTransfer(ctx context.Context, id string, u TransferUpdate) error {
	return updateTransfer(ctx, db.bun, db.Now(), id, u)
}

// updateTransfer is one conditional UPDATE; the row is read only when it did not move, to tell
// "there already" from a conflict.
func updateTransfer(ctx context.Context, idb bun.IDB, now time.Time, id string, u TransferUpdate) error {
	switch u.State {
	case paysaga.TransferSent, paysaga.TransferSucceeded, paysaga.TransferDeclined, paysaga.TransferUnknown, paysaga.TransferNotExecuted:
	default:
		return paysaga.Errorf(paysaga.EINVALID, "unknown transfer state %q", u.State)
	}
	res, err := idb.NewUpdate().Model((*transferRow)(nil)).
		Set("state = ?", string(u.State)).
		Set("rpcd = ?", u.Rpcd).
		Set("rsms = ?", u.Rsms).
		Set("updated_at = ?", now).
		Where("id = ?", id).
		Where("state IN (?)", bun.List([]string{string(paysaga.TransferSent), string(paysaga.TransferUnknown)})).
		Exec(ctx)
	if err != nil {
		return fmt.Errorf("update transfer %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return nil
	}
	t, err := getTransfer(ctx, idb, id)
	if err != nil {
		return err
	}
	if t.State == u.State {
		return nil
	}
	return paysaga.Errorf(paysaga.ECONFLICT, "transfer %s is %s and cannot become %s", id, t.State, u.State)
}
