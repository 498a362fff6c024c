package main

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"time"
)

// A busy neighbour (-neighbour F): a process of its own that keeps about F cores busy in short
// bursts of system calls for the whole run. The payments share the machine with MariaDB and the
// engine's own process; the bare baseline, without one, has the cores to itself — and on a
// 2-core machine a co-tenant makes the Temporal server spend more CPU per workflow (context
// switches, caches), not only leave it fewer cores. With a neighbour, both sides of the ratio
// run on a shared machine.

// envNeighbour makes the bench binary (or its test binary) the neighbour, with this share.
const envNeighbour = "PAYSAGA_BENCH_NEIGHBOUR"

// neighbourLabel names the neighbour in the CPU report.
const neighbourLabel = "busy neighbour (-neighbour)"

// startNeighbour starts this binary again as a neighbour of about share cores; stop kills it.
func startNeighbour(share float64) (pid int, stop func(), err error) {
	self, err := os.Executable()
	if err != nil {
		return 0, nil, err
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), envNeighbour+"="+strconv.FormatFloat(share, 'f', -1, 64))
	if err := cmd.Start(); err != nil {
		return 0, nil, fmt.Errorf("start the neighbour: %w", err)
	}
	return cmd.Process.Pid, func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }, nil
}

// runNeighbour is the neighbour's life: every millisecond, share of it writing 64 bytes at a
// time to /dev/null, the rest asleep. It ends when its parent kills it.
func runNeighbour(share float64) {
	f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		os.Exit(1)
	}
	buf := make([]byte, 64)
	busy := time.Duration(share * float64(time.Millisecond))
	for {
		t := time.Now()
		for time.Since(t) < busy {
			_, _ = f.Write(buf)
		}
		time.Sleep(time.Millisecond - busy)
	}
}
