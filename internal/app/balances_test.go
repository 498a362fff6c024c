package app_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paysaga"
	"paysaga/balance"
	"paysaga/config"
	"paysaga/events"
	"paysaga/internal/app"
	"paysaga/nh"
)

type countingBank struct {
	asked   atomic.Int32
	balance atomic.Int64
}

func (b *countingBank) InquireBalance(context.Context, string) (*nh.Balance, error) {
	b.asked.Add(1)
	return &nh.Balance{Ldbl: b.balance.Load(), RlpmAbamt: b.balance.Load()}, nil
}

type oneAccount struct{ *paysaga.Account }

func (a oneAccount) GetAccount(context.Context, string) (*paysaga.Account, error) {
	return a.Account, nil
}

// Issue 11, Low: when a payment or refund moves money, the account's cached balance is dropped,
// where the engine sees the outcome events (here: the worker's publisher without a broker; with
// one, the notification consumer runs the same handler).
func TestOutcomeEventsInvalidateCachedBalances(t *testing.T) {
	ctx := context.Background()
	rdb := testRedis(t)
	cfg, err := config.Load(func(string) string { return "" }) // no broker
	require.NoError(t, err)
	pub, err := app.NotifyingPublisher(cfg, events.NoBroker{}, rdb, slog.New(slog.DiscardHandler))
	require.NoError(t, err)

	for _, tc := range []struct {
		typ  string
		data func(accountID string) any
	}{
		{events.PaymentSucceeded, func(id string) any { return paysaga.Payment{ID: paysaga.NewID("pay_"), AccountID: id} }},
		{events.RefundSucceeded, func(id string) any {
			return map[string]any{"id": paysaga.NewID("rf_"), "payment": paysaga.Payment{AccountID: id}}
		}},
	} {
		t.Run(tc.typ, func(t *testing.T) {
			acct := &paysaga.Account{ID: paysaga.NewID(paysaga.PrefixAccount), Status: paysaga.AccountActive, FinAccount: "fin"}
			t.Cleanup(func() { rdb.Del(context.Background(), balance.DefaultKeyPrefix+"balance:"+acct.ID) })
			bank := &countingBank{}
			bank.balance.Store(50_000)
			svc, err := balance.New(balance.Config{Redis: rdb, Bank: bank, Accounts: oneAccount{acct}})
			require.NoError(t, err)
			_, err = svc.Get(ctx, acct, false)
			require.NoError(t, err)
			require.EqualValues(t, 1, bank.asked.Load())

			bank.balance.Store(30_000) // the payment debited it
			data, _ := json.Marshal(tc.data(acct.ID))
			require.NoError(t, pub.Publish(ctx, events.Event{ID: paysaga.NewID("evt_"), Type: tc.typ, OccurredAt: time.Now(), Data: data}))

			b, err := svc.Get(ctx, acct, false)
			require.NoError(t, err)
			require.EqualValues(t, 30_000, b.Balance, "the cached balance was dropped")
			require.EqualValues(t, 2, bank.asked.Load())
		})
	}
}

// The handler the broker's notification consumer runs invalidates too.
func TestNotificationHandlerInvalidatesBalances(t *testing.T) {
	ctx := context.Background()
	rdb := testRedis(t)
	cfg, err := config.Load(func(string) string { return "" })
	require.NoError(t, err)
	acct := &paysaga.Account{ID: paysaga.NewID(paysaga.PrefixAccount), Status: paysaga.AccountActive, FinAccount: "fin"}
	t.Cleanup(func() { rdb.Del(context.Background(), balance.DefaultKeyPrefix+"balance:"+acct.ID) })
	bank := &countingBank{}
	svc, err := balance.New(balance.Config{Redis: rdb, Bank: bank, Accounts: oneAccount{acct}})
	require.NoError(t, err)
	_, err = svc.Get(ctx, acct, false)
	require.NoError(t, err)

	handle := app.NotificationHandler(cfg, rdb)
	data, _ := json.Marshal(paysaga.Payment{ID: "pay_x", AccountID: acct.ID, CustomerID: "usr_" + strings.Repeat("x", 8)})
	require.NoError(t, handle(ctx, events.Event{ID: paysaga.NewID("evt_"), Type: events.PaymentUnknown, OccurredAt: time.Now(), Data: data}))
	_, err = svc.Get(ctx, acct, false)
	require.NoError(t, err)
	require.EqualValues(t, 2, bank.asked.Load())
}
