package ctl_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paysaga"
	"paysaga/cmd/payctl/ctl"
	"paysaga/settlement"
	"paysaga/store"
)

// paidSettlement gives a new merchant a captured payment of amount on day and settles it.
func seedSettlement(t *testing.T, db *store.DB, amount int64, day string) *settlement.Settlement {
	t.Helper()
	ctx := context.Background()
	m := &paysaga.User{ID: paysaga.NewID(paysaga.PrefixUser), Email: paysaga.NewID("") + "@shop.example", Name: "상점", Role: paysaga.RoleMerchant, PasswordHash: "x"}
	require.NoError(t, db.CreateUser(ctx, m))
	c := &paysaga.User{ID: paysaga.NewID(paysaga.PrefixUser), Email: paysaga.NewID("") + "@example.com", Name: "고객", Role: paysaga.RoleCustomer, PasswordHash: "x"}
	require.NoError(t, db.CreateUser(ctx, c))
	acct := &paysaga.Account{ID: paysaga.NewID(paysaga.PrefixAccount), OwnerID: c.ID, BankCode: "011", MaskedNumber: "****1234", Status: paysaga.AccountActive, FinAccount: "fin"}
	require.NoError(t, db.CreateAccount(ctx, acct, store.SealedAccountNumber{Ciphertext: []byte("x"), KeyID: "k", Hash: paysaga.NewID("h")}))
	at, err := settlement.ParseDay(day)
	require.NoError(t, err)
	at = at.Add(12 * time.Hour)
	p := &paysaga.Payment{ID: paysaga.NewID(paysaga.PrefixPayment), CustomerID: c.ID, MerchantID: m.ID, AccountID: acct.ID, Amount: amount, Status: paysaga.PaymentPending, CreatedAt: at}
	err = db.RecordPaymentChange(ctx, store.PaymentChange{Create: p, PaymentID: p.ID, Status: paysaga.PaymentProcessing})
	require.NoError(t, err)
	err = db.RecordPaymentChange(ctx, store.PaymentChange{PaymentID: p.ID, Status: paysaga.PaymentSucceeded,
		Events: []paysaga.PaymentEvent{{ID: "evt_" + p.ID, PaymentID: p.ID, Type: store.CapturedEventType, CreatedAt: at}}})
	require.NoError(t, err)
	s, _, err := db.PrepareSettlement(ctx, m.ID, day, 250)
	require.NoError(t, err)
	return s
}

func TestSettlementsListShowFee(t *testing.T) {
	db, env := dbEnv(t)
	s := seedSettlement(t, db, 12_345, "2026-11-30")

	code, out, stderr := run(t, env, "settlements", "list", "--status", "PENDING")
	require.Equal(t, ctl.ExitOK, code, stderr)
	require.Contains(t, out, s.ID)
	require.Contains(t, out, "12,037", "the payout: 12,345 less 308 won fee")

	code, out, stderr = run(t, env, "-o", "json", "settlements", "show", s.ID)
	require.Equal(t, ctl.ExitOK, code, stderr)
	var shown struct {
		settlement.Settlement
		Payouts []*paysaga.Transfer `json:"payouts"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &shown))
	require.Len(t, shown.Lines, 1)
	require.EqualValues(t, 308, shown.Lines[0].Fee)
	require.Empty(t, shown.Payouts)

	code, out, stderr = run(t, env, "settlements", "fee", s.MerchantID, "--bps", "100")
	require.Equal(t, ctl.ExitOK, code, stderr)
	require.Contains(t, out, "100 bps")
	acct, err := db.SettlementAccountOf(context.Background(), s.MerchantID)
	require.NoError(t, err)
	require.EqualValues(t, 100, *acct.FeeBPS)
	code, _, _ = run(t, env, "settlements", "fee", s.MerchantID, "--default")
	require.Equal(t, ctl.ExitOK, code)
	acct, _ = db.SettlementAccountOf(context.Background(), s.MerchantID)
	require.Nil(t, acct.FeeBPS)

	// A settlement that is not FAILED or UNKNOWN is never retried (refused before Temporal).
	code, _, stderr = run(t, env, "settlements", "retry", s.ID)
	require.Equal(t, ctl.ExitRefused, code, stderr)

	for _, bad := range [][]string{
		{"settlements", "show", "pay_x"},
		{"settlements", "list", "--status", "LOST"},
		{"settlements", "fee", s.MerchantID},
		{"settlements", "fee", s.MerchantID, "--bps", "10001"},
		{"settlements", "fee", s.MerchantID, "--bps", "1", "--default"},
		{"settlements", "backfill", "--from", "2026-12-02", "--to", "2026-12-01"},
		{"settlements", "backfill", "--from", "2026-12-01"},
	} {
		code, _, stderr := run(t, env, bad...)
		require.Equal(t, ctl.ExitUsage, code, "%v: %s", bad, stderr)
	}
}
