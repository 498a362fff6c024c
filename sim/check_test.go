package sim

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	"paysaga"
	"paysaga/workflows"
)

// check judges a finished schedule against the money-safety invariants (DESIGN.md), from the
// bank's ledger, the store (read without faults), the events published, and the workflows'
// own views (queried), and counts what happened into stats.
func (w *world) check(starts []startResult, stats map[string]int) []string {
	ctx := context.Background()
	var v []string
	fail := func(format string, args ...any) { v = append(v, fmt.Sprintf(format, args...)) }

	// The bank's side: every executed transfer, matched to the transfer row it was sent from.
	executed := w.bank.Transfers()
	stats["bank transfers executed"] += len(executed)
	rows := map[string]*paysaga.Transfer{} // by Tsymd/IsTuno
	for _, p := range w.plan.Payments {
		trs, err := w.admin.ListTransfersByPayment(ctx, p.ID)
		if err != nil {
			fail("checker: transfers of %s: %v", p.ID, err)
			continue
		}
		for _, t := range trs {
			rows[t.Tsymd+"/"+t.IsTuno] = t
		}
	}
	debits := map[string][]int64{}  // payment → executed debit amounts
	credits := map[string][]int64{} // refund → executed credit amounts
	creditTo := map[string][]string{}
	paidIn := map[string]int64{} // payment → executed credits
	var fintechIn int64
	for _, t := range executed {
		row, ok := rows[t.Tsymd+"/"+t.IsTuno]
		if !ok {
			fail("invariant 1/2: the bank executed a %s of %d (Tsymd %s, IsTuno %s) that no transfer row names", t.API, t.Amount, t.Tsymd, t.IsTuno)
			continue
		}
		if row.Amount != t.Amount {
			fail("invariant 1/2: transfer %s moved %d at the bank, its row says %d", row.ID, t.Amount, row.Amount)
		}
		if row.Kind == paysaga.TransferDebit {
			debits[row.PaymentID] = append(debits[row.PaymentID], t.Amount)
			fintechIn += t.Amount
			continue
		}
		credits[row.RefundID] = append(credits[row.RefundID], t.Amount)
		creditTo[row.RefundID] = append(creditTo[row.RefundID], t.To.Bncd+"/"+t.To.Acno)
		paidIn[row.PaymentID] += t.Amount
		fintechIn -= t.Amount
	}

	// Invariant 3: money is conserved; the fintech holds what was debited minus what was credited.
	if total := w.bank.TotalMoney(); total != w.initialTotal {
		fail("invariant 3: the bank's ledger holds %d, it started with %d", total, w.initialTotal)
	}
	if f := w.bank.Fintech().Balance; f != fintechIn {
		fail("invariant 3: the fintech's account holds %d; executed debits minus credits are %d", f, fintechIn)
	}

	published := map[string]bool{} // type|entity id
	for _, ev := range w.pub.events() {
		var body struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal(ev.Data, &body)
		published[ev.Type+"|"+body.ID] = true
	}
	stats["events published"] += len(w.pub.events())

	for _, s := range starts {
		if s.Duplicate && s.Started && s.Kind == "payment" {
			fail("invariant 5: a repeated start of %s began a second run", s.WorkflowID)
		}
	}

	paymentsByID := map[string]planPayment{}
	for _, pp := range w.plan.Payments {
		paymentsByID[pp.ID] = pp
	}

	// Refunds first: a payment's checks use its refunds.
	succeededRefunds := map[string]int64{}
	for _, rid := range w.refundIDs() {
		wid := workflows.RefundWorkflowID(rid)
		ends := w.ends(wid)
		var view workflows.RefundView
		hasView := w.query(wid, &view)
		open := hasView && w.isOpen(wid)
		r, err := w.admin.GetRefund(ctx, rid)
		if paysaga.ErrorCode(err) == paysaga.ENOTFOUND {
			stats["refunds refused or never reserved"]++
			if len(credits[rid]) > 0 {
				fail("invariant 2: refund %s has no row, but the bank executed %d credit(s) for it", rid, len(credits[rid]))
			}
			for _, e := range ends {
				if e.Failed {
					stats["refund runs failed before reserving"]++
				}
			}
			continue
		}
		if err != nil {
			fail("checker: refund %s: %v", rid, err)
			continue
		}
		w.tr.add("end: refund %s is %s in the store; workflow open %v, says %s, needs attention %v, awaiting resolution %v",
			rid, r.Status, open, view.Refund.Status, view.NeedsAttention, view.AwaitingResolution)
		n := len(credits[rid])
		if refusedOnly(ends) && !open {
			// Every run was refused at its reservation: a refusal, recorded, not an outcome.
			stats["refunds refused (recorded)"]++
			if n > 0 || r.Status == paysaga.RefundSucceeded {
				fail("invariant 2: refund %s was refused, but it is %s with %d executed credit(s)", rid, r.Status, n)
			}
			continue
		}
		stats["refunds "+string(r.Status)]++
		if n > 1 {
			fail("invariant 2: refund %s was credited %d times at the bank", rid, n)
		}
		waiting := open && view.AwaitingResolution && view.NeedsAttention
		switch r.Status {
		case paysaga.RefundSucceeded:
			succeededRefunds[r.PaymentID] += r.Amount
			if n != 1 {
				fail("invariant 2: refund %s SUCCEEDED but the bank executed %d credits for it", rid, n)
			} else if credits[rid][0] != r.Amount {
				fail("invariant 2: refund %s of %d SUCCEEDED; the bank credited %d", rid, r.Amount, credits[rid][0])
			}
			if pp, ok := paymentsByID[r.PaymentID]; ok && n == 1 {
				if acct := w.bankAccounts[pp.AccountID]; creditTo[rid][0] != acct.Bncd+"/"+acct.Acno {
					fail("invariant 2: refund %s was credited to another account than the one that paid", rid)
				}
			}
			if !published[workflows.EventRefundSucceeded+"|"+rid] {
				fail("invariant 6: refund %s SUCCEEDED; refund.succeeded was never published", rid)
			}
		case paysaga.RefundFailed:
			if n != 0 {
				fail("invariant 2: refund %s is FAILED (its reservation given back) but the bank executed its credit of %d", rid, credits[rid][0])
			}
			if !published[workflows.EventRefundFailed+"|"+rid] {
				fail("invariant 6: refund %s FAILED; refund.failed was never published", rid)
			}
		case paysaga.RefundUnknown:
			if !waiting {
				fail("invariant 4: refund %s is UNKNOWN but its workflow is not waiting for an operator with NeedsAttention (open %v, says %s, needs attention %v)",
					rid, open, view.Refund.Status, view.NeedsAttention)
			}
		default:
			if !waiting {
				fail("invariant 4: refund %s is left %s: not final, and not waiting for an operator (workflow open %v)", rid, r.Status, open)
			}
		}
		if w.waited(rid) || r.Status == paysaga.RefundUnknown {
			if !published[workflows.EventRefundUnknown+"|"+rid] {
				fail("invariant 6: refund %s waited for an operator (UNKNOWN); no refund.unknown alert was published", rid)
			}
			if st := w.seen[rid]; st != nil && !st.needsAttention {
				fail("invariant 4: refund %s waited for an operator without NeedsAttention", rid)
			}
		}
		for _, e := range ends {
			if e.Failed && w.creditSent(ctx, rid, e.RunID) {
				fail("invariant 4: a run of refund %s ended failed after its credit may have gone out (refund %s): %s", rid, r.Status, rootCause(e.Err))
			}
		}
		for _, a := range w.answersOf(wid) {
			if a == string(paysaga.RefundSucceeded) && r.Status != paysaga.RefundSucceeded {
				fail("invariant 6: the API answered that refund %s SUCCEEDED; it ended %s", rid, r.Status)
			}
		}
		lastRefused := len(ends) > 0 && ends[len(ends)-1].Refused
		if hasView && view.Refund.Status != "" && view.Refund.Status != r.Status && !open && !lastRefused {
			fail("invariant 6: refund %s: the store says %s, its last workflow run says %s", rid, r.Status, view.Refund.Status)
		}
		if hasView && open && view.Refund.Status != r.Status && !waiting {
			fail("invariant 6: refund %s: the store says %s, its running workflow says %s", rid, r.Status, view.Refund.Status)
		}
	}

	for _, pp := range w.plan.Payments {
		wid := workflows.PaymentWorkflowID(pp.ID)
		ends := w.ends(wid)
		var view workflows.PaymentView
		hasView := w.query(wid, &view)
		open := hasView && w.isOpen(wid)
		p, err := w.admin.GetPayment(ctx, pp.ID)
		if err == nil {
			w.tr.add("end: payment %s is %s in the store; workflow open %v, says %s, needs attention %v, awaiting resolution %v, awaiting capture %v",
				pp.ID, p.Status, open, view.Payment.Status, view.NeedsAttention, view.AwaitingResolution, view.AwaitingCapture)
		}
		if err != nil {
			fail("payment %s has no row at the end (%v)", pp.ID, err)
			continue
		}
		stats["payments "+string(p.Status)]++
		n := len(debits[pp.ID])
		if n > 1 {
			fail("invariant 1: payment %s was debited %d times at the bank", pp.ID, n)
		}
		waiting := open && view.AwaitingResolution && view.NeedsAttention
		switch p.Status {
		case paysaga.PaymentSucceeded, paysaga.PaymentAuthorized, paysaga.PaymentPartiallyRefunded,
			paysaga.PaymentRefunded, paysaga.PaymentCanceled:
			if n != 1 {
				fail("invariant 1: payment %s is %s but the bank executed %d debits for it", pp.ID, p.Status, n)
			} else if debits[pp.ID][0] != p.Amount {
				fail("invariant 1: payment %s of %d was debited %d", pp.ID, p.Amount, debits[pp.ID][0])
			}
		case paysaga.PaymentFailed:
			if n != 0 {
				fail("invariant 1: payment %s is FAILED but the bank executed its debit of %d", pp.ID, debits[pp.ID][0])
			}
		case paysaga.PaymentUnknown:
			if !waiting {
				fail("invariant 4: payment %s is UNKNOWN but its workflow is not waiting for an operator with NeedsAttention (open %v)", pp.ID, open)
			}
		default:
			if !waiting {
				fail("invariant 4: payment %s is left %s: not final, and not waiting for an operator (workflow open %v, says %s, needs attention %v)",
					pp.ID, p.Status, open, view.Payment.Status, view.NeedsAttention)
			}
		}
		if p.Status == paysaga.PaymentAuthorized && !open {
			fail("invariant 4: payment %s is left AUTHORIZED (debited) and its workflow has ended: it can be neither captured nor canceled", pp.ID)
		}
		if p.Status == paysaga.PaymentAuthorized && view.NeedsAttention && view.Payment.Status == paysaga.PaymentAuthorized &&
			!published[workflows.EventCancelFailed+"|"+pp.ID] {
			fail("invariant 6: payment %s's cancellation failed (AUTHORIZED, NeedsAttention); no payment.cancel_failed alert was published", pp.ID)
		}
		// The store refused a step after the debit (an injected conflict): the row stays where it
		// was, the workflow says UNKNOWN and waits for an operator — with payment.unknown out.
		if view.Payment.Status == paysaga.PaymentUnknown && view.NeedsAttention && !published[workflows.EventUnknown+"|"+pp.ID] {
			fail("invariant 6: payment %s waits for an operator (UNKNOWN, NeedsAttention); no payment.unknown alert was published", pp.ID)
		}
		// Invariant 2 on the payment: never more refunded than captured, at the bank and in the store.
		if succeededRefunds[pp.ID] > p.Amount {
			fail("invariant 2: payment %s of %d has %d in SUCCEEDED refunds", pp.ID, p.Amount, succeededRefunds[pp.ID])
		}
		if paidIn[pp.ID] > 0 && n == 0 {
			fail("invariant 2: the customer of payment %s was credited %d, and never debited", pp.ID, paidIn[pp.ID])
		}
		if n == 1 && paidIn[pp.ID] > debits[pp.ID][0] {
			fail("invariant 2: payment %s was debited %d and credited back %d", pp.ID, debits[pp.ID][0], paidIn[pp.ID])
		}
		if p.RefundedAmount != succeededRefunds[pp.ID] {
			fail("invariant 2: payment %s says %d refunded; its SUCCEEDED refunds add up to %d", pp.ID, p.RefundedAmount, succeededRefunds[pp.ID])
		}
		// Invariant 6: outcomes published.
		final := map[paysaga.PaymentStatus]string{
			paysaga.PaymentSucceeded: workflows.EventSucceeded, paysaga.PaymentFailed: workflows.EventFailed,
			paysaga.PaymentCanceled: workflows.EventCanceled,
		}
		if hasView {
			if ev, ok := final[view.Payment.Status]; ok && !published[ev+"|"+pp.ID] {
				fail("invariant 6: payment %s ended %s; %s was never published", pp.ID, view.Payment.Status, ev)
			}
			if !agrees(view.Payment.Status, p.Status) && !waiting {
				fail("invariant 6: payment %s: the store says %s, the workflow says %s", pp.ID, p.Status, view.Payment.Status)
			}
		}
		// What the API answered (the outcome Update) is never contradicted by the end.
		for _, a := range w.answersOf(wid) {
			switch paysaga.PaymentStatus(a) {
			case paysaga.PaymentFailed:
				if p.Status != paysaga.PaymentFailed {
					fail("invariant 6: the API answered that payment %s FAILED; it ended %s", pp.ID, p.Status)
				}
			case paysaga.PaymentSucceeded:
				if !agrees(paysaga.PaymentSucceeded, p.Status) {
					fail("invariant 6: the API answered that payment %s SUCCEEDED; it ended %s", pp.ID, p.Status)
				}
			}
		}
		if (w.waited(pp.ID) || p.Status == paysaga.PaymentUnknown) && !published[workflows.EventUnknown+"|"+pp.ID] {
			fail("invariant 6: payment %s waited for an operator (UNKNOWN); no payment.unknown alert was published", pp.ID)
		}
		if st := w.seen[pp.ID]; st != nil && st.waited && !st.needsAttention {
			fail("invariant 4: payment %s waited for an operator without NeedsAttention", pp.ID)
		}
		for _, e := range ends {
			if e.Failed && (n > 0 || w.debitSent(ctx, pp.ID)) {
				fail("invariant 4: the workflow of payment %s ended failed after money may have moved (payment %s): %s", pp.ID, p.Status, rootCause(e.Err))
			} else if e.Failed {
				stats["payment runs failed before any debit"]++
			}
		}
	}
	w.mu.Lock()
	stats["updates sent"] += len(w.updates)
	w.mu.Unlock()
	w.net.mu.Lock()
	for f, c := range w.net.count {
		stats["fault: bank "+string(f)] += c
	}
	w.net.mu.Unlock()
	stats["fault: statements refused (database down)"] += int(w.gate.refused.Load())
	stats["fault: write conflicts"] += int(w.gate.conflict.Load())
	stats["fault: completions lost"] += w.acts.lost
	stats["fault: store refusals after money moved"] += len(w.acts.refused)
	w.pub.mu.Lock()
	stats["fault: publishes refused (broker down)"] += w.pub.refused
	w.pub.mu.Unlock()
	return v
}

// agrees: the payment workflow's status and the store's row say the same. The refund
// workflows move the row on from SUCCEEDED (partially refunded, refunded) without the payment
// workflow, which has ended.
func agrees(wf, db paysaga.PaymentStatus) bool {
	if wf == db {
		return true
	}
	return wf == paysaga.PaymentSucceeded && (db == paysaga.PaymentPartiallyRefunded || db == paysaga.PaymentRefunded)
}

// refusedOnly: every run ended refused at its reservation.
func refusedOnly(ends []runEnd) bool {
	for _, e := range ends {
		if !e.Refused {
			return false
		}
	}
	return len(ends) > 0
}

func (w *world) ends(workflowID string) []runEnd {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]runEnd(nil), w.completed[workflowID]...)
}

func (w *world) answersOf(workflowID string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.answers[workflowID]...)
}

func (w *world) waited(id string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	st := w.seen[id]
	return st != nil && st.waited
}

// debitSent: a debit of the payment may have reached the bank (a transfer row exists that is
// not known to have failed).
func (w *world) debitSent(ctx context.Context, paymentID string) bool {
	trs, _ := w.admin.ListTransfersByPayment(ctx, paymentID)
	for _, t := range trs {
		if t.Kind == paysaga.TransferDebit && t.State != paysaga.TransferNotExecuted && t.State != paysaga.TransferDeclined {
			return true
		}
	}
	return false
}

// creditSent: a credit sent by this run of the refund may have reached the bank. A run's
// transfers carry its tag (workflows.runTag: the first 4 bytes of the SHA-256 of the run ID, in
// hex) in their IDs.
func (w *world) creditSent(ctx context.Context, refundID, runID string) bool {
	sum := sha256.Sum256([]byte(runID))
	tag := "_" + hex.EncodeToString(sum[:4]) + "_"
	trs, _ := w.admin.ListTransfersByRefund(ctx, refundID)
	for _, t := range trs {
		if strings.Contains(t.ID, tag) && t.State != paysaga.TransferNotExecuted && t.State != paysaga.TransferDeclined {
			return true
		}
	}
	return false
}
