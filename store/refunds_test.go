package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paysaga"
	"paysaga/store"
	"paysaga/store/storetest"
)

// paidPayment records a payment of amount in status (SUCCEEDED unless said otherwise).
func paidPayment(t *testing.T, db *store.DB, amount int64, status paysaga.PaymentStatus) *paysaga.Payment {
	t.Helper()
	ctx := context.Background()
	customer, account := seedPayer(t, db)
	p := newTestPayment(customer, account, amount, time.Now())
	err := db.RecordPaymentChange(ctx, store.PaymentChange{Create: p, PaymentID: p.ID, Status: paysaga.PaymentProcessing})
	require.NoError(t, err)
	err = db.RecordPaymentChange(ctx, store.PaymentChange{PaymentID: p.ID, Status: status})
	require.NoError(t, err)
	return p
}

func newRefund(paymentID string, amount int64) paysaga.Refund {
	return paysaga.Refund{ID: paysaga.NewID(paysaga.PrefixRefund), PaymentID: paymentID, Amount: amount,
		Reason: "damaged", CreatedBy: "usr_merchant_a"}
}

func TestRefundsReserveSettleAndRelease(t *testing.T) {
	for _, driver := range storetest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			db := storetest.Open(t, driver)
			p := paidPayment(t, db, 10_000, paysaga.PaymentSucceeded)

			// 6,000 reserved; then 5,000 more is refused, and says how much is left.
			r1 := newRefund(p.ID, 6_000)
			got, err := db.ReserveRefund(ctx, store.RefundReservation{Refund: r1, Events: []paysaga.PaymentEvent{
				{ID: "evt_" + r1.ID, PaymentID: p.ID, RefundID: r1.ID, Type: "refund.created"}}})
			require.NoError(t, err)
			require.Equal(t, paysaga.RefundPending, got.Status)
			require.Equal(t, paysaga.DestinationFinAccount, got.Destination.Kind)
			require.NotEmpty(t, got.Destination.MaskedNumber, "shown by the payment account's masked number")
			_, err = db.ReserveRefund(ctx, store.RefundReservation{Refund: newRefund(p.ID, 5_000)})
			require.Equal(t, paysaga.ECONFLICT, paysaga.ErrorCode(err))
			require.Contains(t, paysaga.ErrorMessage(err), ": 4000 won")

			// Reserving the same refund again is a no-op.
			again, err := db.ReserveRefund(ctx, store.RefundReservation{Refund: r1})
			require.NoError(t, err)
			require.Equal(t, r1.ID, again.ID)
			reserved, err := db.ReservedRefundAmount(ctx, p.ID)
			require.NoError(t, err)
			require.EqualValues(t, 6_000, reserved)

			// A failure gives the reservation back; 5,000 fits again.
			failed, _, err := db.SettleRefund(ctx, store.RefundSettlement{RefundID: r1.ID, Status: paysaga.RefundFailed,
				FailureCode: "E1005", FailureMessage: "계좌정보가 존재하지 않습니다."})
			require.NoError(t, err)
			require.Equal(t, paysaga.RefundFailed, failed.Status)
			require.Equal(t, "E1005", failed.FailureCode)
			reserved, _ = db.ReservedRefundAmount(ctx, p.ID)
			require.Zero(t, reserved)
			_, _, err = db.SettleRefund(ctx, store.RefundSettlement{RefundID: r1.ID, Status: paysaga.RefundSucceeded})
			require.Equal(t, paysaga.ECONFLICT, paysaga.ErrorCode(err), "a FAILED refund does not succeed without a replay")

			r2 := newRefund(p.ID, 5_000)
			_, err = db.ReserveRefund(ctx, store.RefundReservation{Refund: r2})
			require.NoError(t, err)
			_, pay, err := db.SettleRefund(ctx, store.RefundSettlement{RefundID: r2.ID, Status: paysaga.RefundSucceeded})
			require.NoError(t, err)
			require.Equal(t, paysaga.PaymentPartiallyRefunded, pay.Status)
			require.EqualValues(t, 5_000, pay.RefundedAmount)
			_, pay, err = db.SettleRefund(ctx, store.RefundSettlement{RefundID: r2.ID, Status: paysaga.RefundSucceeded})
			require.NoError(t, err, "idempotent")
			require.EqualValues(t, 5_000, pay.RefundedAmount, "counted once")

			// The replay of the failed one no longer fits (5,000 left, 6,000 asked) and stays FAILED.
			_, err = db.ReserveRefund(ctx, store.RefundReservation{Refund: r1, Replay: true})
			require.Equal(t, paysaga.ECONFLICT, paysaga.ErrorCode(err))
			stillFailed, err := db.GetRefund(ctx, r1.ID)
			require.NoError(t, err)
			require.Equal(t, paysaga.RefundFailed, stillFailed.Status)

			// The rest, to exhaustion: REFUNDED, and nothing more.
			r3 := newRefund(p.ID, 5_000)
			_, err = db.ReserveRefund(ctx, store.RefundReservation{Refund: r3})
			require.NoError(t, err)
			_, pay, err = db.SettleRefund(ctx, store.RefundSettlement{RefundID: r3.ID, Status: paysaga.RefundSucceeded})
			require.NoError(t, err)
			require.Equal(t, paysaga.PaymentRefunded, pay.Status)
			require.EqualValues(t, 10_000, pay.RefundedAmount)
			_, err = db.ReserveRefund(ctx, store.RefundReservation{Refund: newRefund(p.ID, 1)})
			require.Equal(t, paysaga.ECONFLICT, paysaga.ErrorCode(err))

			page, err := db.ListRefunds(ctx, store.RefundFilter{PaymentID: p.ID})
			require.NoError(t, err)
			require.Len(t, page.Refunds, 5, "three reserved, two refused")
			failedOnly, err := db.ListRefunds(ctx, store.RefundFilter{Status: paysaga.RefundFailed, Since: time.Now().Add(-time.Hour)})
			require.NoError(t, err)
			var failedIDs []string
			for _, r := range failedOnly.Refunds {
				if r.FailureCode != store.RefundRefused {
					failedIDs = append(failedIDs, r.ID)
				}
			}
			require.Equal(t, []string{r1.ID}, failedIDs)
		})
	}
}

func TestRefundReplayOfFailedRefund(t *testing.T) {
	for _, driver := range storetest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			db := storetest.Open(t, driver)
			p := paidPayment(t, db, 10_000, paysaga.PaymentSucceeded)
			r := newRefund(p.ID, 4_000)
			_, err := db.ReserveRefund(ctx, store.RefundReservation{Refund: r})
			require.NoError(t, err)
			_, _, err = db.SettleRefund(ctx, store.RefundSettlement{RefundID: r.ID, Status: paysaga.RefundFailed, FailureCode: "E9999"})
			require.NoError(t, err)

			replayed, err := db.ReserveRefund(ctx, store.RefundReservation{Refund: r, Replay: true})
			require.NoError(t, err)
			require.Equal(t, paysaga.RefundPending, replayed.Status)
			require.Empty(t, replayed.FailureCode)
			// The replay's step run again reserves nothing more.
			_, err = db.ReserveRefund(ctx, store.RefundReservation{Refund: r, Replay: true})
			require.NoError(t, err)
			reserved, _ := db.ReservedRefundAmount(ctx, p.ID)
			require.EqualValues(t, 4_000, reserved)

			_, _, err = db.SettleRefund(ctx, store.RefundSettlement{RefundID: r.ID, Status: paysaga.RefundSucceeded})
			require.NoError(t, err)
			_, err = db.ReserveRefund(ctx, store.RefundReservation{Refund: r, Replay: true})
			require.Equal(t, paysaga.ECONFLICT, paysaga.ErrorCode(err), "a refund that succeeded is never replayed")
			require.Contains(t, paysaga.ErrorMessage(err), "already succeeded")
		})
	}
}

func TestRefundOfAuthorizedPaymentOnlyAsCancellation(t *testing.T) {
	for _, driver := range storetest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			db := storetest.Open(t, driver)
			p := paidPayment(t, db, 10_000, paysaga.PaymentAuthorized)

			_, err := db.ReserveRefund(ctx, store.RefundReservation{Refund: newRefund(p.ID, 1_000)})
			require.Equal(t, paysaga.ECONFLICT, paysaga.ErrorCode(err))
			require.Contains(t, paysaga.ErrorMessage(err), "AUTHORIZED")

			c := newRefund(p.ID, 10_000)
			_, err = db.ReserveRefund(ctx, store.RefundReservation{Refund: c, Cancellation: true})
			require.NoError(t, err)
			_, pay, err := db.SettleRefund(ctx, store.RefundSettlement{RefundID: c.ID, Status: paysaga.RefundSucceeded})
			require.NoError(t, err)
			require.Equal(t, paysaga.PaymentCanceled, pay.Status)
			require.EqualValues(t, 10_000, pay.RefundedAmount)
		})
	}
}

func TestRefundDestinationIsCopiedFromTheSavedOne(t *testing.T) {
	ctx := context.Background()
	db := storetest.Open(t, store.DriverSQLite)
	p := paidPayment(t, db, 10_000, paysaga.PaymentSucceeded)
	r := newRefund(p.ID, 1_000)
	d := store.SealedDestination{Kind: paysaga.DestinationOtherBank, BankCode: "004", Masked: "****4321",
		Sealed: store.SealedSecret{Ciphertext: []byte("sealed"), KeyID: "k1"}}
	require.NoError(t, db.SaveRefundDestination(ctx, r.ID, d))
	require.NoError(t, db.SaveRefundDestination(ctx, r.ID, d), "saved again: the same")
	other := d
	other.Masked = "****9999"
	require.Equal(t, paysaga.ECONFLICT, paysaga.ErrorCode(db.SaveRefundDestination(ctx, r.ID, other)))

	got, err := db.ReserveRefund(ctx, store.RefundReservation{Refund: r})
	require.NoError(t, err)
	require.Equal(t, paysaga.RefundDestination{Kind: paysaga.DestinationOtherBank, BankCode: "004", MaskedNumber: "****4321"}, got.Destination)
	sealed, err := db.RefundDestinationOf(ctx, r.ID)
	require.NoError(t, err)
	require.Equal(t, []byte("sealed"), sealed.Sealed.Ciphertext)
	require.Equal(t, "k1", sealed.Sealed.KeyID)
}

// Fifty concurrent refunds of 30% each at one payment: three fit, every other one is refused
// with a clear reason, and the amounts add up — on MariaDB, where the requests really race.
func TestConcurrentRefundsNeverExceedThePayment(t *testing.T) {
	for _, driver := range storetest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			db := storetest.Open(t, driver)
			p := paidPayment(t, db, 100_000, paysaga.PaymentSucceeded)

			const n = 50
			var (
				wg       sync.WaitGroup
				mu       sync.Mutex
				reserved []string
				refused  []error
			)
			for range n {
				wg.Go(func() {
					r := newRefund(p.ID, 30_000)
					_, err := db.ReserveRefund(ctx, store.RefundReservation{Refund: r})
					if err == nil {
						// Half settle at once, racing with the reservations still coming.
						_, _, err = db.SettleRefund(ctx, store.RefundSettlement{RefundID: r.ID, Status: paysaga.RefundSucceeded})
						require.NoError(t, err)
					}
					mu.Lock()
					defer mu.Unlock()
					if err == nil {
						reserved = append(reserved, r.ID)
					} else {
						refused = append(refused, err)
					}
				})
			}
			wg.Wait()
			require.Len(t, reserved, 3, "exactly three refunds of 30%% fit in the payment")
			require.Len(t, refused, n-3)
			for _, err := range refused {
				require.Equal(t, paysaga.ECONFLICT, paysaga.ErrorCode(err), "%v", err)
				require.Contains(t, paysaga.ErrorMessage(err), "exceeds what is left to refund")
			}
			pay, err := db.GetPayment(ctx, p.ID)
			require.NoError(t, err)
			require.EqualValues(t, 90_000, pay.RefundedAmount)
			require.Equal(t, paysaga.PaymentPartiallyRefunded, pay.Status)
			left, _ := db.ReservedRefundAmount(ctx, p.ID)
			require.Zero(t, left)
			page, err := db.ListRefunds(ctx, store.RefundFilter{PaymentID: p.ID, Limit: 100})
			require.NoError(t, err)
			require.Len(t, page.Refunds, n, "a refused refund is readable, with its refusal")
			succeeded := 0
			for _, r := range page.Refunds {
				switch r.Status {
				case paysaga.RefundSucceeded:
					succeeded++
				case paysaga.RefundFailed:
					require.Equal(t, store.RefundRefused, r.FailureCode, fmt.Sprintf("%+v", r))
				default:
					t.Fatalf("refund %s is %s", r.ID, r.Status)
				}
			}
			require.Equal(t, 3, succeeded)
		})
	}
}

// Issue 11, item 6: a refund refused when it was asked for (more than is left) is readable at
// its URL with why: a FAILED row with failure code "refused" and a history event, nothing
// reserved. Asked again it is refused again, and it is never replayed.
func TestRefusedRefundIsRecorded(t *testing.T) {
	for _, driver := range storetest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			db := storetest.Open(t, driver)
			p := paidPayment(t, db, 10_000, paysaga.PaymentSucceeded)
			_, err := db.ReserveRefund(ctx, store.RefundReservation{Refund: newRefund(p.ID, 8_000)})
			require.NoError(t, err)

			r := newRefund(p.ID, 5_000)
			created := paysaga.PaymentEvent{ID: "evt_" + r.ID + "_01", PaymentID: p.ID, RefundID: r.ID, Type: "refund.created",
				Actor: r.CreatedBy, Reason: r.Reason}
			_, err = db.ReserveRefund(ctx, store.RefundReservation{Refund: r, Events: []paysaga.PaymentEvent{created}})
			require.Equal(t, paysaga.ECONFLICT, paysaga.ErrorCode(err))
			why := paysaga.ErrorMessage(err)
			require.Contains(t, why, ": 2000 won")

			got, err := db.GetRefund(ctx, r.ID)
			require.NoError(t, err)
			require.Equal(t, paysaga.RefundFailed, got.Status)
			require.Equal(t, store.RefundRefused, got.FailureCode)
			require.Equal(t, why, got.FailureMessage)
			require.EqualValues(t, 5_000, got.Amount)
			reserved, err := db.ReservedRefundAmount(ctx, p.ID)
			require.NoError(t, err)
			require.EqualValues(t, 8_000, reserved, "nothing reserved for the refused one")
			evs, err := db.ListPaymentEvents(ctx, p.ID)
			require.NoError(t, err)
			var types []string
			for _, e := range evs {
				if e.RefundID == r.ID {
					types = append(types, e.Type)
				}
			}
			require.Equal(t, []string{"refund.created", store.EventRefundRefused}, types)

			// Asked again (a retried step): the same refusal, one row, one history.
			_, err = db.ReserveRefund(ctx, store.RefundReservation{Refund: r, Events: []paysaga.PaymentEvent{created}})
			require.Equal(t, paysaga.ECONFLICT, paysaga.ErrorCode(err))
			require.Equal(t, why, paysaga.ErrorMessage(err))
			// Even once it would fit, a refused request stays refused, and is not replayed.
			_, _, err = db.SettleRefund(ctx, store.RefundSettlement{RefundID: mustOnlyPending(t, db, p.ID), Status: paysaga.RefundFailed})
			require.NoError(t, err)
			_, err = db.ReserveRefund(ctx, store.RefundReservation{Refund: r})
			require.Equal(t, paysaga.ECONFLICT, paysaga.ErrorCode(err))
			_, err = db.ReserveRefund(ctx, store.RefundReservation{Refund: r, Replay: true})
			require.Equal(t, paysaga.ECONFLICT, paysaga.ErrorCode(err))
			reserved, _ = db.ReservedRefundAmount(ctx, p.ID)
			require.Zero(t, reserved)
			again, err := db.GetRefund(ctx, r.ID)
			require.NoError(t, err)
			require.Equal(t, got, again)

			// A replay's refusal leaves the refund it replays as it was.
			big := newRefund(p.ID, 7_000)
			_, err = db.ReserveRefund(ctx, store.RefundReservation{Refund: big})
			require.NoError(t, err)
			_, _, err = db.SettleRefund(ctx, store.RefundSettlement{RefundID: big.ID, Status: paysaga.RefundFailed, FailureCode: "E1005", FailureMessage: "closed"})
			require.NoError(t, err)
			_, err = db.ReserveRefund(ctx, store.RefundReservation{Refund: newRefund(p.ID, 6_000)})
			require.NoError(t, err)
			_, err = db.ReserveRefund(ctx, store.RefundReservation{Refund: big, Replay: true})
			require.Equal(t, paysaga.ECONFLICT, paysaga.ErrorCode(err))
			stillFailed, err := db.GetRefund(ctx, big.ID)
			require.NoError(t, err)
			require.Equal(t, "E1005", stillFailed.FailureCode)
		})
	}
}

// mustOnlyPending returns the one PENDING refund of a payment.
func mustOnlyPending(t *testing.T, db *store.DB, paymentID string) string {
	t.Helper()
	page, err := db.ListRefunds(context.Background(), store.RefundFilter{PaymentID: paymentID, Status: paysaga.RefundPending})
	require.NoError(t, err)
	require.Len(t, page.Refunds, 1)
	return page.Refunds[0].ID
}

// One writer per transition: PARTIALLY_REFUNDED, REFUNDED and CANCELED come with a refund's
// money (SettleRefund), never from a status change on its own.
func TestRefundStatusesAreSetOnlyBySettlingARefund(t *testing.T) {
	for _, driver := range storetest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			db := storetest.Open(t, driver)
			paid := paidPayment(t, db, 10_000, paysaga.PaymentSucceeded)
			authorized := paidPayment(t, db, 10_000, paysaga.PaymentAuthorized)
			for _, step := range []struct {
				id string
				to paysaga.PaymentStatus
			}{
				{paid.ID, paysaga.PaymentPartiallyRefunded},
				{paid.ID, paysaga.PaymentRefunded},
				{authorized.ID, paysaga.PaymentCanceled},
			} {
				_, err := db.UpdatePaymentStatus(ctx, step.id, step.to, store.PaymentStatusChange{})
				require.Equal(t, paysaga.ECONFLICT, paysaga.ErrorCode(err), "to %s", step.to)
				err = db.RecordPaymentChange(ctx, store.PaymentChange{PaymentID: step.id, Status: step.to})
				require.Equal(t, paysaga.ECONFLICT, paysaga.ErrorCode(err), "to %s", step.to)
			}
			for _, p := range []*paysaga.Payment{paid, authorized} {
				got, err := db.GetPayment(ctx, p.ID)
				require.NoError(t, err)
				require.Zero(t, got.RefundedAmount)
				require.Contains(t, []paysaga.PaymentStatus{paysaga.PaymentSucceeded, paysaga.PaymentAuthorized}, got.Status)
			}

			// The cancellation's refund cancels the payment; recording CANCELED afterwards (the
			// payment workflow's step) is a no-op.
			r := newRefund(authorized.ID, 10_000)
			_, err := db.ReserveRefund(ctx, store.RefundReservation{Refund: r, Cancellation: true})
			require.NoError(t, err)
			_, pay, err := db.SettleRefund(ctx, store.RefundSettlement{RefundID: r.ID, Status: paysaga.RefundSucceeded})
			require.NoError(t, err)
			require.Equal(t, paysaga.PaymentCanceled, pay.Status)
			require.NoError(t, db.RecordPaymentChange(ctx, store.PaymentChange{PaymentID: authorized.ID, Status: paysaga.PaymentCanceled}))
			again, err := db.GetPayment(ctx, authorized.ID)
			require.NoError(t, err)
			require.Equal(t, pay.Version, again.Version, "nothing written")
		})
	}
}
