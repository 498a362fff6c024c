// Command bench drives payments through the whole engine — HTTP API, Temporal dev server,
// worker, MariaDB, Redis, RabbitMQ, NH simulator, all started in this process by
// internal/stack — at a fixed arrival rate, then checks the bank's ledger against the engine
// and compares the engine's throughput with a bare Temporal workflow of the same shape on the
// same server. `make bench` runs it; docs/benchmarks.md records its figures.
//
//	go run ./bench -rate 10 -duration 60s -warmup 10s
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"

	"paysaga"
	"paysaga/internal/cpuuse"
	"paysaga/workflows"
)

type options struct {
	rate             float64
	duration, warmup time.Duration
	drain            time.Duration
	customers        int
	declines         float64
	temporalDB       string
	wfPollers        int
	actPollers       int
	baseline         string
	baselineClients  int
	baselineDuration time.Duration
	baselineWarmup   time.Duration
	historySample    int
	baselineShape    string
	verbose          bool
	jsonOut          string
	cpuProfile       string
	eager            int
	neighbour        float64
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.Float64Var(&o.rate, "rate", 10, "payments per second, sent on schedule whether or not earlier ones have answered (open model)")
	fs.DurationVar(&o.duration, "duration", 60*time.Second, "measurement window, after the warm-up")
	fs.DurationVar(&o.warmup, "warmup", 10*time.Second, "load before the measurement window (sent, checked, not measured)")
	fs.DurationVar(&o.drain, "drain", 60*time.Second, "how long payments still running after the last send may take to finish")
	fs.IntVar(&o.customers, "customers", 20, "customers paying, round robin, each with a funded and an empty account")
	fs.Float64Var(&o.declines, "declines", 0.05, "share of payments from an empty account, which the bank declines")
	fs.StringVar(&o.temporalDB, "temporal-db", "", "keep the Temporal dev server's state in this SQLite file (WAL); in memory when empty")
	fs.IntVar(&o.wfPollers, "wf-pollers", 4, "workflow task pollers of each worker")
	fs.IntVar(&o.actPollers, "act-pollers", 4, "activity task pollers of each worker")
	fs.StringVar(&o.baseline, "baseline", "max", "how the baseline workflow is driven: max (closed loop, the server's ceiling) or rate (open model at -rate)")
	fs.IntVar(&o.baselineClients, "baseline-clients", 32, "concurrent clients of the baseline in max mode")
	fs.DurationVar(&o.baselineDuration, "baseline-duration", 15*time.Second, "measurement window of each of the two baseline runs")
	fs.DurationVar(&o.baselineWarmup, "baseline-warmup", 3*time.Second, "warm-up of each baseline run")
	fs.StringVar(&o.baselineShape, "baseline-shape", "bare", "the baseline workflow: \"bare\" (the payment's steps as no-ops, started and awaited) or \"payment\" (also what a payment asks of Temporal: Update-with-Start, its search attributes, one upsert)")
	fs.IntVar(&o.historySample, "history-sample", 20, "successful payments whose Temporal history is fetched and counted")
	fs.BoolVar(&o.verbose, "v", false, "log the engine's warnings and the Temporal server's output to stderr")
	fs.StringVar(&o.jsonOut, "json", "", "also write the figures to this file as JSON, for comparing runs with a script")
	fs.Float64Var(&o.neighbour, "neighbour", 0, "run a busy neighbour process of about this many cores (bursts of system calls) for the whole run, so that the baselines share the machine as the payments share it with MariaDB and the engine; 0: none")
	fs.IntVar(&o.eager, "eager", 0, "let each worker run up to this many activities eagerly (handed back with the workflow task's answer); 0: off, as the engine runs")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the bench process (API, worker, simulator, load) over the measurement window to this file (go tool pprof)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	switch {
	case o.neighbour < 0 || o.neighbour > 0.9:
		return o, errors.New("-neighbour is a share of one core in [0, 0.9]")
	case o.rate <= 0 || o.duration <= 0 || o.warmup < 0 || o.drain <= 0:
		return o, errors.New("-rate and -duration must be positive, -warmup not negative")
	case o.customers < 1:
		return o, errors.New("-customers must be at least 1")
	case o.declines < 0 || o.declines >= 1:
		return o, errors.New("-declines is a share in [0, 1)")
	case o.baseline != "max" && o.baseline != "rate":
		return o, errors.New("-baseline is max or rate")
	case o.baselineShape != "bare" && o.baselineShape != "payment":
		return o, errors.New("-baseline-shape is bare or payment")
	case o.baselineClients < 1 || o.baselineDuration <= 0 || o.historySample < 1:
		return o, errors.New("-baseline-clients, -baseline-duration and -history-sample must be positive")
	}
	return o, nil
}

func main() {
	if share := os.Getenv(envNeighbour); share != "" {
		f, _ := strconv.ParseFloat(share, 64)
		runNeighbour(f)
		return
	}
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	// The API is built with gin, whose debug mode prints every route and a warning on stdout.
	gin.SetMode(gin.ReleaseMode)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ok, err := run(ctx, o, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: FAILED:", err)
		os.Exit(1)
	}
	if !ok {
		fmt.Fprintln(os.Stderr, "bench: FAILED: the ledger check found problems (see above)")
		os.Exit(1)
	}
}

// run is the whole benchmark; it reports false when the ledger check fails.
func run(ctx context.Context, o options, out io.Writer) (bool, error) {
	logger := slog.New(slog.DiscardHandler)
	if o.verbose {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	began := time.Now()
	loadBefore := loadAverage()
	say := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "[%5.1fs] "+format+"\n", append([]any{time.Since(began).Seconds()}, args...)...)
	}

	say("starting the stack (Temporal dev server %s, MariaDB, Redis, RabbitMQ, simulator, worker, API)", temporalMode(o))
	e, err := start(ctx, o, logger)
	if err != nil {
		return false, err
	}
	defer e.Close()
	if o.neighbour > 0 {
		pid, stop, err := startNeighbour(o.neighbour)
		if err != nil {
			return false, err
		}
		defer stop()
		labelled[pid] = neighbourLabel
		say("a busy neighbour of about %.2f cores runs until the end (pid %d)", o.neighbour, pid)
	}
	say("seeding %d customers and a merchant", o.customers)
	pop, err := seed(ctx, e, o.customers)
	if err != nil {
		return false, err
	}
	bank := snapshotBank(e.Sim)

	// A few payments one at a time, before any load: their history gives the baseline its
	// shape (the activities and local activities a payment really runs, in order), and they
	// warm the connection pools and caches up.
	say("probe: %d payments one at a time, to count what a payment runs on Temporal", probePayments)
	probes := probe(ctx, e, pop, probePayments)
	shape, err := sampleHistories(ctx, e.Temporal.Client(), succeededWorkflows(probes), probePayments)
	if err != nil {
		return false, fmt.Errorf("probe: %w", err)
	}
	steps := shape.Typical.Steps
	bw, err := startBaselineWorker(e.Temporal.Client(), o.workerOptions())
	if err != nil {
		return false, err
	}
	defer bw.Stop()

	// The baseline runs before and after the payments: the machine is shared, and its load
	// drifts over minutes, so the payments are compared with the mean of two measurements that
	// bracket them, and the gap between the two says how far the figures can be trusted.
	say("baseline 1: %s workflow %s, %s", o.baselineShape, steps, baselineMode(o))
	before := runBaseline(ctx, e.Temporal.Client(), steps, o)
	if ctx.Err() != nil {
		return false, ctx.Err()
	}

	say("payments: %.1f/s for %s + %s warm-up", o.rate, o.duration, o.warmup)
	load := drive(ctx, e, pop, o)
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	counts := load.counts()

	say("baseline 2")
	after := runBaseline(ctx, e.Temporal.Client(), steps, o)
	if ctx.Err() != nil {
		return false, ctx.Err()
	}

	say("checking the ledger")
	ledger := checkLedger(ctx, e, pop, append(probes, load.Payments...), bank)
	succeeded := succeededWorkflows(load.Payments)
	say("counting history events of %d successful payments", min(o.historySample, len(succeeded)))
	hist, err := sampleHistories(ctx, e.Temporal.Client(), succeeded, o.historySample)
	if err != nil {
		return false, err
	}
	var inWindow []*payment
	for _, p := range load.Payments {
		if load.Window.Contains(p.Scheduled) {
			inWindow = append(inWindow, p)
		}
	}
	say("cutting the answers of %d payments into segments from their histories", min(timelineSample, len(inWindow)))
	tl, err := sampleTimeline(ctx, e.Temporal.Client(), inWindow, timelineSample)
	if err != nil {
		return false, err
	}
	baseHist, err := sampleHistories(ctx, e.Temporal.Client(), before.WorkflowID, 5)
	if err != nil {
		return false, fmt.Errorf("baseline: %w", err)
	}

	data := reportData{
		began: began, loadBefore: loadBefore, loadAfter: loadAverage(),
		load: load, counts: counts, hist: hist, timeline: tl, base: [2]*baselineResult{before, after}, baseHist: baseHist, ledger: ledger,
	}
	report(out, o, data)
	if o.jsonOut != "" {
		if err := writeJSON(o.jsonOut, o, data); err != nil {
			return false, fmt.Errorf("write %s: %w", o.jsonOut, err)
		}
	}
	return ledger.OK(), nil
}

// timelineSample is how many payments of the window have their answer cut into segments.
const timelineSample = 200

// probePayments is how many payments the probe sends.
const probePayments = 3

func succeededWorkflows(ps []*payment) []string {
	var ids []string
	for _, p := range ps {
		if p.Status == paysaga.PaymentSucceeded {
			ids = append(ids, workflows.PaymentWorkflowID(p.ID))
		}
	}
	return ids
}

type reportData struct {
	began                 time.Time
	loadBefore, loadAfter string
	load                  *loadResult
	counts                loadCounts
	hist, baseHist        historyStats
	timeline              timeline
	base                  [2]*baselineResult // before and after the payments
	ledger                *ledgerCheck
}

func report(w io.Writer, o options, d reportData) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	c, l := d.counts, d.load
	p("")
	p("paysaga bench — %s, %s", d.began.UTC().Format(time.RFC3339), time.Since(d.began).Round(time.Second))
	p("machine   %s/%s, %d CPUs, %s; load average %s at start, %s at end",
		runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version(), d.loadBefore, d.loadAfter)
	p("stack     Temporal dev server %s; workers: %d workflow + %d activity pollers; MariaDB, Redis, RabbitMQ, NH simulator",
		temporalMode(o), o.wfPollers, o.actPollers)
	if o.neighbour > 0 {
		p("          and a busy neighbour process of about %.2f cores for the whole run (-neighbour): the baselines share the machine too", o.neighbour)
	}
	p("load      open model, %.1f payments/s, %s measured after %s warm-up; %d customers; %.0f%% from an empty account",
		o.rate, o.duration, o.warmup, o.customers, o.declines*100)
	p("")
	p("payments")
	p("  sent %d, accepted %d: succeeded %d, failed %d, not final %d; shed (429) %d; no answer %d",
		c.Sent, c.Accepted, c.Succeeded, c.Failed, c.NotFinal, c.Shed, c.NoAnswer)
	engineRate := l.Window.Rate(c.CompletedInWindow)
	p("  accepted/s   %6.2f   completed/s %6.2f   shed/s %6.2f   (offered %.2f/s; counted in the %s window)",
		l.Window.Rate(c.AcceptedInWindow), engineRate, l.Window.Rate(c.ShedInWindow), o.rate, o.duration)
	if c.Shed > 0 {
		p("  429 answer latency    %s", l.ShedLatency.Summary())
	}
	p("  answers      %s", l.Answers.String())
	p("  answer latency        %s", l.AnswerLatency.Summary())
	p("  time to final status  %s", l.FinalLatency.Summary())
	p("  generator lag         %s", l.SendLag.Summary())
	p("  polls        %d GETs for the payments that answered 202 (first after Retry-After, then backing off to %s)", l.Polls.Load(), maxPollInterval)
	p("  errors       %s", l.Errors.String())
	p("  CPU         %s", l.CPU.String())
	if l.CPUErr != nil {
		p("  CPU profile  not written: %v", l.CPUErr)
	} else if o.cpuProfile != "" {
		p("  CPU profile  %s (go tool pprof -top %s)", o.cpuProfile, o.cpuProfile)
	}
	p("")
	h := d.hist
	p("temporal history, %d successful payments sampled", h.Sampled)
	p("  events per successful payment  mean %.1f (min %d, max %d); typical %d (%d of %d)",
		h.Mean, h.Min, h.Max, h.Typical.Events, h.TypicalCount, h.Sampled)
	p("  per payment  activities %.1f, local-activity markers %.1f, workflow tasks %.1f",
		h.Activities, h.LocalActivities, h.WorkflowTasks)
	p("  typical      %s", h.Typical.breakdown())
	if t := d.timeline; t.Sampled > 0 {
		p("")
		p("where an answer's time goes: %d payments answered 200 in the window (%d of another shape skipped)", t.Sampled, t.Skipped)
		var sum time.Duration
		for i, name := range timelineSegments {
			s := t.Segments[i]
			sum += s.P50
			p("  %-72s p50 %6.1fms  p99 %6.1fms", name, msf(s.P50), msf(s.P99))
		}
		p("  %-72s p50 %6.1fms", "sum of the medians", msf(sum))
	}
	p("")
	b1, b2 := d.base[0], d.base[1]
	r1, r2 := b1.Window.Rate(b1.Completed), b2.Window.Rate(b2.Completed)
	baseRate := (r1 + r2) / 2
	shape := "bare workflow"
	if o.baselineShape == "payment" {
		shape = "payment-shaped workflow (Update-with-Start, search attributes, one upsert)"
	}
	p("baseline: %s %q (activities %d, local activities %d, all no-ops), %s, before and after the payments",
		shape, b1.Steps, strings.Count(b1.Steps, "A"), strings.Count(b1.Steps, "L"), baselineMode(o))
	p("  completed/s  %6.2f before, %6.2f after: mean %.2f", r1, r2, baseRate)
	p("  latency      %s before", b1.Latency.Summary())
	p("               %s after", b2.Latency.Summary())
	p("  errors       %s before, %s after", b1.Errors.String(), b2.Errors.String())
	p("  events per workflow  %d (%s)", d.baseHist.Typical.Events, d.baseHist.Typical.breakdown())
	p("")
	if baseRate > 0 {
		p("ratio     payments completed/s ÷ baseline completed/s = %.2f ÷ %.2f = %.2f", engineRate, baseRate, engineRate/baseRate)
		if gap := math.Abs(r1-r2) / baseRate; gap > 0.25 {
			p("          the two baselines differ by %.0f%%: the machine's load changed a lot during the run, read the ratio as ±%.0f%%",
				gap*100, gap*50)
		}
		switch {
		case o.baseline == "max" && engineRate >= 0.95*o.rate:
			p("          the engine kept up with the offered rate, so this is a lower bound of its share of the")
			p("          baseline's ceiling: raise -rate until completed/s stops following it")
		case o.baseline == "max":
			p("          the engine did not keep up with %.1f/s: this is its ceiling as a share of the baseline's", o.rate)
		}
	}
	costs := costsOf(d)
	if rows := costs.rows(); len(rows) > 0 {
		p("%-50s %15s %15s %15s", "CPU per completed workflow, ms", "baseline before", "payments", "baseline after")
		cell := func(phase []cpuuse.Cost, name string) string {
			if ms, ok := cpuuse.MS(phase, name); ok {
				return fmt.Sprintf("%.1f", ms)
			}
			return "-"
		}
		for _, name := range rows {
			p("  %-48.48s %15s %15s %15s", name, cell(costs.Before, name), cell(costs.Payments, name), cell(costs.After, name))
		}
		if f := costs.serverFactor(); f > 0 {
			p("          the Temporal server spends %.2f× per payment what it spends per baseline workflow: at that", f)
			p("          cost, even an engine that used no CPU of its own would reach about %.2f of the baseline", 1/f)
			p("          with the cores the server had in the baseline")
		}
	}
	p("")
	lc := d.ledger
	if lc.OK() {
		p("ledger    OK: %d payments in the store; %d SUCCEEDED with exactly one debit each (%d debits, %d won at the bank);",
			lc.Payments, lc.Succeeded, lc.Debits, lc.Debited)
		p("          %d FAILED with none; %d accounts debited exactly by their payments; total money unchanged (%d won)",
			lc.Failed, lc.Accounts, lc.MoneyAfter)
	} else {
		p("ledger    FAILED: %d problems", len(lc.Problems))
		for _, pr := range lc.Problems {
			p("  - %s", pr)
		}
	}
	p("")
}

func temporalMode(o options) string {
	if o.temporalDB != "" {
		return "on a SQLite file (WAL)"
	}
	return "in memory"
}

func baselineMode(o options) string {
	if o.baseline == "rate" {
		return fmt.Sprintf("open model at %.1f/s for %s", o.rate, o.baselineDuration)
	}
	return fmt.Sprintf("max throughput (closed loop, %d clients) for %s", o.baselineClients, o.baselineDuration)
}

// loadAverage is the 1, 5 and 15-minute load averages: on a shared machine they say how much
// else was running while the figures were taken.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
