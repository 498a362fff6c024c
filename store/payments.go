package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"paysaga"
)

type paymentRow struct {
	bun.BaseModel `bun:"table:payments"`

	ID                   string    `bun:"id,pk"`
	CustomerID           string    `bun:"customer_id"`
	MerchantID           string    `bun:"merchant_id"`
	AccountID            string    `bun:"account_id"`
	Amount               int64     `bun:"amount"`
	RefundedAmount       int64     `bun:"refunded_amount"`
	ReservedRefundAmount int64     `bun:"reserved_refund_amount"`
	Currency             string    `bun:"currency"`
	Description          string    `bun:"description"`
	Status               string    `bun:"status"`
	CaptureMode          string    `bun:"capture_mode"`
	FailureCode          string    `bun:"failure_code"`
	FailureMessage       string    `bun:"failure_message"`
	Version              int64     `bun:"version"`
	CreatedAt            time.Time `bun:"created_at"`
	UpdatedAt            time.Time `bun:"updated_at"`
}

func (r *paymentRow) payment() *paysaga.Payment {
	return &paysaga.Payment{
		ID: r.ID, CustomerID: r.CustomerID, MerchantID: r.MerchantID, AccountID: r.AccountID,
		Amount: r.Amount, RefundedAmount: r.RefundedAmount, Currency: r.Currency,
		Description: r.Description, Status: paysaga.PaymentStatus(r.Status),
		CaptureMode: paysaga.CaptureMode(r.CaptureMode), FailureCode: r.FailureCode,
		FailureMessage: r.FailureMessage, Version: r.Version,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
	}
}

// allPaymentStatuses lists every status, to find those a transition may start from.
var allPaymentStatuses = []paysaga.PaymentStatus{
	paysaga.PaymentPending, paysaga.PaymentProcessing, paysaga.PaymentAuthorized, paysaga.PaymentSucceeded,
	paysaga.PaymentFailed, paysaga.PaymentUnknown, paysaga.PaymentPartiallyRefunded, paysaga.PaymentRefunded,
	paysaga.PaymentCanceled,
}

// CreatePayment inserts p, idempotently on its ID: when a payment with this ID exists already
// and is the same payment (customer, merchant, account, amount), the stored one is returned
// with created false; a different payment under the same ID is ECONFLICT. Zero times are set
// from the store's clock, an empty currency to KRW, an empty capture mode to automatic.
func (db *DB) CreatePayment(ctx context.Context, p *paysaga.Payment) (stored *paysaga.Payment, created bool, err error) {
	return createPayment(ctx, db.bun, db.Now(), p)
}

func createPayment(ctx context.Context, idb bun.IDB, now time.Time, p *paysaga.Payment) (*paysaga.Payment, bool, error) {
	if p.ID == "" || p.CustomerID == "" || p.AccountID == "" {
		return nil, false, paysaga.Errorf(paysaga.EINVALID, "a payment needs an id, a customer and an account")
	}
	if err := paysaga.ValidateAmount(p.Amount); err != nil {
		return nil, false, err
	}
	if !p.Status.Valid() {
		return nil, false, paysaga.Errorf(paysaga.EINVALID, "unknown payment status %q", p.Status)
	}
	row := &paymentRow{
		ID: p.ID, CustomerID: p.CustomerID, MerchantID: p.MerchantID, AccountID: p.AccountID,
		Amount: p.Amount, RefundedAmount: p.RefundedAmount, Currency: p.Currency,
		Description: p.Description, Status: string(p.Status), CaptureMode: string(p.CaptureMode),
		FailureCode: p.FailureCode, FailureMessage: p.FailureMessage, Version: 1,
		CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt,
	}
	if row.Currency == "" {
		row.Currency = "KRW"
	}
	if row.CaptureMode == "" {
		row.CaptureMode = string(paysaga.CaptureAutomatic)
	}
	if row.CreatedAt.IsZero() {
		row.CreatedAt = now
	}
	row.CreatedAt = row.CreatedAt.UTC().Truncate(time.Microsecond)
	if row.UpdatedAt.IsZero() || row.UpdatedAt.Before(row.CreatedAt) {
		row.UpdatedAt = row.CreatedAt
	}
	row.UpdatedAt = row.UpdatedAt.UTC().Truncate(time.Microsecond)
	if _, err := idb.NewInsert().Model(row).Exec(ctx); err != nil {
		if !IsDuplicate(err) {
			return nil, false, fmt.Errorf("create payment %s: %w", p.ID, err)
		}
		existing, gerr := getPayment(ctx, idb, p.ID)
		if gerr != nil {
			return nil, false, gerr
		}
		if existing.CustomerID != p.CustomerID || existing.MerchantID != p.MerchantID ||
			existing.AccountID != p.AccountID || existing.Amount != p.Amount {
			return nil, false, paysaga.Errorf(paysaga.ECONFLICT, "payment %s exists with other details", p.ID)
		}
		return existing, false, nil
	}
	return row.payment(), true, nil
}

// GetPayment finds a payment by ID; ENOTFOUND when there is none.
func (db *DB) GetPayment(ctx context.Context, id string) (*paysaga.Payment, error) {
	return getPayment(ctx, db.bun, id)
}

func getPayment(ctx context.Context, idb bun.IDB, id string) (*paysaga.Payment, error) {
	var row paymentRow
	if err := idb.NewSelect().Model(&row).Where("id = ?", id).Limit(1).Scan(ctx); err != nil {
		if isNoRows(err) {
			return nil, paysaga.Errorf(paysaga.ENOTFOUND, "payment not found")
		}
		return nil, fmt.Errorf("get payment %s: %w", id, err)
	}
	return row.payment(), nil
}

// PaymentStatusChange is the failure detail written with a status change; both are cleared by
// a change that does not set them.
type PaymentStatusChange struct {
	FailureCode    string
	FailureMessage string
}

// UpdatePaymentStatus moves a payment to status `to` in one conditional statement, so that two
// writers can never both move it: only from a status that may transition to `to`
// (paysaga.PaymentStatus.CanTransition). A payment already in `to` is returned unchanged
// (idempotent); any other status is ECONFLICT; a missing payment ENOTFOUND. The statuses a
// refund sets (paysaga.PaymentStatus.SetByRefund: PARTIALLY_REFUNDED, REFUNDED, CANCELED) are
// written only by SettleRefund, with the refunded amount: here they are ECONFLICT unless the
// payment is there already.
func (db *DB) UpdatePaymentStatus(ctx context.Context, id string, to paysaga.PaymentStatus, ch PaymentStatusChange) (*paysaga.Payment, error) {
	return updatePaymentStatus(ctx, db.bun, db.Now(), id, to, ch)
}

func updatePaymentStatus(ctx context.Context, idb bun.IDB, now time.Time, id string, to paysaga.PaymentStatus, ch PaymentStatusChange) (*paysaga.Payment, error) {
	moved, err := movePaymentStatus(ctx, idb, now, id, to, ch)
	if err != nil {
		return nil, err
	}
	if moved {
		return getPayment(ctx, idb, id)
	}
	return alreadyThere(ctx, idb, id, to)
}

// alreadyThere reads a payment whose move to `to` was refused: it is the answer when it is
// there already (the move is idempotent), ECONFLICT when it is elsewhere.
func alreadyThere(ctx context.Context, idb bun.IDB, id string, to paysaga.PaymentStatus) (*paysaga.Payment, error) {
	p, err := getPayment(ctx, idb, id)
	if err != nil || p.Status == to {
		return p, err
	}
	return nil, paysaga.Errorf(paysaga.ECONFLICT, "payment %s is %s and cannot become %s", id, p.Status, to)
}

// movePaymentStatus is the one statement that changes a payment's status, refunds aside (they
// move it with its amounts, see SettleRefund): a conditional UPDATE from the statuses that may
// become `to` (paysaga.PaymentStatus.CanTransition; none for a status a refund sets), narrowed
// further by where, so that two writers can never both move it. It reports whether it moved.
func movePaymentStatus(ctx context.Context, idb bun.IDB, now time.Time, id string, to paysaga.PaymentStatus, ch PaymentStatusChange,
	where ...func(*bun.UpdateQuery) *bun.UpdateQuery) (bool, error) {
	if !to.Valid() {
		return false, paysaga.Errorf(paysaga.EINVALID, "unknown payment status %q", to)
	}
	var from []string
	for _, s := range allPaymentStatuses {
		if s.CanTransition(to) && !to.SetByRefund() {
			from = append(from, string(s))
		}
	}
	if len(from) == 0 {
		return false, nil
	}
	q := idb.NewUpdate().Model((*paymentRow)(nil)).
		Set("status = ?", string(to)).
		Set("failure_code = ?", ch.FailureCode).
		Set("failure_message = ?", ch.FailureMessage).
		Set("version = version + 1").
		Set("updated_at = ?", now).
		Where("id = ?", id).
		Where("status IN (?)", bun.List(from))
	for _, w := range where {
		q = w(q)
	}
	res, err := q.Exec(ctx)
	if err != nil {
		return false, fmt.Errorf("update payment %s to %s: %w", id, to, err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// PaymentFilter selects payments for ListPayments. Empty fields do not filter.
type PaymentFilter struct {
	CustomerID string
	MerchantID string
	Status     paysaga.PaymentStatus
	// Limit is 1 to 100 (DefaultListLimit when 0).
	Limit int
	// StartingAfter is the ID of the last payment of the previous page.
	StartingAfter string
}

// DefaultListLimit is the page size when none is asked for.
const DefaultListLimit = 20

// MaxListLimit is the largest page.
const MaxListLimit = 100

// pageLimit is the page size a list asks for: DefaultListLimit when 0, else 1 to MaxListLimit.
func pageLimit(limit int) (int, error) {
	if limit == 0 {
		return DefaultListLimit, nil
	}
	if limit < 1 || limit > MaxListLimit {
		return 0, paysaga.Errorf(paysaga.EINVALID, "limit must be between 1 and %d", MaxListLimit)
	}
	return limit, nil
}

// PaymentPage is one page of payments, newest first.
type PaymentPage struct {
	Payments []*paysaga.Payment
	HasMore  bool
}

// ListPayments returns payments newest first (created_at, then id, both descending), a page at
// a time: pass the last ID of a page as StartingAfter to get the next. A cursor that is not a
// payment of the filtered customer/merchant is EINVALID.
func (db *DB) ListPayments(ctx context.Context, f PaymentFilter) (*PaymentPage, error) {
	limit, err := pageLimit(f.Limit)
	if err != nil {
		return nil, err
	}
	if f.Status != "" && !f.Status.Valid() {
		return nil, paysaga.Errorf(paysaga.EINVALID, "unknown payment status %q", f.Status)
	}
	owner := func(q *bun.SelectQuery) *bun.SelectQuery {
		if f.CustomerID != "" {
			q = q.Where("customer_id = ?", f.CustomerID)
		}
		if f.MerchantID != "" {
			q = q.Where("merchant_id = ?", f.MerchantID)
		}
		return q
	}
	var rows []paymentRow
	q := owner(db.bun.NewSelect().Model(&rows))
	if f.Status != "" {
		q = q.Where("status = ?", string(f.Status))
	}
	if f.StartingAfter != "" {
		var err error
		q, err = newestFirstAfter(ctx, q, owner(db.bun.NewSelect().Model((*paymentRow)(nil))).
			Where("id = ?", f.StartingAfter), "a payment", "payments")
		if err != nil {
			return nil, err
		}
	}
	if err := q.Order("created_at DESC", "id DESC").Limit(int64(limit + 1)).Scan(ctx); err != nil {
		return nil, fmt.Errorf("list payments: %w", err)
	}
	page := &PaymentPage{Payments: make([]*paysaga.Payment, 0, len(rows))}
	if len(rows) > limit {
		page.HasMore = true
		rows = rows[:limit]
	}
	for i := range rows {
		page.Payments = append(page.Payments, rows[i].payment())
	}
	return page, nil
}

// PaymentChange is one step of a payment saga, written atomically by RecordPaymentChange.
type PaymentChange struct {
	// Create, when set, inserts the payment first (idempotently, see CreatePayment).
	Create *paysaga.Payment
	// Expect, when set, requires the payment to exist already with Expect's customer, account,
	// merchant and amount (ECONFLICT otherwise, nothing written): the row the API wrote before
	// it started the workflow is the authority a workflow's input is checked against.
	Expect *paysaga.Payment
	// PaymentID is the payment to change.
	PaymentID string
	// Status is where the payment moves (idempotent when already there).
	Status         paysaga.PaymentStatus
	FailureCode    string
	FailureMessage string
	// Events are appended to the payment's history, idempotently on their IDs.
	Events []paysaga.PaymentEvent
	// Transfer, when set, moves a transfer of the payment to a new state (an operator's
	// resolution of an unknown outcome).
	Transfer *TransferStateChange
}

// TransferStateChange names a transfer and its new state.
type TransferStateChange struct {
	TransferID string
	State      paysaga.TransferState
}

// RecordPaymentChange writes one step of a payment in one transaction: create, status change,
// history events, transfer state. Every part is idempotent, so the whole can be run again
// after a crash or a retry and leaves the same rows. It reads the payment back only when the
// move was refused (to tell "there already" from a conflict): a step that moves it costs its
// conditional UPDATE and its inserts, no more.
func (db *DB) RecordPaymentChange(ctx context.Context, ch PaymentChange) error {
	if ch.PaymentID == "" {
		return paysaga.Errorf(paysaga.EINVALID, "a payment change needs a payment id")
	}
	return db.retry(ctx, func() error {
		return db.bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			now := db.Now()
			if ch.Create != nil {
				if ch.Create.ID != ch.PaymentID {
					return paysaga.Errorf(paysaga.EINVALID, "created payment and changed payment differ")
				}
				if _, _, err := createPayment(ctx, tx, now, ch.Create); err != nil {
					return err
				}
			}
			if ch.Expect != nil {
				if err := expectPayment(ctx, tx, ch.PaymentID, ch.Expect); err != nil {
					return err
				}
			}
			moved, err := movePaymentStatus(ctx, tx, now, ch.PaymentID, ch.Status,
				PaymentStatusChange{FailureCode: ch.FailureCode, FailureMessage: ch.FailureMessage})
			if err != nil {
				return err
			}
			if !moved {
				if _, err := alreadyThere(ctx, tx, ch.PaymentID, ch.Status); paysaga.ErrorCode(err) == paysaga.ECONFLICT {
					// A refused move (nothing written) of a step whose history events are all
					// written already: the step was recorded before and its local activity ran
					// again (a worker died before the workflow task that ran it completed). It
					// is done, whatever happened to the payment since — a refund may have moved
					// a SUCCEEDED payment on to PARTIALLY_REFUNDED meanwhile.
					if done, derr := eventsRecorded(ctx, tx, ch.PaymentID, ch.Events); derr != nil || done {
						return derr
					}
					return err
				} else if err != nil {
					return err
				}
			}
			if err := appendPaymentEvents(ctx, tx, now, ch.PaymentID, ch.Events); err != nil {
				return err
			}
			if ch.Transfer != nil {
				t, err := getTransfer(ctx, tx, ch.Transfer.TransferID)
				if err != nil {
					return err
				}
				if t.PaymentID != ch.PaymentID {
					return paysaga.Errorf(paysaga.ECONFLICT, "transfer %s belongs to another payment", t.ID)
				}
				if err := updateTransfer(ctx, tx, now, ch.Transfer.TransferID,
					TransferUpdate{State: ch.Transfer.State, Rpcd: t.Rpcd, Rsms: t.Rsms}); err != nil {
					return err
				}
			}
			return nil
		})
	})
}

// paymentAccountRow is a payment with its account, read in one statement.
type paymentAccountRow struct {
	paymentRow `bun:",extend"`
	Account    *accountRow `bun:"rel:belongs-to,join:account_id=id"`
}

// PaymentToDebit returns payment id and its account (fin account included), read together in
// one statement — what a debit checks before it sends anything. ENOTFOUND when the payment is
// missing; a payment whose account is missing comes with a nil account.
func (db *DB) PaymentToDebit(ctx context.Context, id string) (*paysaga.Payment, *paysaga.Account, error) {
	var row paymentAccountRow
	if err := db.bun.NewSelect().Model(&row).Relation("Account").
		Where("?TableAlias.id = ?", id).Limit(1).Scan(ctx); err != nil {
		if isNoRows(err) {
			return nil, nil, paysaga.Errorf(paysaga.ENOTFOUND, "payment not found")
		}
		return nil, nil, fmt.Errorf("get payment %s with its account: %w", id, err)
	}
	var acct *paysaga.Account
	if row.Account != nil && row.Account.ID != "" {
		acct = row.Account.account()
	}
	return row.payment(), acct, nil
}

// eventsRecorded reports whether every one of events (at least one) is in the payment's history
// already.
func eventsRecorded(ctx context.Context, idb bun.IDB, paymentID string, events []paysaga.PaymentEvent) (bool, error) {
	if len(events) == 0 {
		return false, nil
	}
	ids := make([]string, len(events))
	for i, e := range events {
		ids[i] = e.ID
	}
	n, err := idb.NewSelect().Model((*paymentEventRow)(nil)).
		Where("payment_id = ?", paymentID).Where("id IN (?)", bun.List(ids)).Count(ctx)
	if err != nil {
		return false, fmt.Errorf("history of payment %s: %w", paymentID, err)
	}
	return int(n) == len(ids), nil
}

// PayingAccount is the account a payment was paid from, as the bank knows it: its bank code
// and its number, sealed (seal.AccountNumberAD of AccountID opens it).
type PayingAccount struct {
	AccountID string
	BankCode  string
	Number    SealedSecret
}

// PayingAccountOf returns the account payment paymentID was paid from, with its sealed number,
// whatever the account's status now (a closed account still names its depositor). ENOTFOUND
// when the payment or its account is missing.
func (db *DB) PayingAccountOf(ctx context.Context, paymentID string) (*PayingAccount, error) {
	var row accountRow
	err := db.bun.NewSelect().Model(&row).
		Column("account_row.id", "account_row.bank_code", "account_row.number_ciphertext", "account_row.number_key_id").
		Join("JOIN payments AS p ON p.account_id = account_row.id").
		Where("p.id = ?", paymentID).Limit(1).Scan(ctx)
	if err != nil {
		if isNoRows(err) {
			return nil, paysaga.Errorf(paysaga.ENOTFOUND, "no paying account for payment %s", paymentID)
		}
		return nil, fmt.Errorf("paying account of %s: %w", paymentID, err)
	}
	return &PayingAccount{AccountID: row.ID, BankCode: row.BankCode,
		Number: SealedSecret{Ciphertext: row.NumberCiphertext, KeyID: row.NumberKeyID}}, nil
}

// expectPayment refuses (ECONFLICT) unless payment id exists with want's customer, account,
// merchant and amount.
func expectPayment(ctx context.Context, idb bun.IDB, id string, want *paysaga.Payment) error {
	if want.ID != id {
		return paysaga.Errorf(paysaga.EINVALID, "expected payment and changed payment differ")
	}
	p, err := getPayment(ctx, idb, id)
	if paysaga.ErrorCode(err) == paysaga.ENOTFOUND {
		return paysaga.Errorf(paysaga.ECONFLICT, "payment %s was not recorded by the API: its workflow is not to be trusted", id)
	}
	if err != nil {
		return err
	}
	if p.CustomerID != want.CustomerID || p.AccountID != want.AccountID || p.MerchantID != want.MerchantID || p.Amount != want.Amount {
		return paysaga.Errorf(paysaga.ECONFLICT, "payment %s is recorded with another customer, account, merchant or amount than its workflow's input", id)
	}
	return nil
}

// ListStalePendingPayments returns up to limit payments still PENDING that were created before
// before, oldest first: payments the API recorded whose workflow may never have started (the
// client got 503 and did not retry). Housekeeping decides what becomes of them.
func (db *DB) ListStalePendingPayments(ctx context.Context, before time.Time, limit int) ([]*paysaga.Payment, error) {
	limit, err := pageLimit(limit)
	if err != nil {
		return nil, err
	}
	var rows []paymentRow
	if err := db.bun.NewSelect().Model(&rows).
		Where("status = ?", string(paysaga.PaymentPending)).
		Where("created_at < ?", before.UTC().Truncate(time.Microsecond)).
		Order("created_at ASC", "id ASC").Limit(int64(limit)).Scan(ctx); err != nil {
		return nil, fmt.Errorf("list stale pending payments: %w", err)
	}
	out := make([]*paysaga.Payment, len(rows))
	for i := range rows {
		out[i] = rows[i].payment()
	}
	return out, nil
}

// PaymentNotStarted is the failure code of a payment the API recorded whose workflow never
// started (the client got 503 and did not retry): no money moved.
const PaymentNotStarted = "not_started"

// FailUnstartedPayment ends payment id FAILED (failure code PaymentNotStarted) — only if it is
// still PENDING and was created before before, in one conditional statement with its history
// event: a workflow that starts meanwhile moves it to PROCESSING first and the call changes
// nothing (changed false), or finds it FAILED and is refused at its first step, before any
// debit. Housekeeping calls it for ListStalePendingPayments' payments whose workflow the
// Temporal server does not know.
func (db *DB) FailUnstartedPayment(ctx context.Context, id string, before time.Time, message string) (p *paysaga.Payment, changed bool, err error) {
	err = db.retry(ctx, func() error {
		return db.bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			now := db.Now()
			var err error
			changed, err = movePaymentStatus(ctx, tx, now, id, paysaga.PaymentFailed,
				PaymentStatusChange{FailureCode: PaymentNotStarted, FailureMessage: truncateRunes(message, 1000)},
				func(q *bun.UpdateQuery) *bun.UpdateQuery {
					return q.Where("status = ?", string(paysaga.PaymentPending)).
						Where("created_at < ?", before.UTC().Truncate(time.Microsecond))
				})
			if err != nil {
				return fmt.Errorf("fail unstarted payment %s: %w", id, err)
			}
			if changed {
				if _, err := appendPaymentEvent(ctx, tx, now, &paysaga.PaymentEvent{
					ID: paysaga.PrefixEvent + strings.TrimPrefix(id, paysaga.PrefixPayment) + "_not_started", PaymentID: id,
					Type: "payment.failed", Status: paysaga.PaymentFailed, Reason: message, CreatedAt: now,
				}); err != nil {
					return err
				}
			}
			p, err = getPayment(ctx, tx, id)
			return err
		})
	})
	if err != nil {
		return nil, false, err
	}
	return p, changed, nil
}
