// Package settlement is the domain of merchant settlement: which payments and refunds a
// merchant's day settles, the fee on each, the net the merchant is paid, and what carries over
// to the next day when refunds outweigh payments. It imports nothing heavier than the standard
// library (and the root domain), so the store, the activities and the API share one set of rules.
//
// Rules (docs/settlement.md says why):
//   - A day is a Korea-time (KST) calendar day. A merchant's settlement of day D takes every
//     captured payment (the time its payment.succeeded history event was written) and every
//     succeeded refund of a settled payment, up to the end of D, that no earlier settlement took:
//     each payment and refund is settled exactly once, even when its outcome was only known
//     (an operator's verdict) days later.
//   - The fee is charged per payment, basis points of its amount rounded down to the won; a
//     refund does not give the fee back.
//   - net = payments − refunds − fees + carry-in (a negative net of the previous settlement).
//     A positive net is paid out; a net ≤ 0 is carried over to the next settlement.
package settlement

import (
	"fmt"
	"strings"
	"time"

	"paysaga"
)

// PrefixSettlement is the prefix of settlement IDs.
const PrefixSettlement = "stl_"

// KST is Korea time (no daylight saving), the time zone of settlement days.
var KST = time.FixedZone("KST", 9*60*60)

// Status is where a settlement is.
type Status string

const (
	// Pending: computed, its positive net not paid out yet.
	Pending Status = "PENDING"
	// Paid: the net was paid out to the merchant's settlement account (one executed transfer).
	Paid Status = "PAID"
	// CarriedOver: the net was zero or negative; nothing was paid and a negative net is taken
	// off the next settlement.
	CarriedOver Status = "CARRIED_OVER"
	// Failed: the payout certainly did not execute (declined, no usable account, the holder's
	// name does not match); an operator retries it.
	Failed Status = "FAILED"
	// Unknown: the bank could not say whether the payout executed; an operator retries it, and
	// the retry asks the bank before anything is sent again.
	Unknown Status = "UNKNOWN"
)

// Valid reports whether s is a known status.
func (s Status) Valid() bool {
	switch s {
	case Pending, Paid, CarriedOver, Failed, Unknown:
		return true
	}
	return false
}

// Final reports whether nothing more happens to a settlement in status s.
func (s Status) Final() bool { return s == Paid || s == CarriedOver }

// Retryable reports whether an operator may retry a settlement in status s.
func (s Status) Retryable() bool { return s == Failed || s == Unknown }

// LineKind says what a line settles.
type LineKind string

const (
	LinePayment LineKind = "payment"
	LineRefund  LineKind = "refund"
)

// Line is one payment or refund of a settlement, with its fee (payments only).
type Line struct {
	Kind      LineKind  `json:"kind"`
	PaymentID string    `json:"payment_id"`
	RefundID  string    `json:"refund_id,omitempty"`
	Amount    int64     `json:"amount"`
	Fee       int64     `json:"fee"`
	At        time.Time `json:"occurred_at"`
}

// ItemID is the payment's or the refund's ID: what a line settles, once.
func (l Line) ItemID() string {
	if l.Kind == LineRefund {
		return l.RefundID
	}
	return l.PaymentID
}

// Settlement is one merchant's settlement of one day.
type Settlement struct {
	ID            string `json:"id"`
	MerchantID    string `json:"merchant_id"`
	Day           string `json:"day"` // YYYY-MM-DD, Korea time
	Status        Status `json:"status"`
	FeeBPS        int64  `json:"fee_bps"`
	PaymentCount  int    `json:"payment_count"`
	RefundCount   int    `json:"refund_count"`
	PaymentAmount int64  `json:"payment_amount"`
	RefundAmount  int64  `json:"refund_amount"`
	FeeAmount     int64  `json:"fee_amount"`
	// CarryIn is the negative net of the previous settlement taken off this one (≤ 0).
	CarryIn int64 `json:"carry_in"`
	// Net = PaymentAmount − RefundAmount − FeeAmount + CarryIn.
	Net int64 `json:"net"`
	// Payout is what is paid to the merchant: Net when positive, else 0.
	Payout int64 `json:"payout"`
	// CarryOut is what the next settlement takes off: Net when negative, else 0.
	CarryOut       int64     `json:"carry_out"`
	TransferID     string    `json:"transfer_id,omitempty"`
	FailureCode    string    `json:"failure_code,omitempty"`
	FailureMessage string    `json:"failure_message,omitempty"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
	Lines          []Line    `json:"lines,omitempty"`
}

// MaxFeeBPS is the largest fee rate: 100%.
const MaxFeeBPS = 10_000

// ValidateFeeBPS checks a fee rate in basis points.
func ValidateFeeBPS(bps int64) error {
	if bps < 0 || bps > MaxFeeBPS {
		return paysaga.Errorf(paysaga.EINVALID, "a fee rate is 0 to %d basis points", MaxFeeBPS)
	}
	return nil
}

// Fee is the fee on one payment: bps basis points of amount, rounded down to the won (the
// merchant never pays a fraction the engine rounded up). Split so that 15 digits of won times
// 10 000 basis points cannot overflow int64.
func Fee(amount, bps int64) int64 {
	if amount <= 0 || bps <= 0 {
		return 0
	}
	return amount/10_000*bps + amount%10_000*bps/10_000
}

// Compute fills in the fees of the payment lines at bps and the totals of s from its lines and
// carryIn (≤ 0; a positive value is ignored: only a debt carries over).
func Compute(s *Settlement, bps, carryIn int64) {
	s.FeeBPS = bps
	s.PaymentCount, s.RefundCount = 0, 0
	s.PaymentAmount, s.RefundAmount, s.FeeAmount = 0, 0, 0
	for i := range s.Lines {
		l := &s.Lines[i]
		switch l.Kind {
		case LinePayment:
			l.Fee = Fee(l.Amount, bps)
			s.PaymentCount++
			s.PaymentAmount += l.Amount
			s.FeeAmount += l.Fee
		case LineRefund:
			l.Fee = 0
			s.RefundCount++
			s.RefundAmount += l.Amount
		}
	}
	s.CarryIn = min(carryIn, 0)
	s.Net = s.PaymentAmount - s.RefundAmount - s.FeeAmount + s.CarryIn
	s.Payout, s.CarryOut = 0, 0
	if s.Net > 0 {
		s.Payout = s.Net
		s.Status = Pending
	} else {
		s.CarryOut = s.Net
		s.Status = CarriedOver
	}
}

// ParseDay parses a settlement day, YYYY-MM-DD (or YYYYMMDD).
func ParseDay(s string) (time.Time, error) {
	layout := "2006-01-02"
	if len(s) == 8 && !strings.Contains(s, "-") {
		layout = "20060102"
	}
	t, err := time.ParseInLocation(layout, s, KST)
	if err != nil {
		return time.Time{}, paysaga.Errorf(paysaga.EINVALID, "a settlement day is YYYY-MM-DD")
	}
	return t, nil
}

// FormatDay formats the KST day of t as YYYY-MM-DD.
func FormatDay(t time.Time) string { return t.In(KST).Format("2006-01-02") }

// PreviousDay is the KST day before the one t falls in: the day a run at t settles.
func PreviousDay(t time.Time) string {
	k := t.In(KST)
	return FormatDay(time.Date(k.Year(), k.Month(), k.Day()-1, 12, 0, 0, 0, KST))
}

// DayEnd is the first instant after day (YYYY-MM-DD, KST), in UTC: a settlement of day takes
// what happened before it.
func DayEnd(day string) (time.Time, error) {
	t, err := ParseDay(day)
	if err != nil {
		return time.Time{}, err
	}
	return time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, KST).UTC(), nil
}

// Days lists the days from..to (inclusive, YYYY-MM-DD), at most max of them.
func Days(from, to string, max int) ([]string, error) {
	f, err := ParseDay(from)
	if err != nil {
		return nil, err
	}
	t, err := ParseDay(to)
	if err != nil {
		return nil, err
	}
	if t.Before(f) {
		return nil, paysaga.Errorf(paysaga.EINVALID, "--to is before --from")
	}
	var out []string
	for d := f; !d.After(t); d = time.Date(d.Year(), d.Month(), d.Day()+1, 0, 0, 0, 0, KST) {
		if len(out) == max {
			return nil, paysaga.Errorf(paysaga.EINVALID, "at most %d days at once", max)
		}
		out = append(out, FormatDay(d))
	}
	return out, nil
}

// WorkflowID is the workflow ID of a merchant's settlement of a day: IDs only, no amounts.
func WorkflowID(merchantID, day string) string {
	return fmt.Sprintf("settlement:%s:%s", merchantID, day)
}

// AccountAD is the additional data a merchant's settlement account number is sealed with: it
// opens only as that merchant's.
func AccountAD(merchantID string) string { return "settlement-account:" + merchantID }

// DayWorkflowID is the workflow ID of a day's settlement run started by payctl (the schedule
// names its own runs).
func DayWorkflowID(day string) string { return "settlement-day:" + day }
