// Package reconcile compares the bank's statement of the fintech's own account with the
// transfers the engine recorded for a day, and says where they differ: what the bank moved
// that no transfer of ours explains (missing), what we hold as executed that the bank never
// moved (extra), and pairs whose two sides disagree (mismatched). It only computes: reading
// the statement (package nh) and the transfers (package store) is the caller's, `payctl
// reconcile` the operators' way to run it.
package reconcile

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"paysaga"
	"paysaga/nh"
)

// Direction of money on the fintech's account.
const (
	DirectionIn  = "in"  // a customer's debit arriving (DrawingTransfer)
	DirectionOut = "out" // a refund or payout leaving (ReceivedTransfer…)
)

// BankLine is one row of the bank's statement, as reconcile reports it.
type BankLine struct {
	At        time.Time `json:"at"`
	Direction string    `json:"direction"`
	Amount    int64     `json:"amount"`
	Tuno      string    `json:"bank_tuno"`
	Summary   string    `json:"summary,omitempty"`
	date      string
}

// TransferLine is one of our transfers, as reconcile reports it.
type TransferLine struct {
	ID        string    `json:"id"`
	PaymentID string    `json:"payment_id"`
	RefundID  string    `json:"refund_id,omitempty"`
	Kind      string    `json:"kind"`
	Direction string    `json:"direction"`
	Amount    int64     `json:"amount"`
	Tsymd     string    `json:"tsymd"`
	IsTuno    string    `json:"is_tuno"`
	State     string    `json:"state"`
	CreatedAt time.Time `json:"created_at"`
}

// Mismatch pairs a transfer with what the bank says of it (nothing, when Bank is nil).
type Mismatch struct {
	Transfer TransferLine `json:"transfer"`
	Bank     *BankLine    `json:"bank,omitempty"`
	Problem  string       `json:"problem"`
}

// Report is the outcome of a reconciliation.
type Report struct {
	Date       string         `json:"date"`
	BankRows   int            `json:"bank_rows"`
	Cancelled  int            `json:"cancelled_bank_rows"`
	Transfers  int            `json:"transfers"`
	Matched    int            `json:"matched"`
	Missing    []BankLine     `json:"missing"`
	Extra      []TransferLine `json:"extra"`
	Mismatched []Mismatch     `json:"mismatched"`
}

// Differs reports whether the bank and our records disagree.
func (r *Report) Differs() bool {
	return len(r.Missing)+len(r.Extra)+len(r.Mismatched) > 0
}

func direction(k paysaga.TransferKind) string {
	if k == paysaga.TransferDebit {
		return DirectionIn
	}
	return DirectionOut
}

// Compare compares the bank's statement of the fintech account (records, which may run into
// the next day) with our transfers of date. Each bank row is paired with an unpaired transfer
// of the same direction and amount created within window of it, preferring transfers we hold as
// executed, then those whose outcome we do not know, then the closest in time; what is left
// over on either side, and pairs whose two sides disagree, are the differences.
func Compare(date string, records []nh.HistoryRecord, transfers []*paysaga.Transfer, window time.Duration) *Report {
	rep := &Report{Date: date, Transfers: len(transfers), Missing: []BankLine{}, Extra: []TransferLine{}, Mismatched: []Mismatch{}}
	var lines []BankLine
	for _, rec := range records {
		if rec.Cancelled() {
			rep.Cancelled++
			continue
		}
		at, err := time.ParseInLocation("20060102150405", rec.Trdd+rec.Txtm, nh.KST)
		if err != nil {
			at = time.Time{}
		}
		dir := DirectionOut
		if rec.Deposit() {
			dir = DirectionIn
		}
		l := BankLine{At: at.UTC(), Direction: dir, Amount: rec.Tram, Tuno: rec.Tuno, Summary: rec.Smr, date: rec.Trdd}
		if l.date == date {
			rep.BankRows++
		}
		lines = append(lines, l)
	}
	slices.SortStableFunc(lines, func(a, b BankLine) int { return a.At.Compare(b.At) })

	ours := make([]TransferLine, 0, len(transfers))
	for _, t := range transfers {
		ours = append(ours, TransferLine{ID: t.ID, PaymentID: t.PaymentID, RefundID: t.RefundID, Kind: string(t.Kind),
			Direction: direction(t.Kind), Amount: t.Amount, Tsymd: t.Tsymd, IsTuno: t.IsTuno, State: string(t.State),
			CreatedAt: t.CreatedAt.UTC()})
	}
	paired := make([]bool, len(ours))
	near := func(l BankLine, t TransferLine) (time.Duration, bool) {
		d := l.At.Sub(t.CreatedAt).Abs()
		return d, d <= window
	}
	// pick returns the best unpaired transfer for l, or -1.
	pick := func(l BankLine, sameAmount bool) int {
		best, bestRank, bestDist := -1, 0, time.Duration(0)
		for i, t := range ours {
			if paired[i] || t.Direction != l.Direction || (t.Amount == l.Amount) != sameAmount {
				continue
			}
			d, ok := near(l, t)
			if !ok {
				continue
			}
			rank := stateRank(paysaga.TransferState(t.State))
			if best < 0 || rank < bestRank || (rank == bestRank && d < bestDist) {
				best, bestRank, bestDist = i, rank, d
			}
		}
		return best
	}

	var unpaired []BankLine
	for _, l := range lines {
		i := pick(l, true)
		if i < 0 {
			unpaired = append(unpaired, l)
			continue
		}
		paired[i] = true
		switch st := paysaga.TransferState(ours[i].State); st {
		case paysaga.TransferSucceeded:
			rep.Matched++
		case paysaga.TransferSent, paysaga.TransferUnknown:
			rep.Mismatched = append(rep.Mismatched, Mismatch{Transfer: ours[i], Bank: &l,
				Problem: fmt.Sprintf("the bank executed it; we hold it as %s: resolve the payment as succeeded", st)})
		default:
			rep.Mismatched = append(rep.Mismatched, Mismatch{Transfer: ours[i], Bank: &l,
				Problem: fmt.Sprintf("the bank executed it; we recorded %s", st)})
		}
	}
	// A row left over may be one of our transfers with another amount.
	for _, l := range unpaired {
		if i := pick(l, false); i >= 0 && paysaga.TransferState(ours[i].State) != paysaga.TransferDeclined &&
			paysaga.TransferState(ours[i].State) != paysaga.TransferNotExecuted {
			paired[i] = true
			rep.Mismatched = append(rep.Mismatched, Mismatch{Transfer: ours[i], Bank: &l,
				Problem: fmt.Sprintf("amounts differ: we sent %s, the bank moved %s", paysaga.FormatWon(ours[i].Amount), paysaga.FormatWon(l.Amount))})
			continue
		}
		if l.date == date {
			rep.Missing = append(rep.Missing, l)
		}
	}
	for i, t := range ours {
		if paired[i] {
			continue
		}
		switch st := paysaga.TransferState(t.State); st {
		case paysaga.TransferSucceeded:
			rep.Extra = append(rep.Extra, t)
		case paysaga.TransferSent, paysaga.TransferUnknown:
			rep.Mismatched = append(rep.Mismatched, Mismatch{Transfer: t,
				Problem: fmt.Sprintf("we hold it as %s; the bank's statement does not show it (not executed?)", st)})
		}
	}
	slices.SortStableFunc(rep.Mismatched, func(a, b Mismatch) int {
		return cmp.Or(a.Transfer.CreatedAt.Compare(b.Transfer.CreatedAt), cmp.Compare(a.Transfer.ID, b.Transfer.ID))
	})
	return rep
}

// stateRank orders the transfers a bank row most plausibly belongs to.
func stateRank(s paysaga.TransferState) int {
	switch s {
	case paysaga.TransferSucceeded:
		return 0
	case paysaga.TransferUnknown, paysaga.TransferSent:
		return 1
	}
	return 2
}
