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

func newTestPayment(customerID, accountID string, amount int64, at time.Time) *paysaga.Payment {
	return &paysaga.Payment{
		ID: paysaga.NewID(paysaga.PrefixPayment), CustomerID: customerID, MerchantID: "usr_merchant_a",
		AccountID: accountID, Amount: amount, Description: "커피", Status: paysaga.PaymentPending, CreatedAt: at,
	}
}

func TestCreateAndGetPayment(t *testing.T) {
	for _, driver := range storetest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			db := storetest.Open(t, driver)
			customer, account := seedPayer(t, db)
			p := newTestPayment(customer, account, 15000, time.Date(2026, 11, 25, 10, 0, 0, 999999999, time.UTC))

			stored, created, err := db.CreatePayment(ctx, p)
			require.NoError(t, err)
			require.True(t, created)
			require.Equal(t, "KRW", stored.Currency)
			require.Equal(t, paysaga.CaptureAutomatic, stored.CaptureMode)
			require.Equal(t, int64(1), stored.Version)
			require.Equal(t, p.CreatedAt.Truncate(time.Microsecond), stored.CreatedAt)

			got, err := db.GetPayment(ctx, p.ID)
			require.NoError(t, err)
			require.Equal(t, stored, got)

			again, created, err := db.CreatePayment(ctx, p)
			require.NoError(t, err, "creating the same payment again is idempotent")
			require.False(t, created)
			require.Equal(t, stored, again)

			other := *p
			other.Amount = 99
			_, _, err = db.CreatePayment(ctx, &other)
			require.Equal(t, paysaga.ECONFLICT, paysaga.ErrorCode(err), "another payment under the same ID")

			_, err = db.GetPayment(ctx, "pay_nope")
			require.Equal(t, paysaga.ENOTFOUND, paysaga.ErrorCode(err))
			bad := newTestPayment(customer, account, 0, time.Time{})
			_, _, err = db.CreatePayment(ctx, bad)
			require.Equal(t, paysaga.EINVALID, paysaga.ErrorCode(err))
		})
	}
}

func TestUpdatePaymentStatus(t *testing.T) {
	for _, driver := range storetest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			db := storetest.Open(t, driver)
			customer, account := seedPayer(t, db)
			p := newTestPayment(customer, account, 15000, time.Time{})
			_, _, err := db.CreatePayment(ctx, p)
			require.NoError(t, err)

			for _, step := range []struct {
				to      paysaga.PaymentStatus
				code    string // expected error code, "" for success
				version int64
			}{
				{paysaga.PaymentProcessing, "", 2},
				{paysaga.PaymentProcessing, "", 2}, // already there: idempotent, no new version
				{paysaga.PaymentPending, paysaga.ECONFLICT, 2},
				{paysaga.PaymentRefunded, paysaga.ECONFLICT, 2},
				{paysaga.PaymentUnknown, "", 3},
				{paysaga.PaymentFailed, "", 4},
				{paysaga.PaymentSucceeded, paysaga.ECONFLICT, 4},
				{"BOGUS", paysaga.EINVALID, 4},
			} {
				got, err := db.UpdatePaymentStatus(ctx, p.ID, step.to, store.PaymentStatusChange{FailureCode: "E1", FailureMessage: "no"})
				if step.code != "" {
					require.Equal(t, step.code, paysaga.ErrorCode(err), "to %s", step.to)
				} else {
					require.NoError(t, err, "to %s", step.to)
					require.Equal(t, step.to, got.Status)
				}
				now, err := db.GetPayment(ctx, p.ID)
				require.NoError(t, err)
				require.Equal(t, step.version, now.Version, "after %s", step.to)
			}
			final, err := db.GetPayment(ctx, p.ID)
			require.NoError(t, err)
			require.Equal(t, paysaga.PaymentFailed, final.Status)
			require.Equal(t, "E1", final.FailureCode)

			_, err = db.UpdatePaymentStatus(ctx, "pay_nope", paysaga.PaymentProcessing, store.PaymentStatusChange{})
			require.Equal(t, paysaga.ENOTFOUND, paysaga.ErrorCode(err))
		})
	}
}

// Two writers racing to decide a payment: exactly one wins, the other gets ECONFLICT.
func TestUpdatePaymentStatusConcurrent(t *testing.T) {
	for _, driver := range storetest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			db := storetest.Open(t, driver)
			customer, account := seedPayer(t, db)
			p := newTestPayment(customer, account, 15000, time.Time{})
			p.Status = paysaga.PaymentProcessing
			_, _, err := db.CreatePayment(ctx, p)
			require.NoError(t, err)

			const writers = 8
			var wg sync.WaitGroup
			results := make([]error, writers)
			for i := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					to := paysaga.PaymentSucceeded
					if i%2 == 1 {
						to = paysaga.PaymentFailed
					}
					_, results[i] = db.UpdatePaymentStatus(ctx, p.ID, to, store.PaymentStatusChange{})
				}()
			}
			wg.Wait()
			final, err := db.GetPayment(ctx, p.ID)
			require.NoError(t, err)
			require.Equal(t, int64(2), final.Version, "one transition only")
			for i, err := range results {
				want := paysaga.PaymentSucceeded
				if i%2 == 1 {
					want = paysaga.PaymentFailed
				}
				if want == final.Status {
					require.NoError(t, err, "writers wanting the winning status see success (idempotent)")
				} else {
					require.Equal(t, paysaga.ECONFLICT, paysaga.ErrorCode(err))
				}
			}
		})
	}
}

func TestListPayments(t *testing.T) {
	for _, driver := range storetest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			db := storetest.Open(t, driver)
			alice, aliceAcct := seedPayer(t, db)
			bob, bobAcct := seedPayer(t, db)
			base := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

			// 23 of Alice's payments, several sharing a timestamp (the ID breaks the tie), and 5
			// of Bob's in between.
			var aliceIDs []string // newest first, as the list must return them
			var all []*paysaga.Payment
			for i := range 23 {
				p := newTestPayment(alice, aliceAcct, int64(1000+i), base.Add(time.Duration(i/3)*time.Second))
				if i%4 == 0 {
					p.MerchantID = "usr_merchant_b"
				}
				all = append(all, p)
			}
			for i := range 5 {
				all = append(all, newTestPayment(bob, bobAcct, 500, base.Add(time.Duration(i)*time.Second)))
			}
			for _, p := range all {
				_, _, err := db.CreatePayment(ctx, p)
				require.NoError(t, err)
			}
			_, err := db.UpdatePaymentStatus(ctx, all[3].ID, paysaga.PaymentFailed, store.PaymentStatusChange{})
			require.NoError(t, err)
			_, err = db.UpdatePaymentStatus(ctx, all[7].ID, paysaga.PaymentFailed, store.PaymentStatusChange{})
			require.NoError(t, err)

			for i := 22; i >= 0; i-- {
				aliceIDs = append(aliceIDs, all[i].ID)
			}
			// Expected order: created_at desc, then id desc.
			sortNewestFirst(all[:23], aliceIDs)

			var got []string
			cursor := ""
			pages := 0
			for {
				page, err := db.ListPayments(ctx, store.PaymentFilter{CustomerID: alice, Limit: 10, StartingAfter: cursor})
				require.NoError(t, err)
				pages++
				for _, p := range page.Payments {
					require.Equal(t, alice, p.CustomerID)
					got = append(got, p.ID)
				}
				if !page.HasMore {
					break
				}
				cursor = page.Payments[len(page.Payments)-1].ID
			}
			require.Equal(t, 3, pages)
			require.Equal(t, aliceIDs, got)

			exact, err := db.ListPayments(ctx, store.PaymentFilter{CustomerID: bob, Limit: 5})
			require.NoError(t, err)
			require.Len(t, exact.Payments, 5)
			require.False(t, exact.HasMore, "a page that ends exactly at the last payment has no more")

			failed, err := db.ListPayments(ctx, store.PaymentFilter{CustomerID: alice, Status: paysaga.PaymentFailed})
			require.NoError(t, err)
			require.Equal(t, []string{all[7].ID, all[3].ID}, ids(failed.Payments))

			merchantB, err := db.ListPayments(ctx, store.PaymentFilter{MerchantID: "usr_merchant_b", Limit: 100})
			require.NoError(t, err)
			require.Len(t, merchantB.Payments, 6)

			everyone, err := db.ListPayments(ctx, store.PaymentFilter{Limit: 100})
			require.NoError(t, err)
			require.Len(t, everyone.Payments, 28)

			for name, f := range map[string]store.PaymentFilter{
				"limit too big":          {Limit: 101},
				"negative limit":         {Limit: -1},
				"unknown cursor":         {StartingAfter: "pay_nope"},
				"cursor of another list": {CustomerID: bob, StartingAfter: all[0].ID},
				"unknown status":         {Status: "NOPE"},
			} {
				_, err := db.ListPayments(ctx, f)
				require.Equal(t, paysaga.EINVALID, paysaga.ErrorCode(err), name)
			}
		})
	}
}

// sortNewestFirst orders ids (of payments ps) by created_at desc, id desc.
func sortNewestFirst(ps []*paysaga.Payment, ids []string) {
	at := map[string]time.Time{}
	for _, p := range ps {
		at[p.ID] = p.CreatedAt
	}
	for i := 1; i < len(ids); i++ {
		for j := i; j > 0; j-- {
			a, b := ids[j-1], ids[j]
			if at[a].Before(at[b]) || (at[a].Equal(at[b]) && a < b) {
				ids[j-1], ids[j] = b, a
			}
		}
	}
}

func ids(ps []*paysaga.Payment) []string {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.ID)
	}
	return out
}

func TestRecordPaymentChange(t *testing.T) {
	for _, driver := range storetest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			db := storetest.Open(t, driver)
			customer, account := seedPayer(t, db)
			p := newTestPayment(customer, account, 15000, time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC))
			ev := func(n int, typ string, s paysaga.PaymentStatus) paysaga.PaymentEvent {
				return paysaga.PaymentEvent{ID: fmt.Sprintf("evt_x_%03d", n), PaymentID: p.ID, Type: typ, Status: s,
					CreatedAt: p.CreatedAt.Add(time.Duration(n) * time.Millisecond)}
			}
			start := store.PaymentChange{
				Create: p, PaymentID: p.ID, Status: paysaga.PaymentProcessing,
				Events: []paysaga.PaymentEvent{ev(1, "payment.created", paysaga.PaymentPending), ev(2, "payment.processing", paysaga.PaymentProcessing)},
			}
			// Run twice: a retried step leaves the same rows.
			for range 2 {
				require.NoError(t, db.RecordPaymentChange(ctx, start))
				got, err := db.GetPayment(ctx, p.ID)
				require.NoError(t, err)
				require.Equal(t, paysaga.PaymentProcessing, got.Status)
			}
			tr, _, err := db.CreateTransfer(ctx, &paysaga.Transfer{ID: "trf_x_1", PaymentID: p.ID, Kind: paysaga.TransferDebit,
				Amount: p.Amount, Tsymd: "20261125", IsTuno: "20261125000000000001"})
			require.NoError(t, err)
			err = db.UpdateTransfer(ctx, tr.ID, store.TransferUpdate{State: paysaga.TransferUnknown})
			require.NoError(t, err)

			unknown := ev(3, "payment.unknown", paysaga.PaymentUnknown)
			err = db.RecordPaymentChange(ctx, store.PaymentChange{PaymentID: p.ID, Status: paysaga.PaymentUnknown,
				Events: []paysaga.PaymentEvent{unknown}})
			require.NoError(t, err)
			resolved := ev(4, "payment.succeeded", paysaga.PaymentSucceeded)
			resolved.Actor, resolved.Reason = "usr_operator", "bank statement checked"
			for range 2 {
				require.NoError(t, db.RecordPaymentChange(ctx, store.PaymentChange{PaymentID: p.ID, Status: paysaga.PaymentSucceeded,
					Events:   []paysaga.PaymentEvent{resolved},
					Transfer: &store.TransferStateChange{TransferID: tr.ID, State: paysaga.TransferSucceeded}}))
				got, err := db.GetPayment(ctx, p.ID)
				require.NoError(t, err)
				require.Equal(t, paysaga.PaymentSucceeded, got.Status)
			}

			history, err := db.ListPaymentEvents(ctx, p.ID)
			require.NoError(t, err)
			var types []string
			for _, e := range history {
				types = append(types, e.Type)
			}
			require.Equal(t, []string{"payment.created", "payment.processing", "payment.unknown", "payment.succeeded"}, types)
			require.Equal(t, "usr_operator", history[3].Actor)
			tr, err = db.GetTransfer(ctx, tr.ID)
			require.NoError(t, err)
			require.Equal(t, paysaga.TransferSucceeded, tr.State)

			// A step that the rules forbid changes nothing at all (one transaction).
			err = db.RecordPaymentChange(ctx, store.PaymentChange{PaymentID: p.ID, Status: paysaga.PaymentFailed,
				Events: []paysaga.PaymentEvent{ev(5, "payment.failed", paysaga.PaymentFailed)}})
			require.Equal(t, paysaga.ECONFLICT, paysaga.ErrorCode(err))
			history, err = db.ListPaymentEvents(ctx, p.ID)
			require.NoError(t, err)
			require.Len(t, history, 4)
		})
	}
}

// A refund to a typed-in account is checked against the depositor of the account that paid:
// the store hands out that account's sealed number, whatever its status now.
func TestPayingAccountOf(t *testing.T) {
	for _, driver := range storetest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			db := storetest.Open(t, driver)
			customer, account := seedPayer(t, db)
			p, _, err := db.CreatePayment(ctx, newTestPayment(customer, account, 5000, time.Time{}))
			require.NoError(t, err)

			got, err := db.PayingAccountOf(ctx, p.ID)
			require.NoError(t, err)
			require.Equal(t, &store.PayingAccount{AccountID: account, BankCode: "011",
				Number: store.SealedSecret{Ciphertext: []byte("sealed"), KeyID: "k1"}}, got)

			_, err = db.PayingAccountOf(ctx, "pay_missing")
			require.Equal(t, paysaga.ENOTFOUND, paysaga.ErrorCode(err))
		})
	}
}

// Issue 11, item 9: the workflow's first step checks its input against the row the API wrote,
// and writes nothing when they disagree or when there is no row.
func TestRecordPaymentChangeExpectsTheRecordedPayment(t *testing.T) {
	for _, driver := range storetest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			db := storetest.Open(t, driver)
			customer, account := seedPayer(t, db)
			p := newTestPayment(customer, account, 15000, time.Time{})
			ev := paysaga.PaymentEvent{ID: "evt_" + p.ID + "_1", PaymentID: p.ID, Type: "payment.created", Status: paysaga.PaymentPending}

			err := db.RecordPaymentChange(ctx, store.PaymentChange{Expect: p, PaymentID: p.ID, Status: paysaga.PaymentProcessing,
				Events: []paysaga.PaymentEvent{ev}})
			require.Equal(t, paysaga.ECONFLICT, paysaga.ErrorCode(err), "no row: nothing to trust")
			_, err = db.GetPayment(ctx, p.ID)
			require.Equal(t, paysaga.ENOTFOUND, paysaga.ErrorCode(err))

			_, _, err = db.CreatePayment(ctx, p)
			require.NoError(t, err)
			for name, mutate := range map[string]func(q *paysaga.Payment){
				"amount":   func(q *paysaga.Payment) { q.Amount = 99_000 },
				"merchant": func(q *paysaga.Payment) { q.MerchantID = "usr_attacker" },
				"account":  func(q *paysaga.Payment) { q.AccountID = "acct_other" },
				"customer": func(q *paysaga.Payment) { q.CustomerID = "usr_other" },
			} {
				q := *p
				mutate(&q)
				err := db.RecordPaymentChange(ctx, store.PaymentChange{Expect: &q, PaymentID: p.ID, Status: paysaga.PaymentProcessing,
					Events: []paysaga.PaymentEvent{ev}})
				require.Equal(t, paysaga.ECONFLICT, paysaga.ErrorCode(err), name)
			}
			got, err := db.GetPayment(ctx, p.ID)
			require.NoError(t, err)
			require.Equal(t, paysaga.PaymentPending, got.Status)
			evs, err := db.ListPaymentEvents(ctx, p.ID)
			require.NoError(t, err)
			require.Empty(t, evs)

			require.NoError(t, db.RecordPaymentChange(ctx, store.PaymentChange{Expect: p, PaymentID: p.ID, Status: paysaga.PaymentProcessing,
				Events: []paysaga.PaymentEvent{ev}}))
			got, err = db.GetPayment(ctx, p.ID)
			require.NoError(t, err)
			require.Equal(t, paysaga.PaymentProcessing, got.Status)
		})
	}
}

// A payment the API recorded whose workflow never started stays PENDING; housekeeping finds
// those older than a bound.
func TestListStalePendingPayments(t *testing.T) {
	for _, driver := range storetest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			db := storetest.Open(t, driver)
			customer, account := seedPayer(t, db)
			now := time.Now().UTC()
			old1 := newTestPayment(customer, account, 1000, now.Add(-2*time.Hour))
			old2 := newTestPayment(customer, account, 2000, now.Add(-time.Hour))
			fresh := newTestPayment(customer, account, 3000, now.Add(-time.Minute))
			running := newTestPayment(customer, account, 4000, now.Add(-3*time.Hour))
			for _, p := range []*paysaga.Payment{old1, old2, fresh, running} {
				_, _, err := db.CreatePayment(ctx, p)
				require.NoError(t, err)
			}
			_, err := db.UpdatePaymentStatus(ctx, running.ID, paysaga.PaymentProcessing, store.PaymentStatusChange{})
			require.NoError(t, err)

			stale, err := db.ListStalePendingPayments(ctx, now.Add(-10*time.Minute), 10)
			require.NoError(t, err)
			require.Len(t, stale, 2)
			require.Equal(t, []string{old1.ID, old2.ID}, []string{stale[0].ID, stale[1].ID})
			one, err := db.ListStalePendingPayments(ctx, now.Add(-10*time.Minute), 1)
			require.NoError(t, err)
			require.Len(t, one, 1)
			require.Equal(t, old1.ID, one[0].ID)
		})
	}
}

// Housekeeping ends a payment whose workflow never started — only while it is still PENDING:
// a workflow that started meanwhile keeps its payment, and one that starts later is refused at
// its first step.
func TestFailUnstartedPayment(t *testing.T) {
	for _, driver := range storetest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			db := storetest.Open(t, driver)
			customer, account := seedPayer(t, db)
			now := time.Now().UTC()
			stale := newTestPayment(customer, account, 1000, now.Add(-time.Hour))
			started := newTestPayment(customer, account, 2000, now.Add(-time.Hour))
			fresh := newTestPayment(customer, account, 3000, now)
			for _, p := range []*paysaga.Payment{stale, started, fresh} {
				_, _, err := db.CreatePayment(ctx, p)
				require.NoError(t, err)
			}
			err := db.RecordPaymentChange(ctx, store.PaymentChange{Expect: started, PaymentID: started.ID, Status: paysaga.PaymentProcessing})
			require.NoError(t, err)
			before := now.Add(-10 * time.Minute)

			p, changed, err := db.FailUnstartedPayment(ctx, stale.ID, before, "never started: the request was not retried")
			require.NoError(t, err)
			require.True(t, changed)
			require.Equal(t, paysaga.PaymentFailed, p.Status)
			require.Equal(t, store.PaymentNotStarted, p.FailureCode)
			evs, err := db.ListPaymentEvents(ctx, stale.ID)
			require.NoError(t, err)
			require.Len(t, evs, 1)
			require.Equal(t, "payment.failed", evs[0].Type)
			_, changed, err = db.FailUnstartedPayment(ctx, stale.ID, before, "again")
			require.NoError(t, err)
			require.False(t, changed, "once")

			for _, id := range []string{started.ID, fresh.ID} {
				p, changed, err := db.FailUnstartedPayment(ctx, id, before, "no")
				require.NoError(t, err)
				require.False(t, changed)
				require.NotEqual(t, paysaga.PaymentFailed, p.Status)
			}

			// Its workflow, started late after all, is refused before any debit.
			err = db.RecordPaymentChange(ctx, store.PaymentChange{Expect: stale, PaymentID: stale.ID, Status: paysaga.PaymentProcessing})
			require.Equal(t, paysaga.ECONFLICT, paysaga.ErrorCode(err))
		})
	}
}
