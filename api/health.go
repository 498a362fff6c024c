package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"

	"github.com/gin-gonic/gin"
)

// Check is one dependency /readyz asks about: the database, Redis, Temporal. Func should do the
// cheapest round trip that proves the dependency answers (a ping), honouring ctx's deadline.
type Check struct {
	Name string
	Func func(ctx context.Context) error
}

// ReadyResponse is the body of /readyz: the overall status and each check's "ok", "fail" or
// "timeout". Why a check failed goes to the log, not to the (often public) probe answer.
type ReadyResponse struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

// healthz says the process is alive and serving; it checks nothing else, so that a database
// outage makes the orchestrator stop routing traffic (readyz) rather than restart every pod.
func healthz(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

func (s *Server) readyz(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), s.readyTimeout)
	defer cancel()

	results := make(map[string]string, len(s.checks))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, chk := range s.checks {
		wg.Go(func() {
			err := runCheck(ctx, chk)
			state := "ok"
			if err != nil {
				state = "fail"
				if errors.Is(err, context.DeadlineExceeded) {
					state = "timeout"
				}
				Logger(c).WarnContext(ctx, "readiness check failed",
					slog.String("check", chk.Name), slog.String("error", err.Error()))
			}
			mu.Lock()
			results[chk.Name] = state
			mu.Unlock()
		})
	}
	wg.Wait()

	resp := ReadyResponse{Status: "ok", Checks: results}
	status := http.StatusOK
	for _, state := range results {
		if state != "ok" {
			resp.Status, status = "unavailable", http.StatusServiceUnavailable
		}
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(status, resp)
}

// runCheck runs one check, turning a panic into a failure (the check runs on its own goroutine,
// out of reach of the recovery middleware) and a check that ignores ctx into a timeout.
func runCheck(ctx context.Context, chk Check) (err error) {
	done := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- fmt.Errorf("check panicked: %v", r)
			}
		}()
		done <- chk.Func(ctx)
	}()
	select {
	case err = <-done:
		if err != nil && ctx.Err() != nil {
			err = fmt.Errorf("%w: %v", context.DeadlineExceeded, err)
		}
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
