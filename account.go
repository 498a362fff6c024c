package paysaga

import "time"

// AccountStatus is where a registered bank account is in its life.
type AccountStatus string

const (
	AccountPending AccountStatus = "PENDING" // the bank is issuing the fin account
	AccountActive  AccountStatus = "ACTIVE"  // usable for payments
	AccountFailed  AccountStatus = "FAILED"  // the bank refused to register it
	AccountDeleted AccountStatus = "DELETED" // no new payments; history kept
)

// Account is a customer's bank account registered with the bank. The account number is kept
// encrypted and shown masked; the fin account never leaves the server.
type Account struct {
	ID             string        `json:"id"`
	OwnerID        string        `json:"owner_id"`
	BankCode       string        `json:"bank_code"`
	MaskedNumber   string        `json:"account_number"`
	Nickname       string        `json:"nickname,omitempty"`
	Status         AccountStatus `json:"status"`
	FailureCode    string        `json:"failure_code,omitempty"`
	FailureMessage string        `json:"failure_message,omitempty"`
	FinAccount     string        `json:"-"`
	CreatedAt      time.Time     `json:"created_at"`
	UpdatedAt      time.Time     `json:"updated_at"`
}

// TransferKind names the bank call a transfer row records.
type TransferKind string

const (
	TransferDebit               TransferKind = "DrawingTransfer"
	TransferCreditFinAccount    TransferKind = "ReceivedTransferFinAccount"
	TransferCreditAccountNumber TransferKind = "ReceivedTransferAccountNumber"
	TransferCreditOtherBank     TransferKind = "ReceivedTransferOtherBank"
)

// TransferState is what we know of one bank call.
type TransferState string

const (
	TransferSent        TransferState = "SENT"         // recorded, request sent, no answer yet
	TransferSucceeded   TransferState = "SUCCEEDED"    // the bank answered 00000 (or a check said executed)
	TransferDeclined    TransferState = "DECLINED"     // the bank answered another code: final
	TransferUnknown     TransferState = "UNKNOWN"      // answer lost; ask the bank before anything else
	TransferNotExecuted TransferState = "NOT_EXECUTED" // a check said it never executed
)

// Transfer is one money-moving bank call, recorded before it is sent so that it can always be
// looked up again at the bank by (Tsymd, IsTuno).
type Transfer struct {
	ID        string        `json:"id"`
	PaymentID string        `json:"payment_id"`
	RefundID  string        `json:"refund_id,omitempty"`
	Kind      TransferKind  `json:"kind"`
	Amount    int64         `json:"amount"`
	Tsymd     string        `json:"tsymd"`
	IsTuno    string        `json:"is_tuno"`
	State     TransferState `json:"state"`
	Rpcd      string        `json:"rpcd,omitempty"`
	Rsms      string        `json:"rsms,omitempty"`
	CreatedAt time.Time     `json:"created_at"`
	UpdatedAt time.Time     `json:"updated_at"`
}
