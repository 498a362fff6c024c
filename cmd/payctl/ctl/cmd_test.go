package ctl_test

import (
	"bytes"
	"context"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paysaga"
	"paysaga/cmd/payctl/ctl"
	"paysaga/nh"
	"paysaga/nhsim"
	"paysaga/store"
)

// run runs payctl in-process and returns its exit code and output.
func run(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = ctl.Execute(context.Background(), args, ctl.Env{
		Getenv: func(k string) string { return env[k] },
		Stdout: &out, Stderr: &errOut,
	})
	return code, out.String(), errOut.String()
}

func TestUsageErrorsExitTwo(t *testing.T) {
	for _, args := range [][]string{
		{"nope"},
		{"payments", "show"},
		{"payments", "show", "not an id"},
		{"payments", "resolve", "pay_x"},
		{"payments", "resolve", "pay_x", "--as", "maybe", "--reason", "r"},
		{"payments", "resolve", "pay_x", "--as", "failed"},
		{"payments", "list", "--limit", "many"},
		{"payments", "list", "--status", "LOST"},
		{"payments", "stuck", "--older-than", "-1m"},
		{"reconcile"},
		{"reconcile", "--date", "2026-11-25"},
		{"reconcile", "--date", "20261131"},
		{"history", "replay", "--limit", "0"},
		{"users", "grant", "a@example.com", "king"},
		{"users", "grant", "a@example.com"},
		{"-o", "yaml", "users", "grant", "a@example.com", "merchant"},
	} {
		code, _, stderr := run(t, map[string]string{"USER": "ops"}, args...)
		require.Equal(t, ctl.ExitUsage, code, "%v: %s", args, stderr)
		require.Contains(t, stderr, "payctl:", "%v", args)
	}
}

// dbEnv is a migrated SQLite database and the environment that points payctl at it.
func dbEnv(t *testing.T) (*store.DB, map[string]string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "paysaga.db")
	db, err := store.Open(context.Background(), store.Config{Driver: store.DriverSQLite, DSN: path})
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	require.NoError(t, db.Migrate(context.Background()))
	return db, map[string]string{"PAYSAGA_DB_DRIVER": "sqlite", "PAYSAGA_DB_DSN": path}
}

func TestUsersGrant(t *testing.T) {
	ctx := context.Background()
	db, env := dbEnv(t)
	require.NoError(t, db.CreateUser(ctx, &paysaga.User{ID: paysaga.NewID(paysaga.PrefixUser), Email: "shop@example.com",
		Name: "Shop", Role: paysaga.RoleCustomer, PasswordHash: "x"}))

	code, out, stderr := run(t, env, "users", "grant", " Shop@Example.com ", "merchant")
	require.Equal(t, ctl.ExitOK, code, stderr)
	require.Contains(t, out, "shop@example.com is now merchant")
	u, err := db.UserByEmail(ctx, "shop@example.com")
	require.NoError(t, err)
	require.Equal(t, paysaga.RoleMerchant, u.Role)

	code, _, stderr = run(t, env, "users", "grant", "nobody@example.com", "operator")
	require.Equal(t, ctl.ExitError, code)
	require.Contains(t, stderr, "no user with email nobody@example.com")
}

// TestReconcileCommand reconciles a day on the simulator: a clean day exits 0; a debit the
// bank executed that no transfer row explains is reported missing and exits 3. Neither output
// shows an account number or a fin account.
func TestReconcileCommand(t *testing.T) {
	ctx := context.Background()
	db, env := dbEnv(t)
	sim := nhsim.New(nhsim.Config{})
	t.Cleanup(sim.Close)
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	cc := sim.ClientConfig(srv.URL)
	bank, err := nh.New(cc, db)
	require.NoError(t, err)
	env["PAYSAGA_NH_BASE_URL"], env["PAYSAGA_NH_ISCD"], env["PAYSAGA_NH_ACCESS_TOKEN"] = cc.BaseURL, cc.Iscd, cc.AccessToken
	fintech := sim.Fintech()
	env["PAYSAGA_NH_FINTECH_BANK_CODE"], env["PAYSAGA_NH_FINTECH_ACCOUNT"] = fintech.Bncd, fintech.Acno

	customer, err := sim.CreateAccount(nhsim.Account{Holder: "김고객", Birth: "19900101", Balance: 1_000_000})
	require.NoError(t, err)
	fin, err := sim.RegisterFinAccount(customer.Bncd, customer.Acno, true)
	require.NoError(t, err)
	u := &paysaga.User{ID: paysaga.NewID(paysaga.PrefixUser), Email: "kim@example.com", Name: "Kim", Role: paysaga.RoleCustomer, PasswordHash: "x"}
	require.NoError(t, db.CreateUser(ctx, u))
	acct := &paysaga.Account{ID: paysaga.NewID(paysaga.PrefixAccount), OwnerID: u.ID, BankCode: customer.Bncd,
		MaskedNumber: paysaga.MaskAccountNumber(customer.Acno), Status: paysaga.AccountActive, FinAccount: fin}
	require.NoError(t, db.CreateAccount(ctx, acct, store.SealedAccountNumber{Ciphertext: []byte("x"), KeyID: "k", Hash: "h"}))

	// Two debits as the worker makes them: the transfer row, the call, the answer recorded.
	for i, amount := range []int64{15_000, 7_000} {
		p := &paysaga.Payment{ID: paysaga.NewID(paysaga.PrefixPayment), CustomerID: u.ID, MerchantID: "usr_shop",
			AccountID: acct.ID, Amount: amount, Status: paysaga.PaymentProcessing}
		_, _, err := db.CreatePayment(ctx, p)
		require.NoError(t, err)
		ref, err := nh.NewRef(ctx, db, time.Now())
		require.NoError(t, err)
		tr, _, err := db.CreateTransfer(ctx, &paysaga.Transfer{ID: paysaga.NewID(paysaga.PrefixTransfer), PaymentID: p.ID,
			Kind: paysaga.TransferDebit, Amount: amount, Tsymd: ref.Tsymd, IsTuno: ref.IsTuno})
		require.NoError(t, err, "debit %d", i)
		res, err := bank.DrawingTransfer(ctx, ref, nh.DrawingTransferRequest{FinAcno: fin, Tram: amount, DractOtlt: "payctl test"})
		require.NoError(t, err)
		err = db.UpdateTransfer(ctx, tr.ID, store.TransferUpdate{State: paysaga.TransferSucceeded, Rpcd: res.Header.Rpcd, Rsms: res.Header.Rsms})
		require.NoError(t, err)
	}
	today := nh.Today(time.Now())
	secrets := []string{fin, customer.Acno, fintech.Acno, cc.AccessToken}

	code, out, stderr := run(t, env, "reconcile", "--date", today)
	require.Equal(t, ctl.ExitOK, code, "%s%s", out, stderr)
	require.Contains(t, out, "2 matched, 0 missing, 0 extra, 0 mismatched")

	// A debit nobody recorded (a second system, a replayed request…).
	ref, err := nh.NewRef(ctx, db, time.Now())
	require.NoError(t, err)
	_, err = bank.DrawingTransfer(ctx, ref, nh.DrawingTransferRequest{FinAcno: fin, Tram: 4_321, DractOtlt: "rogue"})
	require.NoError(t, err)

	code, out, stderr = run(t, env, "reconcile", "--date", today)
	require.Equal(t, ctl.ExitRefused, code, "%s%s", out, stderr)
	require.Contains(t, out, "2 matched, 1 missing, 0 extra, 0 mismatched")
	require.Contains(t, out, "4,321")
	require.Contains(t, stderr, "1 missing")
	for _, s := range secrets {
		require.NotContains(t, out+stderr, s)
	}

	code, out, _ = run(t, env, "-o", "json", "reconcile", "--date", today)
	require.Equal(t, ctl.ExitRefused, code)
	require.Contains(t, out, `"amount": 4321`)
	for _, s := range secrets {
		require.NotContains(t, out, s)
	}

	// Without the fintech account, reconcile cannot run: an error, not a clean bill.
	delete(env, "PAYSAGA_NH_FINTECH_ACCOUNT")
	code, _, stderr = run(t, env, "reconcile", "--date", today)
	require.Equal(t, ctl.ExitError, code)
	require.Contains(t, stderr, "PAYSAGA_NH_FINTECH_ACCOUNT")
}
