package paysaga

import "time"

// RefundStatus is where a refund is in its life.
type RefundStatus string

const (
	RefundPending   RefundStatus = "PENDING"   // amount reserved against the payment, credit not settled
	RefundSucceeded RefundStatus = "SUCCEEDED" // the customer was credited exactly once
	RefundFailed    RefundStatus = "FAILED"    // not credited; the reservation was released
	RefundUnknown   RefundStatus = "UNKNOWN"   // the bank could not tell whether the credit executed
)

var refundTransitions = map[RefundStatus][]RefundStatus{
	RefundPending: {RefundSucceeded, RefundFailed, RefundUnknown},
	RefundUnknown: {RefundSucceeded, RefundFailed},
	RefundFailed:  {RefundPending}, // an operator's replay reserves again
}

// CanTransition reports whether a refund may move from s to next.
func (s RefundStatus) CanTransition(next RefundStatus) bool {
	for _, allowed := range refundTransitions[s] {
		if allowed == next {
			return true
		}
	}
	return false
}

// Settle checks that r may end (or wait) in status to — SUCCEEDED, FAILED or UNKNOWN (the bank
// could not say whether the credit executed) — and reports whether that changes it: false when
// it is there already (settling is idempotent). Any other move is ECONFLICT; PENDING is reached
// only by reserving the refund (an operator's replay of a FAILED one), EINVALID here.
func (r *Refund) Settle(to RefundStatus) (changes bool, err error) {
	if to != RefundSucceeded && to != RefundFailed && to != RefundUnknown {
		return false, Errorf(EINVALID, "a refund settles as SUCCEEDED, FAILED or UNKNOWN, not %q", to)
	}
	if r.Status == to {
		return false, nil
	}
	if !r.Status.CanTransition(to) {
		return false, Errorf(ECONFLICT, "refund %s is %s and cannot become %s", r.ID, r.Status, to)
	}
	return true, nil
}

// Final reports whether a refund in status s is settled: SUCCEEDED, or FAILED with its
// reservation released (an operator's replay may still start it again).
func (s RefundStatus) Final() bool { return s == RefundSucceeded || s == RefundFailed }

// Valid reports whether s is a known status.
func (s RefundStatus) Valid() bool {
	return s == RefundPending || s == RefundSucceeded || s == RefundFailed || s == RefundUnknown
}

// DestinationKind says where a refund's money goes.
type DestinationKind string

const (
	// DestinationFinAccount: back to the payment's own registered account (its fin account).
	DestinationFinAccount DestinationKind = "fin_account"
	// DestinationAccountNumber: to an NH account (bank 011 or 012) typed in by support.
	DestinationAccountNumber DestinationKind = "account_number"
	// DestinationOtherBank: to another bank's account typed in by support.
	DestinationOtherBank DestinationKind = "other_bank"
)

// RefundDestination is where a refund goes, as it may be shown: the account number masked.
type RefundDestination struct {
	Kind         DestinationKind `json:"kind"`
	BankCode     string          `json:"bank_code,omitempty"`
	MaskedNumber string          `json:"account_number,omitempty"`
}

// Refund gives back all or part of a successful payment.
type Refund struct {
	ID             string            `json:"id"`
	PaymentID      string            `json:"payment_id"`
	Amount         int64             `json:"amount"`
	Reason         string            `json:"reason,omitempty"`
	Status         RefundStatus      `json:"status"`
	Destination    RefundDestination `json:"destination"`
	FailureCode    string            `json:"failure_code,omitempty"`
	FailureMessage string            `json:"failure_message,omitempty"`
	CreatedBy      string            `json:"created_by"`
	CreatedAt      time.Time         `json:"created_at"`
	UpdatedAt      time.Time         `json:"updated_at"`
}
