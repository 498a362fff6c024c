package paysaga_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"paysaga"
)

// Never refund more than was paid: a reservation fits only in what neither a settled refund
// nor one in flight took, and only from a status that can be refunded.
func TestReserveRefund(t *testing.T) {
	for _, tc := range []struct {
		name         string
		status       paysaga.PaymentStatus
		refunded     int64
		reserved     int64
		amount       int64
		cancellation bool
		want         int64  // reserved after, when allowed
		refusal      string // part of the ECONFLICT message, when refused
	}{
		{name: "first refund", status: paysaga.PaymentSucceeded, amount: 6_000, want: 6_000},
		{name: "next to one in flight", status: paysaga.PaymentSucceeded, reserved: 6_000, amount: 4_000, want: 10_000},
		{name: "to the last won", status: paysaga.PaymentPartiallyRefunded, refunded: 3_000, reserved: 2_000, amount: 5_000, want: 7_000},
		{name: "one won too many", status: paysaga.PaymentPartiallyRefunded, refunded: 3_000, reserved: 2_000, amount: 5_001,
			refusal: "a refund of 5001 won exceeds what is left to refund of payment pay_1: 5000 won (3000 refunded, 2000 being refunded)"},
		{name: "in flight counts", status: paysaga.PaymentSucceeded, reserved: 6_000, amount: 5_000, refusal: ": 4000 won"},
		{name: "refunded", status: paysaga.PaymentRefunded, refunded: 10_000, amount: 1, refusal: "REFUNDED and cannot be refunded"},
		{name: "unknown", status: paysaga.PaymentUnknown, amount: 1, refusal: "UNKNOWN and cannot be refunded"},
		{name: "failed", status: paysaga.PaymentFailed, amount: 1, refusal: "FAILED and cannot be refunded"},
		{name: "authorized", status: paysaga.PaymentAuthorized, amount: 1, refusal: "AUTHORIZED: capture it first, or cancel it"},
		{name: "cancellation", status: paysaga.PaymentAuthorized, amount: 10_000, cancellation: true, want: 10_000},
		{name: "cancellation of a captured payment", status: paysaga.PaymentSucceeded, amount: 10_000, cancellation: true,
			refusal: "is SUCCEEDED, not AUTHORIZED"},
		{name: "cancellation too large", status: paysaga.PaymentAuthorized, amount: 10_001, cancellation: true,
			refusal: "exceeds what is left to refund"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &paysaga.Payment{ID: "pay_1", Amount: 10_000, RefundedAmount: tc.refunded, Status: tc.status}
			got, err := p.ReserveRefund(tc.reserved, tc.amount, tc.cancellation)
			if tc.refusal != "" {
				require.Equal(t, paysaga.ECONFLICT, paysaga.ErrorCode(err), "%v", err)
				require.Contains(t, paysaga.ErrorMessage(err), tc.refusal)
				require.Equal(t, tc.reserved, got, "a refusal reserves nothing")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
	p := &paysaga.Payment{ID: "pay_1", Amount: 10_000, Status: paysaga.PaymentSucceeded}
	_, err := p.ReserveRefund(0, 0, false)
	require.Equal(t, paysaga.EINVALID, paysaga.ErrorCode(err), "a refund of nothing")
}

// A refund that succeeded moves its amount from reserved to refunded and the payment on: the
// only way a payment becomes PARTIALLY_REFUNDED, REFUNDED or CANCELED.
func TestRefundSucceeded(t *testing.T) {
	for _, tc := range []struct {
		status   paysaga.PaymentStatus
		refunded int64
		amount   int64
		want     paysaga.PaymentStatus
	}{
		{paysaga.PaymentSucceeded, 0, 4_000, paysaga.PaymentPartiallyRefunded},
		{paysaga.PaymentSucceeded, 0, 10_000, paysaga.PaymentRefunded},
		{paysaga.PaymentPartiallyRefunded, 4_000, 1_000, paysaga.PaymentPartiallyRefunded},
		{paysaga.PaymentPartiallyRefunded, 4_000, 6_000, paysaga.PaymentRefunded},
		{paysaga.PaymentAuthorized, 0, 10_000, paysaga.PaymentCanceled},
		// Money that went back is counted whatever became of the payment meanwhile; its status
		// moves only along the transitions allowed.
		{paysaga.PaymentAuthorized, 0, 4_000, paysaga.PaymentAuthorized},
		{paysaga.PaymentRefunded, 10_000, 0, paysaga.PaymentRefunded},
	} {
		p := &paysaga.Payment{ID: "pay_1", Amount: 10_000, RefundedAmount: tc.refunded, Status: tc.status}
		got := p.RefundSucceeded(tc.amount)
		require.Equal(t, tc.want, got.Status, "%s + %d", tc.status, tc.amount)
		require.Equal(t, tc.refunded+tc.amount, got.RefundedAmount)
		require.Equal(t, tc.status, p.Status, "p itself is unchanged")
		if got.Status != tc.status {
			require.True(t, tc.status.CanTransition(got.Status), "%s -> %s", tc.status, got.Status)
		}
	}
}

func TestSetByRefund(t *testing.T) {
	for _, s := range []paysaga.PaymentStatus{paysaga.PaymentPartiallyRefunded, paysaga.PaymentRefunded, paysaga.PaymentCanceled} {
		require.True(t, s.SetByRefund(), s)
	}
	for _, s := range []paysaga.PaymentStatus{paysaga.PaymentPending, paysaga.PaymentProcessing, paysaga.PaymentAuthorized,
		paysaga.PaymentSucceeded, paysaga.PaymentFailed, paysaga.PaymentUnknown} {
		require.False(t, s.SetByRefund(), s)
	}
}

// A refund settles only along its transitions; settling it again where it is already is a
// no-op, and PENDING is reached only by reserving (or replaying) it.
func TestRefundSettle(t *testing.T) {
	for _, tc := range []struct {
		from, to paysaga.RefundStatus
		changes  bool
		code     string
	}{
		{paysaga.RefundPending, paysaga.RefundSucceeded, true, ""},
		{paysaga.RefundPending, paysaga.RefundFailed, true, ""},
		{paysaga.RefundPending, paysaga.RefundUnknown, true, ""},
		{paysaga.RefundUnknown, paysaga.RefundSucceeded, true, ""},
		{paysaga.RefundUnknown, paysaga.RefundFailed, true, ""},
		{paysaga.RefundSucceeded, paysaga.RefundSucceeded, false, ""},
		{paysaga.RefundUnknown, paysaga.RefundUnknown, false, ""},
		{paysaga.RefundFailed, paysaga.RefundSucceeded, false, paysaga.ECONFLICT},
		{paysaga.RefundSucceeded, paysaga.RefundFailed, false, paysaga.ECONFLICT},
		{paysaga.RefundUnknown, paysaga.RefundPending, false, paysaga.EINVALID},
		{paysaga.RefundFailed, paysaga.RefundPending, false, paysaga.EINVALID},
	} {
		r := &paysaga.Refund{ID: "ref_1", Status: tc.from}
		changes, err := r.Settle(tc.to)
		require.Equal(t, tc.code, paysaga.ErrorCode(err), "%s -> %s: %v", tc.from, tc.to, err)
		require.Equal(t, tc.changes, changes, "%s -> %s", tc.from, tc.to)
	}
}

func TestFormatWon(t *testing.T) {
	for amount, want := range map[int64]string{
		0: "0", 7: "7", 999: "999", 1_000: "1,000", 15_000: "15,000", 1_234_567: "1,234,567",
		-1_234: "-1,234", -123: "-123", paysaga.MaxAmount: "999,999,999,999,999",
	} {
		require.Equal(t, want, paysaga.FormatWon(amount), "%d", amount)
	}
}
