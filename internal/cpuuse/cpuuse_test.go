package cpuuse

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestCPUBetweenSplitsTheMachineByProcess(t *testing.T) {
	t0 := time.Unix(1000, 0)
	a := Sample{At: t0, Procs: map[string]float64{"bench": 10, "MariaDB": 5}, Total: 100}
	b := Sample{At: t0.Add(10 * time.Second), Procs: map[string]float64{"bench": 20, "MariaDB": 7, "Temporal dev server": 4}, Total: 118}
	u := Between(a, b)
	want := map[string]float64{"bench": 1.0, "MariaDB": 0.2, "Temporal dev server": 0.4, "other (everything else on the machine)": 0.2}
	if len(u.Procs) != len(want) {
		t.Fatalf("procs = %+v, want %v", u.Procs, want)
	}
	for _, p := range u.Procs {
		if w, ok := want[p.Name]; !ok || p.Cores < w-1e-9 || p.Cores > w+1e-9 {
			t.Errorf("%s = %.3f cores, want %.3f", p.Name, p.Cores, w)
		}
	}
	if u.Procs[0].Name != "bench" {
		t.Errorf("busiest first: got %s first", u.Procs[0].Name)
	}
	if u.Total < 1.8-1e-9 || u.Total > 1.8+1e-9 {
		t.Errorf("total = %.3f, want 1.8", u.Total)
	}
}

func TestProcCPUReadsThisProcess(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Fatalf("cpuuse reads /proc (Linux): %v", err)
	}
	before, comm, ok := ProcCPU("/proc/self")
	if !ok || comm == "" {
		t.Fatalf("procCPU(/proc/self) = %v, %q, %v", before, comm, ok)
	}
	// Burn CPU until the kernel's tick-based accounting moves (a tick is 10 ms).
	deadline := time.Now().Add(5 * time.Second)
	x := 0
	for after := before; after <= before; after, _, _ = ProcCPU("/proc/self") {
		if time.Now().After(deadline) {
			t.Fatal("no CPU time accounted to this process after 5 s of work")
		}
		for i := range 1_000_000 {
			x += i
		}
	}
	_ = x
	s := Take(ByName(map[int]string{os.Getpid(): "this test"}))
	var self bool
	for name := range s.Procs {
		self = self || strings.HasPrefix(name, "this test")
	}
	if !self || s.Total <= 0 {
		t.Errorf("sample = %+v: want this process and the machine's total", s)
	}
}

// The benchmark compares what each process spends per payment with what it spends per baseline
// workflow: cores × window ÷ items.
func TestPerDividesTheWindowsCPUByTheItemsDone(t *testing.T) {
	u := Use{Window: 10 * time.Second, Total: 1.5, Procs: []Proc{{Name: "Temporal dev server", Cores: 1.2}, {Name: "MariaDB", Cores: 0.3}}}
	costs := u.Per(300)
	want := []Cost{{Machine, 50}, {"Temporal dev server", 40}, {"MariaDB", 10}}
	if len(costs) != len(want) {
		t.Fatalf("costs = %+v, want %+v", costs, want)
	}
	for i, w := range want {
		if costs[i].Name != w.Name || costs[i].MS < w.MS-1e-9 || costs[i].MS > w.MS+1e-9 {
			t.Errorf("cost %d = %+v, want %+v", i, costs[i], w)
		}
	}
	if ms, ok := MS(costs, "MariaDB"); !ok || ms < 10-1e-9 || ms > 10+1e-9 {
		t.Errorf("MS(MariaDB) = %v, %v", ms, ok)
	}
	if _, ok := MS(costs, "Redis"); ok {
		t.Error("MS of a process not measured")
	}
	if u.Per(0) != nil || (Use{}).Per(5) != nil {
		t.Error("nothing done or nothing measured: no cost")
	}
}
