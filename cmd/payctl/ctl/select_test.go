package ctl_test

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"paysaga"
	"paysaga/cmd/payctl/ctl"
	"paysaga/store"
	"paysaga/store/storetest"
)

// `refund replay --status FAILED` picks the refunds that failed, not those refused when they
// were asked for (failure code "refused": nothing was ever reserved, so nothing to replay).
func TestReplayByStatusSkipsRefusedRefunds(t *testing.T) {
	ctx := context.Background()
	cfg := storetest.NewConfig(t, store.DriverSQLite)
	db, err := store.Open(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	require.NoError(t, db.Migrate(ctx))

	u := &paysaga.User{ID: paysaga.NewID(paysaga.PrefixUser), Email: "c@example.com", Name: "고객", Role: paysaga.RoleCustomer, PasswordHash: "x"}
	require.NoError(t, db.CreateUser(ctx, u))
	a := &paysaga.Account{ID: paysaga.NewID(paysaga.PrefixAccount), OwnerID: u.ID, BankCode: "011", MaskedNumber: "****1234",
		Status: paysaga.AccountActive, FinAccount: "00820100012345678901234567"}
	require.NoError(t, db.CreateAccount(ctx, a, store.SealedAccountNumber{Ciphertext: []byte("s"), KeyID: "k1", Hash: "h"}))
	p := &paysaga.Payment{ID: paysaga.NewID(paysaga.PrefixPayment), CustomerID: u.ID, MerchantID: "usr_m", AccountID: a.ID,
		Amount: 10_000, Status: paysaga.PaymentPending}
	_, _, err = db.CreatePayment(ctx, p)
	require.NoError(t, err)
	for _, st := range []paysaga.PaymentStatus{paysaga.PaymentProcessing, paysaga.PaymentSucceeded} {
		err = db.RecordPaymentChange(ctx, store.PaymentChange{PaymentID: p.ID, Status: st})
		require.NoError(t, err)
	}
	declined := paysaga.Refund{ID: paysaga.NewID(paysaga.PrefixRefund), PaymentID: p.ID, Amount: 8_000, CreatedBy: "usr_m"}
	_, err = db.ReserveRefund(ctx, store.RefundReservation{Refund: declined})
	require.NoError(t, err)
	refused := paysaga.Refund{ID: paysaga.NewID(paysaga.PrefixRefund), PaymentID: p.ID, Amount: 5_000, CreatedBy: "usr_m"}
	_, err = db.ReserveRefund(ctx, store.RefundReservation{Refund: refused})
	require.Equal(t, paysaga.ECONFLICT, paysaga.ErrorCode(err), "more than is left: refused, and recorded so")
	_, _, err = db.SettleRefund(ctx, store.RefundSettlement{RefundID: declined.ID, Status: paysaga.RefundFailed, FailureCode: "E9999"})
	require.NoError(t, err)

	vars := map[string]string{"PAYSAGA_DB_DRIVER": cfg.Driver, "PAYSAGA_DB_DSN": cfg.DSN}
	var out, errOut bytes.Buffer
	code := ctl.Execute(ctx, []string{"-o", "json", "refund", "replay", "--status", "FAILED", "--dry-run"}, ctl.Env{
		Getenv: func(k string) string { return vars[k] }, Stdout: &out, Stderr: &errOut,
	})
	require.Equal(t, ctl.ExitOK, code, out.String()+errOut.String())
	var rows []map[string]any
	require.NoError(t, json.Unmarshal(out.Bytes(), &rows), out.String())
	require.Len(t, rows, 1, out.String())
	require.Equal(t, declined.ID, rows[0]["refund_id"])
}
