package sim

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime/debug"
	"strings"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"

	"paysaga"
	"paysaga/nhsim"
	"paysaga/workflows"
)

// result is what one schedule came to.
type result struct {
	seed       uint64
	violations []string
	trace      []string
	stats      map[string]int
	wall       time.Duration
}

// runSchedule draws the schedule of seed, runs it and judges it.
func runSchedule(opts *options, seed uint64) (res result) {
	start := time.Now()
	res.seed = seed
	res.stats = map[string]int{}
	defer func() { res.wall = time.Since(start) }()
	p := drawPlan(seed)
	w, err := newWorld(opts, p)
	if err != nil {
		res.violations = []string{"simulator setup failed: " + err.Error()}
		return res
	}
	defer w.close()
	defer func() {
		if r := recover(); r != nil {
			res.violations = append(res.violations, fmt.Sprintf("the test environment panicked (a workflow stuck or a simulator bug): %v\n%s", r, debug.Stack()))
			res.trace = w.tr.lines()
		}
	}()
	for _, l := range p.describe() {
		w.tr.add("plan: %s", l)
	}
	w.schedule()
	w.env.ExecuteWorkflow(driverName, driverInput{Payments: p.Payments, Refunds: p.Refunds, Horizon: p.Horizon})
	var starts []startResult
	if err := w.env.GetWorkflowError(); err != nil {
		res.violations = append(res.violations, "the simulator's driver workflow failed: "+err.Error())
	} else if err := w.env.GetWorkflowResult(&starts); err != nil {
		res.violations = append(res.violations, "the simulator's driver result: "+err.Error())
	}
	for _, s := range starts {
		if s.Duplicate || s.Err != "" {
			what := "started"
			if s.Err != "" {
				what = "not started: " + s.Err
			}
			w.tr.addAt(s.At.Sub(w.t0), "api: start of %s (duplicate %v) %s", s.WorkflowID, s.Duplicate, what)
		}
	}
	res.violations = append(res.violations, w.check(starts, res.stats)...)
	res.violations = append(res.violations, w.settleAndCheck(res.stats)...)
	res.trace = w.tr.lines()
	return res
}

// schedule registers the plan's faults, merchant decisions, API retries, cancellation requests
// and operator passes as delayed callbacks on the simulated clock.
func (w *world) schedule() {
	p := w.plan
	at := func(d time.Duration, f func()) { w.env.RegisterDelayedCallback(f, max(d, time.Millisecond)) }
	storeDown, brokerDown, inquiryDown := 0, 0, 0
	for _, win := range p.StoreOutages {
		at(win.From, func() { storeDown++; w.gate.down.Store(true); w.tr.add("fault: the database goes down") })
		at(win.To, func() {
			storeDown--
			w.gate.down.Store(storeDown > 0)
			w.tr.add("fault: the database is back (down: %v)", storeDown > 0)
		})
	}
	for _, win := range p.BrokerOutages {
		at(win.From, func() { brokerDown++; w.pub.setDown(true); w.tr.add("fault: the broker goes down") })
		at(win.To, func() { brokerDown--; w.pub.setDown(brokerDown > 0); w.tr.add("fault: the broker is back") })
	}
	for _, win := range p.InquiryOutages {
		at(win.From, func() { inquiryDown++; w.net.inquiryDown.Store(true); w.tr.add("fault: bank inquiries go down") })
		at(win.To, func() {
			inquiryDown--
			w.net.inquiryDown.Store(inquiryDown > 0)
			w.tr.add("fault: bank inquiries are back")
		})
	}
	for _, pp := range p.Payments {
		id := workflows.PaymentWorkflowID(pp.ID)
		if pp.Manual && pp.Decision != "" {
			name := workflows.UpdateCapture
			if pp.Decision == "cancel" {
				name = workflows.UpdateCancel
			}
			at(pp.DecideAt, func() {
				w.update(id, name, workflows.CaptureDecision{Actor: merchantActor, Reason: "sim merchant " + pp.Decision})
			})
		}
		for _, d := range pp.Dups {
			at(d, func() { w.update(id, workflows.UpdateOutcome) })
		}
		if pp.CancelAt > 0 {
			at(pp.CancelAt, func() { w.cancelRequest(id) })
		}
	}
	for _, r := range p.Refunds {
		id := workflows.RefundWorkflowID(r.ID)
		for _, d := range r.Dups {
			at(d, func() { w.update(id, workflows.UpdateOutcome) })
		}
		if r.CancelAt > 0 {
			at(r.CancelAt, func() { w.cancelRequest(id) })
		}
	}
	for i, t := range p.OperatorPasses {
		last := i == len(p.OperatorPasses)-1
		at(t, func() { w.operatorPass(i, last) })
	}
}

func (w *world) update(id, name string, args ...any) {
	if !w.isOpen(id) {
		// Temporal answers "not found" or "workflow closed" (the test environment cannot be
		// asked before the workflow has registered its handlers).
		w.tr.add("update %s of %s not delivered: no open run", name, id)
		return
	}
	w.mu.Lock()
	uid := fmt.Sprintf("sim-%s-%d", name, len(w.updates))
	w.updates = append(w.updates, updateRecord{at: w.since(), id: id, name: name})
	w.mu.Unlock()
	err := w.env.UpdateWorkflowByID(id, name, uid, &testsuite.TestUpdateCallback{
		OnAccept: func() {},
		OnReject: func(err error) { w.tr.add("update %s of %s refused: %v", name, id, err) },
		OnComplete: func(v any, err error) {
			if err != nil {
				w.tr.add("update %s of %s answered with an error: %v", name, id, err)
				return
			}
			status := statusOf(v)
			w.tr.add("update %s of %s answered: %s", name, id, status)
			if name == workflows.UpdateOutcome {
				w.mu.Lock()
				w.answers[id] = append(w.answers[id], status)
				w.mu.Unlock()
			}
		},
	}, args...)
	if err != nil {
		w.tr.add("update %s of %s not delivered: %v", name, id, err)
		return
	}
	w.tr.add("update %s of %s sent %v", name, id, args)
}

func (w *world) query(id string, v any) (ok bool) {
	// A run the test environment has created but not yet begun has no query handler yet, and
	// the environment panics on it: that run cannot answer, as a real one could not.
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	val, err := w.env.QueryWorkflowByID(id, workflows.QueryStatus)
	if err != nil || val == nil {
		return false
	}
	return val.Get(v) == nil
}

// refundIDs are the plan's refunds and the cancellation refunds of its manual payments.
func (w *world) refundIDs() []string {
	var ids []string
	for _, r := range w.plan.Refunds {
		ids = append(ids, r.ID)
	}
	for _, p := range w.plan.Payments {
		if p.Manual {
			ids = append(ids, cancellationRefundID(p.ID))
		}
	}
	return ids
}

func cancellationRefundID(paymentID string) string {
	return paysaga.PrefixRefund + strings.TrimPrefix(paymentID, paysaga.PrefixPayment)
}

// executed is the bank's record of executed transfers by (Tsymd, IsTuno): what an operator
// reads at the bank before resolving.
func (w *world) executed() map[string]nhsim.Transfer {
	out := map[string]nhsim.Transfer{}
	for _, t := range w.bank.Transfers() {
		out[t.Tsymd+"/"+t.IsTuno] = t
	}
	return out
}

func (w *world) markWaited(id string, needsAttention bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	st := w.seen[id]
	if st == nil {
		st = &seenState{needsAttention: true}
		w.seen[id] = st
	}
	st.waited = true
	st.needsAttention = st.needsAttention && needsAttention
}

// operatorPass is an operator at the console: every payment and refund waiting for a
// resolution is resolved (most of the time: some are left for a later pass, and some for good
// at the last pass) as the bank's record says; FAILED refunds are replayed, sometimes.
func (w *world) operatorPass(pass int, last bool) {
	ctx := context.Background()
	executed := w.executed()
	decide := func(kind, id string) bool {
		pct := uint64(70)
		if last {
			pct = 50
		}
		return hash(w.plan.Seed, "operator", kind, id, pass)%100 < pct
	}
	for _, pp := range w.plan.Payments {
		id := workflows.PaymentWorkflowID(pp.ID)
		var v workflows.PaymentView
		if !w.query(id, &v) || !v.AwaitingResolution {
			continue
		}
		w.markWaited(pp.ID, v.NeedsAttention)
		if !decide("payment", pp.ID) {
			w.tr.add("operator: leaves %s (UNKNOWN) for later", pp.ID)
			continue
		}
		trs, err := w.admin.ListTransfersByPayment(ctx, pp.ID)
		if err != nil {
			w.tr.add("operator: cannot read the transfers of %s: %v", pp.ID, err)
			continue
		}
		as := workflows.ResolveFailed
		for _, t := range trs {
			if _, ok := executed[t.Tsymd+"/"+t.IsTuno]; ok && t.Kind == paysaga.TransferDebit {
				as = workflows.ResolveSucceeded
			}
		}
		w.resolve(id, workflows.UpdateResolve, as)
	}
	for _, rid := range w.refundIDs() {
		id := workflows.RefundWorkflowID(rid)
		var v workflows.RefundView
		if w.query(id, &v) && v.AwaitingResolution {
			w.markWaited(rid, v.NeedsAttention)
			if !decide("refund", rid) {
				w.tr.add("operator: leaves %s (UNKNOWN) for later", rid)
				continue
			}
			trs, err := w.admin.ListTransfersByRefund(ctx, rid)
			if err != nil {
				w.tr.add("operator: cannot read the transfers of %s: %v", rid, err)
				continue
			}
			as := workflows.ResolveFailed
			for _, t := range trs {
				if _, ok := executed[t.Tsymd+"/"+t.IsTuno]; ok {
					as = workflows.ResolveSucceeded
				}
			}
			w.resolve(id, workflows.UpdateResolveRefund, as)
			continue
		}
		r, err := w.admin.GetRefund(ctx, rid)
		if err != nil || r.Status != paysaga.RefundFailed || refusedOnly(w.ends(id)) || w.isOpen(id) {
			continue // only a refund that ran and failed is replayed
		}
		w.mu.Lock()
		n := w.replays[rid]
		w.mu.Unlock()
		if n >= 2 || hash(w.plan.Seed, "replay", rid, pass)%100 >= 50 {
			continue
		}
		w.mu.Lock()
		w.replays[rid]++
		w.mu.Unlock()
		cancellation := rid == cancellationRefundID(r.PaymentID)
		if pid := workflows.PaymentWorkflowID(r.PaymentID); cancellation && w.isOpen(pid) {
			// The payment workflow waits for the replay of its cancellation and runs it itself
			// (payctl refund replay sends it this Update).
			w.tr.add("operator: payctl refund replay %s (the cancellation of %s)", rid, r.PaymentID)
			w.update(pid, updateReplayCancel, workflows.CaptureDecision{Actor: operatorActor, Reason: replayReasonDefault})
			continue
		}
		w.tr.add("operator: payctl refund replay %s", rid)
		rr := replayRequest{RefundID: rid, PaymentID: r.PaymentID, Amount: r.Amount, Cancellation: cancellation}
		w.env.SignalWorkflow(signalReplay, rr)
		if hash(w.plan.Seed, "double-replay", rid, pass)%5 == 0 {
			w.tr.add("operator: a second operator replays %s at the same time", rid)
			w.env.SignalWorkflow(signalReplay, rr)
		}
	}
}

// resolve sends an operator's verdict; sometimes a second operator sends the same verdict at
// the same moment (one of them must be refused or answered alike, never applied twice).
func (w *world) resolve(workflowID, update, as string) {
	w.update(workflowID, update, workflows.Resolution{As: as, Reason: "the bank's record says " + as, Actor: operatorActor})
	if hash(w.plan.Seed, "two-operators", workflowID, w.since())%5 == 0 {
		w.tr.add("operator: a second operator resolves %s at the same moment", workflowID)
		w.update(workflowID, update, workflows.Resolution{As: as, Reason: "the bank's record says " + as, Actor: operatorActor + "-2"})
	}
}

// statusOf reads the status of the payment or refund an Update answered with.
func statusOf(v any) string {
	var raw []byte
	switch x := v.(type) {
	case *commonpb.Payloads:
		var m json.RawMessage
		if converter.GetDefaultDataConverter().FromPayloads(x, &m) != nil {
			return "?"
		}
		raw = m
	case converter.EncodedValue:
		var m json.RawMessage
		if x.Get(&m) != nil {
			return "?"
		}
		raw = m
	default:
		raw, _ = json.Marshal(v)
	}
	var body struct {
		Status string `json:"status"`
	}
	_ = json.Unmarshal(raw, &body)
	return body.Status
}
