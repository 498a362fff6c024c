package settlement_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paysaga/settlement"
)

func TestFeeRoundsDownPerPayment(t *testing.T) {
	for _, tc := range []struct {
		amount, bps, want int64
	}{
		{10_000, 250, 250},
		{999, 250, 24}, // 24.975 → 24
		{39, 250, 0},   // under one won
		{15_000, 0, 0},
		{999_999_999_999_999, 10_000, 999_999_999_999_999},
	} {
		require.Equal(t, tc.want, settlement.Fee(tc.amount, tc.bps), "%d at %d bps", tc.amount, tc.bps)
	}
}

func TestCompute(t *testing.T) {
	s := &settlement.Settlement{Lines: []settlement.Line{
		{Kind: settlement.LinePayment, PaymentID: "pay_1", Amount: 10_000},
		{Kind: settlement.LinePayment, PaymentID: "pay_2", Amount: 999},
		{Kind: settlement.LineRefund, PaymentID: "pay_1", RefundID: "ref_1", Amount: 3_000},
	}}
	settlement.Compute(s, 250, -500)
	require.Equal(t, int64(250), s.Lines[0].Fee)
	require.Equal(t, int64(24), s.Lines[1].Fee)
	require.Zero(t, s.Lines[2].Fee, "a refund gives no fee back")
	require.Equal(t, int64(10_999), s.PaymentAmount)
	require.Equal(t, int64(3_000), s.RefundAmount)
	require.Equal(t, int64(274), s.FeeAmount)
	require.Equal(t, int64(10_999-3_000-274-500), s.Net)
	require.Equal(t, s.Net, s.Payout)
	require.Zero(t, s.CarryOut)
	require.Equal(t, settlement.Pending, s.Status)

	neg := &settlement.Settlement{Lines: []settlement.Line{
		{Kind: settlement.LinePayment, PaymentID: "pay_3", Amount: 1_000},
		{Kind: settlement.LineRefund, PaymentID: "pay_0", RefundID: "ref_2", Amount: 5_000},
	}}
	settlement.Compute(neg, 100, 0)
	require.Equal(t, int64(1_000-5_000-10), neg.Net)
	require.Zero(t, neg.Payout)
	require.Equal(t, neg.Net, neg.CarryOut)
	require.Equal(t, settlement.CarriedOver, neg.Status)

	// A positive carry-in is not a debt: ignored.
	pos := &settlement.Settlement{Lines: []settlement.Line{{Kind: settlement.LinePayment, PaymentID: "p", Amount: 100}}}
	settlement.Compute(pos, 0, 50)
	require.Equal(t, int64(100), pos.Payout)
}

func TestDays(t *testing.T) {
	// 00:30 KST on Dec 2 is still Dec 1 in UTC; the run settles Dec 1 (KST).
	at := time.Date(2026, 12, 1, 15, 30, 0, 0, time.UTC)
	require.Equal(t, "2026-12-01", settlement.PreviousDay(at))
	end, err := settlement.DayEnd("2026-12-01")
	require.NoError(t, err)
	require.Equal(t, time.Date(2026, 12, 1, 15, 0, 0, 0, time.UTC), end)
	days, err := settlement.Days("2026-11-29", "20261202", 10)
	require.NoError(t, err)
	require.Equal(t, []string{"2026-11-29", "2026-11-30", "2026-12-01", "2026-12-02"}, days)
	_, err = settlement.Days("2026-12-02", "2026-12-01", 10)
	require.Error(t, err)
	_, err = settlement.Days("2026-01-01", "2026-12-01", 31)
	require.Error(t, err)
	_, err = settlement.ParseDay("2026/12/01")
	require.Error(t, err)
}
