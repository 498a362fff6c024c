package seal

import (
	"encoding/json"
	"fmt"
)

// RefundDestination is an account an operator typed in for a refund: its number, sealed as one
// secret bound to its refund. Whose account it must be is not part of it: the credit step asks
// the bank for the paying account's depositor (a "holder" sealed by older code is ignored).
type RefundDestination struct {
	Number string `json:"number"`
}

// RefundDestinationAD is the additional data a refund's destination is sealed with: it opens
// only as the destination of that refund.
func RefundDestinationAD(refundID string) string { return "refund-destination:" + refundID }

// SealRefundDestination seals a typed-in destination for refund refundID.
func (k *Keyring) SealRefundDestination(refundID string, d RefundDestination) (Sealed, error) {
	b, err := json.Marshal(d)
	if err != nil {
		return Sealed{}, err
	}
	return k.Seal(b, RefundDestinationAD(refundID))
}

// OpenRefundDestination opens what SealRefundDestination sealed for refund refundID; a
// destination sealed for another refund does not open (ErrOpen).
func (k *Keyring) OpenRefundDestination(refundID string, s Sealed) (RefundDestination, error) {
	var d RefundDestination
	b, err := k.Open(s, RefundDestinationAD(refundID))
	if err != nil {
		return d, err
	}
	if err := json.Unmarshal(b, &d); err != nil {
		// The plaintext is a secret: say what failed, not what it was.
		return RefundDestination{}, fmt.Errorf("seal: refund destination of %s is not a destination", refundID)
	}
	return d, nil
}
