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

// labelled names processes of the run by their pid: this one, and a neighbour when there is one
// (added before any window is sampled).
var labelled = map[int]string{os.Getpid(): "bench process (API, worker, simulator, load)"}

// benchLabel names the processes reported one by one: labelled ones and the known services.
var benchLabel = cpuuse.ByName(labelled)

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

// serverLabels name the Temporal server in a CPU report, whichever runs.
var serverLabels = []string{cpuuse.Known["temporal"], cpuuse.Known["temporal-server"]}

// phaseCosts is the CPU each process spent per completed workflow in the three phases of a run:
// the baseline before, the payments, the baseline after.
type phaseCosts struct {
	Before, Payments, After []cpuuse.Cost
}

func costsOf(d reportData) phaseCosts {
	b1, b2 := d.base[0], d.base[1]
	return phaseCosts{
		Before:   b1.CPU.Per(b1.Completed),
		Payments: d.load.CPU.Per(d.counts.CompletedInWindow),
		After:    b2.CPU.Per(b2.Completed),
	}
}

// serverFactor is the Temporal server's CPU per payment over its CPU per baseline workflow (the
// mean of the two baselines'): how much more the server itself works for a payment than for
// the bare workflow. 0 when not measured.
func (c phaseCosts) serverFactor() float64 {
	for _, name := range serverLabels {
		pay, ok := cpuuse.MS(c.Payments, name)
		b1, ok1 := cpuuse.MS(c.Before, name)
		b2, ok2 := cpuuse.MS(c.After, name)
		if ok && ok1 && ok2 && b1+b2 > 0 {
			return pay / ((b1 + b2) / 2)
		}
	}
	return 0
}

// rows are the processes worth a line (at least 0.5 ms per workflow in one phase), machine first.
func (c phaseCosts) rows() []string {
	seen := map[string]bool{}
	var names []string
	for _, phase := range [][]cpuuse.Cost{c.Payments, c.Before, c.After} {
		for _, k := range phase {
			if !seen[k.Name] && k.MS >= 0.5 {
				seen[k.Name] = true
				names = append(names, k.Name)
			}
		}
	}
	return names
}
