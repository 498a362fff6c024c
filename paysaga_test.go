package paysaga_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"paysaga"
)

func TestValidateAmount(t *testing.T) {
	for _, tc := range []struct {
		amount int64
		ok     bool
	}{
		{1, true},
		{15000, true},
		{paysaga.MaxAmount, true},
		{0, false},
		{-1, false},
		{paysaga.MaxAmount + 1, false},
	} {
		err := paysaga.ValidateAmount(tc.amount)
		if tc.ok {
			require.NoError(t, err, tc.amount)
		} else {
			require.Equal(t, paysaga.EINVALID, paysaga.ErrorCode(err), tc.amount)
		}
	}
}

func TestNewIDIsPrefixedAndUnique(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		id := paysaga.NewID(paysaga.PrefixPayment)
		require.True(t, paysaga.HasPrefix(id, paysaga.PrefixPayment), id)
		require.False(t, seen[id])
		seen[id] = true
	}
	require.False(t, paysaga.HasPrefix("pay_", paysaga.PrefixPayment))
	require.False(t, paysaga.HasPrefix("ref_abc", paysaga.PrefixPayment))
}

func TestMaskAccountNumber(t *testing.T) {
	require.Equal(t, "****5678", paysaga.MaskAccountNumber("301-1234-5678"))
	require.Equal(t, "****", paysaga.MaskAccountNumber("123"))
	require.NotContains(t, paysaga.MaskAccountNumber("3020000012345"), "302000001")
}

func TestPaymentTransitions(t *testing.T) {
	allowed := map[[2]paysaga.PaymentStatus]bool{
		{paysaga.PaymentPending, paysaga.PaymentProcessing}:                  true,
		{paysaga.PaymentPending, paysaga.PaymentFailed}:                      true,
		{paysaga.PaymentProcessing, paysaga.PaymentSucceeded}:                true,
		{paysaga.PaymentProcessing, paysaga.PaymentFailed}:                   true,
		{paysaga.PaymentProcessing, paysaga.PaymentUnknown}:                  true,
		{paysaga.PaymentProcessing, paysaga.PaymentAuthorized}:               true,
		{paysaga.PaymentUnknown, paysaga.PaymentSucceeded}:                   true,
		{paysaga.PaymentUnknown, paysaga.PaymentFailed}:                      true,
		{paysaga.PaymentUnknown, paysaga.PaymentAuthorized}:                  true,
		{paysaga.PaymentAuthorized, paysaga.PaymentSucceeded}:                true,
		{paysaga.PaymentAuthorized, paysaga.PaymentCanceled}:                 true,
		{paysaga.PaymentSucceeded, paysaga.PaymentPartiallyRefunded}:         true,
		{paysaga.PaymentSucceeded, paysaga.PaymentRefunded}:                  true,
		{paysaga.PaymentPartiallyRefunded, paysaga.PaymentPartiallyRefunded}: true,
		{paysaga.PaymentPartiallyRefunded, paysaga.PaymentRefunded}:          true,
	}
	all := []paysaga.PaymentStatus{
		paysaga.PaymentPending, paysaga.PaymentProcessing, paysaga.PaymentAuthorized,
		paysaga.PaymentSucceeded, paysaga.PaymentFailed, paysaga.PaymentUnknown,
		paysaga.PaymentPartiallyRefunded, paysaga.PaymentRefunded, paysaga.PaymentCanceled,
	}
	for _, from := range all {
		require.True(t, from.Valid(), from)
		for _, to := range all {
			require.Equal(t, allowed[[2]paysaga.PaymentStatus{from, to}], from.CanTransition(to), "%s -> %s", from, to)
		}
	}
	// A failed, refunded or canceled payment never moves again: no second debit, no refund of
	// money that was never taken.
	for _, terminal := range []paysaga.PaymentStatus{paysaga.PaymentFailed, paysaga.PaymentRefunded, paysaga.PaymentCanceled} {
		for _, to := range all {
			require.False(t, terminal.CanTransition(to), "%s -> %s", terminal, to)
		}
	}
	require.False(t, paysaga.PaymentStatus("BOGUS").Valid())
}

func TestRefundable(t *testing.T) {
	p := &paysaga.Payment{Amount: 10000, RefundedAmount: 3000, Status: paysaga.PaymentPartiallyRefunded}
	require.EqualValues(t, 7000, p.Refundable())
	p.Status = paysaga.PaymentFailed
	require.Zero(t, p.Refundable())
	p.Status = paysaga.PaymentUnknown
	require.Zero(t, p.Refundable(), "an unknown payment may not have taken any money")
}

func TestRefundTransitions(t *testing.T) {
	require.True(t, paysaga.RefundPending.CanTransition(paysaga.RefundSucceeded))
	require.True(t, paysaga.RefundFailed.CanTransition(paysaga.RefundPending), "replay")
	require.False(t, paysaga.RefundSucceeded.CanTransition(paysaga.RefundPending), "a refund that succeeded is never replayed")
	require.False(t, paysaga.RefundSucceeded.CanTransition(paysaga.RefundFailed))
}

func TestErrorCodes(t *testing.T) {
	err := fmt.Errorf("load payment: %w", paysaga.Errorf(paysaga.ENOTFOUND, "payment not found"))
	require.Equal(t, paysaga.ENOTFOUND, paysaga.ErrorCode(err))
	require.Equal(t, "payment not found", paysaga.ErrorMessage(err))

	internal := errors.New("dial tcp 10.0.0.1:3306: secret detail")
	require.Equal(t, paysaga.EINTERNAL, paysaga.ErrorCode(internal))
	require.False(t, strings.Contains(paysaga.ErrorMessage(internal), "secret"))
	require.Equal(t, "", paysaga.ErrorCode(nil))
}
