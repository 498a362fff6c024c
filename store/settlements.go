package store

// Merchant settlement (issue 17): a settlement per (merchant, KST day) with the payments and
// refunds it settles as lines — each payment and refund in at most one settlement, ever (the
// lines' primary key) — and its payouts, recorded in bank_transfers before they are sent like
// every money-moving call (payment_id NULL, settlement_id set). The rules (what a day takes,
// fees, carry-over) are the settlement package's; this file makes them atomic.

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/uptrace/bun"

	"paysaga"
	"paysaga/settlement"
)

type settlementRow struct {
	bun.BaseModel `bun:"table:settlements"`

	ID             string    `bun:"id,pk"`
	MerchantID     string    `bun:"merchant_id"`
	Day            string    `bun:"day"`
	Status         string    `bun:"status"`
	FeeBPS         int64     `bun:"fee_bps"`
	PaymentCount   int       `bun:"payment_count"`
	RefundCount    int       `bun:"refund_count"`
	PaymentAmount  int64     `bun:"payment_amount"`
	RefundAmount   int64     `bun:"refund_amount"`
	FeeAmount      int64     `bun:"fee_amount"`
	CarryIn        int64     `bun:"carry_in"`
	CarryFrom      string    `bun:"carry_from,nullzero"`
	Net            int64     `bun:"net"`
	Payout         int64     `bun:"payout"`
	CarryOut       int64     `bun:"carry_out"`
	TransferID     string    `bun:"transfer_id"`
	PayoutBankCode string    `bun:"payout_bank_code"`
	PayoutCipher   []byte    `bun:"payout_ciphertext"`
	PayoutKeyID    string    `bun:"payout_key_id"`
	FailureCode    string    `bun:"failure_code"`
	FailureMessage string    `bun:"failure_message"`
	CreatedAt      time.Time `bun:"created_at"`
	UpdatedAt      time.Time `bun:"updated_at"`
}

func (r *settlementRow) settlement() *settlement.Settlement {
	return &settlement.Settlement{
		ID: r.ID, MerchantID: r.MerchantID, Day: r.Day, Status: settlement.Status(r.Status), FeeBPS: r.FeeBPS,
		PaymentCount: r.PaymentCount, RefundCount: r.RefundCount, PaymentAmount: r.PaymentAmount,
		RefundAmount: r.RefundAmount, FeeAmount: r.FeeAmount, CarryIn: r.CarryIn, Net: r.Net,
		Payout: r.Payout, CarryOut: r.CarryOut, TransferID: r.TransferID, FailureCode: r.FailureCode,
		FailureMessage: r.FailureMessage, CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
	}
}

type settlementLineRow struct {
	bun.BaseModel `bun:"table:settlement_lines"`

	Kind         string    `bun:"kind,pk"`
	ItemID       string    `bun:"item_id,pk"`
	SettlementID string    `bun:"settlement_id"`
	PaymentID    string    `bun:"payment_id"`
	RefundID     string    `bun:"refund_id,nullzero"`
	Amount       int64     `bun:"amount"`
	Fee          int64     `bun:"fee"`
	OccurredAt   time.Time `bun:"occurred_at"`
}

// payoutRow is a bank_transfers row of a payout: the columns of transferRow with settlement_id
// instead of payment_id (NULL). UpdateTransfer records the bank's answer on it like on any other.
type payoutRow struct {
	bun.BaseModel `bun:"table:bank_transfers"`

	ID           string    `bun:"id,pk"`
	SettlementID string    `bun:"settlement_id"`
	Kind         string    `bun:"kind"`
	Amount       int64     `bun:"amount"`
	Tsymd        string    `bun:"tsymd"`
	IsTuno       string    `bun:"is_tuno"`
	State        string    `bun:"state"`
	Rpcd         string    `bun:"rpcd"`
	Rsms         string    `bun:"rsms"`
	CreatedAt    time.Time `bun:"created_at"`
	UpdatedAt    time.Time `bun:"updated_at"`
}

func (r *payoutRow) transfer() *paysaga.Transfer {
	return &paysaga.Transfer{
		ID: r.ID, Kind: paysaga.TransferKind(r.Kind), Amount: r.Amount, Tsymd: r.Tsymd, IsTuno: r.IsTuno,
		State: paysaga.TransferState(r.State), Rpcd: r.Rpcd, Rsms: r.Rsms,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
	}
}

type settlementAccountRow struct {
	bun.BaseModel `bun:"table:merchant_settlement_accounts"`

	MerchantID       string    `bun:"merchant_id,pk"`
	BankCode         string    `bun:"bank_code"`
	NumberCiphertext []byte    `bun:"number_ciphertext"`
	NumberKeyID      string    `bun:"number_key_id"`
	MaskedNumber     string    `bun:"masked_number"`
	FeeBPS           *int64    `bun:"fee_bps"`
	CreatedAt        time.Time `bun:"created_at"`
	UpdatedAt        time.Time `bun:"updated_at"`
}

// CapturedEventType is the payment history event whose time is a payment's capture: a
// settlement day takes the payments captured before its end.
const CapturedEventType = "payment.succeeded"

// capturedStatuses are the payments a settlement takes: debited and captured (refunds of them
// are lines of their own).
var capturedStatuses = []string{
	string(paysaga.PaymentSucceeded), string(paysaga.PaymentPartiallyRefunded), string(paysaga.PaymentRefunded),
}

// PrepareSettlement returns the merchant's settlement of day, computing and storing it the
// first time (created true): the merchant's captured payments (but not one with a refund in
// flight: it waits for a later settlement, as the refund's money may have left already) and the
// succeeded refunds of its settled payments up to the end of day that no settlement took yet, their fees at the
// merchant's rate (defaultFeeBPS when none is set), and the negative net of the merchant's
// previous settlement not taken over yet. Nothing to settle: nil. Run again, or by two
// processes at once, it returns the one stored settlement; no payment or refund is ever in two.
func (db *DB) PrepareSettlement(ctx context.Context, merchantID, day string, defaultFeeBPS int64) (s *settlement.Settlement, created bool, err error) {
	end, err := settlement.DayEnd(day)
	if err != nil {
		return nil, false, err
	}
	if merchantID == "" {
		return nil, false, paysaga.Errorf(paysaga.EINVALID, "a settlement needs a merchant")
	}
	for attempt := 0; ; attempt++ {
		err = db.retry(ctx, func() error {
			return db.bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
				s, created = nil, false
				if got, err := settlementByDay(ctx, tx, merchantID, day); err == nil {
					s = got
					return nil
				} else if paysaga.ErrorCode(err) != paysaga.ENOTFOUND {
					return err
				}
				lines, err := unsettledLines(ctx, tx, merchantID, end)
				if err != nil || len(lines) == 0 {
					return err
				}
				bps, err := feeOf(ctx, tx, merchantID, defaultFeeBPS)
				if err != nil {
					return err
				}
				carryIn, carryFrom, err := carryOf(ctx, tx, merchantID, day)
				if err != nil {
					return err
				}
				now := db.Now()
				s = &settlement.Settlement{ID: paysaga.NewID(settlement.PrefixSettlement), MerchantID: merchantID, Day: day,
					Lines: lines, CreatedAt: now, UpdatedAt: now}
				settlement.Compute(s, bps, carryIn)
				row := &settlementRow{
					ID: s.ID, MerchantID: merchantID, Day: day, Status: string(s.Status), FeeBPS: s.FeeBPS,
					PaymentCount: s.PaymentCount, RefundCount: s.RefundCount, PaymentAmount: s.PaymentAmount,
					RefundAmount: s.RefundAmount, FeeAmount: s.FeeAmount, CarryIn: s.CarryIn, CarryFrom: carryFrom,
					Net: s.Net, Payout: s.Payout, CarryOut: s.CarryOut, CreatedAt: now, UpdatedAt: now,
				}
				if _, err := tx.NewInsert().Model(row).Exec(ctx); err != nil {
					return err
				}
				rows := make([]settlementLineRow, 0, len(lines))
				for _, l := range s.Lines {
					rows = append(rows, settlementLineRow{Kind: string(l.Kind), ItemID: l.ItemID(), SettlementID: s.ID,
						PaymentID: l.PaymentID, RefundID: l.RefundID, Amount: l.Amount, Fee: l.Fee,
						OccurredAt: l.At.UTC().Truncate(time.Microsecond)})
				}
				if _, err := tx.NewInsert().Model(&rows).Exec(ctx); err != nil {
					return err
				}
				created = true
				return nil
			})
		})
		// Another process settled the same day, a line, or the carry first: read again.
		if IsDuplicate(err) && attempt < 3 {
			continue
		}
		if err != nil {
			return nil, false, fmt.Errorf("prepare settlement of %s for %s: %w", merchantID, day, err)
		}
		return s, created, nil
	}
}

// unsettledLines are the merchant's payments captured before end and refunds settled before
// end that no settlement took; a refund only when its payment is settled (or settles with it):
// a manual-capture payment's cancellation refund was never a payment of the merchant's.
func unsettledLines(ctx context.Context, idb bun.IDB, merchantID string, end time.Time) ([]settlement.Line, error) {
	var pays []struct {
		ID     string    `bun:"id"`
		Amount int64     `bun:"amount"`
		At     time.Time `bun:"at"`
	}
	err := idb.NewSelect().TableExpr("payments AS p").
		ColumnExpr("p.id AS id, p.amount AS amount, MIN(e.created_at) AS at").
		Join("JOIN payment_events AS e ON e.payment_id = p.id").
		Where("p.merchant_id = ?", merchantID).
		Where("p.status IN (?)", bun.List(capturedStatuses)).
		// A payment with a refund in flight waits: the refund's money may have left already.
		Where("p.reserved_refund_amount = 0").
		Where("e.type = ?", CapturedEventType).
		Where("e.refund_id IS NULL").
		Where("e.created_at < ?", end).
		Where("NOT EXISTS (SELECT 1 FROM settlement_lines AS l WHERE l.kind = ? AND l.item_id = p.id)", string(settlement.LinePayment)).
		GroupExpr("p.id, p.amount").
		Scan(ctx, &pays)
	if err != nil {
		return nil, fmt.Errorf("unsettled payments: %w", err)
	}
	var refs []struct {
		ID        string    `bun:"id"`
		PaymentID string    `bun:"payment_id"`
		Amount    int64     `bun:"amount"`
		At        time.Time `bun:"at"`
		Settled   int       `bun:"settled"`
	}
	err = idb.NewSelect().TableExpr("refunds AS r").
		ColumnExpr("r.id AS id, r.payment_id AS payment_id, r.amount AS amount, r.updated_at AS at").
		ColumnExpr("CASE WHEN pl.item_id IS NULL THEN 0 ELSE 1 END AS settled").
		Join("JOIN payments AS p ON p.id = r.payment_id").
		Join("LEFT JOIN settlement_lines AS pl ON pl.kind = ? AND pl.item_id = r.payment_id", string(settlement.LinePayment)).
		Where("p.merchant_id = ?", merchantID).
		Where("r.status = ?", string(paysaga.RefundSucceeded)).
		Where("r.updated_at < ?", end).
		Where("NOT EXISTS (SELECT 1 FROM settlement_lines AS l WHERE l.kind = ? AND l.item_id = r.id)", string(settlement.LineRefund)).
		Scan(ctx, &refs)
	if err != nil {
		return nil, fmt.Errorf("unsettled refunds: %w", err)
	}
	inBatch := map[string]bool{}
	lines := make([]settlement.Line, 0, len(pays)+len(refs))
	for _, p := range pays {
		inBatch[p.ID] = true
		lines = append(lines, settlement.Line{Kind: settlement.LinePayment, PaymentID: p.ID, Amount: p.Amount, At: p.At.UTC()})
	}
	for _, r := range refs {
		if r.Settled == 1 || inBatch[r.PaymentID] {
			lines = append(lines, settlement.Line{Kind: settlement.LineRefund, PaymentID: r.PaymentID, RefundID: r.ID, Amount: r.Amount, At: r.At.UTC()})
		}
	}
	sortLines(lines)
	return lines, nil
}

func sortLines(lines []settlement.Line) {
	sort.SliceStable(lines, func(i, j int) bool {
		if !lines[i].At.Equal(lines[j].At) {
			return lines[i].At.Before(lines[j].At)
		}
		return lines[i].ItemID() < lines[j].ItemID()
	})
}

// feeOf is the merchant's fee rate, or def.
func feeOf(ctx context.Context, idb bun.IDB, merchantID string, def int64) (int64, error) {
	var row settlementAccountRow
	err := idb.NewSelect().Model(&row).Where("merchant_id = ?", merchantID).Limit(1).Scan(ctx)
	switch {
	case isNoRows(err):
		return def, nil
	case err != nil:
		return 0, fmt.Errorf("fee of %s: %w", merchantID, err)
	case row.FeeBPS == nil:
		return def, nil
	}
	return *row.FeeBPS, nil
}

// carryOf is the negative net of the merchant's latest settlement before day, unless another
// settlement took it over already (a day settled out of order).
func carryOf(ctx context.Context, idb bun.IDB, merchantID, day string) (int64, string, error) {
	var prev settlementRow
	err := idb.NewSelect().Model(&prev).Where("merchant_id = ?", merchantID).Where("day < ?", day).
		Order("day DESC").Limit(1).Scan(ctx)
	if isNoRows(err) {
		return 0, "", nil
	}
	if err != nil {
		return 0, "", fmt.Errorf("previous settlement of %s: %w", merchantID, err)
	}
	if prev.CarryOut >= 0 {
		return 0, "", nil
	}
	n, err := idb.NewSelect().Model((*settlementRow)(nil)).Where("carry_from = ?", prev.ID).Count(ctx)
	if err != nil {
		return 0, "", fmt.Errorf("carry of %s: %w", prev.ID, err)
	}
	if n > 0 {
		return 0, "", nil
	}
	return prev.CarryOut, prev.ID, nil
}

func settlementByDay(ctx context.Context, idb bun.IDB, merchantID, day string) (*settlement.Settlement, error) {
	return settlementWhere(ctx, idb, false, "merchant_id = ? AND day = ?", merchantID, day)
}

func settlementWhere(ctx context.Context, idb bun.IDB, lock bool, where string, args ...any) (*settlement.Settlement, error) {
	var row settlementRow
	q := idb.NewSelect().Model(&row).Where(where, args...)
	if lock {
		q = q.For("UPDATE")
	}
	if err := q.Limit(1).Scan(ctx); err != nil {
		if isNoRows(err) {
			return nil, paysaga.Errorf(paysaga.ENOTFOUND, "settlement not found")
		}
		return nil, fmt.Errorf("get settlement: %w", err)
	}
	return row.settlement(), nil
}

// GetSettlement finds a settlement by ID, with its lines when lines is set; ENOTFOUND when
// there is none.
func (db *DB) GetSettlement(ctx context.Context, id string, lines bool) (*settlement.Settlement, error) {
	s, err := settlementWhere(ctx, db.bun, false, "id = ?", id)
	if err != nil || !lines {
		return s, err
	}
	var rows []settlementLineRow
	if err := db.bun.NewSelect().Model(&rows).Where("settlement_id = ?", id).Scan(ctx); err != nil {
		return nil, fmt.Errorf("lines of settlement %s: %w", id, err)
	}
	s.Lines = make([]settlement.Line, 0, len(rows))
	for _, r := range rows {
		s.Lines = append(s.Lines, settlement.Line{Kind: settlement.LineKind(r.Kind), PaymentID: r.PaymentID,
			RefundID: r.RefundID, Amount: r.Amount, Fee: r.Fee, At: r.OccurredAt.UTC()})
	}
	sortLines(s.Lines)
	return s, nil
}

// SettlementByDay finds a merchant's settlement of a day; ENOTFOUND when there is none.
func (db *DB) SettlementByDay(ctx context.Context, merchantID, day string) (*settlement.Settlement, error) {
	return settlementByDay(ctx, db.bun, merchantID, day)
}

// SettlementMerchants lists the merchants a run for day has work for: those with payments or
// refunds to settle up to the end of day, and those whose settlement of day is still PENDING.
// FAILED and UNKNOWN settlements wait for an operator's retry.
func (db *DB) SettlementMerchants(ctx context.Context, day string) ([]string, error) {
	end, err := settlement.DayEnd(day)
	if err != nil {
		return nil, err
	}
	set := map[string]bool{}
	var ids []string
	if err := db.bun.NewSelect().TableExpr("payments AS p").ColumnExpr("DISTINCT p.merchant_id").
		Join("JOIN payment_events AS e ON e.payment_id = p.id").
		Where("p.status IN (?)", bun.List(capturedStatuses)).Where("p.reserved_refund_amount = 0").
		Where("e.type = ?", CapturedEventType).Where("e.refund_id IS NULL").Where("e.created_at < ?", end).
		Where("NOT EXISTS (SELECT 1 FROM settlement_lines AS l WHERE l.kind = ? AND l.item_id = p.id)", string(settlement.LinePayment)).
		Scan(ctx, &ids); err != nil {
		return nil, fmt.Errorf("merchants to settle: %w", err)
	}
	for _, id := range ids {
		set[id] = true
	}
	ids = nil
	if err := db.bun.NewSelect().TableExpr("refunds AS r").ColumnExpr("DISTINCT p.merchant_id").
		Join("JOIN payments AS p ON p.id = r.payment_id").
		Join("JOIN settlement_lines AS pl ON pl.kind = ? AND pl.item_id = r.payment_id", string(settlement.LinePayment)).
		Where("r.status = ?", string(paysaga.RefundSucceeded)).Where("r.updated_at < ?", end).
		Where("NOT EXISTS (SELECT 1 FROM settlement_lines AS l WHERE l.kind = ? AND l.item_id = r.id)", string(settlement.LineRefund)).
		Scan(ctx, &ids); err != nil {
		return nil, fmt.Errorf("merchants to settle: %w", err)
	}
	for _, id := range ids {
		set[id] = true
	}
	ids = nil
	if err := db.bun.NewSelect().Model((*settlementRow)(nil)).Column("merchant_id").
		Where("day = ?", day).Where("status = ?", string(settlement.Pending)).Scan(ctx, &ids); err != nil {
		return nil, fmt.Errorf("merchants to settle: %w", err)
	}
	for _, id := range ids {
		set[id] = true
	}
	out := make([]string, 0, len(set))
	for id := range set {
		if id != "" {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out, nil
}

// SettlementFilter selects settlements for ListSettlements. Empty fields do not filter.
type SettlementFilter struct {
	MerchantID string
	Status     settlement.Status
	// Limit is 1 to MaxListLimit (DefaultListLimit when 0).
	Limit int
	// StartingAfter is the ID of the last settlement of the previous page.
	StartingAfter string
}

// SettlementPage is one page of settlements, newest first.
type SettlementPage struct {
	Settlements []*settlement.Settlement
	HasMore     bool
}

// ListSettlements returns settlements newest first (created_at, then id, descending), a page
// at a time (see ListPayments). A cursor outside the filtered list is EINVALID.
func (db *DB) ListSettlements(ctx context.Context, f SettlementFilter) (*SettlementPage, error) {
	limit, err := pageLimit(f.Limit)
	if err != nil {
		return nil, err
	}
	if f.Status != "" && !f.Status.Valid() {
		return nil, paysaga.Errorf(paysaga.EINVALID, "unknown settlement status %q", f.Status)
	}
	owner := func(q *bun.SelectQuery) *bun.SelectQuery {
		if f.MerchantID != "" {
			q = q.Where("merchant_id = ?", f.MerchantID)
		}
		return q
	}
	var rows []settlementRow
	q := owner(db.bun.NewSelect().Model(&rows))
	if f.Status != "" {
		q = q.Where("status = ?", string(f.Status))
	}
	if f.StartingAfter != "" {
		var err error
		q, err = newestFirstAfter(ctx, q, owner(db.bun.NewSelect().Model((*settlementRow)(nil))).
			Where("id = ?", f.StartingAfter), "a settlement", "settlements")
		if err != nil {
			return nil, err
		}
	}
	if err := q.Order("created_at DESC", "id DESC").Limit(int64(limit + 1)).Scan(ctx); err != nil {
		return nil, fmt.Errorf("list settlements: %w", err)
	}
	page := &SettlementPage{Settlements: make([]*settlement.Settlement, 0, len(rows))}
	if len(rows) > limit {
		page.HasMore = true
		rows = rows[:limit]
	}
	for i := range rows {
		page.Settlements = append(page.Settlements, rows[i].settlement())
	}
	return page, nil
}

// ListPayouts returns the payout transfers of a settlement, oldest first.
func (db *DB) ListPayouts(ctx context.Context, settlementID string) ([]*paysaga.Transfer, error) {
	return listPayouts(ctx, db.bun, settlementID)
}

func listPayouts(ctx context.Context, idb bun.IDB, settlementID string) ([]*paysaga.Transfer, error) {
	var rows []payoutRow
	if err := idb.NewSelect().Model(&rows).Where("settlement_id = ?", settlementID).Order("created_at ASC", "id ASC").Scan(ctx); err != nil {
		return nil, fmt.Errorf("payouts of settlement %s: %w", settlementID, err)
	}
	out := make([]*paysaga.Transfer, 0, len(rows))
	for i := range rows {
		out = append(out, rows[i].transfer())
	}
	return out, nil
}

// CreatePayoutTransfer records a payout of settlement settlementID before it is sent (see
// CreateTransfer), but only while the settlement is PENDING, for exactly its payout, and while
// none of its other payouts executed or may have — under the settlement's row lock, the one
// FinishSettlement takes. So a settlement is paid at most once. An existing transfer with this
// ID is returned with created false. Refused: ECONFLICT.
func (db *DB) CreatePayoutTransfer(ctx context.Context, settlementID string, t *paysaga.Transfer, to PayoutDestination) (stored *paysaga.Transfer, created bool, err error) {
	if t.ID == "" || t.Kind == "" || len(t.Tsymd) != 8 || !allDigits(t.Tsymd) || !allDigits(t.IsTuno) || len(t.IsTuno) > 20 {
		return nil, false, paysaga.Errorf(paysaga.EINVALID, "a payout needs an id, a kind, a Tsymd and an IsTuno")
	}
	if err := paysaga.ValidateAmount(t.Amount); err != nil {
		return nil, false, err
	}
	err = db.retry(ctx, func() error {
		return db.bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			var existing payoutRow
			if err := tx.NewSelect().Model(&existing).Where("id = ?", t.ID).Limit(1).Scan(ctx); err == nil {
				if existing.SettlementID != settlementID || existing.Amount != t.Amount {
					return paysaga.Errorf(paysaga.ECONFLICT, "transfer %s exists with other details", t.ID)
				}
				stored, created = existing.transfer(), false
				return nil
			} else if !isNoRows(err) {
				return fmt.Errorf("get transfer %s: %w", t.ID, err)
			}
			s, err := settlementWhere(ctx, tx, db.dialect == DriverMySQL, "id = ?", settlementID)
			if err != nil {
				return err
			}
			if s.Status != settlement.Pending {
				return paysaga.Errorf(paysaga.ECONFLICT, "settlement %s is %s, not PENDING: no payout is sent", s.ID, s.Status)
			}
			if s.Payout != t.Amount {
				return paysaga.Errorf(paysaga.ECONFLICT, "settlement %s pays out another amount than transfer %s", s.ID, t.ID)
			}
			if err := payoutsAllowFailure(ctx, tx, settlementID); err != nil {
				return err
			}
			now := db.Now()
			row := &payoutRow{ID: t.ID, SettlementID: settlementID, Kind: string(t.Kind), Amount: t.Amount,
				Tsymd: t.Tsymd, IsTuno: t.IsTuno, State: string(paysaga.TransferSent), CreatedAt: now, UpdatedAt: now}
			if _, err := tx.NewInsert().Model(row).Exec(ctx); err != nil {
				if IsDuplicate(err) {
					return paysaga.Errorf(paysaga.ECONFLICT, "IsTuno %s of %s is already used", t.IsTuno, t.Tsymd)
				}
				return fmt.Errorf("create payout %s: %w", t.ID, err)
			}
			// Where it goes, with it: at most one payout is in doubt at a time, this one.
			if _, err := tx.NewUpdate().Model((*settlementRow)(nil)).
				Set("payout_bank_code = ?", to.BankCode).
				Set("payout_ciphertext = ?", to.Number.Ciphertext).
				Set("payout_key_id = ?", to.Number.KeyID).
				Where("id = ?", settlementID).Exec(ctx); err != nil {
				return fmt.Errorf("record where payout %s goes: %w", t.ID, err)
			}
			stored, created = row.transfer(), true
			return nil
		})
	})
	if err != nil {
		return nil, false, err
	}
	return stored, created, nil
}

// PayoutDestination is the account a payout is sent to, its number sealed as the merchant's
// settlement account (Hash unused).
type PayoutDestination struct {
	BankCode string
	Number   SealedAccountNumber
}

// PayoutDestinationOf is where the settlement's last payout was sent; ENOTFOUND before any.
// The check of a payout whose answer was lost asks the bank about that account, even when the
// merchant registered another one since.
func (db *DB) PayoutDestinationOf(ctx context.Context, settlementID string) (*PayoutDestination, error) {
	var row settlementRow
	if err := db.bun.NewSelect().Model(&row).Column("payout_bank_code", "payout_ciphertext", "payout_key_id").
		Where("id = ?", settlementID).Limit(1).Scan(ctx); err != nil {
		if isNoRows(err) {
			return nil, paysaga.Errorf(paysaga.ENOTFOUND, "settlement not found")
		}
		return nil, fmt.Errorf("payout destination of %s: %w", settlementID, err)
	}
	if row.PayoutBankCode == "" || len(row.PayoutCipher) == 0 {
		return nil, paysaga.Errorf(paysaga.ENOTFOUND, "settlement %s has sent no payout", settlementID)
	}
	return &PayoutDestination{BankCode: row.PayoutBankCode, Number: SealedAccountNumber{Ciphertext: row.PayoutCipher, KeyID: row.PayoutKeyID}}, nil
}

// ErrPayoutExecuted and ErrPayoutInDoubt are why a settlement is not settled FAILED (nor paid
// again): a payout of it executed, or one may have (ask the bank first).
var (
	ErrPayoutExecuted = errors.New("a payout of the settlement executed")
	ErrPayoutInDoubt  = errors.New("a payout of the settlement has an unknown outcome")
)

func payoutsAllowFailure(ctx context.Context, idb bun.IDB, settlementID string) error {
	payouts, err := listPayouts(ctx, idb, settlementID)
	if err != nil {
		return err
	}
	for _, tr := range payouts {
		switch tr.State {
		case paysaga.TransferSucceeded:
			return fmt.Errorf("%w: %w", paysaga.Errorf(paysaga.ECONFLICT, "payout %s of settlement %s executed", tr.ID, settlementID), ErrPayoutExecuted)
		case paysaga.TransferSent, paysaga.TransferUnknown:
			return fmt.Errorf("%w: %w", paysaga.Errorf(paysaga.ECONFLICT, "payout %s of settlement %s is %s", tr.ID, settlementID, tr.State), ErrPayoutInDoubt)
		}
	}
	return nil
}

// SettlementOutcome is how a PENDING (or UNKNOWN) settlement ends.
type SettlementOutcome struct {
	ID     string
	Status settlement.Status // PAID, FAILED or UNKNOWN
	// TransferID is the executed payout of a PAID settlement.
	TransferID     string
	FailureCode    string
	FailureMessage string
}

// FinishSettlement records how a settlement ended: PAID (its payout TransferID executed),
// FAILED (refused while a payout executed or may have: ErrPayoutExecuted, ErrPayoutInDoubt)
// or UNKNOWN (from PENDING). A settlement already in the status is returned unchanged; any
// other move is ECONFLICT.
func (db *DB) FinishSettlement(ctx context.Context, o SettlementOutcome) (*settlement.Settlement, error) {
	var from []string
	switch o.Status {
	case settlement.Paid, settlement.Failed:
		from = []string{string(settlement.Pending), string(settlement.Unknown)}
	case settlement.Unknown:
		from = []string{string(settlement.Pending)}
	default:
		return nil, paysaga.Errorf(paysaga.EINVALID, "a settlement ends PAID, FAILED or UNKNOWN, not %q", o.Status)
	}
	var out *settlement.Settlement
	err := db.retry(ctx, func() error {
		return db.bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			s, err := settlementWhere(ctx, tx, db.dialect == DriverMySQL, "id = ?", o.ID)
			if err != nil {
				return err
			}
			if s.Status == o.Status {
				out = s
				return nil
			}
			if !contains(from, string(s.Status)) {
				return paysaga.Errorf(paysaga.ECONFLICT, "settlement %s is %s and cannot become %s", s.ID, s.Status, o.Status)
			}
			transferID := ""
			switch o.Status {
			case settlement.Paid:
				var tr payoutRow
				err := tx.NewSelect().Model(&tr).Where("id = ?", o.TransferID).Where("settlement_id = ?", o.ID).Limit(1).Scan(ctx)
				if isNoRows(err) || (err == nil && tr.State != string(paysaga.TransferSucceeded)) {
					return paysaga.Errorf(paysaga.ECONFLICT, "settlement %s is paid only by an executed payout of its own", o.ID)
				}
				if err != nil {
					return fmt.Errorf("payout %s: %w", o.TransferID, err)
				}
				transferID = tr.ID
			case settlement.Failed:
				if err := payoutsAllowFailure(ctx, tx, o.ID); err != nil {
					return err
				}
			}
			if _, err := tx.NewUpdate().Model((*settlementRow)(nil)).
				Set("status = ?", string(o.Status)).
				Set("transfer_id = ?", transferID).
				Set("failure_code = ?", truncateRunes(o.FailureCode, 32)).
				Set("failure_message = ?", truncateRunes(o.FailureMessage, 1000)).
				Set("updated_at = ?", db.Now()).
				Where("id = ?", o.ID).Exec(ctx); err != nil {
				return fmt.Errorf("finish settlement %s: %w", o.ID, err)
			}
			out, err = settlementWhere(ctx, tx, false, "id = ?", o.ID)
			return err
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ReopenSettlement makes a FAILED or UNKNOWN settlement PENDING again, for an operator's retry
// (a PENDING one is returned as it is). Its payouts stay as they are: one that executed or may
// have keeps CreatePayoutTransfer from sending another. PAID and CARRIED_OVER are ECONFLICT.
func (db *DB) ReopenSettlement(ctx context.Context, id string) (*settlement.Settlement, error) {
	var out *settlement.Settlement
	err := db.retry(ctx, func() error {
		return db.bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			s, err := settlementWhere(ctx, tx, db.dialect == DriverMySQL, "id = ?", id)
			if err != nil {
				return err
			}
			if s.Status == settlement.Pending {
				out = s
				return nil
			}
			if !s.Status.Retryable() {
				return paysaga.Errorf(paysaga.ECONFLICT, "settlement %s is %s: nothing to retry", id, s.Status)
			}
			if _, err := tx.NewUpdate().Model((*settlementRow)(nil)).
				Set("status = ?", string(settlement.Pending)).
				Set("failure_code = ''").Set("failure_message = ''").
				Set("updated_at = ?", db.Now()).
				Where("id = ?", id).Exec(ctx); err != nil {
				return fmt.Errorf("reopen settlement %s: %w", id, err)
			}
			out, err = settlementWhere(ctx, tx, false, "id = ?", id)
			return err
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// SettlementAccount is where a merchant is paid, as the database keeps it (the number sealed),
// and its fee rate (nil: the default).
type SettlementAccount struct {
	MerchantID   string
	BankCode     string
	Number       SealedAccountNumber // Hash unused
	MaskedNumber string
	FeeBPS       *int64
	UpdatedAt    time.Time
}

// HasAccount reports whether an account was registered (a row may hold only a fee rate).
func (a *SettlementAccount) HasAccount() bool {
	return a.BankCode != "" && len(a.Number.Ciphertext) > 0
}

// SettlementAccountOf returns the merchant's settlement account and fee rate; ENOTFOUND when
// neither was ever set.
func (db *DB) SettlementAccountOf(ctx context.Context, merchantID string) (*SettlementAccount, error) {
	var row settlementAccountRow
	if err := db.bun.NewSelect().Model(&row).Where("merchant_id = ?", merchantID).Limit(1).Scan(ctx); err != nil {
		if isNoRows(err) {
			return nil, paysaga.Errorf(paysaga.ENOTFOUND, "no settlement account")
		}
		return nil, fmt.Errorf("settlement account of %s: %w", merchantID, err)
	}
	return &SettlementAccount{MerchantID: row.MerchantID, BankCode: row.BankCode,
		Number:       SealedAccountNumber{Ciphertext: row.NumberCiphertext, KeyID: row.NumberKeyID},
		MaskedNumber: row.MaskedNumber, FeeBPS: row.FeeBPS, UpdatedAt: row.UpdatedAt.UTC()}, nil
}

// SetSettlementAccount registers (or replaces) a merchant's settlement account; the caller
// sealed the number. The merchant must be a user with the merchant role (else ENOTFOUND).
func (db *DB) SetSettlementAccount(ctx context.Context, merchantID, bankCode, masked string, number SealedAccountNumber) error {
	if bankCode == "" || masked == "" || len(number.Ciphertext) == 0 || number.KeyID == "" {
		return paysaga.Errorf(paysaga.EINVALID, "a settlement account needs a bank code and a sealed number")
	}
	return db.upsertSettlementAccount(ctx, merchantID, map[string]any{
		"bank_code": bankCode, "number_ciphertext": number.Ciphertext, "number_key_id": number.KeyID, "masked_number": masked,
	})
}

// SetMerchantFee sets a merchant's fee rate in basis points (nil: back to the default).
func (db *DB) SetMerchantFee(ctx context.Context, merchantID string, bps *int64) error {
	if bps != nil {
		if err := settlement.ValidateFeeBPS(*bps); err != nil {
			return err
		}
	}
	return db.upsertSettlementAccount(ctx, merchantID, map[string]any{"fee_bps": bps})
}

func (db *DB) upsertSettlementAccount(ctx context.Context, merchantID string, set map[string]any) error {
	return db.retry(ctx, func() error {
		return db.bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			var u userRow
			if err := tx.NewSelect().Model(&u).Where("id = ?", merchantID).Limit(1).Scan(ctx); err != nil {
				if isNoRows(err) {
					return paysaga.Errorf(paysaga.ENOTFOUND, "merchant not found")
				}
				return err
			}
			if paysaga.Role(u.Role) != paysaga.RoleMerchant {
				return paysaga.Errorf(paysaga.ENOTFOUND, "merchant not found")
			}
			now := db.Now()
			n, err := tx.NewSelect().Model((*settlementAccountRow)(nil)).Where("merchant_id = ?", merchantID).Count(ctx)
			if err != nil {
				return err
			}
			if n == 0 {
				row := &settlementAccountRow{MerchantID: merchantID, CreatedAt: now, UpdatedAt: now}
				if _, err := tx.NewInsert().Model(row).Exec(ctx); err != nil {
					return err
				}
			}
			q := tx.NewUpdate().Model((*settlementAccountRow)(nil)).Set("updated_at = ?", now).Where("merchant_id = ?", merchantID)
			keys := make([]string, 0, len(set))
			for k := range set {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				q = q.Set("? = ?", bun.Ident(k), set[k])
			}
			_, err = q.Exec(ctx)
			return err
		})
	})
}
