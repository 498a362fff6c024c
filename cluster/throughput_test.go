//go:build cluster

package cluster_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"paysaga/internal/cpuuse"
	"paysaga/nhsim"
)

// BenchmarkClusterThroughput measures payments through the production processes on the real
// Temporal server — two API instances, first one worker, then two — with a closed loop of
// clients (each waits for its payment's answer, SUCCEEDED within PAYSAGA_PAYMENT_SYNC_WAIT,
// before sending the next). Everything shares the machine: the server, PostgreSQL, MariaDB,
// Redis, RabbitMQ and the engine's processes. `make bench-cluster` runs it (it is a benchmark
// so that `make test-cluster` does not); the figures are in docs/benchmarks.md.
func BenchmarkClusterThroughput(b *testing.B) { throughput(b, realServer) }

// BenchmarkDevServerThroughput is the same run on the dev server (temporal server start-dev),
// for comparison.
func BenchmarkDevServerThroughput(b *testing.B) { throughput(b, devServer) }

func throughput(b *testing.B, server func(testing.TB) temporalServer) {
	const clients = 8
	window := 30 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	e := startEngine(b, ctx, clients, server, false)
	var before nhsim.Ledger
	e.simAdmin(http.MethodGet, "/admin/ledger", nil, &before)

	// One worker: the second stops (SIGTERM, as a scale-down would).
	if !e.workers[1].signal(15, 30*time.Second) {
		b.Fatal("worker-2 did not stop")
	}
	var seq atomic.Int64
	// Each process's CPU over the measured window: on one machine the engine's processes, the
	// Temporal server and the databases share the same two cores, and this says who took them.
	cpuOf := func(from, to time.Time, workers ...*proc) func() cpuuse.Use {
		pids := map[int]string{os.Getpid(): "benchmark (closed-loop clients)", e.sim.cmd.Process.Pid: "NH simulator"}
		for i, a := range e.apis {
			pids[a.cmd.Process.Pid] = fmt.Sprintf("paysaga api %d", i+1)
		}
		for i, w := range workers {
			pids[w.cmd.Process.Pid] = fmt.Sprintf("paysaga worker %d", i+1)
		}
		label := cpuuse.ByName(pids)
		done := make(chan cpuuse.Use, 1)
		go func() {
			waitUntil(ctx, from)
			a := cpuuse.Take(label)
			waitUntil(ctx, to)
			done <- cpuuse.Between(a, cpuuse.Take(label))
		}()
		return func() cpuuse.Use { return <-done }
	}
	// The server's CPU profile over the first measured window, where it serves one and
	// PAYSAGA_BENCH_SERVER_PROFILE names a file (make bench-cluster: var/temporal-server.pprof).
	profileServer := func(from time.Time, secs int) func() {
		path := os.Getenv("PAYSAGA_BENCH_SERVER_PROFILE")
		if e.tc.PProfAddr == "" || path == "" {
			return func() {}
		}
		done := make(chan error, 1)
		go func() {
			waitUntil(ctx, from)
			done <- fetchProfile(ctx, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", e.tc.PProfAddr, secs), path)
		}()
		return func() {
			if err := <-done; err != nil {
				b.Logf("server profile: %v", err)
				return
			}
			top, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-nodecount=25", path).CombinedOutput()
			b.Logf("Temporal server CPU profile %s (go tool pprof -top %s):\n%s", path, path, top)
			if err != nil {
				b.Logf("go tool pprof: %v", err)
			}
		}
	}
	measure := func(label string, workers ...*proc) {
		var mu sync.Mutex
		var lat []time.Duration
		var ok, other atomic.Int64
		var sample atomic.Value
		// Warm-up: 5 s, not counted.
		deadline := time.Now().Add(5 * time.Second)
		measureFrom := deadline
		deadline = deadline.Add(window)
		cpu := cpuOf(measureFrom, deadline, workers...)
		profiled := func() {}
		if label == "1-worker" {
			profiled = profileServer(measureFrom, int(window.Seconds())-5)
		}
		var wg sync.WaitGroup
		for i := range clients {
			wg.Go(func() {
				cust := e.custs[i]
				for time.Now().Before(deadline) && ctx.Err() == nil {
					n := seq.Add(1)
					start := time.Now()
					a := e.c.do(ctx, int(n)%2, http.MethodPost, "/v1/payments", cust.Token,
						map[string]any{"account_id": cust.Account, "amount": 1000 + n, "merchant_id": e.merchant.ID, "description": "bench"},
						"Idempotency-Key", fmt.Sprintf("bench-%s-%d", e.runID, n))
					d := time.Since(start)
					if start.Before(measureFrom) {
						continue
					}
					if (a.Status == http.StatusOK || a.Status == http.StatusCreated) && a.str("status") == "SUCCEEDED" {
						ok.Add(1)
						mu.Lock()
						lat = append(lat, d)
						mu.Unlock()
					} else {
						other.Add(1)
						sample.CompareAndSwap(nil, fmt.Sprintf("%d %s %v", a.Status, a.Raw, a.Err))
					}
				}
			})
		}
		wg.Wait()
		slices.Sort(lat)
		pct := func(p float64) time.Duration {
			if len(lat) == 0 {
				return 0
			}
			return lat[min(len(lat)-1, int(p*float64(len(lat))))].Round(time.Millisecond)
		}
		rate := float64(ok.Load()) / window.Seconds()
		load, _ := os.ReadFile("/proc/loadavg")
		b.Logf("%s (load average %s): %d payments SUCCEEDED in %s = %.1f/s (other answers %d, e.g. %v); latency p50 %s p95 %s p99 %s",
			label, strings.Join(strings.Fields(string(load))[:3], " "), ok.Load(), window, rate, other.Load(), sample.Load(), pct(0.5), pct(0.95), pct(0.99))
		if ok.Load() == 0 {
			b.Fatalf("%s: no payment succeeded", label)
		}
		b.Logf("%s: CPU %s", label, cpu())
		profiled()
		b.ReportMetric(rate, label+"-payments/s")
	}
	measure("1-worker", e.workers[0])

	// Two workers.
	w2 := startProc(b, e.dir, "worker-2b", e.paysagaBin, e.with("PAYSAGA_WORKER_HTTP_ADDR="+e.workerURLs[1][len("http://"):]), "worker")
	waitReady(b, w2, e.workerURLs[1]+"/readyz", 2*time.Minute)
	measure("2-workers", e.workers[0], w2)

	var after nhsim.Ledger
	e.simAdmin(http.MethodGet, "/admin/ledger", nil, &after)
	if before.Total != after.Total {
		b.Fatalf("the bank's ledger is not conserved: %d before, %d after", before.Total, after.Total)
	}
	b.Logf("Temporal %s; 2 API instances; %d closed-loop clients", e.tc.Version, clients)
}

// fetchProfile saves what url answers (a pprof profile) to path.
func fetchProfile(ctx context.Context, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// waitUntil returns at t, or when ctx ends.
func waitUntil(ctx context.Context, t time.Time) {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-ctx.Done():
	case <-timer.C:
	}
}
