package store_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"paysaga"
	"paysaga/store"
	"paysaga/store/storetest"
)

// statementLog sees every statement the store sends (BEGIN and COMMIT included).
type statementLog struct {
	mu   sync.Mutex
	sent []string
}

func (l *statementLog) BeforeQuery(ctx context.Context, _ *bun.QueryEvent) context.Context {
	return ctx
}

func (l *statementLog) AfterQuery(_ context.Context, e *bun.QueryEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sent = append(l.sent, e.Query)
}

// during returns the statements fn sent.
func (l *statementLog) during(t *testing.T, fn func() error) []string {
	t.Helper()
	l.mu.Lock()
	before := len(l.sent)
	l.mu.Unlock()
	require.NoError(t, fn())
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.sent[before:]...)
}

// Issue 15: every statement of a payment's hot path is a round trip to the database and CPU on
// both sides, at every payment. The workflow's store work for one payment that succeeds at the
// first try, statement by statement: the step that starts it (check the row the API wrote, move
// it, two history events, in one transaction), the debit's reads, its IsTuno, its transfer
// before and after the bank call, and the step that ends it.
func TestAPaymentsStoreWorkTakesFewStatements(t *testing.T) {
	for _, driver := range storetest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			log := &statementLog{}
			cfg := storetest.NewConfig(t, driver)
			cfg.QueryHook = log
			db, err := store.Open(ctx, cfg)
			require.NoError(t, err)
			t.Cleanup(func() { _ = db.Close() })
			require.NoError(t, db.Migrate(ctx))
			customer, account := seedPayer(t, db)
			p := newTestPayment(customer, account, 15000, time.Time{})
			_, _, err = db.CreatePayment(ctx, p)
			require.NoError(t, err)
			ev := func(n int, typ string, s paysaga.PaymentStatus) paysaga.PaymentEvent {
				return paysaga.PaymentEvent{ID: p.ID + "_e" + string(rune('0'+n)), PaymentID: p.ID, Type: typ, Status: s}
			}

			budget := func(name string, want int, fn func() error) {
				t.Helper()
				sent := log.during(t, fn)
				require.Len(t, sent, want, "%s sent:\n%s", name, strings.Join(sent, "\n"))
			}
			budget("the first step", 5, func() error {
				return db.RecordPaymentChange(ctx, store.PaymentChange{Expect: p, PaymentID: p.ID, Status: paysaga.PaymentProcessing,
					Events: []paysaga.PaymentEvent{ev(1, "payment.created", paysaga.PaymentPending), ev(2, "payment.processing", paysaga.PaymentProcessing)}})
			})
			tid := "trf_" + p.ID
			budget("the debit's transfer lookup", 1, func() error {
				_, err := db.GetTransfer(ctx, tid)
				if paysaga.ErrorCode(err) == paysaga.ENOTFOUND {
					return nil
				}
				return err
			})
			budget("the debit's payment and account", 1, func() error {
				got, acct, err := db.PaymentToDebit(ctx, p.ID)
				if err == nil {
					require.Equal(t, paysaga.PaymentProcessing, got.Status)
					require.Equal(t, account, acct.ID)
					require.Equal(t, "00820100012345678901234567", acct.FinAccount)
				}
				return err
			})
			var isTuno string
			budget("the IsTuno", 1, func() error {
				isTuno, err = db.NextIsTuno(ctx, "20261202")
				return err
			})
			budget("the transfer before the call", 1, func() error {
				_, _, err := db.CreateTransfer(ctx, &paysaga.Transfer{ID: tid, PaymentID: p.ID, Kind: paysaga.TransferDebit,
					Amount: p.Amount, Tsymd: "20261202", IsTuno: isTuno})
				return err
			})
			budget("the bank's answer", 1, func() error {
				return db.UpdateTransfer(ctx, tid, store.TransferUpdate{State: paysaga.TransferSucceeded, Rpcd: "00000"})
			})
			budget("the last step", 4, func() error {
				return db.RecordPaymentChange(ctx, store.PaymentChange{PaymentID: p.ID, Status: paysaga.PaymentSucceeded,
					Events: []paysaga.PaymentEvent{ev(3, "payment.succeeded", paysaga.PaymentSucceeded)}})
			})

			got, err := db.GetPayment(ctx, p.ID)
			require.NoError(t, err)
			require.Equal(t, paysaga.PaymentSucceeded, got.Status)
			require.Equal(t, int64(3), got.Version)
			evs, err := db.ListPaymentEvents(ctx, p.ID)
			require.NoError(t, err)
			require.Len(t, evs, 3)
			tr, err := db.GetTransfer(ctx, tid)
			require.NoError(t, err)
			require.Equal(t, paysaga.TransferSucceeded, tr.State)
			require.Equal(t, "00000", tr.Rpcd)
		})
	}
}
