//go:build cluster

package cluster_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"

	"paysaga/nhsim"
)

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

const (
	paymentBase = 100_000 // payment i is of paymentBase+i won: the bank's record traces it
	customers   = 4
	payments    = 24
)

// TestTwoAPIsTwoWorkersOnATemporalCluster is paysaga in its production shape on a real Temporal
// cluster: two API and two worker processes (the binaries `make build` builds) on MariaDB,
// Redis and RabbitMQ. Payments and refunds go to both APIs, one worker is SIGKILLed while
// payments run, a customer's notification stream is held on the other API than the one that
// took the payment, and the money-safety invariants are checked against the simulated bank.
// The processes reach Temporal over mTLS (PAYSAGA_TEMPORAL_TLS_*), through a TLS-terminating
// listener in front of the frontend.
func TestTwoAPIsTwoWorkersOnATemporalCluster(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	e := startEngine(t, ctx, customers, realServer, true)
	tc, c, runID, merchant, custs, workers, apiURLs, workerURLs, simAdmin := e.tc, e.c, e.runID, e.merchant, e.custs, e.workers, e.apiURLs, e.workerURLs, e.simAdmin
	redisAddr, redisPrefix := e.redisAddr, e.redisPrefix
	var before nhsim.Ledger
	simAdmin(http.MethodGet, "/admin/ledger", nil, &before)

	// Customer 0 listens on API 2; its payments are taken by API 1.
	stream := openStream(t, ctx, apiURLs[1], custs[0].Token)

	finals := map[string]bool{"SUCCEEDED": true, "FAILED": true, "UNKNOWN": true, "CANCELED": true}
	type pay struct {
		seq    int
		amount int64
		id     string
		status string
		cust   *user
	}
	pays := make([]*pay, payments)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 6)
	for i := range payments {
		if i == payments/3 {
			// A crash, not a shutdown: the worker's activities and workflow tasks in flight are
			// lost and must be picked up by the other one.
			require.True(t, workers[0].signal(9, 10*time.Second), "SIGKILL worker-1")
			t.Logf("worker-1 killed after %d payments were sent", i)
		}
		p := &pay{seq: i, amount: int64(paymentBase + i), cust: custs[i%customers]}
		pays[i] = p
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			inst := p.seq % 2
			a := c.send(ctx, inst, http.MethodPost, "/v1/payments", p.cust.Token,
				map[string]any{"account_id": p.cust.Account, "amount": p.amount, "merchant_id": merchant.ID, "description": "cluster"},
				"Idempotency-Key", fmt.Sprintf("pay-%s-%d", runID, p.seq))
			if a.Status >= 300 {
				p.status = fmt.Sprintf("HTTP %d %s", a.Status, a.Raw)
				return
			}
			p.id = a.id()
			deadline := time.Now().Add(4 * time.Minute)
			for time.Now().Before(deadline) && ctx.Err() == nil {
				g := c.send(ctx, 1-inst, http.MethodGet, "/v1/payments/"+p.id, p.cust.Token, nil)
				p.status = g.str("status")
				if finals[p.status] {
					return
				}
				time.Sleep(300 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	for _, p := range pays {
		require.NotEmpty(t, p.id, "payment #%d: %s", p.seq, p.status)
		require.Equal(t, "SUCCEEDED", p.status, "payment #%d (%s) with a worker killed: the other one finishes it", p.seq, p.id)
	}

	// The notification reached the stream held on the other instance.
	want := map[string]bool{}
	for _, p := range pays {
		if p.cust == custs[0] && p.seq%2 == 0 {
			want[p.id] = true
		}
	}
	require.NotEmpty(t, want)
	timeout := time.After(time.Minute)
	for len(want) > 0 {
		select {
		case n, ok := <-stream.events:
			require.True(t, ok, "the stream on api-2 ended")
			if n["type"] == "payment.succeeded" {
				if d, ok := n["data"].(map[string]any); ok {
					delete(want, fmt.Sprint(d["id"]))
				}
			}
		case <-timeout:
			t.Fatalf("payments taken by api-1 were never notified on api-2's stream: %v", want)
		}
	}

	// Refunds, spread over both APIs: a partial one, then two at once that cannot both fit.
	type refund struct {
		pay    *pay
		amount int64
		id     string
		status string
		code   int
	}
	var refunds []*refund
	var mu sync.Mutex
	for _, p := range pays {
		switch p.seq % 3 {
		case 0:
			refunds = append(refunds, &refund{pay: p, amount: int64(1_000 + p.seq)})
		case 1:
			refunds = append(refunds, &refund{pay: p, amount: int64(60_000 + 2*p.seq)}, &refund{pay: p, amount: int64(60_001 + 2*p.seq)})
		}
	}
	for k, r := range refunds {
		wg.Go(func() {
			inst := k % 2
			a := c.send(ctx, inst, http.MethodPost, "/v1/payments/"+r.pay.id+"/refunds", merchant.Token,
				map[string]any{"amount": r.amount, "reason": "cluster"}, "Idempotency-Key", fmt.Sprintf("ref-%s-%d", runID, k))
			mu.Lock()
			r.code, r.id = a.Status, a.id()
			mu.Unlock()
			if r.id == "" {
				return
			}
			deadline := time.Now().Add(4 * time.Minute)
			for time.Now().Before(deadline) && ctx.Err() == nil {
				g := c.send(ctx, 1-inst, http.MethodGet, "/v1/refunds/"+r.id, merchant.Token, nil)
				st := g.str("status")
				mu.Lock()
				r.status = st
				mu.Unlock()
				if st == "SUCCEEDED" || st == "FAILED" || st == "UNKNOWN" {
					return
				}
				time.Sleep(300 * time.Millisecond)
			}
		})
	}
	wg.Wait()

	// The invariants, from the bank's record.
	var transfers []nhsim.Transfer
	simAdmin(http.MethodGet, "/admin/transfers", nil, &transfers)
	var after nhsim.Ledger
	simAdmin(http.MethodGet, "/admin/ledger", nil, &after)
	require.Equal(t, before.Total, after.Total, "money is conserved in the bank's ledger")

	debits := map[int64]int{}
	credits := map[int64]int{}
	for _, tr := range transfers {
		switch {
		case tr.API == "DrawingTransfer":
			debits[tr.Amount]++
		case strings.HasPrefix(tr.API, "ReceivedTransfer"):
			credits[tr.Amount]++
		}
	}
	for _, p := range pays {
		require.Equal(t, 1, debits[p.amount], "payment #%d (%s): exactly one debit at the bank", p.seq, p.id)
		delete(debits, p.amount)
	}
	require.Empty(t, debits, "debits no payment asked for")
	succeeded := map[*pay]int64{}
	for _, r := range refunds {
		switch r.status {
		case "SUCCEEDED":
			require.Equal(t, 1, credits[r.amount], "refund %s of %d: exactly one credit", r.id, r.amount)
			succeeded[r.pay] += r.amount
		case "FAILED", "":
			require.Zero(t, credits[r.amount], "refund %s (%s, HTTP %d) credited %d won", r.id, r.status, r.code, r.amount)
		default:
			t.Fatalf("refund %s of payment %s ended %s", r.id, r.pay.id, r.status)
		}
		delete(credits, r.amount)
	}
	require.Empty(t, credits, "credits no refund asked for")
	refunded := 0
	for _, p := range pays {
		require.LessOrEqual(t, succeeded[p], p.amount, "payment %s: refunds ≤ the captured amount", p.id)
		g := c.send(ctx, p.seq%2, http.MethodGet, "/v1/payments/"+p.id, p.cust.Token, nil)
		var body struct {
			Status         string `json:"status"`
			RefundedAmount int64  `json:"refunded_amount"`
		}
		require.NoError(t, json.Unmarshal([]byte(g.Raw), &body))
		require.Equal(t, succeeded[p], body.RefundedAmount, "payment %s: refunded_amount = its succeeded refunds", p.id)
		if p.seq%3 == 1 {
			require.Positive(t, succeeded[p], "payment %s: one of the two refunds fits and succeeds", p.id)
			refunded++
		}
	}
	require.Positive(t, refunded)

	// No workflow run failed, timed out or was terminated — a killed worker included — and the
	// search attributes are set and queryable on the cluster's SQL visibility.
	count := func(query string) int64 {
		r, err := tc.Client.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Namespace: tc.Namespace, Query: query})
		require.NoError(t, err, query)
		return r.GetCount()
	}
	// A refund refused before any credit (the second of two that cannot both fit) ends its run
	// failed; the API shows it FAILED, and the bank has no credit of its amount (checked above):
	// no money moved. Any other run that ended so is a defect.
	refusedRefund := func(workflowID string) bool {
		id, ok := strings.CutPrefix(workflowID, "refund:")
		if !ok {
			return false
		}
		g := c.send(ctx, 0, http.MethodGet, "/v1/refunds/"+id, merchant.Token, nil)
		return g.Status == http.StatusOK && g.str("status") == "FAILED"
	}
	const bad = `ExecutionStatus="Failed" OR ExecutionStatus="TimedOut" OR ExecutionStatus="Terminated"`
	var unexpected []string
	var token []byte
	for {
		l, err := tc.Client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: tc.Namespace, Query: bad, PageSize: 100, NextPageToken: token})
		require.NoError(t, err)
		for _, w := range l.GetExecutions() {
			id := w.GetExecution().GetWorkflowId()
			if w.GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_FAILED && w.GetType().GetName() == "RefundWorkflow" && refusedRefund(id) {
				continue
			}
			unexpected = append(unexpected, fmt.Sprintf("%s %s %s", w.GetType().GetName(), id, w.GetStatus()))
		}
		if token = l.GetNextPageToken(); len(token) == 0 {
			break
		}
	}
	require.Empty(t, unexpected, "workflow runs that ended failed, timed out or terminated (a killed worker's included)")
	perCustomer := map[string]int64{}
	for _, p := range pays {
		perCustomer[p.cust.ID]++
	}
	for id, n := range perCustomer {
		require.Eventually(t, func() bool { return count(fmt.Sprintf("CustomerId=%q", id)) >= n },
			30*time.Second, 500*time.Millisecond, "visibility lists the payments of customer %s by CustomerId", id)
	}
	require.Zero(t, count(`NeedsAttention=true`), "nothing waits for an operator")

	// The surviving worker is ready and exposes its metrics; the killed one's probe is gone.
	waitReady(t, workers[1], workerURLs[1]+"/readyz", 10*time.Second)
	resp, err := http.Get(workerURLs[1] + "/metrics")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	_, err = http.Get(workerURLs[0] + "/healthz")
	require.Error(t, err, "worker-1 was killed")

	// Every Redis key of the run's users is under the run's prefix (PAYSAGA_REDIS_KEY_PREFIX).
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr})
	defer rdb.Close()
	prefixed, err := rdb.Keys(ctx, redisPrefix+"*").Result()
	require.NoError(t, err)
	require.NotEmpty(t, prefixed)
	for _, u := range append(custs, merchant) {
		keys, err := rdb.Keys(ctx, "*"+u.ID+"*").Result()
		require.NoError(t, err)
		require.NotEmpty(t, keys, "user %s has notification keys", u.ID)
		for _, k := range keys {
			require.True(t, strings.HasPrefix(k, redisPrefix), "Redis key %q is outside the run's prefix", k)
		}
	}
	t.Logf("%d payments and %d refunds on Temporal %s (%s): invariants hold", len(pays), len(refunds), tc.Version, tc.HostPort)
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}
