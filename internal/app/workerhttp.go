package app

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"paysaga/api"
)

// WorkerHTTP is the worker's own small HTTP server, for probes and Prometheus
// (PAYSAGA_WORKER_HTTP_ADDR):
//
//	GET /healthz  200 while the process serves (a liveness probe: it checks nothing else, so an
//	              outage of the database does not restart every worker)
//	GET /readyz   200 when every check passes — the worker polls Temporal and reaches the
//	              database and Redis — else 503; the body is api.ReadyResponse, like the API's
//	GET /metrics  the default Prometheus registry (the SDK's and the engine's collectors)
//
// The worker publishes no API: nothing else is served, and the port is for the cluster only.
func WorkerHTTP(checks []api.Check, logger *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeProbe(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		resp := api.ReadyResponse{Status: "ok", Checks: map[string]string{}}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, chk := range checks {
			wg.Go(func() {
				state := "ok"
				if err := runProbeCheck(ctx, chk); err != nil {
					state = "fail"
					if errors.Is(err, context.DeadlineExceeded) {
						state = "timeout"
					}
					logger.WarnContext(ctx, "readiness check failed", "check", chk.Name, "error", err.Error())
				}
				mu.Lock()
				resp.Checks[chk.Name] = state
				mu.Unlock()
			})
		}
		wg.Wait()
		status := http.StatusOK
		for _, state := range resp.Checks {
			if state != "ok" {
				resp.Status, status = "unavailable", http.StatusServiceUnavailable
			}
		}
		writeProbe(w, status, resp)
	})
	mux.Handle("GET /metrics", promhttp.Handler())
	return mux
}

func writeProbe(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// runProbeCheck runs chk, a check that ignores ctx counting as a timeout.
func runProbeCheck(ctx context.Context, chk api.Check) error {
	done := make(chan error, 1)
	go func() { done <- chk.Func(ctx) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// WorkerRunning is the readiness check that the Temporal worker has started and not stopped
// on a fatal error (a namespace that does not exist, credentials refused).
type WorkerRunning struct {
	mu      sync.Mutex
	started bool
	fatal   error
}

// Started records that the worker started.
func (s *WorkerRunning) Started() { s.mu.Lock(); s.started = true; s.mu.Unlock() }

// Fatal records the worker's fatal error (worker.Options.OnFatalError).
func (s *WorkerRunning) Fatal(err error) { s.mu.Lock(); s.fatal = err; s.mu.Unlock() }

// Check is the api.Check of the worker's state.
func (s *WorkerRunning) Check() api.Check {
	return api.Check{Name: "worker", Func: func(context.Context) error {
		s.mu.Lock()
		defer s.mu.Unlock()
		switch {
		case s.fatal != nil:
			return s.fatal
		case !s.started:
			return errors.New("the worker has not started")
		}
		return nil
	}}
}
