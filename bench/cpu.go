package main

import (
	"context"
	"os"
	"runtime/pprof"
	"time"

	"paysaga/internal/cpuuse"
)

// The CPU each process of the stack used during the measurement window (internal/cpuuse). The
// bench process holds the API, the worker, the NH simulator and the load generator; the
// Temporal dev server is a child process.

// benchLabel names the processes reported one by one: this process and the known services.
var benchLabel = cpuuse.ByName(map[int]string{os.Getpid(): "bench process (API, worker, simulator, load)"})

// watchWindow samples the CPU at the start and the end of the window and, when profile names a
// file, writes the bench process's CPU profile (API, worker, simulator) over the window to it.
// It returns a function that waits for the window to end and gives the figures.
func watchWindow(ctx context.Context, w Window, profile string) func() (cpuuse.Use, error) {
	type result struct {
		use cpuuse.Use
		err error
	}
	done := make(chan result, 1)
	go func() {
		if !sleepUntil(ctx, w.From) {
			done <- result{err: ctx.Err()}
			return
		}
		var f *os.File
		var err error
		if profile != "" {
			if f, err = os.Create(profile); err == nil {
				if err = pprof.StartCPUProfile(f); err != nil {
					_ = f.Close()
					f = nil
				}
			}
		}
		a := cpuuse.Take(benchLabel)
		sleepUntil(ctx, w.To)
		b := cpuuse.Take(benchLabel)
		if f != nil {
			pprof.StopCPUProfile()
			err = f.Close()
		}
		done <- result{cpuuse.Between(a, b), err}
	}()
	return func() (cpuuse.Use, error) { r := <-done; return r.use, r.err }
}

func sleepUntil(ctx context.Context, t time.Time) bool {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}
