package main

import (
	"fmt"
	"os"
	"testing"
	"time"

	"paysaga/internal/cpuuse"
)

func TestMain(m *testing.M) {
	// The neighbour is this binary started again (startNeighbour), here the test binary.
	if os.Getenv(envNeighbour) != "" {
		main()
		return
	}
	os.Exit(m.Run())
}

// -neighbour starts a process of its own that uses CPU until the run ends.
func TestNeighbourIsABusyProcessOfItsOwn(t *testing.T) {
	pid, stop, err := startNeighbour(0.3)
	if err != nil {
		t.Fatal(err)
	}
	dir := fmt.Sprintf("/proc/%d", pid)
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		secs, _, ok := cpuuse.ProcCPU(dir)
		if !ok {
			t.Fatal("the neighbour is not running")
		}
		if secs > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the neighbour used no CPU in 10 s")
		}
		<-tick.C
	}
	stop()
	if _, err := os.Stat(dir); err == nil {
		t.Error("the neighbour outlived its stop")
	}
	if _, err := parseFlags([]string{"-neighbour", "1.5"}); err == nil {
		t.Error("-neighbour above 0.9 of a core is refused")
	}
}
