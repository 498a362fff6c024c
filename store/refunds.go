package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"paysaga"
)

// Refunds. The rules are the domain's (paysaga.Payment.ReserveRefund and RefundSucceeded,
// paysaga.Refund.Settle); this file applies them atomically. Every transaction that changes a
// refund or what is reserved against its payment reads the payment's row under its row lock
// first (lockPayment: SELECT … FOR UPDATE on MySQL; on SQLite the transaction holds the write
// lock from its first statement), then the refund's, computes the change with the domain's
// functions and writes it, all in one transaction: concurrent refunds of one payment take
// turns on the payment's row and can never give back more than was paid (the table's CHECK is
// the safety net under it). Reserving adds a refund's amount to
// payments.reserved_refund_amount as it creates the refund PENDING; settling moves it to the
// refunded amount with the payment's new status (SUCCEEDED) or gives it back (FAILED). The
// payment's PARTIALLY_REFUNDED, REFUNDED and CANCELED are written here and nowhere else
// (paysaga.PaymentStatus.SetByRefund). Payment row first, then the refund's, always: two
// transactions never wait on each other in opposite orders.

type refundRow struct {
	bun.BaseModel `bun:"table:refunds"`

	ID                    string    `bun:"id,pk"`
	PaymentID             string    `bun:"payment_id"`
	Amount                int64     `bun:"amount"`
	Reason                string    `bun:"reason"`
	Status                string    `bun:"status"`
	DestinationKind       string    `bun:"destination_kind"`
	DestinationBankCode   string    `bun:"destination_bank_code"`
	DestinationCiphertext []byte    `bun:"destination_ciphertext"`
	DestinationKeyID      string    `bun:"destination_key_id"`
	DestinationMasked     string    `bun:"destination_masked"`
	FailureCode           string    `bun:"failure_code"`
	FailureMessage        string    `bun:"failure_message"`
	CreatedBy             string    `bun:"created_by"`
	CreatedAt             time.Time `bun:"created_at"`
	UpdatedAt             time.Time `bun:"updated_at"`
}

func (r *refundRow) refund() *paysaga.Refund {
	return &paysaga.Refund{
		ID: r.ID, PaymentID: r.PaymentID, Amount: r.Amount, Reason: r.Reason,
		Status: paysaga.RefundStatus(r.Status),
		Destination: paysaga.RefundDestination{
			Kind: paysaga.DestinationKind(r.DestinationKind), BankCode: r.DestinationBankCode,
			MaskedNumber: r.DestinationMasked,
		},
		FailureCode: r.FailureCode, FailureMessage: r.FailureMessage, CreatedBy: r.CreatedBy,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
	}
}

type refundDestinationRow struct {
	bun.BaseModel `bun:"table:refund_destinations"`

	RefundID   string    `bun:"refund_id,pk"`
	Kind       string    `bun:"kind"`
	BankCode   string    `bun:"bank_code"`
	Ciphertext []byte    `bun:"ciphertext"`
	KeyID      string    `bun:"key_id"`
	Masked     string    `bun:"masked"`
	CreatedAt  time.Time `bun:"created_at"`
}

// SealedDestination is an account typed in for a refund: the bank, the masked number for
// display, and the number itself sealed by the caller (package seal).
type SealedDestination struct {
	Kind     paysaga.DestinationKind
	BankCode string
	Masked   string
	Sealed   SealedSecret
}

// SaveRefundDestination keeps the sealed destination of a refund that is about to start, so
// that the workflow's first step finds it (the number never travels through the workflow).
// Saving again for the same refund keeps the first one; a different bank or number under the
// same refund is ECONFLICT.
func (db *DB) SaveRefundDestination(ctx context.Context, refundID string, d SealedDestination) error {
	if refundID == "" || len(d.Sealed.Ciphertext) == 0 || d.BankCode == "" || d.Masked == "" {
		return paysaga.Errorf(paysaga.EINVALID, "a refund destination needs a refund, a bank code and a sealed number")
	}
	if d.Kind != paysaga.DestinationAccountNumber && d.Kind != paysaga.DestinationOtherBank {
		return paysaga.Errorf(paysaga.EINVALID, "a typed-in destination is %q or %q", paysaga.DestinationAccountNumber, paysaga.DestinationOtherBank)
	}
	row := &refundDestinationRow{RefundID: refundID, Kind: string(d.Kind), BankCode: d.BankCode,
		Ciphertext: d.Sealed.Ciphertext, KeyID: d.Sealed.KeyID, Masked: d.Masked, CreatedAt: db.Now()}
	if _, err := db.bun.NewInsert().Model(row).Exec(ctx); err != nil {
		if !IsDuplicate(err) {
			return fmt.Errorf("save refund destination %s: %w", refundID, err)
		}
		var existing refundDestinationRow
		if err := db.bun.NewSelect().Model(&existing).Where("refund_id = ?", refundID).Limit(1).Scan(ctx); err != nil {
			return fmt.Errorf("save refund destination %s: %w", refundID, err)
		}
		if existing.Kind != row.Kind || existing.BankCode != row.BankCode || existing.Masked != row.Masked {
			return paysaga.Errorf(paysaga.ECONFLICT, "refund %s has another destination", refundID)
		}
	}
	return nil
}

// RefundDestinationOf returns where a refund's money goes; for a typed-in account, with its
// sealed number (Sealed is empty for the payment's own account).
func (db *DB) RefundDestinationOf(ctx context.Context, refundID string) (*SealedDestination, error) {
	var row refundRow
	if err := db.bun.NewSelect().Model(&row).Where("id = ?", refundID).Limit(1).Scan(ctx); err != nil {
		if isNoRows(err) {
			return nil, paysaga.Errorf(paysaga.ENOTFOUND, "refund not found")
		}
		return nil, fmt.Errorf("get refund destination %s: %w", refundID, err)
	}
	return &SealedDestination{
		Kind: paysaga.DestinationKind(row.DestinationKind), BankCode: row.DestinationBankCode, Masked: row.DestinationMasked,
		Sealed: SealedSecret{Ciphertext: row.DestinationCiphertext, KeyID: row.DestinationKeyID},
	}, nil
}

// RefundReservation asks for a refund's amount to be reserved against its payment.
type RefundReservation struct {
	// Refund is the refund to create: ID, PaymentID, Amount, Reason, CreatedBy (CreatedAt: now
	// when zero). Its destination is the saved one (SaveRefundDestination), else the payment's
	// own account.
	Refund paysaga.Refund
	// Replay reserves again for a FAILED refund (an operator's replay): it becomes PENDING.
	Replay bool
	// Cancellation reserves against an AUTHORIZED payment (a manual-capture payment being
	// canceled); other refunds need a SUCCEEDED or PARTIALLY_REFUNDED one.
	Cancellation bool
	// Events are appended to the payment's history in the same transaction.
	Events []paysaga.PaymentEvent
}

// ReserveRefund creates a refund PENDING with its amount reserved against the payment, in one
// transaction, or refuses with ECONFLICT (the payment cannot be refunded, or less than the
// amount is left to refund; the message says how much is left) or ENOTFOUND (no such
// payment). Nothing is written when it refuses.
//
// It is idempotent: a refund that exists already is returned as it is, whatever its status
// (a retried step); with Replay, a FAILED refund is reserved again and becomes PENDING, a
// PENDING or UNKNOWN one is returned as it is, and a SUCCEEDED one is ECONFLICT.
func (db *DB) ReserveRefund(ctx context.Context, r RefundReservation) (*paysaga.Refund, error) {
	ref := r.Refund
	if ref.ID == "" || ref.PaymentID == "" || ref.CreatedBy == "" {
		return nil, paysaga.Errorf(paysaga.EINVALID, "a refund needs an id, a payment and its author")
	}
	if err := paysaga.ValidateAmount(ref.Amount); err != nil {
		return nil, err
	}
	var (
		out     *paysaga.Refund
		refusal error
	)
	err := db.retry(ctx, func() error {
		refusal = nil
		return db.bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			now := db.Now()
			events := r.Events
			existing, err := getRefund(ctx, tx, ref.ID)
			switch {
			case paysaga.ErrorCode(err) == paysaga.ENOTFOUND:
				if r.Replay {
					return err
				}
			case err != nil:
				return err
			case existing.PaymentID != ref.PaymentID || existing.Amount != ref.Amount:
				return paysaga.Errorf(paysaga.ECONFLICT, "refund %s exists with other details", ref.ID)
			case existing.Status == paysaga.RefundFailed && existing.FailureCode == RefundRefused:
				// Refused when it was asked for: the same answer again, and never a replay (it
				// was not a refund that failed, it was a request that was not granted).
				refusal = paysaga.Errorf(paysaga.ECONFLICT, "%s", existing.FailureMessage)
				return nil
			case !r.Replay || existing.Status == paysaga.RefundPending || existing.Status == paysaga.RefundUnknown:
				out = existing
				return nil
			case !existing.Status.CanTransition(paysaga.RefundPending):
				// Only a FAILED refund is replayed; one that succeeded never is.
				return paysaga.Errorf(paysaga.ECONFLICT, "refund %s already succeeded", ref.ID)
			}

			if err := reserve(ctx, tx, db.dialect, now, ref.PaymentID, ref.Amount, r.Cancellation); err != nil {
				if existing != nil || r.Cancellation || paysaga.ErrorCode(err) != paysaga.ECONFLICT {
					// A replay's refusal leaves the refund as it is; a cancellation's refund
					// is the payment workflow's own, asked again under the same ID.
					return err
				}
				// Nothing is reserved, but the refund the client was answered about is readable
				// at its URL with why it was refused.
				if err := recordRefusal(ctx, tx, now, ref, events, paysaga.ErrorMessage(err)); err != nil {
					return err
				}
				refusal = err
				return nil
			}
			if existing != nil {
				// A replay: FAILED → PENDING, conditional so that two replays cannot both pass.
				res, err := tx.NewUpdate().Model((*refundRow)(nil)).
					Set("status = ?", string(paysaga.RefundPending)).
					Set("failure_code = ''").Set("failure_message = ''").
					Set("updated_at = ?", now).
					Where("id = ?", ref.ID).Where("status = ?", string(paysaga.RefundFailed)).
					Exec(ctx)
				if err != nil {
					return fmt.Errorf("replay refund %s: %w", ref.ID, err)
				}
				if n, _ := res.RowsAffected(); n != 1 {
					return paysaga.Errorf(paysaga.ECONFLICT, "refund %s is being replayed already", ref.ID)
				}
			} else {
				typed, err := insertRefund(ctx, tx, now, &ref)
				if err != nil {
					return err
				}
				if typed != nil {
					events = typedInHistory(events, ref, typed)
				}
			}
			if err := appendPaymentEvents(ctx, tx, now, ref.PaymentID, events); err != nil {
				return err
			}
			out, err = getRefund(ctx, tx, ref.ID)
			return err
		})
	})
	if err != nil {
		return nil, err
	}
	if refusal != nil {
		return nil, refusal
	}
	return out, nil
}

// RefundRefused is the failure code of a refund that was refused when it was asked for (more
// than is left to refund, a payment that cannot be refunded): FAILED from the start, nothing
// reserved, nothing sent.
const RefundRefused = "refused"

// EventRefundRefused is the history event of a refused refund.
const EventRefundRefused = "refund.refused"

// recordRefusal writes a refused refund FAILED (failure code RefundRefused, the refusal as its
// message) with its history: events as given, then a refund.refused event.
func recordRefusal(ctx context.Context, tx bun.Tx, now time.Time, ref paysaga.Refund, events []paysaga.PaymentEvent, why string) error {
	typed, err := insertRefund(ctx, tx, now, &ref)
	if err != nil {
		return err
	}
	if typed != nil {
		events = typedInHistory(events, ref, typed)
	}
	why = truncateRunes(why, maxEventReason)
	if _, err := tx.NewUpdate().Model((*refundRow)(nil)).
		Set("status = ?", string(paysaga.RefundFailed)).
		Set("failure_code = ?", RefundRefused).
		Set("failure_message = ?", why).
		Where("id = ?", ref.ID).Exec(ctx); err != nil {
		return fmt.Errorf("record refused refund %s: %w", ref.ID, err)
	}
	events = append(append([]paysaga.PaymentEvent(nil), events...), paysaga.PaymentEvent{
		ID:        paysaga.PrefixEvent + strings.TrimPrefix(ref.ID, paysaga.PrefixRefund) + "_refused",
		PaymentID: ref.PaymentID, RefundID: ref.ID, Type: EventRefundRefused,
		// A microsecond after the request's own events, which default to now: listed after them.
		Actor: ref.CreatedBy, Reason: why, CreatedAt: now.Add(time.Microsecond),
	})
	return appendPaymentEvents(ctx, tx, now, ref.PaymentID, events)
}

// reserve adds amount to the payment's reserved refunds, under the payment's row lock, when
// the domain allows it (paysaga.Payment.ReserveRefund), and says why when it does not.
func reserve(ctx context.Context, tx bun.Tx, dialect string, now time.Time, paymentID string, amount int64, cancellation bool) error {
	row, err := lockPayment(ctx, tx, dialect, paymentID)
	if err != nil {
		return err
	}
	reserved, err := row.payment().ReserveRefund(row.ReservedRefundAmount, amount, cancellation)
	if err != nil {
		return err
	}
	return writeRefundAmounts(ctx, tx, now, row, row.Status, row.RefundedAmount, reserved)
}

// writeRefundAmounts writes a payment's status and refund amounts as computed from row, read
// under its lock in this transaction (the version check is a safety net: it cannot fail while
// the lock is held).
func writeRefundAmounts(ctx context.Context, tx bun.Tx, now time.Time, row *paymentRow, status string, refunded, reserved int64) error {
	res, err := tx.NewUpdate().Model((*paymentRow)(nil)).
		Set("status = ?", status).
		Set("refunded_amount = ?", refunded).
		Set("reserved_refund_amount = ?", reserved).
		Set("version = version + 1").
		Set("updated_at = ?", now).
		Where("id = ?", row.ID).
		Where("version = ?", row.Version).
		Exec(ctx)
	if err != nil {
		return fmt.Errorf("refund amounts of payment %s: %w", row.ID, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("refund amounts of payment %s: changed under its row lock", row.ID)
	}
	return nil
}

// typedInHistory says in the history written with a refund to a typed-in account where the
// money goes (masked) and who chose it: the refund's events get it appended to their reason.
func typedInHistory(events []paysaga.PaymentEvent, ref paysaga.Refund, d *refundDestinationRow) []paysaga.PaymentEvent {
	note := fmt.Sprintf("to a typed-in account %s at bank %s, chosen by %s", d.Masked, d.BankCode, ref.CreatedBy)
	out := make([]paysaga.PaymentEvent, len(events))
	for i, e := range events {
		if e.RefundID == ref.ID {
			if e.Reason == "" {
				e.Reason = "refund " + note
			} else {
				e.Reason = truncateRunes(e.Reason+" — refund "+note, maxEventReason)
			}
		}
		out[i] = e
	}
	return out
}

// maxEventReason is payment_events.reason's length, in characters.
const maxEventReason = 1000

func truncateRunes(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n])
	}
	return s
}

// insertRefund inserts a refund PENDING, to its saved typed-in destination (returned) or else
// to the payment's own account (nil).
func insertRefund(ctx context.Context, tx bun.Tx, now time.Time, ref *paysaga.Refund) (*refundDestinationRow, error) {
	row := &refundRow{
		ID: ref.ID, PaymentID: ref.PaymentID, Amount: ref.Amount, Reason: ref.Reason,
		Status: string(paysaga.RefundPending), DestinationKind: string(paysaga.DestinationFinAccount),
		CreatedBy: ref.CreatedBy, CreatedAt: ref.CreatedAt,
	}
	if row.CreatedAt.IsZero() {
		row.CreatedAt = now
	}
	row.CreatedAt = row.CreatedAt.UTC().Truncate(time.Microsecond)
	row.UpdatedAt = now
	var (
		d     refundDestinationRow
		typed *refundDestinationRow
	)
	err := tx.NewSelect().Model(&d).Where("refund_id = ?", ref.ID).Limit(1).Scan(ctx)
	switch {
	case err == nil:
		row.DestinationKind, row.DestinationBankCode, row.DestinationMasked = d.Kind, d.BankCode, d.Masked
		row.DestinationCiphertext, row.DestinationKeyID = d.Ciphertext, d.KeyID
		typed = &d
	case isNoRows(err):
		// The payment's own account: shown by its masked number.
		var bank, masked string
		if err := tx.NewSelect().TableExpr("accounts AS a").ColumnExpr("a.bank_code, a.masked_number").
			Join("JOIN payments AS p ON p.account_id = a.id").
			Where("p.id = ?", ref.PaymentID).Limit(1).Scan(ctx, &bank, &masked); err == nil {
			row.DestinationBankCode, row.DestinationMasked = bank, masked
		} else if !isNoRows(err) {
			return nil, fmt.Errorf("create refund %s: account: %w", ref.ID, err)
		}
	default:
		return nil, fmt.Errorf("create refund %s: destination: %w", ref.ID, err)
	}
	if _, err := tx.NewInsert().Model(row).Exec(ctx); err != nil {
		return nil, fmt.Errorf("create refund %s: %w", ref.ID, err)
	}
	return typed, nil
}

// GetRefund finds a refund by ID; ENOTFOUND when there is none.
func (db *DB) GetRefund(ctx context.Context, id string) (*paysaga.Refund, error) {
	return getRefund(ctx, db.bun, id)
}

func getRefund(ctx context.Context, idb bun.IDB, id string) (*paysaga.Refund, error) {
	var row refundRow
	if err := idb.NewSelect().Model(&row).Where("id = ?", id).Limit(1).Scan(ctx); err != nil {
		if isNoRows(err) {
			return nil, paysaga.Errorf(paysaga.ENOTFOUND, "refund not found")
		}
		return nil, fmt.Errorf("get refund %s: %w", id, err)
	}
	return row.refund(), nil
}

// RefundSettlement is how a refund ends (or waits): SUCCEEDED, FAILED or UNKNOWN.
type RefundSettlement struct {
	RefundID string
	Status   paysaga.RefundStatus
	// FailureCode and FailureMessage say why a refund FAILED (the bank's Rpcd and Rsms, or
	// the engine's own code).
	FailureCode    string
	FailureMessage string
	// Events are appended to the payment's history in the same transaction.
	Events []paysaga.PaymentEvent
}

// SettleRefund ends a PENDING or UNKNOWN refund, with the payment in the same transaction:
//   - SUCCEEDED moves the amount from reserved to refunded, and the payment to
//     PARTIALLY_REFUNDED or REFUNDED (an AUTHORIZED payment whose cancellation refund gave
//     everything back becomes CANCELED);
//   - FAILED gives the reservation back;
//   - UNKNOWN (the bank could not say whether the credit executed) keeps the reservation.
//
// A refund already in the asked status is returned unchanged (idempotent); any other move is
// ECONFLICT. The payment is returned as it is after the change.
func (db *DB) SettleRefund(ctx context.Context, s RefundSettlement) (*paysaga.Refund, *paysaga.Payment, error) {
	if _, err := (&paysaga.Refund{Status: paysaga.RefundPending}).Settle(s.Status); paysaga.ErrorCode(err) == paysaga.EINVALID {
		return nil, nil, err
	}
	var (
		ref *paysaga.Refund
		pay *paysaga.Payment
	)
	err := db.retry(ctx, func() error {
		return db.bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			now := db.Now()
			r, err := getRefund(ctx, tx, s.RefundID)
			if err != nil {
				return err
			}
			// The payment's row first (see the top of this file), then the refund's as it is
			// now: a locking read, not the transaction's snapshot.
			prow, err := lockPayment(ctx, tx, db.dialect, r.PaymentID)
			if err != nil {
				return err
			}
			if r, err = lockRefund(ctx, tx, db.dialect, s.RefundID); err != nil {
				return err
			}
			changes, err := r.Settle(s.Status)
			if err != nil {
				return err
			}
			if !changes {
				ref, pay = r, prow.payment()
				return nil
			}
			if s.Status == paysaga.RefundFailed {
				// Under the lock CreateRefundTransfer takes: no credit can start meanwhile.
				if err := creditsAllowFailure(ctx, tx, db.dialect, s.RefundID); err != nil {
					return err
				}
			}
			res, err := tx.NewUpdate().Model((*refundRow)(nil)).
				Set("status = ?", string(s.Status)).
				Set("failure_code = ?", s.FailureCode).
				Set("failure_message = ?", s.FailureMessage).
				Set("updated_at = ?", now).
				Where("id = ?", s.RefundID).
				Where("status = ?", string(r.Status)).
				Exec(ctx)
			if err != nil {
				return fmt.Errorf("settle refund %s: %w", s.RefundID, err)
			}
			if n, _ := res.RowsAffected(); n != 1 {
				return fmt.Errorf("settle refund %s: changed under its payment's row lock", s.RefundID)
			}
			switch s.Status {
			case paysaga.RefundSucceeded:
				after := prow.payment().RefundSucceeded(r.Amount)
				err = writeRefundAmounts(ctx, tx, now, prow, string(after.Status), after.RefundedAmount, prow.ReservedRefundAmount-r.Amount)
			case paysaga.RefundFailed:
				err = writeRefundAmounts(ctx, tx, now, prow, prow.Status, prow.RefundedAmount, prow.ReservedRefundAmount-r.Amount)
			}
			if err != nil {
				return fmt.Errorf("settle refund %s: %w", s.RefundID, err)
			}
			if err := appendPaymentEvents(ctx, tx, now, r.PaymentID, s.Events); err != nil {
				return err
			}
			if ref, err = getRefund(ctx, tx, s.RefundID); err != nil {
				return err
			}
			pay, err = getPayment(ctx, tx, r.PaymentID)
			return err
		})
	})
	if err != nil {
		return nil, nil, err
	}
	return ref, pay, nil
}

// ErrCreditExecuted and ErrCreditInDoubt are why SettleRefund refuses to settle a refund
// FAILED: a credit of it executed (the refund succeeded), or one may have (ask the bank first).
var (
	ErrCreditExecuted = errors.New("a credit of the refund executed")
	ErrCreditInDoubt  = errors.New("a credit of the refund has an unknown outcome")
)

// creditsAllowFailure refuses (ECONFLICT, wrapping ErrCreditExecuted or ErrCreditInDoubt) when
// a credit of the refund executed or may have: its reservation must not be given back. Called
// under the payment's row lock, it reads the credits as they are now (refundCredits).
func creditsAllowFailure(ctx context.Context, tx bun.Tx, dialect, refundID string) error {
	rows, err := refundCredits(ctx, tx, dialect, refundID)
	if err != nil {
		return err
	}
	for _, tr := range rows {
		switch paysaga.TransferState(tr.State) {
		case paysaga.TransferSucceeded:
			return errors.Join(ErrCreditExecuted,
				paysaga.Errorf(paysaga.ECONFLICT, "credit %s of refund %s executed: the refund cannot fail", tr.ID, refundID))
		case paysaga.TransferSent, paysaga.TransferUnknown:
			return errors.Join(ErrCreditInDoubt,
				paysaga.Errorf(paysaga.ECONFLICT, "credit %s of refund %s has an unknown outcome", tr.ID, refundID))
		}
	}
	return nil
}

// lockPayment reads the payment's row and holds its lock for the rest of the transaction:
// SELECT … FOR UPDATE on MySQL (a locking read sees the row as it is now, not the
// transaction's snapshot); SQLite's transactions hold the database's write lock from their
// first statement already. ENOTFOUND when there is no such payment.
func lockPayment(ctx context.Context, tx bun.Tx, dialect, paymentID string) (*paymentRow, error) {
	var row paymentRow
	q := tx.NewSelect().Model(&row).Where("id = ?", paymentID)
	if dialect == DriverMySQL {
		q = q.For("UPDATE")
	}
	if err := q.Limit(1).Scan(ctx); err != nil {
		if isNoRows(err) {
			return nil, paysaga.Errorf(paysaga.ENOTFOUND, "payment not found")
		}
		return nil, fmt.Errorf("lock payment %s: %w", paymentID, err)
	}
	return &row, nil
}

// refundCredits reads a refund's credits under the payment's row lock. On MySQL it is a locking
// read: a plain one would answer from the transaction's snapshot, taken by its first read —
// before it waited for the lock, while another transaction was recording a credit (issue 16;
// TestFailedSettlementThatWaitedForTheLockSeesTheCreditRecordedMeanwhile).
func refundCredits(ctx context.Context, tx bun.Tx, dialect, refundID string) ([]transferRow, error) {
	var rows []transferRow
	q := tx.NewSelect().Model(&rows).Where("refund_id = ?", refundID)
	if dialect == DriverMySQL {
		q = q.For("UPDATE")
	}
	if err := q.Scan(ctx); err != nil {
		return nil, fmt.Errorf("credits of refund %s: %w", refundID, err)
	}
	return rows, nil
}

// lockRefund reads a refund's row as lockPayment reads a payment's (take its payment's first).
func lockRefund(ctx context.Context, tx bun.Tx, dialect, refundID string) (*paysaga.Refund, error) {
	var row refundRow
	q := tx.NewSelect().Model(&row).Where("id = ?", refundID)
	if dialect == DriverMySQL {
		q = q.For("UPDATE")
	}
	if err := q.Limit(1).Scan(ctx); err != nil {
		if isNoRows(err) {
			return nil, paysaga.Errorf(paysaga.ENOTFOUND, "refund not found")
		}
		return nil, fmt.Errorf("lock refund %s: %w", refundID, err)
	}
	return row.refund(), nil
}

// ReservedRefundAmount returns what is being refunded of a payment right now (reserved by
// refunds not settled yet).
func (db *DB) ReservedRefundAmount(ctx context.Context, paymentID string) (int64, error) {
	var row paymentRow
	if err := db.bun.NewSelect().Model(&row).Column("reserved_refund_amount").Where("id = ?", paymentID).Limit(1).Scan(ctx); err != nil {
		if isNoRows(err) {
			return 0, paysaga.Errorf(paysaga.ENOTFOUND, "payment not found")
		}
		return 0, fmt.Errorf("reserved refund amount of %s: %w", paymentID, err)
	}
	return row.ReservedRefundAmount, nil
}

// RefundFilter selects refunds for ListRefunds. Empty fields do not filter.
type RefundFilter struct {
	PaymentID string
	Status    paysaga.RefundStatus
	// Since keeps refunds created at or after it.
	Since time.Time
	// Limit is 1 to MaxListLimit (DefaultListLimit when 0).
	Limit int
	// StartingAfter is the ID of the last refund of the previous page.
	StartingAfter string
}

// RefundPage is one page of refunds, newest first.
type RefundPage struct {
	Refunds []*paysaga.Refund
	HasMore bool
}

// ListRefunds returns refunds newest first (created_at, then id, both descending), a page at a
// time: pass the last ID of a page as StartingAfter to get the next.
func (db *DB) ListRefunds(ctx context.Context, f RefundFilter) (*RefundPage, error) {
	limit, err := pageLimit(f.Limit)
	if err != nil {
		return nil, err
	}
	if f.Status != "" && !f.Status.Valid() {
		return nil, paysaga.Errorf(paysaga.EINVALID, "unknown refund status %q", f.Status)
	}
	filter := func(q *bun.SelectQuery) *bun.SelectQuery {
		if f.PaymentID != "" {
			q = q.Where("payment_id = ?", f.PaymentID)
		}
		if f.Status != "" {
			q = q.Where("status = ?", string(f.Status))
		}
		if !f.Since.IsZero() {
			q = q.Where("created_at >= ?", f.Since.UTC().Truncate(time.Microsecond))
		}
		return q
	}
	var rows []refundRow
	q := filter(db.bun.NewSelect().Model(&rows))
	if f.StartingAfter != "" {
		// The cursor must be a refund of the listed payment. Only the payment scopes it: a
		// cursor whose status changed since the last page still pages.
		cq := db.bun.NewSelect().Model((*refundRow)(nil)).Where("id = ?", f.StartingAfter)
		if f.PaymentID != "" {
			cq = cq.Where("payment_id = ?", f.PaymentID)
		}
		var err error
		q, err = newestFirstAfter(ctx, q, cq, "a refund", "refunds")
		if err != nil {
			return nil, err
		}
	}
	if err := q.Order("created_at DESC", "id DESC").Limit(int64(limit + 1)).Scan(ctx); err != nil {
		return nil, fmt.Errorf("list refunds: %w", err)
	}
	page := &RefundPage{Refunds: make([]*paysaga.Refund, 0, len(rows))}
	if len(rows) > limit {
		page.HasMore = true
		rows = rows[:limit]
	}
	for i := range rows {
		page.Refunds = append(page.Refunds, rows[i].refund())
	}
	return page, nil
}

// ListTransfersByRefund returns the transfers (credits) of a refund, oldest first.
func (db *DB) ListTransfersByRefund(ctx context.Context, refundID string) ([]*paysaga.Transfer, error) {
	return db.listTransfers(ctx, "refund_id = ?", refundID)
}
