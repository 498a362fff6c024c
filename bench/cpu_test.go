package main

import (
	"math"
	"testing"

	"paysaga/internal/cpuuse"
)

// The report divides the server's CPU per payment by its CPU per baseline workflow (the mean of
// the two baselines), and lists the processes that spent something.
func TestServerFactorComparesAPaymentWithABaselineWorkflow(t *testing.T) {
	server := cpuuse.Known["temporal"]
	c := phaseCosts{
		Before:   []cpuuse.Cost{{Name: cpuuse.Machine, MS: 40}, {Name: server, MS: 30}, {Name: "Redis", MS: 0.1}},
		Payments: []cpuuse.Cost{{Name: cpuuse.Machine, MS: 75}, {Name: server, MS: 50}, {Name: "MariaDB", MS: 8}},
		After:    []cpuuse.Cost{{Name: cpuuse.Machine, MS: 50}, {Name: server, MS: 40}},
	}
	if f := c.serverFactor(); math.Abs(f-50.0/35) > 1e-9 {
		t.Errorf("server factor = %v, want %v", f, 50.0/35)
	}
	rows := c.rows()
	want := []string{cpuuse.Machine, server, "MariaDB"}
	if len(rows) != len(want) {
		t.Fatalf("rows = %v, want %v (Redis spent under 0.5 ms)", rows, want)
	}
	for i := range want {
		if rows[i] != want[i] {
			t.Errorf("rows = %v, want %v", rows, want)
		}
	}
	c.After = nil
	if f := c.serverFactor(); f != 0 {
		t.Errorf("a phase not measured: factor %v, want 0", f)
	}
	cluster := phaseCosts{
		Before:   []cpuuse.Cost{{Name: cpuuse.Known["temporal-server"], MS: 20}},
		Payments: []cpuuse.Cost{{Name: cpuuse.Known["temporal-server"], MS: 30}},
		After:    []cpuuse.Cost{{Name: cpuuse.Known["temporal-server"], MS: 20}},
	}
	if f := cluster.serverFactor(); math.Abs(f-1.5) > 1e-9 {
		t.Errorf("the real server: factor %v, want 1.5", f)
	}
}
