package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paysaga"
	"paysaga/store"
	"paysaga/store/storetest"
)

// A refund's credit and its FAILED settlement (which frees its amount for another refund) can
// never interleave (issue 11, item 4): with a credit in flight the reservation is not given
// back, and once given back no credit of that refund is recorded, let alone sent. Before, the
// check ran outside the settlement's transaction, and a cancelled refund could be settled
// FAILED while its credit still went out.
func TestRefundCreditAndFailedSettlementCannotInterleave(t *testing.T) {
	for _, driver := range storetest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			db := storetest.Open(t, driver)
			p := paidPayment(t, db, 10_000, paysaga.PaymentSucceeded)

			r1 := newRefund(p.ID, 10_000)
			_, err := db.ReserveRefund(ctx, store.RefundReservation{Refund: r1})
			require.NoError(t, err)
			tr := &paysaga.Transfer{ID: "trf_c_1", PaymentID: p.ID, RefundID: r1.ID, Kind: paysaga.TransferCreditFinAccount,
				Amount: 10_000, Tsymd: "20261202", IsTuno: "20261202000000000001"}
			_, created, err := db.CreateRefundTransfer(ctx, tr)
			require.NoError(t, err)
			require.True(t, created)

			// The credit is at the bank (SENT): the reservation stays.
			_, _, err = db.SettleRefund(ctx, store.RefundSettlement{RefundID: r1.ID, Status: paysaga.RefundFailed})
			require.True(t, errors.Is(err, store.ErrCreditInDoubt), "%v", err)
			reserved, err := db.ReservedRefundAmount(ctx, p.ID)
			require.NoError(t, err)
			require.EqualValues(t, 10_000, reserved)
			// Nor can a second credit of the same refund be recorded meanwhile.
			tr2 := *tr
			tr2.ID, tr2.IsTuno = "trf_c_2", "20261202000000000002"
			_, _, err = db.CreateRefundTransfer(ctx, &tr2)
			require.Equal(t, paysaga.ECONFLICT, paysaga.ErrorCode(err))

			// It executed: a FAILED settlement is refused as such.
			err = db.UpdateTransfer(ctx, tr.ID, store.TransferUpdate{State: paysaga.TransferSucceeded, Rpcd: "00000"})
			require.NoError(t, err)
			_, _, err = db.SettleRefund(ctx, store.RefundSettlement{RefundID: r1.ID, Status: paysaga.RefundFailed})
			require.True(t, errors.Is(err, store.ErrCreditExecuted), "%v", err)
			_, _, err = db.SettleRefund(ctx, store.RefundSettlement{RefundID: r1.ID, Status: paysaga.RefundSucceeded})
			require.NoError(t, err)

			// A refund settled FAILED gets no credit afterwards (a late, cancelled activity).
			p2 := paidPayment(t, db, 5_000, paysaga.PaymentSucceeded)
			r2 := newRefund(p2.ID, 5_000)
			_, err = db.ReserveRefund(ctx, store.RefundReservation{Refund: r2})
			require.NoError(t, err)
			_, _, err = db.SettleRefund(ctx, store.RefundSettlement{RefundID: r2.ID, Status: paysaga.RefundFailed})
			require.NoError(t, err)
			late := &paysaga.Transfer{ID: "trf_c_3", PaymentID: p2.ID, RefundID: r2.ID, Kind: paysaga.TransferCreditFinAccount,
				Amount: 5_000, Tsymd: "20261202", IsTuno: "20261202000000000003"}
			_, _, err = db.CreateRefundTransfer(ctx, late)
			require.Equal(t, paysaga.ECONFLICT, paysaga.ErrorCode(err), "%v", err)
			_, err = db.GetTransfer(ctx, late.ID)
			require.Equal(t, paysaga.ENOTFOUND, paysaga.ErrorCode(err), "nothing recorded, so nothing sent")
		})
	}
}

// A payment step recorded once and run again later (its local activity re-executed after a
// worker died before its workflow task completed) is done, even when the payment has moved on
// since: a refund made the SUCCEEDED payment PARTIALLY_REFUNDED meanwhile. Before, the status
// change was refused and the payment waited for an operator whose resolution could never be
// recorded either (found by make chaos).
func TestRecordedPaymentStepRunAgainAfterARefundIsDone(t *testing.T) {
	for _, driver := range storetest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			db := storetest.Open(t, driver)
			customer, account := seedPayer(t, db)
			p := newTestPayment(customer, account, 10_000, time.Now())
			_, _, err := db.CreatePayment(ctx, p)
			require.NoError(t, err)
			err = db.RecordPaymentChange(ctx, store.PaymentChange{PaymentID: p.ID, Status: paysaga.PaymentProcessing})
			require.NoError(t, err)
			succeeded := store.PaymentChange{PaymentID: p.ID, Status: paysaga.PaymentSucceeded, Events: []paysaga.PaymentEvent{
				{ID: "evt_" + p.ID + "_003", PaymentID: p.ID, Type: "payment.succeeded", Status: paysaga.PaymentSucceeded}}}
			err = db.RecordPaymentChange(ctx, succeeded)
			require.NoError(t, err)

			r := newRefund(p.ID, 4_000)
			_, err = db.ReserveRefund(ctx, store.RefundReservation{Refund: r})
			require.NoError(t, err)
			_, _, err = db.SettleRefund(ctx, store.RefundSettlement{RefundID: r.ID, Status: paysaga.RefundSucceeded})
			require.NoError(t, err)

			require.NoError(t, db.RecordPaymentChange(ctx, succeeded), "the step was recorded already")
			got, err := db.GetPayment(ctx, p.ID)
			require.NoError(t, err)
			require.Equal(t, paysaga.PaymentPartiallyRefunded, got.Status, "and the payment keeps what happened since")

			// A step that was never recorded is still checked against the rules.
			err = db.RecordPaymentChange(ctx, store.PaymentChange{PaymentID: p.ID, Status: paysaga.PaymentSucceeded,
				Events: []paysaga.PaymentEvent{{ID: "evt_" + p.ID + "_009", PaymentID: p.ID, Type: "payment.succeeded"}}})
			require.Equal(t, paysaga.ECONFLICT, paysaga.ErrorCode(err))
		})
	}
}

// A FAILED settlement that had to wait for the payment's row lock while a credit of its refund
// was being recorded sees that credit (MySQL: its reads after the lock are locking reads, not
// the transaction's snapshot taken before it waited), and keeps the reservation. SQLite's
// transactions hold the write lock from their first statement: they cannot interleave so.
func TestFailedSettlementThatWaitedForTheLockSeesTheCreditRecordedMeanwhile(t *testing.T) {
	ctx := context.Background()
	db := storetest.Open(t, store.DriverMySQL)
	p := paidPayment(t, db, 10_000, paysaga.PaymentSucceeded)
	r := newRefund(p.ID, 10_000)
	_, err := db.ReserveRefund(ctx, store.RefundReservation{Refund: r})
	require.NoError(t, err)

	// CreateRefundTransfer's transaction, by hand: the payment's row lock first.
	tx, err := db.Bun().BeginTx(ctx, nil)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback() }()
	var id string
	require.NoError(t, tx.QueryRowContext(ctx, "SELECT id FROM payments WHERE id = ? FOR UPDATE", p.ID).Scan(&id))

	settled := make(chan error, 1)
	go func() {
		_, _, err := db.SettleRefund(ctx, store.RefundSettlement{RefundID: r.ID, Status: paysaga.RefundFailed})
		settled <- err
	}()
	// The settlement has read the refund and waits for the payment's row.
	deadline := time.Now().Add(30 * time.Second)
	for {
		var waiting int
		require.NoError(t, db.Bun().QueryRowContext(ctx, `SELECT COUNT(*) FROM information_schema.processlist
			WHERE db = DATABASE() AND command = 'Query' AND info LIKE '%FROM `+"`payments`"+`%FOR UPDATE'`).Scan(&waiting))
		if waiting > 0 {
			break
		}
		require.True(t, time.Now().Before(deadline), "the settlement never waited for the payment's row")
		select {
		case err := <-settled:
			t.Fatalf("the settlement did not wait for the payment's row lock: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	now := db.Now()
	_, err = tx.NewInsert().TableExpr("bank_transfers").Model(&map[string]any{
		"id": "trf_meanwhile", "payment_id": p.ID, "refund_id": r.ID, "kind": string(paysaga.TransferCreditFinAccount),
		"amount": 10_000, "tsymd": "20261202", "is_tuno": "20261202000000000009", "state": string(paysaga.TransferSent),
		"rpcd": "", "rsms": "", "created_at": now, "updated_at": now,
	}).Exec(ctx)
	require.NoError(t, err)
	require.NoError(t, tx.Commit())

	err = <-settled
	require.True(t, errors.Is(err, store.ErrCreditInDoubt), "%v", err)
	reserved, err := db.ReservedRefundAmount(ctx, p.ID)
	require.NoError(t, err)
	require.EqualValues(t, 10_000, reserved, "the credit may have gone out: the reservation stays")
	got, err := db.GetRefund(ctx, r.ID)
	require.NoError(t, err)
	require.Equal(t, paysaga.RefundPending, got.Status)
}
