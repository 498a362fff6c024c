package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paysaga"
	"paysaga/settlement"
	"paysaga/store"
	"paysaga/store/storetest"
)

// kst is a time of a KST day.
func kst(day string, hour int) time.Time {
	d, err := settlement.ParseDay(day)
	if err != nil {
		panic(err)
	}
	return d.Add(time.Duration(hour) * time.Hour)
}

// seedMerchant creates a user with the merchant role.
func seedMerchant(t *testing.T, db *store.DB) string {
	t.Helper()
	u := &paysaga.User{ID: paysaga.NewID(paysaga.PrefixUser), Email: paysaga.NewID("") + "@shop.example",
		Name: "상점", Role: paysaga.RoleMerchant, PasswordHash: "x"}
	require.NoError(t, db.CreateUser(context.Background(), u))
	return u.ID
}

// capturedPayment records a payment of merchant captured (payment.succeeded written) at at.
func capturedPayment(t *testing.T, db *store.DB, merchantID string, amount int64, at time.Time) *paysaga.Payment {
	t.Helper()
	ctx := context.Background()
	customer, account := seedPayer(t, db)
	p := newTestPayment(customer, account, amount, at)
	p.MerchantID = merchantID
	err := db.RecordPaymentChange(ctx, store.PaymentChange{Create: p, PaymentID: p.ID, Status: paysaga.PaymentProcessing})
	require.NoError(t, err)
	err = db.RecordPaymentChange(ctx, store.PaymentChange{PaymentID: p.ID, Status: paysaga.PaymentSucceeded,
		Events: []paysaga.PaymentEvent{{ID: "evt_ok_" + p.ID, PaymentID: p.ID, Type: store.CapturedEventType,
			Status: paysaga.PaymentSucceeded, CreatedAt: at}}})
	require.NoError(t, err)
	return p
}

// succeededRefund refunds amount of p, settled SUCCEEDED at at.
func succeededRefund(t *testing.T, db *store.DB, p *paysaga.Payment, amount int64, at time.Time) string {
	t.Helper()
	ctx := context.Background()
	at2 := db.WithClock(func() time.Time { return at })
	r := newRefund(p.ID, amount)
	_, err := at2.ReserveRefund(ctx, store.RefundReservation{Refund: r})
	require.NoError(t, err)
	_, _, err = at2.SettleRefund(ctx, store.RefundSettlement{RefundID: r.ID, Status: paysaga.RefundSucceeded})
	require.NoError(t, err)
	return r.ID
}

func TestSettlementDays(t *testing.T) {
	for _, driver := range storetest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			db := storetest.Open(t, driver)
			m := seedMerchant(t, db)
			other := seedMerchant(t, db)

			// Day 1: two payments, a partial refund of the first; one payment of the next day;
			// another merchant's payment; an authorized (not captured) payment.
			p1 := capturedPayment(t, db, m, 10_000, kst("2026-11-30", 10))
			p2 := capturedPayment(t, db, m, 999, kst("2026-11-30", 23))
			r1 := succeededRefund(t, db, p1, 3_000, kst("2026-11-30", 20))
			p3 := capturedPayment(t, db, m, 5_000, kst("2026-12-01", 0)) // midnight KST: the next day
			capturedPayment(t, db, other, 1_000, kst("2026-11-30", 12))
			customer, account := seedPayer(t, db)
			auth := newTestPayment(customer, account, 7_000, kst("2026-11-30", 9))
			auth.MerchantID = m
			err := db.RecordPaymentChange(ctx, store.PaymentChange{Create: auth, PaymentID: auth.ID, Status: paysaga.PaymentProcessing})
			require.NoError(t, err)
			err = db.RecordPaymentChange(ctx, store.PaymentChange{PaymentID: auth.ID, Status: paysaga.PaymentAuthorized})
			require.NoError(t, err)

			// A payment with a refund in flight (reserved, not settled) waits.
			held := capturedPayment(t, db, m, 4_000, kst("2026-11-30", 11))
			_, err = db.ReserveRefund(ctx, store.RefundReservation{Refund: newRefund(held.ID, 1_000)})
			require.NoError(t, err)

			merchants, err := db.SettlementMerchants(ctx, "2026-11-30")
			require.NoError(t, err)
			require.ElementsMatch(t, []string{m, other}, merchants)

			s1, created, err := db.PrepareSettlement(ctx, m, "2026-11-30", 250)
			require.NoError(t, err)
			require.True(t, created)
			require.Equal(t, settlement.Pending, s1.Status)
			require.Equal(t, 2, s1.PaymentCount)
			require.Equal(t, 1, s1.RefundCount)
			require.EqualValues(t, 10_999, s1.PaymentAmount)
			require.EqualValues(t, 3_000, s1.RefundAmount)
			require.EqualValues(t, 250+24, s1.FeeAmount)
			require.EqualValues(t, 10_999-3_000-274, s1.Payout)

			again, created, err := db.PrepareSettlement(ctx, m, "2026-11-30", 100)
			require.NoError(t, err)
			require.False(t, created)
			require.Equal(t, s1.ID, again.ID)
			require.EqualValues(t, s1.Payout, again.Payout, "computed once")

			got, err := db.GetSettlement(ctx, s1.ID, true)
			require.NoError(t, err)
			require.Len(t, got.Lines, 3)
			ids := map[string]int64{}
			for _, l := range got.Lines {
				ids[l.ItemID()] = l.Fee
			}
			require.Equal(t, map[string]int64{p1.ID: 250, p2.ID: 24, r1: 0}, ids, "the held payment is not settled")

			// The payout: only for exactly the payout, only once.
			dest := store.PayoutDestination{BankCode: "011", Number: store.SealedAccountNumber{Ciphertext: []byte("sealed"), KeyID: "k1"}}
			_, err = db.PayoutDestinationOf(ctx, s1.ID)
			require.Equal(t, paysaga.ENOTFOUND, paysaga.ErrorCode(err), "no payout sent yet")
			tr := &paysaga.Transfer{ID: "trf_" + s1.ID + "_1", Kind: paysaga.TransferCreditAccountNumber,
				Amount: s1.Payout, Tsymd: "20261201", IsTuno: "20261201000000000001"}
			bad := *tr
			bad.Amount++
			_, _, err = db.CreatePayoutTransfer(ctx, s1.ID, &bad, dest)
			require.Equal(t, paysaga.ECONFLICT, paysaga.ErrorCode(err))
			stored, created, err := db.CreatePayoutTransfer(ctx, s1.ID, tr, dest)
			require.NoError(t, err)
			require.True(t, created)
			require.Equal(t, paysaga.TransferSent, stored.State)
			sentTo, err := db.PayoutDestinationOf(ctx, s1.ID)
			require.NoError(t, err)
			require.Equal(t, dest, *sentTo, "where the payout went is kept with it")
			_, created, err = db.CreatePayoutTransfer(ctx, s1.ID, tr, dest)
			require.NoError(t, err)
			require.False(t, created)
			second := *tr
			second.ID, second.IsTuno = tr.ID+"b", "20261201000000000002"
			_, _, err = db.CreatePayoutTransfer(ctx, s1.ID, &second, dest)
			require.Equal(t, paysaga.ECONFLICT, paysaga.ErrorCode(err), "a payout in doubt blocks another")
			_, err = db.FinishSettlement(ctx, store.SettlementOutcome{ID: s1.ID, Status: settlement.Failed})
			require.True(t, errors.Is(err, store.ErrPayoutInDoubt), "%v", err)
			_, err = db.FinishSettlement(ctx, store.SettlementOutcome{ID: s1.ID, Status: settlement.Paid, TransferID: tr.ID})
			require.Equal(t, paysaga.ECONFLICT, paysaga.ErrorCode(err), "paid only by an executed payout")

			// The payout is an ordinary transfer row: the bank's answer is recorded on it.
			err = db.UpdateTransfer(ctx, tr.ID, store.TransferUpdate{State: paysaga.TransferSucceeded, Rpcd: "00000"})
			require.NoError(t, err)
			byDay, err := db.ListTransfersByTsymd(ctx, "20261201")
			require.NoError(t, err)
			require.Len(t, byDay, 1, "reconcile sees the payout")
			paid, err := db.FinishSettlement(ctx, store.SettlementOutcome{ID: s1.ID, Status: settlement.Paid, TransferID: tr.ID})
			require.NoError(t, err)
			require.Equal(t, settlement.Paid, paid.Status)
			require.Equal(t, tr.ID, paid.TransferID)
			_, err = db.FinishSettlement(ctx, store.SettlementOutcome{ID: s1.ID, Status: settlement.Failed})
			require.Equal(t, paysaga.ECONFLICT, paysaga.ErrorCode(err))
			_, err = db.ReopenSettlement(ctx, s1.ID)
			require.Equal(t, paysaga.ECONFLICT, paysaga.ErrorCode(err))
			_, _, err = db.CreatePayoutTransfer(ctx, s1.ID, &second, dest)
			require.Equal(t, paysaga.ECONFLICT, paysaga.ErrorCode(err), "a paid settlement is never paid again")

			// Day 2: refunds outweigh payments: nothing paid, the debt carried over.
			succeededRefund(t, db, p1, 7_000, kst("2026-12-01", 8))
			s2, _, err := db.PrepareSettlement(ctx, m, "2026-12-01", 250)
			require.NoError(t, err)
			require.Equal(t, settlement.CarriedOver, s2.Status)
			require.EqualValues(t, 5_000-7_000-125, s2.Net)
			require.Zero(t, s2.Payout)
			require.EqualValues(t, s2.Net, s2.CarryOut)
			_ = p3

			// Day 3 (the merchant's own rate now): the debt is taken off, once.
			bps := int64(100)
			require.NoError(t, db.SetMerchantFee(ctx, m, &bps))
			capturedPayment(t, db, m, 10_000, kst("2026-12-02", 9))
			s3, _, err := db.PrepareSettlement(ctx, m, "2026-12-02", 250)
			require.NoError(t, err)
			require.EqualValues(t, 100, s3.FeeBPS)
			require.EqualValues(t, s2.CarryOut, s3.CarryIn)
			require.EqualValues(t, 10_000-100+s2.CarryOut, s3.Payout)

			// Nothing left for a day already swept.
			none, _, err := db.PrepareSettlement(ctx, m, "2026-11-29", 250)
			require.NoError(t, err)
			require.Nil(t, none)

			page, err := db.ListSettlements(ctx, store.SettlementFilter{MerchantID: m, Limit: 2})
			require.NoError(t, err)
			require.True(t, page.HasMore)
			require.Equal(t, []string{s3.ID, s2.ID}, []string{page.Settlements[0].ID, page.Settlements[1].ID})
			page, err = db.ListSettlements(ctx, store.SettlementFilter{MerchantID: m, StartingAfter: s2.ID})
			require.NoError(t, err)
			require.False(t, page.HasMore)
			require.Len(t, page.Settlements, 1)
			require.Equal(t, s1.ID, page.Settlements[0].ID)
			_, err = db.ListSettlements(ctx, store.SettlementFilter{MerchantID: other, StartingAfter: s2.ID})
			require.Equal(t, paysaga.EINVALID, paysaga.ErrorCode(err), "another merchant's cursor")
		})
	}
}

func TestSettlementRetryAndAccount(t *testing.T) {
	for _, driver := range storetest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			db := storetest.Open(t, driver)
			m := seedMerchant(t, db)
			capturedPayment(t, db, m, 20_000, kst("2026-11-30", 10))

			_, err := db.SettlementAccountOf(ctx, m)
			require.Equal(t, paysaga.ENOTFOUND, paysaga.ErrorCode(err))
			require.NoError(t, db.SetSettlementAccount(ctx, m, "088", "****7890", store.SealedAccountNumber{Ciphertext: []byte("sealed"), KeyID: "k1"}))
			customer, _ := seedPayer(t, db)
			err = db.SetSettlementAccount(ctx, customer, "088", "****7890", store.SealedAccountNumber{Ciphertext: []byte("x"), KeyID: "k1"})
			require.Equal(t, paysaga.ENOTFOUND, paysaga.ErrorCode(err), "only merchants have settlement accounts")
			bad := int64(10_001)
			require.Equal(t, paysaga.EINVALID, paysaga.ErrorCode(db.SetMerchantFee(ctx, m, &bad)))
			acct, err := db.SettlementAccountOf(ctx, m)
			require.NoError(t, err)
			require.True(t, acct.HasAccount())
			require.Equal(t, "****7890", acct.MaskedNumber)
			require.Nil(t, acct.FeeBPS)

			s, _, err := db.PrepareSettlement(ctx, m, "2026-11-30", 0)
			require.NoError(t, err)
			dest := store.PayoutDestination{BankCode: "088", Number: store.SealedAccountNumber{Ciphertext: []byte("sealed"), KeyID: "k1"}}
			tr := &paysaga.Transfer{ID: "trf_a", Kind: paysaga.TransferCreditOtherBank, Amount: s.Payout, Tsymd: "20261201", IsTuno: "7"}
			_, _, err = db.CreatePayoutTransfer(ctx, s.ID, tr, dest)
			require.NoError(t, err)
			err = db.UpdateTransfer(ctx, tr.ID, store.TransferUpdate{State: paysaga.TransferDeclined, Rpcd: "E1005"})
			require.NoError(t, err)
			failed, err := db.FinishSettlement(ctx, store.SettlementOutcome{ID: s.ID, Status: settlement.Failed, FailureCode: "E1005", FailureMessage: "no account"})
			require.NoError(t, err)
			require.Equal(t, settlement.Failed, failed.Status)
			_, _, err = db.CreatePayoutTransfer(ctx, s.ID, &paysaga.Transfer{ID: "trf_b", Kind: paysaga.TransferCreditOtherBank, Amount: s.Payout, Tsymd: "20261201", IsTuno: "8"}, dest)
			require.Equal(t, paysaga.ECONFLICT, paysaga.ErrorCode(err), "a FAILED settlement sends nothing until it is reopened")
			reopened, err := db.ReopenSettlement(ctx, s.ID)
			require.NoError(t, err)
			require.Equal(t, settlement.Pending, reopened.Status)
			require.Empty(t, reopened.FailureCode)
			_, created, err := db.CreatePayoutTransfer(ctx, s.ID, &paysaga.Transfer{ID: "trf_b", Kind: paysaga.TransferCreditOtherBank, Amount: s.Payout, Tsymd: "20261201", IsTuno: "8"}, dest)
			require.NoError(t, err)
			require.True(t, created)
			payouts, err := db.ListPayouts(ctx, s.ID)
			require.NoError(t, err)
			require.Len(t, payouts, 2)
		})
	}
}
