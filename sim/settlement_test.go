package sim

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"time"

	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"paysaga"
	"paysaga/activities"
	"paysaga/nh"
	"paysaga/nhsim"
	"paysaga/seal"
	"paysaga/settlement"
	"paysaga/store"
	"paysaga/workflows"
)

// simFeeBPS is the fee rate of the simulated merchant.
const simFeeBPS = 250

// settleAndCheck is the settlement day after a schedule (issue 17): the merchant registers a
// settlement account at the bank in its own name, every Korea day the schedule touched is
// settled in order (SettlementDayWorkflow with its real steps, through a clean connection to
// the same simulated bank), then settled again (a re-run must pay nobody), and the ledger is
// judged: the merchant credited exactly the nets, the fintech keeping exactly the fees (and
// fronting a carried-over debt), every settled payment and refund in one settlement, money
// conserved.
func (w *world) settleAndCheck(stats map[string]int) []string {
	ctx := context.Background()
	var v []string
	fail := func(format string, args ...any) { v = append(v, fmt.Sprintf(format, args...)) }

	keys := seal.NewDevKeyring()
	acct, err := w.bank.CreateAccount(nhsim.Account{Holder: "sim merchant", Birth: "19800101"})
	if err != nil {
		return []string{"settlement: merchant account: " + err.Error()}
	}
	sealed, err := keys.Seal([]byte(acct.Acno), settlement.AccountAD(merchantID))
	if err == nil {
		err = w.admin.SetSettlementAccount(ctx, merchantID, acct.Bncd, paysaga.MaskAccountNumber(acct.Acno),
			store.SealedAccountNumber{Ciphertext: sealed.Ciphertext, KeyID: sealed.KeyID})
	}
	if err != nil {
		return []string{"settlement: register the merchant's account: " + err.Error()}
	}
	srv := httptest.NewServer(w.bank.Handler())
	defer srv.Close()
	client, err := nh.New(nh.Config{BaseURL: srv.URL, Iscd: simIscd, AccessToken: simToken,
		Timeouts: map[string]time.Duration{"*": 5 * time.Second}}, w.admin)
	if err != nil {
		return []string{"settlement: bank client: " + err.Error()}
	}
	fintechBefore := w.bank.Fintech().Balance
	// Payments are captured on the test environment's clock, refunds settled on the store's (the
	// wall clock): the days span both.
	last := w.env.Now()
	if now := time.Now(); now.After(last) {
		last = now
	}
	days, err := settlement.Days(settlement.FormatDay(w.t0), settlement.FormatDay(last), 30)
	if err != nil {
		return []string{"settlement: days: " + err.Error()}
	}
	payoutsAtBank := func() (n int, sum int64) {
		for _, t := range w.bank.Transfers() {
			if t.To == (nhsim.AccountID{Bncd: acct.Bncd, Acno: acct.Acno}) {
				n++
				sum += t.Amount
			}
		}
		return n, sum
	}
	for pass := range 2 {
		for _, day := range days {
			if err := w.settleDay(client, keys, day); err != nil {
				fail("settlement: the run of %s (pass %d) failed: %v", day, pass+1, err)
			}
		}
		if pass == 0 {
			stats["settlement payouts"], _ = payoutsAtBank()
		}
	}
	w.tr.add("settlement: days %v settled twice", days)

	// Every settlement, with its lines.
	var all []*settlement.Settlement
	for after := ""; ; {
		page, err := w.admin.ListSettlements(ctx, store.SettlementFilter{MerchantID: merchantID, Limit: store.MaxListLimit, StartingAfter: after})
		if err != nil {
			return append(v, "settlement checker: list: "+err.Error())
		}
		for _, s := range page.Settlements {
			full, err := w.admin.GetSettlement(ctx, s.ID, true)
			if err != nil {
				return append(v, "settlement checker: get: "+err.Error())
			}
			all = append(all, full)
			after = s.ID
		}
		if !page.HasMore {
			break
		}
	}
	stats["settlements"] += len(all)

	var paidOut, payIn, refundOut, fees, carry int64
	var lastDay string
	settled := map[string]string{} // payment or refund → settlement
	settledPayments := map[string]bool{}
	for _, s := range all {
		for _, l := range s.Lines {
			if l.Kind == settlement.LinePayment {
				settledPayments[l.PaymentID] = true
			}
		}
	}
	for _, s := range all {
		w.tr.add("settlement: %s of %s: %s, %d payments %d refunds, fees %d, carry-in %d, net %d, payout %d",
			s.ID, s.Day, s.Status, s.PaymentCount, s.RefundCount, s.FeeAmount, s.CarryIn, s.Net, s.Payout)
		switch s.Status {
		case settlement.Paid:
			paidOut += s.Payout
			payouts, err := w.admin.ListPayouts(ctx, s.ID)
			if err != nil {
				fail("settlement checker: payouts of %s: %v", s.ID, err)
			}
			executed := 0
			for _, tr := range payouts {
				if tr.State == paysaga.TransferSucceeded {
					executed++
					if tr.Amount != s.Payout {
						fail("settlement %s: payout %s of %d, its net is %d", s.ID, tr.ID, tr.Amount, s.Payout)
					}
				}
			}
			if executed != 1 {
				fail("settlement %s is PAID with %d executed payouts", s.ID, executed)
			}
		case settlement.CarriedOver:
		default:
			fail("settlement %s of %s is %s (%s %s) with a healthy bank and the merchant's own account", s.ID, s.Day, s.Status, s.FailureCode, s.FailureMessage)
		}
		if s.Day > lastDay {
			lastDay, carry = s.Day, s.CarryOut
		}
		fees += s.FeeAmount
		for _, l := range s.Lines {
			if other, ok := settled[l.ItemID()]; ok {
				fail("%s %s is in settlements %s and %s", l.Kind, l.ItemID(), other, s.ID)
			}
			settled[l.ItemID()] = s.ID
			switch l.Kind {
			case settlement.LinePayment:
				payIn += l.Amount
				p, err := w.admin.GetPayment(ctx, l.PaymentID)
				if err != nil || p.Amount != l.Amount || p.MerchantID != merchantID {
					fail("settlement %s: payment line %s of %d does not match the payment (%v)", s.ID, l.PaymentID, l.Amount, err)
					continue
				}
				switch p.Status {
				case paysaga.PaymentSucceeded, paysaga.PaymentPartiallyRefunded, paysaga.PaymentRefunded:
				default:
					fail("settlement %s settles payment %s, which is %s", s.ID, p.ID, p.Status)
				}
			case settlement.LineRefund:
				refundOut += l.Amount
				r, err := w.admin.GetRefund(ctx, l.RefundID)
				if err != nil || r.Amount != l.Amount || r.Status != paysaga.RefundSucceeded {
					fail("settlement %s: refund line %s of %d does not match a succeeded refund (%v)", s.ID, l.RefundID, l.Amount, err)
				}
				if !settledPayments[l.PaymentID] {
					fail("settlement %s takes refund %s off, but its payment %s was never settled", s.ID, l.RefundID, l.PaymentID)
				}
			}
		}
	}
	// Nothing captured is left behind.
	for _, pp := range w.plan.Payments {
		p, err := w.admin.GetPayment(ctx, pp.ID)
		if err != nil {
			continue // never written (the API's write failed)
		}
		captured := false
		if evs, err := w.admin.ListPaymentEvents(ctx, p.ID); err == nil {
			for _, e := range evs {
				captured = captured || (e.Type == store.CapturedEventType && e.RefundID == "")
			}
		}
		switch p.Status {
		case paysaga.PaymentSucceeded, paysaga.PaymentPartiallyRefunded, paysaga.PaymentRefunded:
			// One with a refund in flight waits for a later settlement (its money may have left).
			if captured && settled[p.ID] == "" && w.reservedOf(ctx, p.ID) == 0 {
				fail("payment %s (%s, captured) is in no settlement", p.ID, p.Status)
			}
		}
	}

	// The ledger: the merchant got exactly the nets, once; the fintech paid exactly that out and
	// keeps exactly the fees of what it settled, fronting a carried-over debt.
	n, sum := payoutsAtBank()
	if n != stats["settlement payouts"] {
		fail("settling the days again sent %d more payouts", n-stats["settlement payouts"])
	}
	if sum != paidOut {
		fail("the merchant was credited %d at the bank; its PAID settlements pay %d", sum, paidOut)
	}
	if got := w.bank.Balance(acct.Bncd, acct.Acno); got != paidOut {
		fail("the merchant's account holds %d; its PAID settlements pay %d", got, paidOut)
	}
	if paid := fintechBefore - w.bank.Fintech().Balance; paid != paidOut {
		fail("the fintech's account paid out %d; the PAID settlements pay %d", paid, paidOut)
	}
	// The fintech keeps the fees less the merchant's debt it fronts (the last carry-over, ≤ 0).
	if kept := payIn - refundOut - paidOut; kept != fees+carry {
		fail("of what it settled the fintech keeps %d; the fees are %d and the debt carried over %d", kept, fees, -carry)
	}
	if total := w.bank.TotalMoney(); total != w.initialTotal {
		fail("settlement: the bank's ledger holds %d, it started with %d", total, w.initialTotal)
	}
	stats["settled fees"] += int(fees)
	return v
}

// settleDay runs SettlementDayWorkflow for day on a fresh test environment, with the real
// settlement steps on the checker's (unfaulted) store handle.
func (w *world) settleDay(client *nh.Client, keys *seal.Keyring, day string) error {
	var suite testsuite.WorkflowTestSuite
	suite.SetLogger(tlog.NewStructuredLogger(slog.New(slog.DiscardHandler)))
	env := suite.NewTestWorkflowEnvironment()
	env.SetTestTimeout(time.Minute)
	p := workflows.NewPayments(simConfig())
	env.RegisterWorkflowWithOptions(p.SettlementDayWorkflow, workflow.RegisterOptions{Name: workflows.SettlementDayWorkflowName})
	env.RegisterWorkflowWithOptions(p.SettlementWorkflow, workflow.RegisterOptions{Name: workflows.SettlementWorkflowName})
	(&activities.SettlementActivities{Store: w.admin, Bank: client, Keys: keys, Events: w.pub, DefaultFeeBPS: simFeeBPS}).Register(env)
	env.ExecuteWorkflow(workflows.SettlementDayWorkflowName, workflows.SettlementDayInput{Day: day})
	if err := env.GetWorkflowError(); err != nil {
		return err
	}
	var res workflows.SettlementDayResult
	if err := env.GetWorkflowResult(&res); err != nil {
		return err
	}
	if res.Errors > 0 || res.Busy > 0 {
		return fmt.Errorf("%d merchant runs failed, %d busy", res.Errors, res.Busy)
	}
	return nil
}

// reservedOf is what refunds in flight hold of a payment.
func (w *world) reservedOf(ctx context.Context, paymentID string) int64 {
	n, err := w.admin.ReservedRefundAmount(ctx, paymentID)
	if err != nil {
		return -1
	}
	return n
}
