// Package sim is the saga simulator (`make sim`): it runs the real payment and refund
// workflows and their real activities on Temporal's test environment (simulated time), with the
// NH simulator as the bank and the store on SQLite (or MariaDB), under schedules of operations
// and faults drawn from a seed, and judges each schedule against the money-safety invariants of
// DESIGN.md. A failing schedule prints its seed, a one-line reproduction and its trace.
//
// Test-only: nothing here is part of the engine.
package sim

import (
	"bufio"
	"crypto/rand"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"paysaga/store"
	"paysaga/store/storetest"
)

var (
	flagSeed      = flag.String("sim.seed", "", "seed of the first schedule (default: a fresh one, printed); schedule i runs seed+i")
	flagSchedules = flag.Int("sim.schedules", 100, "number of schedules to draw")
	flagDB        = flag.String("sim.db", store.DriverSQLite, "database: sqlite or mysql (PAYSAGA_TEST_MYSQL_DSN)")
	flagParallel  = flag.Int("sim.parallel", 0, "schedules run at once (default 2×GOMAXPROCS)")
	flagTrace     = flag.Bool("sim.trace", false, "print the trace of every schedule, not only of failing ones")
	flagNoRegress = flag.Bool("sim.noregressions", false, "do not replay testdata/regressions.txt")
)

// TestSim runs the regression seeds, then the drawn schedules.
func TestSim(t *testing.T) {
	opts := &options{dbDriver: *flagDB, dir: t.TempDir()}
	switch opts.dbDriver {
	case store.DriverSQLite:
		tpl, err := sqliteTemplate(opts.dir)
		if err != nil {
			t.Fatalf("sim: migrate the template database: %v", err)
		}
		opts.template = tpl
	case store.DriverMySQL:
		opts.mysqlDSN = os.Getenv("PAYSAGA_TEST_MYSQL_DSN")
		if opts.mysqlDSN == "" {
			opts.mysqlDSN = storetest.DefaultMySQLDSN
		}
	default:
		t.Fatalf("sim: -sim.db must be sqlite or mysql, not %q", opts.dbDriver)
	}

	var seeds []uint64
	regressions := 0
	if !*flagNoRegress && *flagSeed == "" {
		rs, err := readRegressions("testdata/regressions.txt")
		if err != nil {
			t.Fatalf("sim: %v", err)
		}
		seeds, regressions = rs, len(rs)
	}
	base := freshSeed()
	if *flagSeed != "" {
		s, err := strconv.ParseUint(*flagSeed, 0, 64)
		if err != nil {
			t.Fatalf("sim: -sim.seed: %v", err)
		}
		base = s
	}
	for i := range *flagSchedules {
		seeds = append(seeds, base+uint64(i))
	}
	fmt.Printf("sim: %d regression seeds + %d schedules from seed %d on %s (reproduce one: make sim SEED=<seed> SCHEDULES=1)\n",
		regressions, *flagSchedules, base, opts.dbDriver)

	parallel := *flagParallel
	if parallel <= 0 {
		parallel = 2 * runtime.GOMAXPROCS(0)
	}
	start := time.Now()
	results := make([]result, len(seeds))
	var wg sync.WaitGroup
	next := make(chan int)
	for range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				results[i] = runSchedule(opts, seeds[i])
			}
		}()
	}
	for i := range seeds {
		next <- i
	}
	close(next)
	wg.Wait()

	stats := map[string]int{}
	failed := 0
	var slowest result
	for i, r := range results {
		for k, v := range r.stats {
			stats[k] += v
		}
		if r.wall > slowest.wall {
			slowest = r
		}
		kind := "schedule"
		if i < regressions {
			kind = "regression seed"
		}
		if len(r.violations) == 0 {
			if *flagTrace {
				fmt.Printf("--- %s %d passed (%s)\n%s\n", kind, r.seed, r.wall.Round(time.Millisecond), strings.Join(r.trace, "\n"))
			}
			continue
		}
		failed++
		t.Errorf("%s", report(kind, r))
	}
	keys := make([]string, 0, len(stats))
	for k := range stats {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Printf("sim: %d schedules in %s (slowest: seed %d, %s), %d failed\n", len(seeds), time.Since(start).Round(time.Millisecond),
		slowest.seed, slowest.wall.Round(time.Millisecond), failed)
	for _, k := range keys {
		fmt.Printf("  %-45s %d\n", k, stats[k])
	}
	if failed > 0 {
		fmt.Printf("sim: %d schedule(s) broke an invariant; each report above starts with its seed\n", failed)
	}
}

func report(kind string, r result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %d broke %d invariant check(s) (%s)\n", kind, r.seed, len(r.violations), r.wall.Round(time.Millisecond))
	fmt.Fprintf(&b, "reproduce: make sim SEED=%d SCHEDULES=1\n", r.seed)
	for _, v := range r.violations {
		fmt.Fprintf(&b, "  ✗ %s\n", v)
	}
	fmt.Fprintf(&b, "trace of seed %d (simulated time h:mm:ss):\n", r.seed)
	for _, l := range r.trace {
		fmt.Fprintf(&b, "  %s\n", l)
	}
	return b.String()
}

// readRegressions reads one seed per line; # starts a comment.
func readRegressions(path string) ([]uint64, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var seeds []uint64
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text, _, _ := strings.Cut(sc.Text(), "#")
		text = strings.TrimSpace(text)
		if text == "" {
			continue
		}
		s, err := strconv.ParseUint(strings.Fields(text)[0], 0, 64)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: not a seed: %q", path, line, text)
		}
		seeds = append(seeds, s)
	}
	return seeds, sc.Err()
}

func freshSeed() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return binary.LittleEndian.Uint64(b[:]) >> 16 // short enough to type
}
