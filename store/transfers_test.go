package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paysaga"
	"paysaga/store"
	"paysaga/store/storetest"
)

func TestTransfers(t *testing.T) {
	for _, driver := range storetest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			db := storetest.Open(t, driver)
			customer, account := seedPayer(t, db)
			p := newTestPayment(customer, account, 15000, time.Time{})
			_, _, err := db.CreatePayment(ctx, p)
			require.NoError(t, err)

			first := &paysaga.Transfer{ID: "trf_a_1", PaymentID: p.ID, Kind: paysaga.TransferDebit, Amount: 15000,
				Tsymd: "20261125", IsTuno: "20261125000000000001",
				CreatedAt: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)}
			got, created, err := db.CreateTransfer(ctx, first)
			require.NoError(t, err)
			require.True(t, created)
			require.Equal(t, paysaga.TransferSent, got.State, "recorded as SENT before the request goes out")

			again, created, err := db.CreateTransfer(ctx, first)
			require.NoError(t, err)
			require.False(t, created, "idempotent on the ID")
			require.Equal(t, got, again)

			reuse := *first
			reuse.ID = "trf_a_2"
			_, _, err = db.CreateTransfer(ctx, &reuse)
			require.Equal(t, paysaga.ECONFLICT, paysaga.ErrorCode(err), "an IsTuno is never used twice on a day")

			second := &paysaga.Transfer{ID: "trf_a_2", PaymentID: p.ID, Kind: paysaga.TransferDebit, Amount: 15000,
				Tsymd: "20261125", IsTuno: "20261125000000000002",
				CreatedAt: time.Date(2026, 11, 25, 10, 1, 0, 0, time.UTC)}
			_, _, err = db.CreateTransfer(ctx, second)
			require.NoError(t, err)
			other := &paysaga.Transfer{ID: "trf_b_1", PaymentID: p.ID, Kind: paysaga.TransferDebit, Amount: 15000,
				Tsymd: "20261126", IsTuno: "20261126000000000001", CreatedAt: time.Date(2026, 11, 26, 0, 0, 1, 0, time.UTC)}
			_, _, err = db.CreateTransfer(ctx, other)
			require.NoError(t, err)

			for _, step := range []struct {
				id    string
				u     store.TransferUpdate
				code  string
				state paysaga.TransferState
			}{
				{"trf_a_1", store.TransferUpdate{State: paysaga.TransferUnknown}, "", paysaga.TransferUnknown},
				{"trf_a_1", store.TransferUpdate{State: paysaga.TransferNotExecuted}, "", paysaga.TransferNotExecuted},
				{"trf_a_1", store.TransferUpdate{State: paysaga.TransferNotExecuted}, "", paysaga.TransferNotExecuted},
				{"trf_a_1", store.TransferUpdate{State: paysaga.TransferSucceeded}, paysaga.ECONFLICT, paysaga.TransferNotExecuted},
				{"trf_a_2", store.TransferUpdate{State: paysaga.TransferSucceeded, Rpcd: "00000", Rsms: "정상처리 되었습니다."}, "", paysaga.TransferSucceeded},
				{"trf_a_2", store.TransferUpdate{State: paysaga.TransferDeclined, Rpcd: "E1"}, paysaga.ECONFLICT, paysaga.TransferSucceeded},
				{"trf_b_1", store.TransferUpdate{State: "WHATEVER"}, paysaga.EINVALID, paysaga.TransferSent},
				{"trf_nope", store.TransferUpdate{State: paysaga.TransferUnknown}, paysaga.ENOTFOUND, ""},
			} {
				err := db.UpdateTransfer(ctx, step.id, step.u)
				if step.code == "" {
					require.NoError(t, err)
				} else {
					require.Equal(t, step.code, paysaga.ErrorCode(err), "%s → %s", step.id, step.u.State)
				}
				if step.state != "" {
					tr, err := db.GetTransfer(ctx, step.id)
					require.NoError(t, err)
					require.Equal(t, step.state, tr.State)
				}
			}
			a2, err := db.GetTransfer(ctx, "trf_a_2")
			require.NoError(t, err)
			require.Equal(t, "00000", a2.Rpcd)
			require.Equal(t, "정상처리 되었습니다.", a2.Rsms)

			byPayment, err := db.ListTransfersByPayment(ctx, p.ID)
			require.NoError(t, err)
			require.Len(t, byPayment, 3)
			require.Equal(t, "trf_a_1", byPayment[0].ID)
			require.Equal(t, "trf_a_2", byPayment[1].ID)

			byDay, err := db.ListTransfersByTsymd(ctx, "20261125")
			require.NoError(t, err)
			require.Len(t, byDay, 2)
			none, err := db.ListTransfersByTsymd(ctx, "20261127")
			require.NoError(t, err)
			require.Empty(t, none)

			_, err = db.GetTransfer(ctx, "trf_nope")
			require.Equal(t, paysaga.ENOTFOUND, paysaga.ErrorCode(err))
		})
	}
}

func TestPaymentEvents(t *testing.T) {
	for _, driver := range storetest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			db := storetest.Open(t, driver)
			customer, account := seedPayer(t, db)
			p := newTestPayment(customer, account, 15000, time.Time{})
			_, _, err := db.CreatePayment(ctx, p)
			require.NoError(t, err)
			at := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

			events := []*paysaga.PaymentEvent{
				{ID: "evt_p_001", PaymentID: p.ID, Type: "payment.created", Status: paysaga.PaymentPending, CreatedAt: at},
				{ID: "evt_p_002", PaymentID: p.ID, Type: "payment.processing", Status: paysaga.PaymentProcessing, CreatedAt: at},
				{ID: "evt_p_003", PaymentID: p.ID, Type: "payment.failed", Status: paysaga.PaymentFailed,
					Rpcd: "E0301", Rsms: "잔액이 부족합니다.", CreatedAt: at.Add(time.Second)},
			}
			// Appended out of order and twice: the history is still in order and without duplicates.
			for _, i := range []int{1, 0, 2, 1, 2} {
				_, err := db.AppendPaymentEvent(ctx, events[i])
				require.NoError(t, err)
			}
			appended, err := db.AppendPaymentEvent(ctx, events[0])
			require.NoError(t, err)
			require.False(t, appended)

			got, err := db.ListPaymentEvents(ctx, p.ID)
			require.NoError(t, err)
			require.Equal(t, events, got)

			stolen := *events[0]
			stolen.PaymentID = "pay_other"
			_, err = db.AppendPaymentEvent(ctx, &stolen)
			require.Equal(t, paysaga.ECONFLICT, paysaga.ErrorCode(err))
			_, err = db.AppendPaymentEvent(ctx, &paysaga.PaymentEvent{ID: "evt_x", PaymentID: p.ID})
			require.Equal(t, paysaga.EINVALID, paysaga.ErrorCode(err))
		})
	}
}
