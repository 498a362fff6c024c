package main

import (
	"fmt"
	"sort"
	"strings"

	"paysaga/nhsim"
)

// finalPayment is a payment as the API shows it after the drain and the operator's repairs.
type finalPayment struct {
	ID             string `json:"id"`
	CustomerID     string `json:"customer_id"`
	AccountID      string `json:"account_id"`
	Amount         int64  `json:"amount"`
	RefundedAmount int64  `json:"refunded_amount"`
	Status         string `json:"status"`
	Refunds        []finalRefund
}

type finalRefund struct {
	ID        string `json:"id"`
	PaymentID string `json:"payment_id"`
	Amount    int64  `json:"amount"`
	Status    string `json:"status"`
}

// wfRun is a workflow run that did not complete.
type wfRun struct {
	ID, Type, Status string
}

// facts is everything the judge looks at; the run gathers them, tests make them up.
type facts struct {
	Payments  []*payment               // the client's record
	Customers []*customer              //
	Final     map[string]*finalPayment // by payment id, read from the API at the end
	Listed    []string                 // every payment id the customers' lists show
	Transfers []nhsim.Transfer         // executed by the bank during the run
	// MoneyBefore/After are the bank's total; Balances the customers' balances at the end.
	MoneyBefore, MoneyAfter int64
	Balances                map[nhsim.AccountID]int64
	Events                  map[string]map[string]bool // resource id → routing keys on the audit queue
	EventsRead              bool
	Answers                 []answer
	Windows                 []window
	BadRuns                 []wfRun
	OpenRuns                []wfRun  // payment and refund workflows still running at the end
	Unreadable              []string // ids named by a 2xx answer the API could not read
	Reconcile               []string // differences payctl reconcile found
	ReconcileRan            bool
	Replay                  []string     // histories payctl history replay could not replay
	Replayed                int          // histories replayed
	Settle                  *settleFacts // the settlement day after the run
}

// verdict is one invariant's outcome.
type verdict struct {
	Name     string
	OK       bool
	Problems []string
}

func (v *verdict) problem(format string, args ...any) {
	v.OK = false
	if len(v.Problems) < 12 {
		v.Problems = append(v.Problems, fmt.Sprintf(format, args...))
	} else if len(v.Problems) == 12 {
		v.Problems = append(v.Problems, "… (more not listed)")
	}
}

// debitedStatuses are the statuses of a payment whose debit executed; finalStatuses those after
// which nothing more happens without a refund.
var (
	debitedStatuses = map[string]bool{"AUTHORIZED": true, "SUCCEEDED": true, "PARTIALLY_REFUNDED": true, "REFUNDED": true, "CANCELED": true}
	finalStatuses   = map[string]bool{"SUCCEEDED": true, "PARTIALLY_REFUNDED": true, "REFUNDED": true, "CANCELED": true, "FAILED": true}
)

func isCredit(api string) bool { return strings.HasPrefix(api, "ReceivedTransfer") }

// bySeq maps the amounts the workload chose back to its payments.
func (f *facts) index() (bySeq map[int]*payment, refundAmount map[int64]*payment) {
	bySeq = map[int]*payment{}
	refundAmount = map[int64]*payment{}
	for _, p := range f.Payments {
		bySeq[p.Seq] = p
		for _, r := range p.Refunds {
			if r.Amount < paymentBase {
				refundAmount[r.Amount] = p
			}
		}
	}
	return bySeq, refundAmount
}

// creditPayment is the payment an executed credit belongs to (nil: none the run knows).
func creditPayment(tr nhsim.Transfer, bySeq map[int]*payment, refundAmount map[int64]*payment) *payment {
	if tr.Amount > paymentBase {
		return bySeq[int(tr.Amount-paymentBase)]
	}
	return refundAmount[tr.Amount]
}

func (f *facts) accountOf() map[nhsim.AccountID]string {
	m := map[nhsim.AccountID]string{}
	for _, c := range f.Customers {
		m[c.Bank] = c.AccountID
	}
	return m
}

// judge checks every invariant.
func judge(f *facts) []verdict {
	return []verdict{
		f.judgeDebits(), f.judgeRefunds(), f.judgeMoney(), f.judgeSettled(), f.judgeWorkflows(),
		f.judgeKeys(), f.judgeReadable(), f.judgeEvents(), f.judge5xx(), f.judgeReconcile(),
		f.judgeReplay(), f.judgeSettlement(),
	}
}

// judgeReplay: every closed payment and refund history of the run — written through kills,
// restarts and retries — replays against the workflow code (payctl history replay).
func (f *facts) judgeReplay() verdict {
	v := verdict{Name: "payctl history replay: every history replays", OK: true}
	if f.Replayed == 0 {
		v.problem("no history was replayed")
	}
	for _, p := range f.Replay {
		v.problem("%s", p)
	}
	return v
}

// judgeReconcile: the engine's transfer records agree with the bank's statement (payctl
// reconcile), once everything is settled.
func (f *facts) judgeReconcile() verdict {
	v := verdict{Name: "payctl reconcile: our transfers = the bank's statement", OK: true}
	if !f.ReconcileRan {
		v.problem("payctl reconcile did not run")
	}
	for _, p := range f.Reconcile {
		v.problem("%s", p)
	}
	return v
}

// judgeDebits: at most one executed debit per payment; executed debits = debited payments, of
// their amount, from their account.
func (f *facts) judgeDebits() verdict {
	v := verdict{Name: "one debit per payment; executed debits = debited payments", OK: true}
	bySeq, _ := f.index()
	acct := f.accountOf()
	debits := map[int][]nhsim.Transfer{}
	for _, tr := range f.Transfers {
		if tr.API != "DrawingTransfer" {
			continue
		}
		seq := int(tr.Amount - paymentBase)
		if bySeq[seq] == nil {
			v.problem("the bank executed a debit of %d won that no payment of the run asked for", tr.Amount)
			continue
		}
		debits[seq] = append(debits[seq], tr)
	}
	for _, p := range f.Payments {
		ds := debits[p.Seq]
		if len(ds) > 1 {
			v.problem("payment #%d (%s): %d debits executed at the bank", p.Seq, p.ID, len(ds))
		}
		fp := f.Final[p.ID]
		if p.ID == "" || fp == nil {
			if len(ds) > 0 {
				v.problem("payment #%d: the bank debited %d won, but no payment of its key can be read", p.Seq, p.Amount)
			}
			continue
		}
		switch {
		case debitedStatuses[fp.Status] && len(ds) == 0:
			v.problem("payment %s is %s but the bank executed no debit", p.ID, fp.Status)
		case fp.Status == "FAILED" && len(ds) > 0:
			v.problem("payment %s is FAILED but the bank executed %d debit(s)", p.ID, len(ds))
		}
		for _, d := range ds {
			if acct[d.From] != fp.AccountID {
				v.problem("payment %s: debited from %s, the payment is from %s", p.ID, acct[d.From], fp.AccountID)
			}
			if d.Amount != fp.Amount {
				v.problem("payment %s: debit of %d won, payment of %d", p.ID, d.Amount, fp.Amount)
			}
		}
	}
	return v
}

// judgeRefunds: succeeded refunds ≤ the captured amount; executed credits = succeeded refunds,
// to the account that paid.
func (f *facts) judgeRefunds() verdict {
	v := verdict{Name: "refunds ≤ captured; executed credits = succeeded refunds", OK: true}
	bySeq, refundAmount := f.index()
	acct := f.accountOf()
	type tally struct {
		n   int
		sum int64
	}
	credits := map[*payment]tally{}
	for _, tr := range f.Transfers {
		if !isCredit(tr.API) {
			continue
		}
		p := creditPayment(tr, bySeq, refundAmount)
		if p == nil {
			v.problem("the bank executed a credit of %d won that no refund of the run explains", tr.Amount)
			continue
		}
		t := credits[p]
		credits[p] = tally{t.n + 1, t.sum + tr.Amount}
		if fp := f.Final[p.ID]; fp != nil && acct[tr.To] != fp.AccountID {
			v.problem("payment %s: a credit of %d won went to %q, not to the account that paid (%s)", p.ID, tr.Amount, acct[tr.To], fp.AccountID)
		}
	}
	for _, p := range f.Payments {
		fp := f.Final[p.ID]
		if fp == nil {
			if c := credits[p]; c.n > 0 {
				v.problem("payment #%d: %d credit(s) executed but the payment cannot be read", p.Seq, c.n)
			}
			continue
		}
		var ok tally
		for _, r := range fp.Refunds {
			if r.Status == "SUCCEEDED" {
				ok = tally{ok.n + 1, ok.sum + r.Amount}
			}
		}
		if ok.sum > fp.Amount {
			v.problem("payment %s: %d won refunded of %d", fp.ID, ok.sum, fp.Amount)
		}
		if got := credits[p]; got != ok {
			v.problem("payment %s: the bank executed %d credit(s) (%d won), the engine has %d succeeded refund(s) (%d won)",
				fp.ID, got.n, got.sum, ok.n, ok.sum)
		}
		if fp.RefundedAmount != ok.sum && fp.Status != "CANCELED" {
			v.problem("payment %s: refunded_amount says %d won, its succeeded refunds %d", fp.ID, fp.RefundedAmount, ok.sum)
		}
	}
	return v
}

// judgeMoney: the bank's total is unchanged, and each customer's balance is what the engine's
// outcomes say it must be.
func (f *facts) judgeMoney() verdict {
	v := verdict{Name: "money conserved in the bank's ledger", OK: true}
	if f.MoneyAfter != f.MoneyBefore {
		v.problem("the bank's total changed by %d won", f.MoneyAfter-f.MoneyBefore)
	}
	want := map[string]int64{}
	for _, fp := range f.Final {
		if debitedStatuses[fp.Status] {
			want[fp.AccountID] -= fp.Amount
		}
		for _, r := range fp.Refunds {
			if r.Status == "SUCCEEDED" {
				want[fp.AccountID] += r.Amount
			}
		}
	}
	for _, c := range f.Customers {
		got, ok := f.Balances[c.Bank]
		if !ok {
			v.problem("account %s: no balance from the bank", c.AccountID)
			continue
		}
		if got != customerBalance+want[c.AccountID] {
			v.problem("account %s: the bank holds %d won, the engine's outcomes say %d", c.AccountID, got, customerBalance+want[c.AccountID])
		}
	}
	return v
}

// judgeSettled: after the drain and the operator's repairs every payment and refund is final,
// and every request got an answer.
func (f *facts) judgeSettled() verdict {
	v := verdict{Name: "every payment and refund final after drain + payctl", OK: true}
	for _, p := range f.Payments {
		switch {
		case p.Unanswered:
			v.problem("payment #%d (key %s) never got a definitive answer", p.Seq, p.Key)
		case p.ID != "" && f.Final[p.ID] == nil:
			v.problem("payment %s could not be read at the end", p.ID)
		case p.ID != "" && !finalStatuses[f.Final[p.ID].Status]:
			v.problem("payment %s is still %s", p.ID, f.Final[p.ID].Status)
		}
		for _, r := range p.Refunds {
			if r.Unanswered {
				v.problem("refund key %s never got a definitive answer", r.Key)
			}
		}
	}
	for _, fp := range f.Final {
		for _, r := range fp.Refunds {
			if r.Status != "SUCCEEDED" && r.Status != "FAILED" {
				v.problem("refund %s of %s is still %s", r.ID, fp.ID, r.Status)
			}
		}
	}
	for _, r := range f.OpenRuns {
		id := r.ID[strings.Index(r.ID, ":")+1:]
		status := ""
		if fp := f.Final[id]; fp != nil {
			status = ", the API says " + fp.Status
		}
		v.problem("%s %s is still running%s", r.Type, r.ID, status)
	}
	return v
}

// refused are the refunds the API refused at once (409: more than is left to refund) and
// whose amount the bank never credited: nothing was reserved, nothing moved.
func (f *facts) refused() map[string]bool {
	credited := map[int64]bool{}
	for _, tr := range f.Transfers {
		if isCredit(tr.API) {
			credited[tr.Amount] = true
		}
	}
	out := map[string]bool{}
	for _, p := range f.Payments {
		for _, r := range p.Refunds {
			if r.HTTP == 409 && r.ID != "" && !credited[r.Amount] {
				out[r.ID] = true
			}
		}
	}
	return out
}

// judgeWorkflows: no payment or refund workflow run ended failed (timed out, terminated,
// canceled) once money may have moved: a payment's debit was sent, a refund's payment debited.
func (f *facts) judgeWorkflows() verdict {
	v := verdict{Name: "no workflow failed once money may have moved", OK: true}
	debited := map[string]bool{}
	for _, p := range f.Payments {
		if fp := f.Final[p.ID]; fp != nil && debitedStatuses[fp.Status] {
			debited[p.ID] = true
		}
	}
	refused := f.refused()
	refunds := map[string]bool{}
	for _, fp := range f.Final {
		for _, r := range fp.Refunds {
			refunds[r.ID] = true
		}
	}
	for _, r := range f.BadRuns {
		id := r.ID[strings.Index(r.ID, ":")+1:]
		switch r.Type {
		case "RefundWorkflow":
			// A refund refused before anything was reserved (more than is left to refund:
			// answered 409) moved nothing; whether it has a row depends on the API.
			if refunds[id] && !refused[id] {
				v.problem("refund workflow %s ended %s", r.ID, r.Status)
			}
		case "PaymentWorkflow":
			if debited[id] {
				v.problem("payment workflow %s ended %s after its debit", r.ID, r.Status)
			} else {
				v.problem("payment workflow %s ended %s (its debit may have been sent)", r.ID, r.Status)
			}
		}
	}
	return v
}

// judgeKeys: one Idempotency-Key, one payment (or refund); and no payment that no key names.
func (f *facts) judgeKeys() verdict {
	v := verdict{Name: "one idempotency key, one payment", OK: true}
	named := map[string]bool{}
	for _, p := range f.Payments {
		if len(p.IDs) > 1 {
			v.problem("payment key %s was answered with %d ids: %s", p.Key, len(p.IDs), keys(p.IDs))
		}
		for id := range p.IDs {
			named[id] = true
		}
		for _, r := range p.Refunds {
			if len(r.IDs) > 1 {
				v.problem("refund key %s was answered with %d ids: %s", r.Key, len(r.IDs), keys(r.IDs))
			}
		}
	}
	for _, id := range f.Listed {
		if !named[id] {
			v.problem("payment %s is listed but no key's answer named it (a duplicate?)", id)
		}
	}
	return v
}

// judgeReadable: every id a 2xx answer named is readable at its URL, at once and at the end.
func (f *facts) judgeReadable() verdict {
	v := verdict{Name: "every 2xx id readable at its URL", OK: true}
	for _, u := range f.Unreadable {
		v.problem("%s", u)
	}
	for _, p := range f.Payments {
		for id := range p.IDs {
			if f.Final[id] == nil {
				v.problem("payment %s (key %s) is not readable at the end", id, p.Key)
			}
		}
	}
	return v
}

// expectedEvents are the routing keys a payment's final state must have put on the exchange.
func expectedEvents(fp *finalPayment) map[string][]string {
	out := map[string][]string{}
	switch fp.Status {
	case "SUCCEEDED", "PARTIALLY_REFUNDED", "REFUNDED":
		out[fp.ID] = []string{"payment.succeeded"}
	case "FAILED":
		out[fp.ID] = []string{"payment.failed"}
	case "CANCELED":
		out[fp.ID] = []string{"payment.canceled"}
	}
	for _, r := range fp.Refunds {
		switch r.Status {
		case "SUCCEEDED":
			out[r.ID] = append(out[r.ID], "refund.succeeded")
		case "FAILED":
			out[r.ID] = append(out[r.ID], "refund.failed")
		}
	}
	return out
}

// judgeEvents: every final payment and refund has its event on the audit queue bound to the
// exchange.
func (f *facts) judgeEvents() verdict {
	v := verdict{Name: "every final outcome's event on a queue bound to the exchange", OK: true}
	if !f.EventsRead {
		v.problem("the audit queue could not be read")
		return v
	}
	ids := make([]string, 0, len(f.Final))
	for id := range f.Final {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	refused := f.refused()
	for _, id := range ids {
		for rid, want := range expectedEvents(f.Final[id]) {
			if refused[rid] {
				continue // the client was told at once (409); no outcome to publish
			}
			for _, rk := range want {
				if !f.Events[rid][rk] {
					v.problem("%s: no %s event on the queue", rid, rk)
				}
			}
		}
	}
	return v
}

// judge5xx: no 5xx answer outside the windows in which an API instance or the Temporal server
// was restarting.
func (f *facts) judge5xx() verdict {
	v := verdict{Name: "no 5xx outside the restart windows", OK: true}
	for _, a := range f.Answers {
		if a.Status < 500 {
			continue
		}
		excused := false
		for _, w := range f.Windows {
			if w.covers(a) {
				excused = true
				break
			}
		}
		if !excused {
			v.problem("%s %s on api-%d at %s: %d %s", a.Method, a.Path, a.Inst+1, a.At.UTC().Format("15:04:05.000"), a.Status, a.Code)
		}
	}
	return v
}

func keys(m map[string]int) string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}
