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

// Refund gives back all or part of a successful payment.
type Refund struct {
	ID             string       `json:"id"`
	PaymentID      string       `json:"payment_id"`
	Amount         int64        `json:"amount"`
	Reason         string       `json:"reason,omitempty"`
	Status         RefundStatus `json:"status"`
	FailureCode    string       `json:"failure_code,omitempty"`
	FailureMessage string       `json:"failure_message,omitempty"`
	CreatedBy      string       `json:"created_by"`
	CreatedAt      time.Time    `json:"created_at"`
	UpdatedAt      time.Time    `json:"updated_at"`
}
