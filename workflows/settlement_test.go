package workflows_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"paysaga"
	"paysaga/activities"
	"paysaga/events"
	"paysaga/nh"
	"paysaga/nhsim"
	"paysaga/seal"
	"paysaga/settlement"
	"paysaga/store"
	"paysaga/store/storetest"
	"paysaga/workflows"
)

// The settlement workflows run here on Temporal's test environment (time skipping) with their
// real steps: a SQLite store and the NH simulator behind the real client. Money really moves in
// the simulator: customers are debited into the fintech account, refunds credited back, and
// the judgement is the simulator's ledger.

const (
	stlIscd  = "000123"
	stlToken = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
)

type publishedEvents struct{ list []events.Event }

func (p *publishedEvents) Publish(_ context.Context, ev events.Event) error {
	p.list = append(p.list, ev)
	return nil
}

func (p *publishedEvents) types() []string {
	var out []string
	for _, ev := range p.list {
		out = append(out, ev.Type)
	}
	return out
}

type stlWorld struct {
	t    *testing.T
	db   *store.DB
	sim  *nhsim.Sim
	bank *nh.Client
	keys *seal.Keyring
	pub  *publishedEvents
	cfg  workflows.PaymentConfig
	// merchants' settlement accounts at the bank
	accounts map[string]nhsim.Account
}

func newStlWorld(t *testing.T) *stlWorld {
	t.Helper()
	db := storetest.Open(t, store.DriverSQLite)
	sim := nhsim.New(nhsim.Config{Iscd: stlIscd, AccessToken: stlToken, Seed: 1})
	t.Cleanup(sim.Close)
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	bank, err := nh.New(nh.Config{BaseURL: srv.URL, Iscd: stlIscd, AccessToken: stlToken,
		Timeouts: map[string]time.Duration{"*": 2 * time.Second}}, db)
	require.NoError(t, err)
	return &stlWorld{t: t, db: db, sim: sim, bank: bank, keys: seal.NewDevKeyring(), pub: &publishedEvents{},
		cfg: workflows.PaymentConfig{UnknownDeadline: 5 * time.Minute, RetryDelay: time.Second}, accounts: map[string]nhsim.Account{}}
}

// merchant creates a merchant with a settlement account at the bank in holder's name.
func (w *stlWorld) merchant(name, holder, bncd string) string {
	t := w.t
	ctx := context.Background()
	id := paysaga.NewID(paysaga.PrefixUser)
	require.NoError(t, w.db.CreateUser(ctx, &paysaga.User{ID: id, Email: id + "@shop.example", Name: name, Role: paysaga.RoleMerchant, PasswordHash: "x"}))
	acct, err := w.sim.CreateAccount(nhsim.Account{Bncd: bncd, Holder: holder, Birth: "19800101"})
	require.NoError(t, err)
	sealed, err := activities.SealSettlementAccount(w.keys, id, acct.Acno)
	require.NoError(t, err)
	require.NoError(t, w.db.SetSettlementAccount(ctx, id, acct.Bncd, paysaga.MaskAccountNumber(acct.Acno),
		store.SealedAccountNumber{Ciphertext: sealed.Ciphertext, KeyID: sealed.KeyID}))
	w.accounts[id] = acct
	return id
}

func (w *stlWorld) balance(merchantID string) int64 {
	a := w.accounts[merchantID]
	return w.sim.Balance(a.Bncd, a.Acno)
}

// pay debits a fresh customer amount at the bank (into the fintech account) and records the
// payment to merchantID, captured at at.
func (w *stlWorld) pay(merchantID string, amount int64, at time.Time) *paysaga.Payment {
	t := w.t
	ctx := context.Background()
	cust, err := w.sim.CreateAccount(nhsim.Account{Holder: "고객", Birth: "19900101", Balance: amount})
	require.NoError(t, err)
	fin, err := w.sim.RegisterFinAccount(cust.Bncd, cust.Acno, true)
	require.NoError(t, err)
	uid := paysaga.NewID(paysaga.PrefixUser)
	require.NoError(t, w.db.CreateUser(ctx, &paysaga.User{ID: uid, Email: uid + "@example.com", Name: "고객", Role: paysaga.RoleCustomer, PasswordHash: "x"}))
	acct := &paysaga.Account{ID: paysaga.NewID(paysaga.PrefixAccount), OwnerID: uid, BankCode: cust.Bncd,
		MaskedNumber: paysaga.MaskAccountNumber(cust.Acno), Status: paysaga.AccountActive, FinAccount: fin}
	require.NoError(t, w.db.CreateAccount(ctx, acct, store.SealedAccountNumber{Ciphertext: []byte("x"), KeyID: "k", Hash: paysaga.NewID("h")}))
	ref, err := nh.NewRef(ctx, w.db, time.Now())
	require.NoError(t, err)
	_, err = w.bank.DrawingTransfer(ctx, ref, nh.DrawingTransferRequest{FinAcno: fin, Tram: amount, DractOtlt: "paysaga"})
	require.NoError(t, err)
	p := &paysaga.Payment{ID: paysaga.NewID(paysaga.PrefixPayment), CustomerID: uid, MerchantID: merchantID,
		AccountID: acct.ID, Amount: amount, Status: paysaga.PaymentPending, CreatedAt: at}
	err = w.db.RecordPaymentChange(ctx, store.PaymentChange{Create: p, PaymentID: p.ID, Status: paysaga.PaymentProcessing})
	require.NoError(t, err)
	err = w.db.RecordPaymentChange(ctx, store.PaymentChange{PaymentID: p.ID, Status: paysaga.PaymentSucceeded,
		Events: []paysaga.PaymentEvent{{ID: "evt_" + p.ID + "_ok", PaymentID: p.ID, Type: store.CapturedEventType, CreatedAt: at}}})
	require.NoError(t, err)
	p.AccountID = fin // the fin account, for refunds below (test only)
	return p
}

// refund credits amount of p back to its customer at the bank and records the refund
// SUCCEEDED at at.
func (w *stlWorld) refund(p *paysaga.Payment, amount int64, at time.Time) {
	t := w.t
	ctx := context.Background()
	ref, err := nh.NewRef(ctx, w.db, time.Now())
	require.NoError(t, err)
	_, err = w.bank.ReceivedTransferFinAccount(ctx, ref, nh.ReceivedTransferFinAccountRequest{FinAcno: p.AccountID, Tram: amount, DractOtlt: "환불", MractOtlt: "환불"})
	require.NoError(t, err)
	db := w.db.WithClock(func() time.Time { return at })
	r := paysaga.Refund{ID: paysaga.NewID(paysaga.PrefixRefund), PaymentID: p.ID, Amount: amount, CreatedBy: "merchant"}
	_, err = db.ReserveRefund(ctx, store.RefundReservation{Refund: r})
	require.NoError(t, err)
	_, _, err = db.SettleRefund(ctx, store.RefundSettlement{RefundID: r.ID, Status: paysaga.RefundSucceeded})
	require.NoError(t, err)
}

func (w *stlWorld) env() *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	p := workflows.NewPayments(w.cfg)
	env.RegisterWorkflowWithOptions(p.SettlementDayWorkflow, workflow.RegisterOptions{Name: workflows.SettlementDayWorkflowName})
	env.RegisterWorkflowWithOptions(p.SettlementWorkflow, workflow.RegisterOptions{Name: workflows.SettlementWorkflowName})
	(&activities.SettlementActivities{Store: w.db, Bank: w.bank, Keys: w.keys, Events: w.pub, DefaultFeeBPS: 250}).Register(env)
	return env
}

func (w *stlWorld) settleDay(day string) workflows.SettlementDayResult {
	w.t.Helper()
	env := w.env()
	env.ExecuteWorkflow(workflows.SettlementDayWorkflowName, workflows.SettlementDayInput{Day: day})
	require.True(w.t, env.IsWorkflowCompleted())
	require.NoError(w.t, env.GetWorkflowError())
	var res workflows.SettlementDayResult
	require.NoError(w.t, env.GetWorkflowResult(&res))
	return res
}

func (w *stlWorld) settleMerchant(in workflows.SettlementInput) settlement.Settlement {
	w.t.Helper()
	env := w.env()
	env.ExecuteWorkflow(workflows.SettlementWorkflowName, in)
	require.True(w.t, env.IsWorkflowCompleted())
	require.NoError(w.t, env.GetWorkflowError())
	var s settlement.Settlement
	require.NoError(w.t, env.GetWorkflowResult(&s))
	return s
}

func (w *stlWorld) payouts() []nhsim.Transfer {
	var out []nhsim.Transfer
	for _, tr := range w.sim.Transfers() {
		if tr.API == nh.APIReceivedTransferAccountNumber || tr.API == nh.APIReceivedTransferOtherBank {
			out = append(out, tr)
		}
	}
	return out
}

func at(day string, hour int) time.Time {
	d, err := settlement.ParseDay(day)
	if err != nil {
		panic(err)
	}
	return d.Add(time.Duration(hour) * time.Hour)
}

// A day with payments and partial refunds for one merchant, and refunds outweighing payments
// for another: the first is paid exactly its net, the second nothing, its debt carried to its
// next day; the fintech keeps exactly the fees (and fronts the debt); money is conserved.
func TestSettlementDayPaysNetsAndCarriesDebts(t *testing.T) {
	w := newStlWorld(t)
	total0 := w.sim.TotalMoney()
	shop := w.merchant("원두상점", "원두상점", nh.BankNH)
	bakery := w.merchant("빵집", "빵 집", "088") // another bank; the bank spaces the name

	// Day 0: the bakery's first sale, settled.
	big := w.pay(bakery, 20_000, at("2026-11-29", 15))
	res := w.settleDay("2026-11-29")
	require.Equal(t, map[string]int{"PAID": 1}, res.ByStatus)
	require.EqualValues(t, 20_000-500, w.balance(bakery))

	// Day 1.
	w.pay(shop, 50_000, at("2026-12-01", 0).Add(time.Second)) // the next day: not in day 1
	p1 := w.pay(shop, 10_000, at("2026-11-30", 9))
	w.pay(shop, 999, at("2026-11-30", 13))
	w.refund(p1, 3_000, at("2026-11-30", 18))   // partial refund, same day
	w.pay(bakery, 1_000, at("2026-11-30", 10))  // …
	w.refund(big, 15_000, at("2026-11-30", 11)) // …outweighed by a refund of day 0's sale

	res = w.settleDay("2026-11-30")
	require.Equal(t, 2, res.Merchants)
	require.Equal(t, map[string]int{"PAID": 1, "CARRIED_OVER": 1}, res.ByStatus)
	shopNet := int64(10_999 - 3_000 - 250 - 24)
	require.Equal(t, shopNet, w.balance(shop), "the shop is credited exactly its net")
	require.EqualValues(t, 20_000-500, w.balance(bakery), "the bakery gets nothing on day 1")
	s, err := w.db.SettlementByDay(context.Background(), bakery, "2026-11-30")
	require.NoError(t, err)
	require.Equal(t, settlement.CarriedOver, s.Status)
	require.EqualValues(t, 1_000-15_000-25, s.CarryOut)

	// The fintech received 20,000 + 10,999 + 1,000 + 50,000, gave back 18,000 in refunds and paid
	// out the two nets: it keeps the fees of everything settled, minus the bakery's debt it
	// fronted, plus the unsettled 50,000.
	fees := int64(500 + 250 + 24 + 25)
	require.Equal(t, fees+s.CarryOut+50_000, w.sim.Fintech().Balance)
	require.Equal(t, total0+20_000+10_999+1_000+50_000, w.sim.TotalMoney(), "money conserved (customers' opening balances added)")

	// Day 2: the bakery's debt is taken off its next payout; the shop's midnight sale is paid.
	w.pay(bakery, 30_000, at("2026-12-01", 10))
	res = w.settleDay("2026-12-01")
	require.Equal(t, map[string]int{"PAID": 2}, res.ByStatus)
	require.EqualValues(t, 20_000-500+30_000-750+s.CarryOut, w.balance(bakery))
	require.Equal(t, shopNet+50_000-1_250, w.balance(shop))
	require.Equal(t, fees+750+1_250, w.sim.Fintech().Balance, "the fintech keeps exactly the fees")
	require.Contains(t, w.pub.types(), events.SettlementPaid)
	for _, ev := range w.pub.list {
		require.Contains(t, string(ev.Data), `"merchant_id":"usr_`)
	}
}

// A lost payout answer is resolved by CheckOnReceivedTransfer: PAID, one payout at the bank.
func TestSettlementLostPayoutAnswer(t *testing.T) {
	w := newStlWorld(t)
	shop := w.merchant("원두상점", "원두상점", nh.BankNH)
	w.pay(shop, 40_000, at("2026-11-30", 9))
	require.NoError(t, w.sim.SetFault(nh.APIReceivedTransferAccountNumber, nhsim.Fault{Kind: nhsim.FaultLostResponse, Probability: 1}))

	s := w.settleMerchant(workflows.SettlementInput{MerchantID: shop, Day: "2026-11-30"})
	require.Equal(t, settlement.Paid, s.Status)
	require.Len(t, w.payouts(), 1, "never sent twice")
	require.EqualValues(t, 39_000, w.balance(shop))
	require.Equal(t, int64(1_000), w.sim.Fintech().Balance)
}

// The same day again — the Schedule's run twice, a backfill over it, the merchant's own run —
// pays nobody a second time.
func TestSettlementRerunPaysOnce(t *testing.T) {
	w := newStlWorld(t)
	shop := w.merchant("원두상점", "원두상점", nh.BankNH)
	w.pay(shop, 10_000, at("2026-11-30", 9))
	require.Equal(t, map[string]int{"PAID": 1}, w.settleDay("2026-11-30").ByStatus)
	again := w.settleDay("2026-11-30")
	require.Zero(t, again.Merchants, "nothing left to settle")
	s := w.settleMerchant(workflows.SettlementInput{MerchantID: shop, Day: "2026-11-30"})
	require.Equal(t, settlement.Paid, s.Status)
	s = w.settleMerchant(workflows.SettlementInput{MerchantID: shop, Day: "2026-11-30", Retry: true, Actor: "ops"})
	require.Equal(t, settlement.Paid, s.Status, "a retry of a paid settlement pays nothing")
	require.Len(t, w.payouts(), 1)
	require.EqualValues(t, 9_750, w.balance(shop))
}

// A backfill of days never settled settles each once, in order; the same backfill again
// changes nothing.
func TestSettlementBackfill(t *testing.T) {
	w := newStlWorld(t)
	shop := w.merchant("원두상점", "원두상점", nh.BankNH)
	days := []string{"2026-11-27", "2026-11-28", "2026-11-29"}
	for i, d := range days {
		w.pay(shop, int64(10_000*(i+1)), at(d, 12))
	}
	for range 2 {
		for _, d := range days {
			w.settleDay(d)
		}
	}
	require.Len(t, w.payouts(), 3)
	require.EqualValues(t, 60_000-1_500, w.balance(shop))
	for i, d := range days {
		s, err := w.db.SettlementByDay(context.Background(), shop, d)
		require.NoError(t, err)
		require.Equal(t, settlement.Paid, s.Status)
		require.EqualValues(t, 10_000*(i+1), s.PaymentAmount)
	}
}

// A payout to an account that is not the merchant's fails with nothing sent (settlement.failed,
// an alert); after the merchant registers its own account an operator's retry pays it once.
func TestSettlementFailedThenRetried(t *testing.T) {
	w := newStlWorld(t)
	shop := w.merchant("원두상점", "남의계좌", nh.BankNH)
	w.pay(shop, 10_000, at("2026-11-30", 9))
	s := w.settleMerchant(workflows.SettlementInput{MerchantID: shop, Day: "2026-11-30"})
	require.Equal(t, settlement.Failed, s.Status)
	require.Equal(t, workflows.FailureNameMismatch, s.FailureCode)
	require.Empty(t, w.payouts())
	require.Contains(t, w.pub.types(), events.SettlementFailed)

	// The Schedule's next run leaves it to the operator.
	s = w.settleMerchant(workflows.SettlementInput{MerchantID: shop, Day: "2026-11-30"})
	require.Equal(t, settlement.Failed, s.Status)

	own, err := w.sim.CreateAccount(nhsim.Account{Holder: "원두상점", Birth: "19800101"})
	require.NoError(t, err)
	sealed, err := activities.SealSettlementAccount(w.keys, shop, own.Acno)
	require.NoError(t, err)
	require.NoError(t, w.db.SetSettlementAccount(context.Background(), shop, own.Bncd, "****", store.SealedAccountNumber{Ciphertext: sealed.Ciphertext, KeyID: sealed.KeyID}))
	w.accounts[shop] = own
	s = w.settleMerchant(workflows.SettlementInput{MerchantID: shop, Day: "2026-11-30", Retry: true, Actor: "ops"})
	require.Equal(t, settlement.Paid, s.Status)
	require.EqualValues(t, 9_750, w.balance(shop))
	require.Len(t, w.payouts(), 1)
}

// The bank cannot say what became of a payout until the deadline: UNKNOWN (an alert), nothing
// sent again; the operator's retry asks the bank first and finds it executed.
func TestSettlementUnknownThenResolvedByRetry(t *testing.T) {
	w := newStlWorld(t)
	shop := w.merchant("원두상점", "원두상점", nh.BankNH)
	w.pay(shop, 10_000, at("2026-11-30", 9))
	require.NoError(t, w.sim.SetFault(nh.APIReceivedTransferAccountNumber, nhsim.Fault{Kind: nhsim.FaultLostResponse, Probability: 1}))
	require.NoError(t, w.sim.SetFault(nh.APICheckOnReceivedTransfer, nhsim.Fault{Kind: nhsim.FaultHTTP500, Probability: 1}))
	s := w.settleMerchant(workflows.SettlementInput{MerchantID: shop, Day: "2026-11-30"})
	require.Equal(t, settlement.Unknown, s.Status)
	require.Contains(t, w.pub.types(), events.SettlementUnknown)
	require.Len(t, w.payouts(), 1)

	w.sim.ClearFaults()
	s = w.settleMerchant(workflows.SettlementInput{MerchantID: shop, Day: "2026-11-30", Retry: true, Actor: "ops"})
	require.Equal(t, settlement.Paid, s.Status)
	require.Len(t, w.payouts(), 1, "the retry asked the bank instead of sending again")
	require.EqualValues(t, 9_750, w.balance(shop))
}
