package paysaga

import "time"

// PaymentStatus is where a payment is in its life.
type PaymentStatus string

const (
	// PaymentPending: recorded, the debit has not been sent yet.
	PaymentPending PaymentStatus = "PENDING"
	// PaymentProcessing: the debit was sent and its outcome is not known yet (includes asking the
	// bank what happened after a lost answer).
	PaymentProcessing PaymentStatus = "PROCESSING"
	// PaymentAuthorized: a manual-capture payment whose debit succeeded, waiting for capture.
	PaymentAuthorized PaymentStatus = "AUTHORIZED"
	// PaymentSucceeded: the customer was debited exactly once.
	PaymentSucceeded PaymentStatus = "SUCCEEDED"
	// PaymentFailed: the customer was not debited (declined, or resolved as not executed).
	PaymentFailed PaymentStatus = "FAILED"
	// PaymentUnknown: the bank could not tell us in time whether the debit executed; an operator
	// must resolve it. The engine never guesses.
	PaymentUnknown PaymentStatus = "UNKNOWN"
	// PaymentPartiallyRefunded / PaymentRefunded: part or all of the captured amount went back.
	PaymentPartiallyRefunded PaymentStatus = "PARTIALLY_REFUNDED"
	PaymentRefunded          PaymentStatus = "REFUNDED"
	// PaymentCanceled: a manual-capture payment canceled (or not captured in time) and refunded.
	PaymentCanceled PaymentStatus = "CANCELED"
)

var paymentTransitions = map[PaymentStatus][]PaymentStatus{
	PaymentPending:           {PaymentProcessing, PaymentFailed},
	PaymentProcessing:        {PaymentSucceeded, PaymentFailed, PaymentUnknown, PaymentAuthorized},
	PaymentUnknown:           {PaymentSucceeded, PaymentFailed, PaymentAuthorized},
	PaymentAuthorized:        {PaymentSucceeded, PaymentCanceled},
	PaymentSucceeded:         {PaymentPartiallyRefunded, PaymentRefunded},
	PaymentPartiallyRefunded: {PaymentPartiallyRefunded, PaymentRefunded},
}

// CanTransition reports whether a payment may move from s to next.
func (s PaymentStatus) CanTransition(next PaymentStatus) bool {
	for _, allowed := range paymentTransitions[s] {
		if allowed == next {
			return true
		}
	}
	return false
}

// Final reports whether no further change can happen to a payment in this status without a
// refund (SUCCEEDED is final for the debit; refunds move it on).
func (s PaymentStatus) Final() bool {
	switch s {
	case PaymentSucceeded, PaymentFailed, PaymentPartiallyRefunded, PaymentRefunded, PaymentCanceled:
		return true
	}
	return false
}

// Valid reports whether s is a known status.
func (s PaymentStatus) Valid() bool {
	_, ok := paymentTransitions[s]
	return ok || s == PaymentFailed || s == PaymentRefunded || s == PaymentCanceled
}

// CaptureMode says whether a successful debit is captured at once or waits for the merchant.
type CaptureMode string

const (
	CaptureAutomatic CaptureMode = "automatic"
	CaptureManual    CaptureMode = "manual"
)

// Payment is money moved from a customer's registered account to the fintech, on behalf of a
// merchant.
type Payment struct {
	ID             string        `json:"id"`
	CustomerID     string        `json:"customer_id"`
	MerchantID     string        `json:"merchant_id"`
	AccountID      string        `json:"account_id"`
	Amount         int64         `json:"amount"`
	RefundedAmount int64         `json:"refunded_amount"`
	Currency       string        `json:"currency"`
	Description    string        `json:"description,omitempty"`
	Status         PaymentStatus `json:"status"`
	CaptureMode    CaptureMode   `json:"capture_mode"`
	// FailureCode and FailureMessage carry the bank's Rpcd and Rsms for a declined payment.
	FailureCode    string    `json:"failure_code,omitempty"`
	FailureMessage string    `json:"failure_message,omitempty"`
	Version        int64     `json:"-"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
}

// SetByRefund reports whether a payment reaches status s only through one of its refunds
// succeeding (see RefundSucceeded): PARTIALLY_REFUNDED, REFUNDED, and CANCELED, which the
// refund of a cancellation gives. Its refunded amount moves with it, so the store writes these
// with the refund's settlement, in one transaction, and a status change on its own may not.
func (s PaymentStatus) SetByRefund() bool {
	return s == PaymentPartiallyRefunded || s == PaymentRefunded || s == PaymentCanceled
}

// Refundable is what is left to refund of a payment (refunds in flight not counted).
func (p *Payment) Refundable() int64 {
	if p.Status != PaymentSucceeded && p.Status != PaymentPartiallyRefunded {
		return 0
	}
	return p.Amount - p.RefundedAmount
}

// ReserveRefund is the rule "never refund more than was paid": it checks that a refund of
// amount may be reserved against p while reserved won are held by its refunds not settled yet,
// and returns what is reserved with it. p must be SUCCEEDED or PARTIALLY_REFUNDED — AUTHORIZED
// for a cancellation (the refund of a manual-capture payment canceled before capture) — and
// its refunded amount, reserved and amount together at most p.Amount. A refusal is ECONFLICT
// saying why and how much is left (reserved returned as it was). The store applies it under
// the payment's row lock, so that concurrent refunds see each other's reservations.
func (p *Payment) ReserveRefund(reserved, amount int64, cancellation bool) (int64, error) {
	if err := ValidateAmount(amount); err != nil {
		return reserved, err
	}
	switch {
	case cancellation && p.Status != PaymentAuthorized:
		return reserved, Errorf(ECONFLICT, "payment %s is %s, not AUTHORIZED", p.ID, p.Status)
	case !cancellation && p.Status == PaymentAuthorized:
		return reserved, Errorf(ECONFLICT, "payment %s is AUTHORIZED: capture it first, or cancel it", p.ID)
	case !cancellation && p.Status != PaymentSucceeded && p.Status != PaymentPartiallyRefunded:
		return reserved, Errorf(ECONFLICT, "payment %s is %s and cannot be refunded", p.ID, p.Status)
	}
	left := p.Refundable() - reserved
	if cancellation {
		left = p.Amount - p.RefundedAmount - reserved
	}
	if amount > left {
		return reserved, Errorf(ECONFLICT, "a refund of %d won exceeds what is left to refund of payment %s: %d won (%d refunded, %d being refunded)",
			amount, p.ID, max(left, 0), p.RefundedAmount, reserved)
	}
	return reserved + amount, nil
}

// RefundSucceeded returns p as it is once a refund of amount, reserved against it, succeeded:
// the amount counted as refunded, and the payment PARTIALLY_REFUNDED, REFUNDED when nothing is
// left, or CANCELED when the refund of an AUTHORIZED payment's cancellation gave everything
// back. The money went back, so this never refuses: a payment in another status (it cannot be,
// the reservation saw to it) counts the amount and keeps its status. p is not changed.
func (p *Payment) RefundSucceeded(amount int64) Payment {
	out := *p
	out.RefundedAmount += amount
	full := out.RefundedAmount == out.Amount
	switch {
	case p.Status == PaymentAuthorized && full:
		out.Status = PaymentCanceled
	case (p.Status == PaymentSucceeded || p.Status == PaymentPartiallyRefunded) && full:
		out.Status = PaymentRefunded
	case p.Status == PaymentSucceeded || p.Status == PaymentPartiallyRefunded:
		out.Status = PaymentPartiallyRefunded
	}
	return out
}

// PaymentEvent is one line of a payment's history, kept for customer support: every status
// change, with the bank's answer where there was one.
type PaymentEvent struct {
	ID        string        `json:"id"`
	PaymentID string        `json:"payment_id"`
	RefundID  string        `json:"refund_id,omitempty"`
	Type      string        `json:"type"`
	Status    PaymentStatus `json:"status,omitempty"`
	Rpcd      string        `json:"bank_code,omitempty"`
	Rsms      string        `json:"bank_message,omitempty"`
	Actor     string        `json:"actor,omitempty"`
	Reason    string        `json:"reason,omitempty"`
	CreatedAt time.Time     `json:"created_at"`
}
