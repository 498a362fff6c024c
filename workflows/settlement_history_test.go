package workflows_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"

	"paysaga"
	"paysaga/activities"
	"paysaga/cmd/payctl/ctl"
	"paysaga/internal/app"
	"paysaga/internal/temporaltest"
	"paysaga/nh"
	"paysaga/nhsim"
	"paysaga/seal"
	"paysaga/settlement"
	"paysaga/store"
	"paysaga/store/storetest"
	"paysaga/worker"
	"paysaga/workflows"
)

// TestSettlementOnDevServer runs settlement the way production does: the engine's worker on a
// real dev server (SQLite, the simulator), days settled by `payctl settlements backfill`, a
// failed payout repaired and `payctl settlements retry`-ed, the Schedule triggered; the money
// judged at the bank. With -record it writes the histories TestReplaySettlementHistories
// replays.
func TestSettlementOnDevServer(t *testing.T) {
	srv := temporaltest.Start(t)
	ctx := context.Background()
	cfg := storetest.NewConfig(t, store.DriverSQLite)
	db, err := store.Open(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	require.NoError(t, db.Migrate(ctx))
	sim := nhsim.New(nhsim.Config{Iscd: recIscd, AccessToken: recToken, Seed: 1, FintechAccount: nhsim.Account{Balance: 10_000_000}})
	t.Cleanup(sim.Close)
	hs := httptest.NewServer(sim.Handler())
	t.Cleanup(hs.Close)
	bank, err := nh.New(nh.Config{BaseURL: hs.URL, Iscd: recIscd, AccessToken: recToken, Timeouts: map[string]time.Duration{"*": 2 * time.Second}}, db)
	require.NoError(t, err)
	keys := seal.NewDevKeyring()
	w, err := worker.New(srv.Client, worker.Deps{Store: db, Bank: bank, Keys: keys, Events: &publishedEvents{},
		Payments: recordConfig, Refunds: recordRefundConfig, SettlementFeeBPS: 250})
	require.NoError(t, err)
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)

	merchant := func(name, holder string) (string, nhsim.Account) {
		id := paysaga.NewID(paysaga.PrefixUser)
		require.NoError(t, db.CreateUser(ctx, &paysaga.User{ID: id, Email: id + "@shop.example", Name: name, Role: paysaga.RoleMerchant, PasswordHash: "x"}))
		return id, register(t, db, sim, keys, id, holder)
	}
	shop, shopAcct := merchant("원두상점", "원두상점")
	bakery, _ := merchant("빵집", "남의계좌")
	world := &stlWorld{t: t, db: db, sim: sim, bank: bank}
	world.pay(shop, 10_000, at("2026-11-30", 10))
	world.pay(shop, 20_000, at("2026-12-01", 10))
	world.pay(bakery, 5_000, at("2026-12-02", 10))

	env := map[string]string{"PAYSAGA_DB_DRIVER": store.DriverSQLite, "PAYSAGA_DB_DSN": cfg.DSN}
	payctl := func(args ...string) (int, string) {
		var out, errOut bytes.Buffer
		code := ctl.Execute(ctx, args, ctl.Env{Getenv: func(k string) string { return env[k] }, Stdout: &out, Stderr: &errOut, Temporal: srv.Client})
		return code, out.String() + errOut.String()
	}
	code, out := payctl("settlements", "backfill", "--from", "2026-11-30", "--to", "2026-12-01")
	require.Equal(t, ctl.ExitOK, code, out)
	require.EqualValues(t, 9_750+19_500, sim.Balance(shopAcct.Bncd, shopAcct.Acno))
	writeHistory(t, "settlement_day", history(t, srv.Client, settlement.DayWorkflowID("2026-11-30")))
	code, out = payctl("settlements", "backfill", "--from", "2026-11-30", "--to", "2026-12-01")
	require.Equal(t, ctl.ExitOK, code, out)
	require.EqualValues(t, 9_750+19_500, sim.Balance(shopAcct.Bncd, shopAcct.Acno), "a backfill over settled days pays nobody")
	writeHistory(t, "settlement_paid", history(t, srv.Client, settlement.WorkflowID(shop, "2026-11-30")))

	// The bakery's account is someone else's: FAILED, nothing sent; fixed, then retried.
	code, out = payctl("settlements", "backfill", "--from", "2026-12-02", "--to", "2026-12-02")
	require.Equal(t, ctl.ExitRefused, code, out)
	s, err := db.SettlementByDay(ctx, bakery, "2026-12-02")
	require.NoError(t, err)
	require.Equal(t, settlement.Failed, s.Status)
	writeHistory(t, "settlement_failed", history(t, srv.Client, settlement.WorkflowID(bakery, "2026-12-02")))
	own := register(t, db, sim, keys, bakery, "빵집")
	code, out = payctl("settlements", "retry", s.ID)
	require.Equal(t, ctl.ExitOK, code, out)
	require.Contains(t, out, "PAID")
	require.EqualValues(t, 4_875, sim.Balance(own.Bncd, own.Acno))
	writeHistory(t, "settlement_retried", history(t, srv.Client, settlement.WorkflowID(bakery, "2026-12-02")))
	code, out = payctl("settlements", "retry", s.ID)
	require.Equal(t, ctl.ExitRefused, code, out)

	// The Schedule's own action starts a day's run (the day before the scheduled time).
	require.NoError(t, app.EnsureSettlementSchedule(ctx, srv.Client, "01:00", slog.New(slog.DiscardHandler)))
	h := srv.Client.ScheduleClient().GetHandle(ctx, app.SettlementScheduleID)
	require.NoError(t, h.Trigger(ctx, client.ScheduleTriggerOptions{}))
	var runID string
	require.Eventually(t, func() bool {
		d, err := h.Describe(ctx)
		if err != nil || len(d.Info.RecentActions) == 0 {
			return false
		}
		runID = d.Info.RecentActions[0].StartWorkflowResult.WorkflowID
		return true
	}, 30*time.Second, 100*time.Millisecond)
	var res workflows.SettlementDayResult
	require.NoError(t, srv.Client.GetWorkflow(ctx, runID, "").Get(ctx, &res))
	require.Equal(t, settlement.PreviousDay(time.Now()), res.Day)
}

// register gives merchantID a settlement account at the bank in holder's name.
func register(t *testing.T, db *store.DB, sim *nhsim.Sim, keys *seal.Keyring, merchantID, holder string) nhsim.Account {
	t.Helper()
	acct, err := sim.CreateAccount(nhsim.Account{Holder: holder, Birth: "19800101"})
	require.NoError(t, err)
	sealed, err := activities.SealSettlementAccount(keys, merchantID, acct.Acno)
	require.NoError(t, err)
	require.NoError(t, db.SetSettlementAccount(context.Background(), merchantID, acct.Bncd, paysaga.MaskAccountNumber(acct.Acno),
		store.SealedAccountNumber{Ciphertext: sealed.Ciphertext, KeyID: sealed.KeyID}))
	return acct
}

// TestReplaySettlementHistories replays the recorded settlement histories against the code the
// worker registers.
func TestReplaySettlementHistories(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "settlement_*.json"))
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(files), 4, "a recorded history per settlement scenario (go test ./workflows -run TestSettlementOnDevServer -args -record)")
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			r := sdkworker.NewWorkflowReplayer()
			worker.RegisterWorkflows(r, recordConfigs)
			require.NoError(t, r.ReplayWorkflowHistoryFromJSONFile(quietLogger(), file))
		})
	}
}
