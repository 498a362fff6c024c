// Package cpuuse measures the CPU each process of a stack used over a window, from /proc: on a
// 2-core machine the engine, the Temporal server and the databases compete for the same cores,
// and this says who took them. The benchmark (bench/) and the cluster benchmark (cluster/) use it.
package cpuuse

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's times: 100 on every Linux build Go
// supports (the kernel exports it to user space as a constant).
const clockTicks = 100

// Known names the services of the stack by their command name (/proc/<pid>/comm).
var Known = map[string]string{
	"temporal":        "Temporal dev server",
	"temporal-server": "Temporal server",
	"mariadbd":        "MariaDB",
	"redis-server":    "Redis",
	"beam.smp":        "RabbitMQ",
	"postgres":        "PostgreSQL",
}

// Labeler names the process pid (command name comm) in a report; ok false leaves it to "other".
type Labeler func(pid int, comm string) (label string, ok bool)

// ByName labels the Known services, and the processes of pids by their given labels first.
func ByName(pids map[int]string) Labeler {
	return func(pid int, comm string) (string, bool) {
		if l, ok := pids[pid]; ok {
			return l, true
		}
		l, ok := Known[comm]
		return l, ok
	}
}

// Sample is the CPU time (seconds) used so far by each labelled process and by the whole
// machine, at one instant.
type Sample struct {
	At    time.Time
	Procs map[string]float64 // label → seconds
	Total float64            // all CPUs, busy time (seconds)
}

// Take reads every process's CPU time and the machine's, labelling processes with label.
func Take(label Labeler) Sample {
	s := Sample{At: time.Now(), Procs: map[string]float64{}}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		secs, comm, ok := ProcCPU(d)
		if !ok {
			continue
		}
		if l, ok := label(pid, comm); ok {
			s.Procs[l] += secs
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
			s.Total += n / clockTicks
		}
	}
	return s
}

// ProcCPU reads user+system seconds and the command name of the process at /proc/<pid>.
func ProcCPU(dir string) (secs float64, comm string, ok bool) {
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

// Use is the CPU each process used between two samples, in cores (1.0 = one core busy).
type Use struct {
	Window time.Duration
	Procs  []Proc
	Total  float64 // the machine, all processes
}

// Proc is one labelled process's share.
type Proc struct {
	Name  string  `json:"name"`
	Cores float64 `json:"cores"`
}

// Between is the CPU used between samples a and b.
func Between(a, b Sample) Use {
	w := b.At.Sub(a.At)
	u := Use{Window: w}
	if w <= 0 {
		return u
	}
	var named float64
	for name, end := range b.Procs {
		c := (end - a.Procs[name]) / w.Seconds()
		named += c
		u.Procs = append(u.Procs, Proc{Name: name, Cores: c})
	}
	sort.Slice(u.Procs, func(i, j int) bool { return u.Procs[i].Cores > u.Procs[j].Cores })
	u.Total = (b.Total - a.Total) / w.Seconds()
	if other := u.Total - named; other > 0.005 {
		u.Procs = append(u.Procs, Proc{Name: "other (everything else on the machine)", Cores: other})
	}
	return u
}

// String is the report: the machine, then each process, busiest first.
func (u Use) String() string {
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

// Cost is the CPU a process spent per item of work (a completed workflow, a payment) over a
// window, in milliseconds.
type Cost struct {
	Name string  `json:"name"`
	MS   float64 `json:"ms"`
}

// Machine names the whole machine in Per's answer.
const Machine = "machine (all processes)"

// Per divides the window's CPU by the items completed in it: milliseconds of CPU per item for
// the machine (first) and for each process, busiest first. Nothing completed: nil.
func (u Use) Per(items int) []Cost {
	if items <= 0 || u.Window <= 0 {
		return nil
	}
	per := func(cores float64) float64 { return cores * u.Window.Seconds() * 1000 / float64(items) }
	out := []Cost{{Name: Machine, MS: per(u.Total)}}
	for _, p := range u.Procs {
		out = append(out, Cost{Name: p.Name, MS: per(p.Cores)})
	}
	return out
}

// MS is the cost named name in costs, and whether there is one.
func MS(costs []Cost, name string) (float64, bool) {
	for _, c := range costs {
		if c.Name == name {
			return c.MS, true
		}
	}
	return 0, false
}
