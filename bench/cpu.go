package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The CPU each process of the stack used during the measurement window, read from /proc: on a
// 2-core machine the engine, the Temporal server and the databases compete for the same cores,
// and this says who took them. The bench process holds the API, the worker, the NH simulator
// and the load generator; the Temporal dev server is a child process.

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's times: 100 on every Linux build Go
// supports (the kernel exports it to user space as a constant).
const clockTicks = 100

// watched names the processes reported one by one (by /proc/<pid>/comm); every other process
// is summed as "other".
var watched = map[string]string{
	"temporal":     "Temporal dev server",
	"mariadbd":     "MariaDB",
	"redis-server": "Redis",
	"beam.smp":     "RabbitMQ",
	"postgres":     "PostgreSQL",
}

// cpuSample is the CPU time (seconds) used so far by each watched process and by the whole
// machine, at one instant.
type cpuSample struct {
	at    time.Time
	procs map[string]float64 // label → seconds
	total float64            // all CPUs, busy time (seconds)
}

func takeCPUSample() cpuSample {
	s := cpuSample{at: time.Now(), procs: map[string]float64{}}
	self := os.Getpid()
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		secs, comm, ok := procCPU(d)
		if !ok {
			continue
		}
		switch label, known := watched[comm]; {
		case pid == self:
			s.procs["bench process (API, worker, simulator, load)"] += secs
		case known:
			s.procs[label] += secs
		}
	}
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal …
		for i, v := range f[1:] {
			if i == 3 || i == 4 { // idle, iowait
				continue
			}
			n, _ := strconv.ParseFloat(v, 64)
			s.total += n / clockTicks
		}
	}
	return s
}

// procCPU reads user+system seconds and the command name of the process at /proc/<pid>.
func procCPU(dir string) (secs float64, comm string, ok bool) {
	b, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return 0, "", false
	}
	// pid (comm) state ppid … utime(14) stime(15): comm may hold spaces, so cut at the last ')'.
	s := string(b)
	open, close := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || close < open {
		return 0, "", false
	}
	comm = s[open+1 : close]
	f := strings.Fields(s[close+1:])
	if len(f) < 13 {
		return 0, "", false
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (u + st) / clockTicks, comm, true
}

// cpuUse is the CPU each process used between two samples, in cores (1.0 = one core busy).
type cpuUse struct {
	Window time.Duration
	Procs  []procUse
	Total  float64 // the machine, all processes
}

type procUse struct {
	Name  string  `json:"name"`
	Cores float64 `json:"cores"`
}

func cpuBetween(a, b cpuSample) cpuUse {
	w := b.at.Sub(a.at)
	u := cpuUse{Window: w}
	if w <= 0 {
		return u
	}
	var named float64
	for name, end := range b.procs {
		c := (end - a.procs[name]) / w.Seconds()
		named += c
		u.Procs = append(u.Procs, procUse{Name: name, Cores: c})
	}
	sort.Slice(u.Procs, func(i, j int) bool { return u.Procs[i].Cores > u.Procs[j].Cores })
	u.Total = (b.total - a.total) / w.Seconds()
	if other := u.Total - named; other > 0.005 {
		u.Procs = append(u.Procs, procUse{Name: "other (everything else on the machine)", Cores: other})
	}
	return u
}

func (u cpuUse) String() string {
	if u.Window <= 0 {
		return "not measured"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "machine busy %.2f cores over %s:", u.Total, u.Window.Round(time.Second))
	for _, p := range u.Procs {
		fmt.Fprintf(&b, "\n            %-48s %.2f cores", p.Name, p.Cores)
	}
	return b.String()
}

// watchWindow samples the CPU at the start and the end of the window and, when profile names a
// file, writes the bench process's CPU profile (API, worker, simulator) over the window to it.
// It returns a function that waits for the window to end and gives the figures.
func watchWindow(ctx context.Context, w Window, profile string) func() (cpuUse, error) {
	type result struct {
		use cpuUse
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
		a := takeCPUSample()
		sleepUntil(ctx, w.To)
		b := takeCPUSample()
		if f != nil {
			pprof.StopCPUProfile()
			err = f.Close()
		}
		done <- result{cpuBetween(a, b), err}
	}()
	return func() (cpuUse, error) { r := <-done; return r.use, r.err }
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
