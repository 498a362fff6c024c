package workflows

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"paysaga"
	"paysaga/activities"
)

// A debit the activity refused before sending anything is final: the payment FAILED with the
// failure code of the refusal, one transfer tried, no check asked.
func TestPaymentRefusedBeforeSending(t *testing.T) {
	for _, tc := range []struct {
		errType, code, message string
	}{
		{activities.ErrTypeAccountUnusable, FailureAccountUnusable, "the account cannot be debited"},
		{activities.ErrTypeInvalidRequest, FailureInvalidRequest, "the bank request was refused as malformed"},
	} {
		t.Run(tc.errType, func(t *testing.T) {
			steps := &fakeSteps{debitFn: func(int, activities.DebitInput) (activities.DebitResult, error) {
				return activities.DebitResult{}, temporal.NewNonRetryableApplicationError("refused", tc.errType, nil)
			}}
			h := newHarness(t, steps)
			p := h.run(t)

			require.Equal(t, paysaga.PaymentFailed, p.Status)
			require.Equal(t, tc.code, p.FailureCode)
			require.Equal(t, tc.message, p.FailureMessage)
			require.Len(t, steps.debits, 1)
			require.Empty(t, steps.checks)
			require.Equal(t, []string{EventFailed}, steps.publishedTypes())
		})
	}
}

// A credit the activity refused before sending anything is final: the reservation is given
// back and the refund FAILED with the failure code of the refusal.
func TestRefundRefusedBeforeSending(t *testing.T) {
	for _, tc := range []struct {
		errType, code, message string
	}{
		{activities.ErrTypeAccountUnusable, FailureAccountUnusable, "the account cannot be credited"},
		{activities.ErrTypeInvalidRequest, FailureInvalidRequest, "the bank request was refused as malformed"},
		{activities.ErrTypeNameMismatch, FailureNameMismatch, "the account holder's name does not match"},
	} {
		t.Run(tc.errType, func(t *testing.T) {
			steps := &fakeRefundSteps{creditFn: func(int, activities.CreditInput) (activities.CreditResult, error) {
				return activities.CreditResult{}, temporal.NewNonRetryableApplicationError("refused", tc.errType, nil)
			}}
			h := newRefundHarness(t, steps)
			r, err := h.run(t, testRefundInput())
			require.NoError(t, err)

			require.Equal(t, paysaga.RefundFailed, r.Status)
			require.Len(t, steps.credits, 1, "nothing was sent: no second credit")
			require.Equal(t, []paysaga.RefundStatus{paysaga.RefundFailed}, steps.settledStatuses(), "the reservation is given back")
			require.Equal(t, tc.code, steps.settles[0].FailureCode)
			require.Equal(t, tc.message, steps.settles[0].FailureMessage)
			require.Equal(t, []string{EventRefundFailed}, steps.publishedTypes())
		})
	}
}
