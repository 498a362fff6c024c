package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paysaga"
	"paysaga/nhsim"
	"paysaga/settlement"
)

var (
	bankA = nhsim.AccountID{Bncd: "011", Acno: "3000000000001"}
	bankB = nhsim.AccountID{Bncd: "011", Acno: "3000000000002"}
)

// cleanRun is a small run in which everything went right: payment 1 succeeded and was partly
// refunded, payment 2 failed, payment 3 was canceled (its cancellation refunded it).
func cleanRun() *facts {
	p1 := &payment{Seq: 1, Amount: paymentBase + 1, Key: "k1", ID: "pay_1", IDs: map[string]int{"pay_1": 2},
		Refunds: []*refundReq{{Key: "r1", Amount: smallRefundBase + 1, ID: "ref_1", IDs: map[string]int{"ref_1": 1}}}}
	p2 := &payment{Seq: 2, Amount: paymentBase + 2, Key: "k2", ID: "pay_2", IDs: map[string]int{"pay_2": 1}}
	p3 := &payment{Seq: 3, Amount: paymentBase + 3, Key: "k3", ID: "pay_3", IDs: map[string]int{"pay_3": 1}}
	at := time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)
	f := &facts{
		Payments: []*payment{p1, p2, p3},
		Customers: []*customer{
			{AccountID: "acct_a", Bank: bankA},
			{AccountID: "acct_b", Bank: bankB},
		},
		Final: map[string]*finalPayment{
			"pay_1": {ID: "pay_1", AccountID: "acct_a", Amount: p1.Amount, RefundedAmount: smallRefundBase + 1, Status: "PARTIALLY_REFUNDED",
				Refunds: []finalRefund{{ID: "ref_1", PaymentID: "pay_1", Amount: smallRefundBase + 1, Status: "SUCCEEDED"}}},
			"pay_2": {ID: "pay_2", AccountID: "acct_b", Amount: p2.Amount, Status: "FAILED"},
			"pay_3": {ID: "pay_3", AccountID: "acct_b", Amount: p3.Amount, RefundedAmount: p3.Amount, Status: "CANCELED",
				Refunds: []finalRefund{{ID: "ref_3", PaymentID: "pay_3", Amount: p3.Amount, Status: "SUCCEEDED"}}},
		},
		Listed: []string{"pay_1", "pay_2", "pay_3"},
		Transfers: []nhsim.Transfer{
			{API: "DrawingTransfer", From: bankA, Amount: p1.Amount, Tsymd: "20261202", IsTuno: "1"},
			{API: "ReceivedTransferFinAccount", To: bankA, Amount: smallRefundBase + 1, Tsymd: "20261202", IsTuno: "2"},
			{API: "DrawingTransfer", From: bankB, Amount: p3.Amount, Tsymd: "20261202", IsTuno: "3"},
			{API: "ReceivedTransferFinAccount", To: bankB, Amount: p3.Amount, Tsymd: "20261202", IsTuno: "4"},
		},
		MoneyBefore: 2 * customerBalance, MoneyAfter: 2 * customerBalance,
		Balances: map[nhsim.AccountID]int64{
			bankA: customerBalance - p1.Amount + smallRefundBase + 1,
			bankB: customerBalance,
		},
		Events: map[string]map[string]bool{
			"pay_1": {"payment.succeeded": true}, "ref_1": {"refund.succeeded": true},
			"pay_2": {"payment.failed": true},
			"pay_3": {"payment.canceled": true}, "ref_3": {"refund.succeeded": true},
		},
		EventsRead:   true,
		ReconcileRan: true,
		Replayed:     5,
		Answers: []answer{
			{At: at, Inst: 0, Method: "POST", Path: "/v1/payments", Status: 200},
			{At: at.Add(10 * time.Second), Inst: 1, Method: "POST", Path: "/v1/payments", Status: 503},
		},
		Windows: []window{{From: at.Add(5 * time.Second), To: at.Add(20 * time.Second), Inst: -1, Why: "Temporal"}},
	}
	f.Settle = settledDay(p1.Amount, smallRefundBase+1)
	return f
}

var bankM = nhsim.AccountID{Bncd: "011", Acno: "4000000000001"}

// settledDay is the settlement of the clean run's day: payment 1 of merchant usr_m, less its
// refund and its fee, paid out once to the merchant's account.
func settledDay(payment, refund int64) *settleFacts {
	s := settledDetail{Settlement: settlement.Settlement{ID: "stl_1", MerchantID: "usr_m", Day: "2026-12-02",
		Lines: []settlement.Line{
			{Kind: settlement.LinePayment, PaymentID: "pay_1", Amount: payment},
			{Kind: settlement.LineRefund, PaymentID: "pay_1", RefundID: "ref_1", Amount: refund},
		}}}
	settlement.Compute(&s.Settlement, 250, 0)
	s.Status = settlement.Paid
	s.Payouts = []paysaga.Transfer{{ID: "trf_p", Amount: s.Payout, Tsymd: "20261202", IsTuno: "9", State: paysaga.TransferSucceeded}}
	const start = 5_000_000
	before := start + payment - refund
	return &settleFacts{Ran: true, Days: []string{"2026-12-02"}, Merchants: []string{"usr_m"},
		Banks:        map[string]nhsim.AccountID{"usr_m": bankM},
		Settlements:  []settledDetail{s},
		First:        []nhsim.Transfer{{API: "ReceivedTransferAccountNumber", To: bankM, Amount: s.Payout, Tsymd: "20261202", IsTuno: "9"}},
		Balances:     map[string]int64{"usr_m": s.Payout},
		FintechStart: start, FintechBefore: before, FintechAfter: before - s.Payout,
		MoneyAfter: 2 * customerBalance,
	}
}

func TestJudgeSettlementDay(t *testing.T) {
	const name = "settlement day: merchants credited exactly net, fintech keeps the fees, paid once"
	require.Empty(t, failed(judge(cleanRun())))
	for _, tc := range []struct {
		why    string
		break_ func(sf *settleFacts)
	}{
		{"not run", func(sf *settleFacts) { sf.Ran = false }},
		{"the second pass paid again", func(sf *settleFacts) { sf.Second = sf.First }},
		{"the merchant got a won less", func(sf *settleFacts) { sf.Balances["usr_m"]--; sf.First[0].Amount-- }},
		{"the fintech kept a won more than the fees", func(sf *settleFacts) { sf.FintechAfter++; sf.FintechBefore++ }},
		{"a payout went elsewhere", func(sf *settleFacts) { sf.First[0].To = bankA }},
		{"two executed payouts", func(sf *settleFacts) {
			sf.Settlements[0].Payouts = append(sf.Settlements[0].Payouts, sf.Settlements[0].Payouts[0])
		}},
		{"a settlement failed", func(sf *settleFacts) { sf.Settlements[0].Status = settlement.Failed }},
		{"the fee is not the package's", func(sf *settleFacts) { sf.Settlements[0].FeeAmount++ }},
		{"a refund left out", func(sf *settleFacts) { sf.Settlements[0].Lines = sf.Settlements[0].Lines[:1] }},
		{"money left the bank", func(sf *settleFacts) { sf.MoneyAfter-- }},
	} {
		f := cleanRun()
		tc.break_(f.Settle)
		require.Equal(t, []string{name}, failed(judge(f)), tc.why)
	}
}

func failed(vs []verdict) []string {
	var out []string
	for _, v := range vs {
		if !v.OK {
			out = append(out, v.Name)
		}
	}
	return out
}

func TestJudgePassesACleanRun(t *testing.T) {
	vs := judge(cleanRun())
	require.Empty(t, failed(vs), "%+v", vs)
}

func TestJudgeFindsEachBrokenInvariant(t *testing.T) {
	for _, tc := range []struct {
		name   string
		break_ func(f *facts)
		want   []string
	}{
		{"a second debit of a payment", func(f *facts) {
			f.Transfers = append(f.Transfers, nhsim.Transfer{API: "DrawingTransfer", From: bankA, Amount: paymentBase + 1})
			f.MoneyAfter = f.MoneyBefore // a debit to the fintech keeps the total
			f.Balances[bankA] -= paymentBase + 1
		}, []string{"one debit per payment; executed debits = debited payments", "money conserved in the bank's ledger"}},
		{"a failed payment that was debited", func(f *facts) {
			f.Transfers = append(f.Transfers, nhsim.Transfer{API: "DrawingTransfer", From: bankB, Amount: paymentBase + 2})
			f.Balances[bankB] -= paymentBase + 2
		}, []string{"one debit per payment; executed debits = debited payments", "money conserved in the bank's ledger"}},
		{"a succeeded refund never credited", func(f *facts) {
			f.Transfers = f.Transfers[:1:1]
			f.Transfers = append(f.Transfers, cleanRun().Transfers[2:]...)
			f.Balances[bankA] -= smallRefundBase + 1
		}, []string{"refunds ≤ captured; executed credits = succeeded refunds", "money conserved in the bank's ledger"}},
		{"a credit to another account", func(f *facts) {
			f.Transfers[1].To = bankB
			f.Balances[bankA] -= smallRefundBase + 1
			f.Balances[bankB] += smallRefundBase + 1
		}, []string{"refunds ≤ captured; executed credits = succeeded refunds", "money conserved in the bank's ledger"}},
		{"money created", func(f *facts) { f.MoneyAfter++ }, []string{"money conserved in the bank's ledger"}},
		{"a payment left UNKNOWN", func(f *facts) {
			f.Final["pay_2"].Status = "UNKNOWN"
			f.Events["pay_2"] = map[string]bool{}
		}, []string{"every payment and refund final after drain + payctl"}},
		{"a debited payment left AUTHORIZED", func(f *facts) {
			// The debit of pay_3 stands and its cancellation never credited: the money
			// checks agree with the engine; only its not being final is wrong.
			f.Final["pay_3"].Status, f.Final["pay_3"].Refunds, f.Final["pay_3"].RefundedAmount = "AUTHORIZED", nil, 0
			f.Transfers = f.Transfers[:3]
			f.Balances[bankB] -= paymentBase + 3
			delete(f.Events, "pay_3")
			delete(f.Events, "ref_3")
		}, []string{"every payment and refund final after drain + payctl"}},
		{"a key answered with two payments", func(f *facts) {
			f.Payments[0].IDs["pay_1b"] = 1
		}, []string{"one idempotency key, one payment", "every 2xx id readable at its URL"}},
		{"a payment no key names", func(f *facts) { f.Listed = append(f.Listed, "pay_orphan") }, []string{"one idempotency key, one payment"}},
		{"a 2xx id not readable", func(f *facts) { f.Unreadable = []string{"pay_9"} }, []string{"every 2xx id readable at its URL"}},
		{"an event missing", func(f *facts) { delete(f.Events, "ref_1") }, []string{"every final outcome's event on a queue bound to the exchange"}},
		{"a transfer record that disagrees with the bank", func(f *facts) {
			f.Reconcile = []string{"20261202: transfer trf_1 (DrawingTransfer, UNKNOWN): executed at the bank"}
		}, []string{"payctl reconcile: our transfers = the bank's statement"}},
		{"a history that does not replay", func(f *facts) {
			f.Replay = []string{"payment:pay_1: nondeterministic"}
		}, []string{"payctl history replay: every history replays"}},
		{"a 5xx outside the windows", func(f *facts) { f.Answers[1].At = f.Answers[1].At.Add(time.Minute) }, []string{"no 5xx outside the restart windows"}},
		{"a refund workflow failed after its reservation", func(f *facts) {
			f.BadRuns = []wfRun{{ID: "refund:ref_1", Type: "RefundWorkflow", Status: "FAILED"}}
		}, []string{"no workflow failed once money may have moved"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := cleanRun()
			tc.break_(f)
			require.ElementsMatch(t, tc.want, failed(judge(f)))
		})
	}
}

func TestJudgeExcusesARefundRefusedBeforeItsReservation(t *testing.T) {
	f := cleanRun()
	// Three refunds at once exceed the payment; the third's workflow fails before reserving
	// anything and no refund row exists.
	f.BadRuns = []wfRun{{ID: "refund:ref_refused", Type: "RefundWorkflow", Status: "FAILED"}}
	require.Empty(t, failed(judge(f)))

	// The API answered 409 with the refund's id; its row says FAILED, no event was published,
	// nothing was credited.
	f.Payments[0].Refunds = append(f.Payments[0].Refunds, &refundReq{Key: "r2", Amount: largeRefundBase + 2, ID: "ref_2", HTTP: 409})
	f.Final["pay_1"].Refunds = append(f.Final["pay_1"].Refunds, finalRefund{ID: "ref_2", PaymentID: "pay_1", Amount: largeRefundBase + 2, Status: "FAILED"})
	f.BadRuns = []wfRun{{ID: "refund:ref_2", Type: "RefundWorkflow", Status: "FAILED"}}
	require.Empty(t, failed(judge(f)))

	// Had the bank credited that amount, the failed run would be a broken invariant.
	f.Transfers = append(f.Transfers, nhsim.Transfer{API: "ReceivedTransferFinAccount", To: bankA, Amount: largeRefundBase + 2})
	require.Contains(t, failed(judge(f)), "no workflow failed once money may have moved")
}

func TestJudgeFindsAWorkflowStillRunning(t *testing.T) {
	f := cleanRun()
	// The store says final, but the workflow waits for an operator and never published.
	f.OpenRuns = []wfRun{{ID: "payment:pay_1", Type: "PaymentWorkflow", Status: "Running"}}
	require.Equal(t, []string{"every payment and refund final after drain + payctl"}, failed(judge(f)))
}

func TestAWorkerWindowExcusesOnly503(t *testing.T) {
	at := time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)
	w := window{From: at, To: at.Add(10 * time.Second), Inst: -1, Only503: true}
	require.True(t, w.covers(answer{At: at.Add(time.Second), Status: 503}))
	require.False(t, w.covers(answer{At: at.Add(time.Second), Status: 500}))
}

func TestWindowCoversARequestThatOverlapsIt(t *testing.T) {
	at := time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)
	w := window{From: at, To: at.Add(10 * time.Second), Inst: 1}
	require.True(t, w.covers(answer{At: at.Add(-3 * time.Second), Dur: 5 * time.Second, Inst: 1}), "sent before, answered within")
	require.False(t, w.covers(answer{At: at.Add(-3 * time.Second), Dur: time.Second, Inst: 1}), "over before the window")
	require.False(t, w.covers(answer{At: at.Add(time.Second), Inst: 0}), "another instance")
	require.True(t, window{From: at, To: at.Add(time.Second), Inst: -1}.covers(answer{At: at, Inst: 0}))
}
