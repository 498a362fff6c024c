package nh

// API names: the ApiNm header field and the URL stem of each call.
const (
	APIOpenFinAccountDirect          = "OpenFinAccountDirect"
	APICheckOpenFinAccountDirect     = "CheckOpenFinAccountDirect"
	APIDrawingTransfer               = "DrawingTransfer"
	APIReceivedTransferFinAccount    = "ReceivedTransferFinAccount"
	APIReceivedTransferAccountNumber = "ReceivedTransferAccountNumber"
	APIReceivedTransferOtherBank     = "ReceivedTransferOtherBank"
	APICheckOnDrawingTransfer        = "CheckOnDrawingTransfer"
	APICheckOnReceivedTransfer       = "CheckOnReceivedTransfer"
	APIInquireBalance                = "InquireBalance"
	APIInquireDepositorAccountNumber = "InquireDepositorAccountNumber"
	APIInquireDepositorOtherBank     = "InquireDepositorOtherBank"
	APIInquireTransactionHistory     = "InquireTransactionHistory"
)

// APIs lists every call, in the order of NH-API.md.
var APIs = []string{
	APIOpenFinAccountDirect, APICheckOpenFinAccountDirect,
	APIDrawingTransfer, APIReceivedTransferFinAccount, APIReceivedTransferAccountNumber, APIReceivedTransferOtherBank,
	APICheckOnDrawingTransfer, APICheckOnReceivedTransfer,
	APIInquireBalance, APIInquireDepositorAccountNumber, APIInquireDepositorOtherBank, APIInquireTransactionHistory,
}

// MoneyMoving reports whether api moves money. A lost answer to such a call is an unknown
// outcome that only the matching CheckOn… call can resolve; a lost answer to any other call is
// merely a reason to ask again.
func MoneyMoving(api string) bool {
	switch api {
	case APIDrawingTransfer, APIReceivedTransferFinAccount, APIReceivedTransferAccountNumber, APIReceivedTransferOtherBank:
		return true
	}
	return false
}

// DefaultSvcCodes returns the test bed's ApiSvcCd of every call (a fresh map). Production codes
// come with the contract and override these through Config.SvcCodes.
func DefaultSvcCodes() map[string]string {
	const drawing, received = "DrawingTransferA", "ReceivedTransferA"
	return map[string]string{
		APIOpenFinAccountDirect:          drawing,
		APICheckOpenFinAccountDirect:     drawing,
		APIDrawingTransfer:               drawing,
		APICheckOnDrawingTransfer:        drawing,
		APIInquireDepositorAccountNumber: drawing,
		APIInquireDepositorOtherBank:     drawing,
		APIReceivedTransferFinAccount:    received,
		APIReceivedTransferAccountNumber: received,
		APIReceivedTransferOtherBank:     received,
		APICheckOnReceivedTransfer:       received,
		APIInquireBalance:                received,
		APIInquireTransactionHistory:     received,
	}
}

// Result codes the client depends on. Every other Rpcd is a refusal whose meaning the client
// does not need to know to stay correct.
const (
	RpcdOK         = "00000" // success, and nothing else is
	RpcdInProgress = "A0017" // fin-account issuance still in progress: ask again later
)

// Pcrs values of a CheckOn… answer. NH names the field but does not publish its values, so
// these are the project's own (NH-API.md, "Result inquiry response"); change them here only.
const (
	PcrsExecuted    = "1" // the original transfer executed: money moved
	PcrsNotExecuted = "0" // it did not: safe to send again with a new IsTuno
	PcrsInProgress  = "9" // the bank is still processing it: ask again later
)

// Bank codes of NH's own banks; deposits to these go through ReceivedTransferAccountNumber,
// deposits to any other bank through ReceivedTransferOtherBank.
const (
	BankNH       = "011"
	BankNHMutual = "012"
)

// IsNHBank reports whether bncd is one of NH's own bank codes.
func IsNHBank(bncd string) bool { return bncd == BankNH || bncd == BankNHMutual }
