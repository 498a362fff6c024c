package store

import (
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"paysaga"
)

type paymentEventRow struct {
	bun.BaseModel `bun:"table:payment_events"`

	ID        string    `bun:"id,pk"`
	PaymentID string    `bun:"payment_id"`
	RefundID  string    `bun:"refund_id,nullzero"`
	Type      string    `bun:"type"`
	Status    string    `bun:"status"`
	Rpcd      string    `bun:"rpcd"`
	Rsms      string    `bun:"rsms"`
	Actor     string    `bun:"actor"`
	Reason    string    `bun:"reason"`
	CreatedAt time.Time `bun:"created_at"`
}

func (r *paymentEventRow) event() *paysaga.PaymentEvent {
	return &paysaga.PaymentEvent{
		ID: r.ID, PaymentID: r.PaymentID, RefundID: r.RefundID, Type: r.Type,
		Status: paysaga.PaymentStatus(r.Status), Rpcd: r.Rpcd, Rsms: r.Rsms, Actor: r.Actor,
		Reason: r.Reason, CreatedAt: r.CreatedAt.UTC(),
	}
}

// AppendPaymentEvent adds a line to a payment's history, idempotently on the event's stable
// ID: an event already there is left as it is (appended false). A zero CreatedAt is now.
func (db *DB) AppendPaymentEvent(ctx context.Context, e *paysaga.PaymentEvent) (appended bool, err error) {
	return appendPaymentEvent(ctx, db.bun, db.Now(), e)
}

// appendPaymentEvents appends a step's history events, all of paymentID, in one multi-row
// INSERT. When one of them is there already (the step runs again) the statement fails whole and
// they are appended one by one, each idempotently (appendPaymentEvent).
func appendPaymentEvents(ctx context.Context, idb bun.IDB, now time.Time, paymentID string, events []paysaga.PaymentEvent) error {
	rows := make([]paymentEventRow, len(events))
	for i, e := range events {
		if err := checkEvent(&e); err != nil {
			return err
		}
		if e.PaymentID != paymentID {
			return paysaga.Errorf(paysaga.EINVALID, "event %s belongs to another payment", e.ID)
		}
		rows[i] = newPaymentEventRow(now, &e)
	}
	if len(rows) == 0 {
		return nil
	}
	_, err := idb.NewInsert().Model(&rows).Exec(ctx)
	if err == nil {
		return nil
	}
	if !IsDuplicate(err) {
		return fmt.Errorf("append payment events: %w", err)
	}
	for i := range events {
		if _, err := appendPaymentEvent(ctx, idb, now, &events[i]); err != nil {
			return err
		}
	}
	return nil
}

// checkEvent refuses an event without its id, payment or type.
func checkEvent(e *paysaga.PaymentEvent) error {
	if e.ID == "" || e.PaymentID == "" || e.Type == "" {
		return paysaga.Errorf(paysaga.EINVALID, "a payment event needs an id, a payment and a type")
	}
	return nil
}

// newPaymentEventRow is e's row: a zero CreatedAt is now, times are UTC to the microsecond.
func newPaymentEventRow(now time.Time, e *paysaga.PaymentEvent) paymentEventRow {
	row := paymentEventRow{
		ID: e.ID, PaymentID: e.PaymentID, RefundID: e.RefundID, Type: e.Type, Status: string(e.Status),
		Rpcd: e.Rpcd, Rsms: e.Rsms, Actor: e.Actor, Reason: e.Reason, CreatedAt: e.CreatedAt,
	}
	if row.CreatedAt.IsZero() {
		row.CreatedAt = now
	}
	row.CreatedAt = row.CreatedAt.UTC().Truncate(time.Microsecond)
	return row
}

func appendPaymentEvent(ctx context.Context, idb bun.IDB, now time.Time, e *paysaga.PaymentEvent) (bool, error) {
	if err := checkEvent(e); err != nil {
		return false, err
	}
	row := newPaymentEventRow(now, e)
	if _, err := idb.NewInsert().Model(&row).Exec(ctx); err != nil {
		if IsDuplicate(err) {
			var other paymentEventRow
			if gerr := idb.NewSelect().Model(&other).Column("payment_id").Where("id = ?", e.ID).Limit(1).Scan(ctx); gerr != nil {
				return false, fmt.Errorf("append payment event %s: %w", e.ID, gerr)
			}
			if other.PaymentID != e.PaymentID {
				return false, paysaga.Errorf(paysaga.ECONFLICT, "event %s belongs to another payment", e.ID)
			}
			return false, nil
		}
		return false, fmt.Errorf("append payment event %s: %w", e.ID, err)
	}
	return true, nil
}

// ListPaymentEvents returns a payment's history in the order it happened (time, then the
// event IDs, which the workflow numbers in order).
func (db *DB) ListPaymentEvents(ctx context.Context, paymentID string) ([]*paysaga.PaymentEvent, error) {
	var rows []paymentEventRow
	if err := db.bun.NewSelect().Model(&rows).Where("payment_id = ?", paymentID).
		Order("created_at ASC", "id ASC").Scan(ctx); err != nil {
		return nil, fmt.Errorf("list payment events: %w", err)
	}
	out := make([]*paysaga.PaymentEvent, 0, len(rows))
	for i := range rows {
		out = append(out, rows[i].event())
	}
	return out, nil
}
