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

// Refundable is what is left to refund of a payment.
func (p *Payment) Refundable() int64 {
	if p.Status != PaymentSucceeded && p.Status != PaymentPartiallyRefunded {
		return 0
	}
	return p.Amount - p.RefundedAmount
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
