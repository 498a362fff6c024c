package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"paysaga"
	"paysaga/nhsim"
	"paysaga/settlement"
)

// A settlement day after the chaos (issue 17): every merchant registered a settlement account at
// the bank in its own name before the drive; once everything is final the operator settles the
// run's Korea day(s) with `payctl settlements backfill`, twice (the second pass must pay nobody),
// and the judge reads the bank's ledger: each merchant credited exactly its PAID settlements'
// payouts, the fintech keeping exactly the fees (less the debts it fronts), money conserved.

// settledDetail is `payctl -o json settlements show`: a settlement, its lines and its payouts.
type settledDetail struct {
	settlement.Settlement
	Payouts []paysaga.Transfer `json:"payouts"`
}

// settleFacts is what the settlement day left.
type settleFacts struct {
	Ran         bool
	Days        []string
	Merchants   []string                   // merchant ids, in the workload's order
	Banks       map[string]nhsim.AccountID // merchant id → its settlement account at the bank
	Settlements []settledDetail
	// Transfers the bank executed during the first and the second backfill.
	First, Second []nhsim.Transfer
	// Balances of the merchants' accounts after both passes.
	Balances map[string]int64
	// The fintech's balance when the run began, before the settlement, after it.
	FintechStart, FintechBefore, FintechAfter int64
	MoneyAfter                                int64 // the bank's total after both passes
	Errors                                    []string
}

// merchantHolder is the name a chaos merchant signed up with (workload.signup): the bank's
// depositor inquiry must answer it for the payout to be sent.
func merchantHolder(i int) string { return fmt.Sprintf("Chaos merchant%d", i) }

// registerSettlementAccounts opens an empty account at the bank for each merchant, in its own
// name, and registers it through the API (PUT /v1/settlement-account) with the merchant's token.
func (w *workload) registerSettlementAccounts(ctx context.Context) (map[string]nhsim.AccountID, error) {
	out := map[string]nhsim.AccountID{}
	for i, m := range w.merchants {
		acno := fmt.Sprintf("4%05d%07d", time.Now().UnixNano()%100000, i)
		if err := w.admin(ctx, http.MethodPost, "/admin/accounts", nhsim.Account{Bncd: "011", Acno: acno,
			Holder: merchantHolder(i), Birth: "19800101"}, nil); err != nil {
			return nil, err
		}
		a, _ := w.api.send(ctx, i%2, http.MethodPut, "/v1/settlement-account", m.Token,
			map[string]string{"bank_code": "011", "account_number": acno}, time.Minute)
		if a.Status != http.StatusOK {
			return nil, fmt.Errorf("register %s's settlement account: %d %s %s", m.ID, a.Status, a.Code, a.Err)
		}
		out[m.ID] = nhsim.AccountID{Bncd: "011", Acno: acno}
	}
	return out, nil
}

// settlementDay settles the days from..to with payctl twice and gathers what the judge needs.
func (o *operator) settlementDay(ctx context.Context, sf *settleFacts, from, to time.Time) {
	fail := func(format string, args ...any) { sf.Errors = append(sf.Errors, fmt.Sprintf(format, args...)) }
	var err error
	if sf.Days, err = settlement.Days(settlement.FormatDay(from), settlement.FormatDay(to), 7); err != nil {
		fail("settlement days: %v", err)
		return
	}
	ledger := func() (nhsim.Ledger, error) {
		var l nhsim.Ledger
		return l, o.w.admin(ctx, http.MethodGet, "/admin/ledger", nil, &l)
	}
	l, err := ledger()
	if err != nil {
		fail("ledger: %v", err)
		return
	}
	sf.FintechBefore = l.Fintech.Balance
	seen, err := o.bankTransfers(ctx)
	if err != nil {
		fail("bank transfers: %v", err)
		return
	}
	for pass := 1; pass <= 2; pass++ {
		out, code := o.payctl("settlements", "backfill", "--from", sf.Days[0], "--to", sf.Days[len(sf.Days)-1], "--wait", "5m")
		o.say("  payctl settlements backfill --from %s --to %s (pass %d): exit %d\n%s", sf.Days[0], sf.Days[len(sf.Days)-1], pass, code, out)
		if code != 0 {
			fail("payctl settlements backfill (pass %d): exit %d", pass, code)
		}
		all, err := o.bankTransfers(ctx)
		if err != nil {
			fail("bank transfers: %v", err)
			return
		}
		if pass == 1 {
			sf.First = all[len(seen):]
		} else {
			sf.Second = all[len(seen):]
		}
		seen = all
	}
	if l, err = ledger(); err != nil {
		fail("ledger: %v", err)
		return
	}
	sf.FintechAfter, sf.MoneyAfter = l.Fintech.Balance, l.Total
	sf.Balances = map[string]int64{}
	for _, a := range l.Accounts {
		for m, b := range sf.Banks {
			if b == (nhsim.AccountID{Bncd: a.Bncd, Acno: a.Acno}) {
				sf.Balances[m] = a.Balance
			}
		}
	}
	for _, m := range sf.Merchants {
		out, code := o.payctl("-o", "json", "settlements", "list", "--merchant", m, "--limit", strconv.Itoa(100))
		var list []settlement.Settlement
		if code != 0 || json.Unmarshal([]byte(out), &list) != nil {
			fail("payctl settlements list --merchant %s: exit %d", m, code)
			continue
		}
		if len(list) == 100 {
			fail("merchant %s has 100 settlements or more: the judge reads one page", m)
		}
		for _, s := range list {
			out, code := o.payctl("-o", "json", "settlements", "show", s.ID)
			var d settledDetail
			if code != 0 || json.Unmarshal([]byte(out), &d) != nil {
				fail("payctl settlements show %s: exit %d", s.ID, code)
				continue
			}
			sf.Settlements = append(sf.Settlements, d)
		}
	}
	sf.Ran = len(sf.Errors) == 0
}

// judgeSettlement: a settlement day after the chaos pays each merchant exactly its net, once,
// leaves the fintech exactly the fees, and moves no money out of the bank.
func (f *facts) judgeSettlement() verdict {
	v := verdict{Name: "settlement day: merchants credited exactly net, fintech keeps the fees, paid once", OK: true}
	sf := f.Settle
	if sf == nil || !sf.Ran {
		v.problem("the settlement day did not run")
		if sf != nil {
			for _, e := range sf.Errors {
				v.problem("%s", e)
			}
		}
		return v
	}
	merchantOf := map[string]string{} // payment id → merchant id
	for _, p := range f.Payments {
		for id := range p.IDs {
			if p.Merch < len(sf.Merchants) {
				merchantOf[id] = sf.Merchants[p.Merch]
			}
		}
	}
	refunds := map[string]finalRefund{}
	for _, fp := range f.Final {
		for _, r := range fp.Refunds {
			refunds[r.ID] = r
		}
	}
	executed := map[[2]string]nhsim.Transfer{}
	for _, tr := range sf.First {
		executed[[2]string{tr.Tsymd, tr.IsTuno}] = tr
	}
	settled := map[string]string{} // payment or refund → settlement
	paid := map[string]int64{}     // merchant → its PAID payouts
	var paidAll, kept, feesAndDebts int64
	last := map[string]settledDetail{} // merchant → its latest day's settlement
	for _, s := range sf.Settlements {
		// The totals are the package's own arithmetic over the lines.
		again := settlement.Settlement{Lines: append([]settlement.Line(nil), s.Lines...)}
		settlement.Compute(&again, s.FeeBPS, s.CarryIn)
		if again.FeeAmount != s.FeeAmount || again.Net != s.Net || again.Payout != s.Payout || again.CarryOut != s.CarryOut {
			v.problem("settlement %s: fees %d, net %d, payout %d, carry-out %d; its lines make %d, %d, %d, %d",
				s.ID, s.FeeAmount, s.Net, s.Payout, s.CarryOut, again.FeeAmount, again.Net, again.Payout, again.CarryOut)
		}
		if l, ok := last[s.MerchantID]; !ok || s.Day > l.Day {
			last[s.MerchantID] = s
		}
		kept += s.PaymentAmount - s.RefundAmount - s.Payout
		feesAndDebts += s.FeeAmount
		switch s.Status {
		case settlement.Paid:
			paid[s.MerchantID] += s.Payout
			paidAll += s.Payout
			n := 0
			for _, tr := range s.Payouts {
				if tr.State != paysaga.TransferSucceeded {
					continue
				}
				n++
				bank, ok := executed[[2]string{tr.Tsymd, tr.IsTuno}]
				switch {
				case !ok:
					v.problem("settlement %s: payout %s is SUCCEEDED but the bank executed no such transfer during the settlement", s.ID, tr.ID)
				case bank.Amount != s.Payout || tr.Amount != s.Payout:
					v.problem("settlement %s: paid %d (bank %d), its net is %d", s.ID, tr.Amount, bank.Amount, s.Payout)
				case bank.To != sf.Banks[s.MerchantID]:
					v.problem("settlement %s: the payout went to another account than the merchant's", s.ID)
				}
			}
			if n != 1 {
				v.problem("settlement %s is PAID with %d executed payouts", s.ID, n)
			}
		case settlement.CarriedOver:
		default:
			v.problem("settlement %s of %s is %s (%s) with a calm bank", s.ID, s.Day, s.Status, s.FailureCode)
		}
		for _, l := range s.Lines {
			if other, ok := settled[l.ItemID()]; ok {
				v.problem("%s %s is in settlements %s and %s", l.Kind, l.ItemID(), other, s.ID)
			}
			settled[l.ItemID()] = s.ID
			switch l.Kind {
			case settlement.LinePayment:
				fp := f.Final[l.PaymentID]
				switch {
				case fp == nil || fp.Amount != l.Amount || merchantOf[l.PaymentID] != s.MerchantID:
					v.problem("settlement %s: payment line %s of %d is no payment of %d to this merchant", s.ID, l.PaymentID, l.Amount, l.Amount)
				case fp.Status != "SUCCEEDED" && fp.Status != "PARTIALLY_REFUNDED" && fp.Status != "REFUNDED":
					v.problem("settlement %s settles payment %s, which is %s", s.ID, l.PaymentID, fp.Status)
				}
			case settlement.LineRefund:
				if r, ok := refunds[l.RefundID]; !ok || r.Amount != l.Amount || r.Status != "SUCCEEDED" {
					v.problem("settlement %s: refund line %s of %d is no succeeded refund of that amount", s.ID, l.RefundID, l.Amount)
				}
			}
		}
	}
	for _, s := range last {
		feesAndDebts += s.CarryOut
	}
	// Everything captured, and every refund of it, is in a settlement (nothing is in flight).
	for id, fp := range f.Final {
		switch fp.Status {
		case "SUCCEEDED", "PARTIALLY_REFUNDED", "REFUNDED":
			if settled[id] == "" {
				v.problem("payment %s (%s) is in no settlement", id, fp.Status)
			}
			for _, r := range fp.Refunds {
				if r.Status == "SUCCEEDED" && settled[r.ID] == "" {
					v.problem("refund %s of %s is in no settlement", r.ID, id)
				}
			}
		}
	}
	// The ledger.
	credited := map[nhsim.AccountID]int64{}
	for _, tr := range sf.First {
		credited[tr.To] += tr.Amount
	}
	for _, m := range sf.Merchants {
		if got := credited[sf.Banks[m]]; got != paid[m] {
			v.problem("merchant %s: the bank credited %d won during the settlement, its PAID settlements pay %d", m, got, paid[m])
		}
		if got := sf.Balances[m]; got != paid[m] {
			v.problem("merchant %s: its account holds %d won, its PAID settlements pay %d", m, got, paid[m])
		}
	}
	if len(sf.First) != countPaid(sf.Settlements) {
		v.problem("the bank executed %d transfers during the settlement, %d settlements are PAID", len(sf.First), countPaid(sf.Settlements))
	}
	if len(sf.Second) > 0 {
		v.problem("settling the day(s) again executed %d more transfers at the bank", len(sf.Second))
	}
	if out := sf.FintechBefore - sf.FintechAfter; out != paidAll {
		v.problem("the fintech's account paid out %d won; the PAID settlements pay %d", out, paidAll)
	}
	// Over the whole run the fintech keeps exactly the fees, less the debts it fronts (carried
	// over, ≤ 0): every other won it took was refunded or paid out.
	if kept != feesAndDebts {
		v.problem("of what it settled the fintech keeps %d won; the fees less the debts carried over are %d", kept, feesAndDebts)
	}
	if got := sf.FintechAfter - sf.FintechStart; got != feesAndDebts {
		v.problem("the fintech's account gained %d won over the run; the fees less the debts carried over are %d", got, feesAndDebts)
	}
	if sf.MoneyAfter != f.MoneyBefore {
		v.problem("after the settlement the bank's total changed by %d won", sf.MoneyAfter-f.MoneyBefore)
	}
	return v
}

func countPaid(ss []settledDetail) int {
	n := 0
	for _, s := range ss {
		if s.Status == settlement.Paid {
			n++
		}
	}
	return n
}
