package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.temporal.io/api/workflowservice/v1"

	"paysaga/nhsim"
)

// operator repairs what waits for a person, with payctl, deciding from the bank's record.
type operator struct {
	st  *stack
	w   *workload
	say func(format string, args ...any)

	Resolved, Replayed, Refused, Stuck int
	Reconciled                         int // bank rows payctl reconcile paired with our transfers
	Errors                             []string
	Notes                              []string // what an operator would find odd, without breaking an invariant
}

// payctl runs bin/payctl with the engine's configuration; its output is also in payctl.log.
func (o *operator) payctl(args ...string) (string, int) {
	out, err := o.st.sup.run("payctl", o.st.bin("payctl"), args, o.st.env, 2*time.Minute)
	return out, exitCode(err)
}

// snapshot reads every payment of the run (and its refunds) from the API.
func (o *operator) snapshot(ctx context.Context) map[string]*finalPayment {
	out := map[string]*finalPayment{}
	for _, p := range o.w.payments {
		if p.ID == "" {
			continue
		}
		for id := range p.IDs {
			if fp := o.readPayment(ctx, p, id); fp != nil {
				out[id] = fp
			}
		}
	}
	return out
}

func (o *operator) readPayment(ctx context.Context, p *payment, id string) *finalPayment {
	c, m := o.w.customers[p.Cust], o.w.merchants[p.Merch]
	g := o.w.api.get(ctx, p.Seq%2, "/v1/payments/"+id, c.Token)
	if g.Status != http.StatusOK {
		return nil
	}
	var fp finalPayment
	if !decode(g.body, &fp) {
		return nil
	}
	after := ""
	for {
		path := "/v1/payments/" + id + "/refunds?limit=100"
		if after != "" {
			path += "&starting_after=" + url.QueryEscape(after)
		}
		l := o.w.api.get(ctx, p.Seq%2, path, m.Token)
		var page struct {
			Data    []finalRefund `json:"data"`
			HasMore bool          `json:"has_more"`
		}
		if l.Status != http.StatusOK || !decode(l.body, &page) {
			return nil
		}
		fp.Refunds = append(fp.Refunds, page.Data...)
		if !page.HasMore || len(page.Data) == 0 {
			break
		}
		after = page.Data[len(page.Data)-1].ID
	}
	return &fp
}

func decode(m map[string]any, v any) bool {
	b, err := json.Marshal(m)
	return err == nil && json.Unmarshal(b, v) == nil
}

// waiting reports what still moves or waits for someone.
func waiting(all map[string]*finalPayment) (moving, stuck []string) {
	for id, fp := range all {
		switch {
		case fp.Status == "UNKNOWN" || fp.Status == "AUTHORIZED":
			// An operator's or the merchant's turn.
			stuck = append(stuck, id)
		case !finalStatuses[fp.Status]:
			moving = append(moving, id+" "+fp.Status)
		}
		for _, r := range fp.Refunds {
			switch r.Status {
			case "UNKNOWN":
				stuck = append(stuck, r.ID)
			case "PENDING":
				moving = append(moving, r.ID+" PENDING")
			}
		}
	}
	return moving, stuck
}

// settled reports whether a payment and its refunds are final.
func settled(fp *finalPayment) bool {
	if !finalStatuses[fp.Status] {
		return false
	}
	for _, r := range fp.Refunds {
		if r.Status != "SUCCEEDED" && r.Status != "FAILED" {
			return false
		}
	}
	return true
}

// settle waits until nothing moves any more (everything final or waiting for an operator), up
// to d; it returns the last snapshot.
func (o *operator) settle(ctx context.Context, d time.Duration) map[string]*finalPayment {
	deadline := time.Now().Add(d)
	all := o.snapshot(ctx)
	for {
		moving, stuck := waiting(all)
		if len(moving) == 0 || time.Now().After(deadline) || ctx.Err() != nil {
			if len(moving) > 0 {
				o.say("  still moving after %s: %d (e.g. %s)", d, len(moving), strings.Join(moving[:min(5, len(moving))], ", "))
			}
			o.say("  settled: %d payments, %d waiting for an operator", len(all), len(stuck))
			return all
		}
		o.say("  %d payments or refunds still moving, %d waiting for an operator", len(moving), len(stuck))
		sleep(ctx, 5*time.Second)
		// Read again only what was still moving.
		for _, p := range o.w.payments {
			for id := range p.IDs {
				if fp := all[id]; fp == nil || !settled(fp) {
					if fp := o.readPayment(ctx, p, id); fp != nil {
						all[id] = fp
					}
				}
			}
		}
	}
}

// bankTransfers reads every transfer the bank executed.
func (o *operator) bankTransfers(ctx context.Context) ([]nhsim.Transfer, error) {
	var out []nhsim.Transfer
	return out, o.w.admin(ctx, http.MethodGet, "/admin/transfers", nil, &out)
}

type showDetail struct {
	Transfers []struct {
		Kind   string `json:"kind"`
		Amount int64  `json:"amount"`
		Tsymd  string `json:"tsymd"`
		IsTuno string `json:"is_tuno"`
		State  string `json:"state"`
	} `json:"transfers"`
}

// verdictFromBank decides what became of a payment's debit, or of the credit of refunded
// amount amount (0: the debit), from the bank's record of the transfers payctl shows.
func (o *operator) verdictFromBank(ctx context.Context, paymentID string, amount int64) (as, reason string, err error) {
	out, code := o.payctl("-o", "json", "payments", "show", paymentID)
	if code != 0 {
		return "", "", fmt.Errorf("payctl payments show %s: exit %d", paymentID, code)
	}
	var d showDetail
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		return "", "", fmt.Errorf("payctl payments show %s: %w", paymentID, err)
	}
	bank, err := o.bankTransfers(ctx)
	if err != nil {
		return "", "", err
	}
	executed := map[[2]string]bool{}
	for _, t := range bank {
		executed[[2]string{t.Tsymd, t.IsTuno}] = true
	}
	var asked []string
	for _, t := range d.Transfers {
		isDebit := t.Kind == "DrawingTransfer"
		if (amount == 0) != isDebit || (amount != 0 && t.Amount != amount) {
			continue
		}
		if executed[[2]string{t.Tsymd, t.IsTuno}] {
			return "succeeded", fmt.Sprintf("chaos: the bank executed %s %s/%s", t.Kind, t.Tsymd, t.IsTuno), nil
		}
		asked = append(asked, t.Tsymd+"/"+t.IsTuno)
	}
	return "failed", fmt.Sprintf("chaos: the bank executed none of %s", strings.Join(asked, ", ")), nil
}

// stuckRow is a line of `payctl -o json payments stuck`.
type stuckRow struct {
	PaymentID      string `json:"payment_id"`
	PaymentStatus  string `json:"payment_status"`
	DBStatus       string `json:"db_status"`
	NeedsAttention bool   `json:"needs_attention"`
}

// stuck asks payctl, as an operator would, which payment workflows wait for one.
func (o *operator) stuck() ([]stuckRow, error) {
	out, code := o.payctl("-o", "json", "payments", "stuck", "--older-than", "0s", "--limit", "1000")
	if code != 0 {
		return nil, fmt.Errorf("payctl payments stuck: exit %d", code)
	}
	var rows []stuckRow
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		return nil, fmt.Errorf("payctl payments stuck: %w", err)
	}
	return rows, nil
}

// repair resolves the payments that wait for an operator (the API says UNKNOWN, or payctl
// lists them as stuck) and the UNKNOWN refunds, and replays the refunds of cancellations that
// failed (their payment left AUTHORIZED), with payctl, deciding from the bank's record.
func (o *operator) repair(ctx context.Context, all map[string]*finalPayment) (acted int) {
	before := o.Resolved + o.Refused + o.Replayed + len(o.Errors)
	defer func() { acted = o.Resolved + o.Refused + o.Replayed + len(o.Errors) - before }()
	resolve := map[string]bool{}
	for id, fp := range all {
		if fp.Status == "UNKNOWN" {
			resolve[id] = true
		}
	}
	rows, err := o.stuck()
	if err != nil {
		o.Errors = append(o.Errors, err.Error())
	}
	for _, r := range rows {
		o.Stuck++
		if r.PaymentStatus != "AUTHORIZED" {
			resolve[r.PaymentID] = true
		}
	}
	for id := range resolve {
		as, reason, err := o.verdictFromBank(ctx, id, 0)
		if err != nil {
			o.Errors = append(o.Errors, err.Error())
			continue
		}
		o.run("payments", "resolve", id, "--as", as, "--reason", reason, "--actor", "chaos")
	}
	for id, fp := range all {
		switch fp.Status {
		case "AUTHORIZED":
			// Its cancellation's refund failed: the payment waits for an operator's replay.
			ref := "ref_" + strings.TrimPrefix(id, "pay_")
			for _, r := range fp.Refunds {
				if r.ID == ref && r.Status == "FAILED" {
					if _, code := o.payctl("refund", "replay", ref, "--actor", "chaos"); code == 0 {
						o.Replayed++
					} else {
						o.Errors = append(o.Errors, fmt.Sprintf("payctl refund replay %s: exit %d", ref, code))
					}
				}
			}
		}
		for _, r := range fp.Refunds {
			if r.Status != "UNKNOWN" {
				continue
			}
			as, reason, err := o.verdictFromBank(ctx, id, r.Amount)
			if err != nil {
				o.Errors = append(o.Errors, err.Error())
				continue
			}
			o.run("refund", "resolve", r.ID, "--as", as, "--reason", reason, "--actor", "chaos")
		}
	}
	return acted // set by the deferred count
}

func (o *operator) run(args ...string) {
	out, code := o.payctl(args...)
	switch {
	case code == 0:
		o.Resolved++
	case code == 3 && strings.Contains(out, "already resolved: it is AUTHORIZED"):
		// The resolution took (a manual-capture payment resolved as debited waits for its
		// capture), but payctl expected SUCCEEDED and calls it someone else's verdict.
		o.Resolved++
		o.Notes = append(o.Notes, fmt.Sprintf("payctl %s exited 3 (\"already resolved: it is AUTHORIZED\") for its own resolution of a manual-capture payment", args[2]))
	case code == 3:
		// Refused: the workflow settled it itself meanwhile (a refund's own inquiry), or it is
		// not waiting any more.
		o.Refused++
	default:
		o.Errors = append(o.Errors, fmt.Sprintf("payctl %s: exit %d", strings.Join(args, " "), code))
	}
}

// listed returns every payment id in the customers' lists.
func (o *operator) listed(ctx context.Context) ([]string, error) {
	var out []string
	for _, c := range o.w.customers {
		after := ""
		for {
			path := "/v1/payments?limit=100"
			if after != "" {
				path += "&starting_after=" + url.QueryEscape(after)
			}
			l := o.w.api.get(ctx, 0, path, c.Token)
			var page struct {
				Data []struct {
					ID string `json:"id"`
				} `json:"data"`
				HasMore bool `json:"has_more"`
			}
			if l.Status != http.StatusOK || !decode(l.body, &page) {
				return nil, fmt.Errorf("list payments: %d %s", l.Status, l.Err)
			}
			for _, p := range page.Data {
				out = append(out, p.ID)
			}
			if !page.HasMore || len(page.Data) == 0 {
				break
			}
			after = page.Data[len(page.Data)-1].ID
		}
	}
	return out, nil
}

// openRuns lists the payment and refund workflows still running.
func (o *operator) openRuns(ctx context.Context) ([]wfRun, error) {
	var out []wfRun
	var token []byte
	for {
		resp, err := o.st.tc.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace:     "default",
			Query:         `ExecutionStatus = "Running" AND (WorkflowType = "PaymentWorkflow" OR WorkflowType = "RefundWorkflow")`,
			NextPageToken: token,
		})
		if err != nil {
			return nil, err
		}
		for _, e := range resp.GetExecutions() {
			out = append(out, wfRun{ID: e.GetExecution().GetWorkflowId(), Type: e.GetType().GetName(), Status: "Running"})
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			return out, nil
		}
	}
}

// badRuns lists the payment and refund workflow runs that closed other than completed.
func (o *operator) badRuns(ctx context.Context) ([]wfRun, map[string]int, error) {
	var out []wfRun
	byStatus := map[string]int{}
	var token []byte
	for {
		resp, err := o.st.tc.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace:     "default",
			Query:         `ExecutionStatus != "Running"`,
			NextPageToken: token,
		})
		if err != nil {
			return nil, nil, err
		}
		for _, e := range resp.GetExecutions() {
			st := strings.TrimPrefix(e.GetStatus().String(), "WORKFLOW_EXECUTION_STATUS_")
			typ := e.GetType().GetName()
			byStatus[typ+" "+st]++
			if st != "COMPLETED" && st != "Completed" && st != "CONTINUED_AS_NEW" && st != "ContinuedAsNew" {
				out = append(out, wfRun{ID: e.GetExecution().GetWorkflowId(), Type: typ, Status: st})
			}
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			return out, byStatus, nil
		}
	}
}

// reconcile runs `payctl reconcile` for each day (Tsymd) of the run's transfers: the bank's
// statement of the fintech account against the engine's transfer records. It returns one line
// per difference.
func (o *operator) reconcile(transfers []nhsim.Transfer) (problems []string, err error) {
	days := map[string]bool{}
	for _, t := range transfers {
		days[t.Tsymd] = true
	}
	for day := range days {
		out, code := o.payctl("-o", "json", "reconcile", "--date", day)
		if code != 0 && code != 3 {
			return nil, fmt.Errorf("payctl reconcile --date %s: exit %d", day, code)
		}
		var rep struct {
			Matched int `json:"matched"`
			Missing []struct {
				Direction string `json:"direction"`
				Amount    int64  `json:"amount"`
			} `json:"missing"`
			Extra []struct {
				ID     string `json:"id"`
				Kind   string `json:"kind"`
				Amount int64  `json:"amount"`
				State  string `json:"state"`
			} `json:"extra"`
			Mismatched []struct {
				Transfer struct {
					ID    string `json:"id"`
					Kind  string `json:"kind"`
					State string `json:"state"`
				} `json:"transfer"`
				Problem string `json:"problem"`
			} `json:"mismatched"`
		}
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			return nil, fmt.Errorf("payctl reconcile --date %s: %w", day, err)
		}
		o.Reconciled += rep.Matched
		for _, m := range rep.Missing {
			problems = append(problems, fmt.Sprintf("%s: a %s of %d won on the bank's statement that no transfer of ours explains", day, m.Direction, m.Amount))
		}
		for _, e := range rep.Extra {
			problems = append(problems, fmt.Sprintf("%s: transfer %s (%s, %s) is not on the bank's statement", day, e.ID, e.Kind, e.State))
		}
		for _, m := range rep.Mismatched {
			problems = append(problems, fmt.Sprintf("%s: transfer %s (%s, %s): %s", day, m.Transfer.ID, m.Transfer.Kind, m.Transfer.State, m.Problem))
		}
	}
	return problems, nil
}

// replayHistories runs `payctl history replay` over every closed payment and refund workflow of
// the run: the histories written under kills and restarts must replay against the code.
func (o *operator) replayHistories() (problems []string, n int, err error) {
	out, code := o.payctl("-o", "json", "history", "replay", "--limit", "100000",
		"--query", `WorkflowType = "PaymentWorkflow" OR WorkflowType = "RefundWorkflow"`)
	if code != 0 && code != 3 {
		return nil, 0, fmt.Errorf("payctl history replay: exit %d", code)
	}
	var results []struct {
		WorkflowID string `json:"workflow_id"`
		OK         bool   `json:"ok"`
		Error      string `json:"error"`
	}
	if err := json.Unmarshal([]byte(out), &results); err != nil {
		return nil, 0, fmt.Errorf("payctl history replay: %w", err)
	}
	for _, r := range results {
		if !r.OK {
			problems = append(problems, fmt.Sprintf("%s: %s", r.WorkflowID, firstLine(r.Error)))
		}
	}
	return problems, len(results), nil
}
