// Command chaos runs the engine as production runs it — `paysaga migrate`, two `paysaga api`,
// two `paysaga worker`, `paysaga nhsim`, the Temporal dev server on a database file, MariaDB,
// Redis and RabbitMQ, each part a process of its own built with `go build` — and drives payments
// and refunds through the HTTP API of both API instances while the bank errs and loses answers,
// a worker is SIGKILLed every ~15 s, an API instance, the broker and the Temporal server are
// restarted. Then it drains, resolves what waits for an operator with payctl (deciding from the
// bank's record), and judges the money-safety invariants of DESIGN.md. It prints a report and
// exits 1 when an invariant is broken. `make chaos` runs it; docs/operations.md ("Chaos run")
// says how to read the report.
//
// It talks to the engine only as its users do: the HTTP API, payctl, the simulator's admin API,
// the broker, and Temporal's visibility.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"math/rand/v2"
	"net/http"

	"paysaga/nhsim"
	"paysaga/settlement"
)

type options struct {
	payments, customers, merchants int
	rate                           float64
	minDrive                       time.Duration
	seed                           uint64
	unknownDeadline                time.Duration
	giveUp                         time.Duration
	inFlight                       int
	drain                          time.Duration
	grace                          time.Duration
	mysqlDSN, redisAddr, amqpURL   string
	runDir                         string
	keep                           bool
}

func getenv(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	fs.IntVar(&o.payments, "payments", 600, "payments to drive")
	fs.Float64Var(&o.rate, "rate", 2.5, "payments started per second (lowered so that the drive lasts at least -min-drive)")
	fs.DurationVar(&o.minDrive, "min-drive", 80*time.Second, "shortest drive: every fault of the schedule happens at least once")
	fs.IntVar(&o.customers, "customers", 12, "customers paying, each with an account at the simulated bank")
	fs.IntVar(&o.merchants, "merchants", 2, "merchants paid")
	fs.Uint64Var(&o.seed, "seed", 0, "seed of the payments' scenarios and of the chaos schedule (0: from the clock; printed)")
	fs.DurationVar(&o.unknownDeadline, "unknown-deadline", 20*time.Second, "PAYSAGA_PAYMENT_UNKNOWN_DEADLINE of the workers")
	fs.DurationVar(&o.giveUp, "give-up", 3*time.Minute, "how long the client re-sends one request (same key) before it gives up")
	fs.IntVar(&o.inFlight, "in-flight", 60, "payment scenarios running at once, at most")
	fs.DurationVar(&o.drain, "drain", 5*time.Minute, "how long payments and refunds may take to settle after the drive")
	fs.DurationVar(&o.grace, "grace", 15*time.Second, "how long after a restart a 5xx is still excused")
	fs.StringVar(&o.mysqlDSN, "mysql", getenv("PAYSAGA_TEST_MYSQL_DSN", "root@tcp(127.0.0.1:3306)/test?parseTime=true"), "MariaDB DSN with rights to create a database")
	fs.StringVar(&o.redisAddr, "redis", getenv("PAYSAGA_TEST_REDIS_ADDR", "127.0.0.1:6379"), "Redis address")
	fs.StringVar(&o.amqpURL, "amqp", getenv("PAYSAGA_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"), "RabbitMQ URL (a vhost of the run's own is created on this broker)")
	fs.StringVar(&o.runDir, "run-dir", "", "where the logs go (default var/chaos/<time>-<pid>)")
	fs.BoolVar(&o.keep, "keep", false, "keep the run's MariaDB database and RabbitMQ vhost (they are kept anyway when an invariant breaks)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	switch {
	case o.payments < 1 || o.customers < 1 || o.merchants < 1 || o.inFlight < 1:
		return o, errors.New("-payments, -customers, -merchants and -in-flight must be positive")
	case o.payments >= largeRefundBase:
		return o, fmt.Errorf("-payments must be below %d (amounts identify payments)", largeRefundBase)
	case o.rate <= 0 || o.unknownDeadline <= 0 || o.giveUp <= 0 || o.drain <= 0:
		return o, errors.New("-rate, -unknown-deadline, -give-up and -drain must be positive")
	}
	if o.seed == 0 {
		o.seed = uint64(time.Now().UnixNano())
	}
	return o, nil
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ok, err := run(ctx, o)
	switch {
	case err != nil:
		fmt.Fprintln(os.Stderr, "chaos: FAILED:", err)
		os.Exit(1)
	case !ok:
		fmt.Fprintln(os.Stderr, "chaos: FAILED: an invariant is broken (see the report)")
		os.Exit(1)
	}
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run chaos inside the paysaga module (no go.mod above)")
		}
		dir = parent
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// run is the whole chaos run; it reports whether every invariant held.
func run(ctx context.Context, o options) (ok bool, err error) {
	began := time.Now()
	root, err := moduleRoot()
	if err != nil {
		return false, err
	}
	runID := fmt.Sprintf("%d", os.Getpid())
	if o.runDir == "" {
		o.runDir = filepath.Join(root, "var", "chaos", began.UTC().Format("20060102-150405")+"-"+runID)
	}
	if err := os.MkdirAll(o.runDir, 0o755); err != nil {
		return false, err
	}
	timeline, err := os.Create(filepath.Join(o.runDir, "chaos.log"))
	if err != nil {
		return false, err
	}
	defer timeline.Close()
	var sayMu sync.Mutex
	say := func(format string, args ...any) {
		sayMu.Lock()
		defer sayMu.Unlock()
		line := fmt.Sprintf("[%6.1fs] "+format+"\n", append([]any{time.Since(began).Seconds()}, args...)...)
		fmt.Fprint(os.Stderr, line)
		fmt.Fprint(timeline, line)
	}
	say("chaos run %s: %d payments, seed %d; logs in %s", runID, o.payments, o.seed, o.runDir)
	say("reproduce the same schedule: make chaos CHAOS_FLAGS=\"-payments %d -seed %d\"", o.payments, o.seed)

	st := &stack{o: o, root: root, sup: &supervisor{dir: o.runDir, say: say}, say: say}
	keep := o.keep
	judged := false // the database and vhost are kept when an invariant broke
	// Every process the run started is stopped, whatever happens (Ctrl-C included: ctx ends,
	// the phases return, and this runs).
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
		say("stopping every process")
		st.cleanup(keep || (judged && !ok))
		say("logs: %s", o.runDir)
	}()

	say("building bin/paysaga and bin/payctl")
	if err := st.build(ctx); err != nil {
		return false, err
	}
	if err := st.prepare(ctx, runID); err != nil {
		return false, err
	}
	say("MariaDB database %s, RabbitMQ vhost %s, Redis %s", st.dbName, st.vhost, o.redisAddr)
	if err := st.start(ctx); err != nil {
		return false, err
	}
	if err := declareAudit(ctx, st.amqpURL); err != nil {
		return false, err
	}
	answers, err := os.Create(filepath.Join(o.runDir, "answers.jsonl"))
	if err != nil {
		return false, err
	}
	defer answers.Close()
	w := &workload{o: o, runID: runID, api: newAPIClient(st.apiURLs, answers), simURL: st.simURL, say: say}
	op := &operator{st: st, w: w, say: say}
	setupStart := time.Now()
	say("seeding %d customers (bank accounts registered through the API) and %d merchants (granted with payctl)", o.customers, o.merchants)
	if err := w.seed(ctx, func(email, role string) error {
		if out, code := op.payctl("users", "grant", email, role); code != 0 {
			return fmt.Errorf("payctl users grant: exit %d: %s", code, out)
		}
		return nil
	}); err != nil {
		return false, err
	}
	sf := &settleFacts{Banks: map[string]nhsim.AccountID{}}
	for _, m := range w.merchants {
		sf.Merchants = append(sf.Merchants, m.ID)
	}
	if sf.Banks, err = w.registerSettlementAccounts(ctx); err != nil {
		return false, err
	}
	// Customers sorted, so that a seed draws the same scenarios again.
	sort.Slice(w.customers, func(i, j int) bool { return w.customers[i].Email < w.customers[j].Email })
	w.plan()
	var before nhsim.Ledger
	if err := w.admin(ctx, http.MethodGet, "/admin/ledger", nil, &before); err != nil {
		return false, err
	}
	// payctl reconcile reads the statement of the fintech's own account at the bank.
	st.env = append(st.env, "PAYSAGA_NH_FINTECH_BANK_CODE="+before.Fintech.Bncd, "PAYSAGA_NH_FINTECH_ACCOUNT="+before.Fintech.Acno)
	sf.FintechStart = before.Fintech.Balance
	bankBefore, err := op.bankTransfers(ctx)
	if err != nil {
		return false, err
	}
	setup := time.Since(setupStart)

	rate := min(o.rate, float64(o.payments)/o.minDrive.Seconds())
	driveFor := time.Duration(float64(o.payments) / rate * float64(time.Second))
	say("driving %d payments at %.2f/s (~%s) through both API instances, with the chaos schedule", o.payments, rate, driveFor.Round(time.Second))
	driveStart := time.Now()
	chaosCtx, stopChaos := context.WithCancel(ctx)
	ch := &chaos{root: ctx, st: st, w: w, say: say, rng: rand.New(rand.NewPCG(o.seed, 0)), grace: o.grace, counts: map[string]int{}}
	var chaosDone sync.WaitGroup
	chaosDone.Go(func() { ch.run(chaosCtx, driveFor) })
	w.drive(ctx, rate)
	drive := time.Since(driveStart)
	stopChaos()
	chaosDone.Wait()
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	say("drive done in %s; calming down: every process up, bank faults cleared", drive.Round(time.Second))
	ch.calm(ctx)
	if n := w.resend(ctx); n > 0 {
		say("re-sent %d requests that never got a definitive answer (same keys)", n)
	}

	drainStart := time.Now()
	say("draining (up to %s)", o.drain)
	all := op.settle(ctx, o.drain)
	// Rounds of repairs: a resolution or a replay can leave more to do (a manual-capture
	// payment resolved as debited waits for its merchant's capture).
	for round := 1; round <= 3 && ctx.Err() == nil; round++ {
		say("operator, round %d: resolving with payctl what waits for one, from the bank's record", round)
		acted := op.repair(ctx, all)
		say("  payctl so far: %d stuck listed, %d resolved, %d refused (settled meanwhile), %d refund replays, %d errors", op.Stuck, op.Resolved, op.Refused, op.Replayed, len(op.Errors))
		if n := w.decideAuthorized(ctx, all); n > 0 {
			say("  merchants captured or canceled %d payments still AUTHORIZED", n)
			acted += n
		}
		if acted == 0 {
			break
		}
		all = op.settle(ctx, 2*time.Minute)
	}
	drain := time.Since(drainStart)
	if ctx.Err() != nil {
		return false, ctx.Err()
	}

	judgeStart := time.Now()
	say("judging")
	f := &facts{Payments: w.payments, Customers: w.customers, Answers: w.api.all(), Unreadable: w.Unreadable,
		MoneyBefore: before.Total, Balances: map[nhsim.AccountID]int64{}, Events: map[string]map[string]bool{}}
	f.Final = op.snapshot(ctx)
	var after nhsim.Ledger
	if err := w.admin(ctx, http.MethodGet, "/admin/ledger", nil, &after); err != nil {
		return false, err
	}
	f.MoneyAfter = after.Total
	for _, a := range after.Accounts {
		f.Balances[nhsim.AccountID{Bncd: a.Bncd, Acno: a.Acno}] = a.Balance
	}
	bankAfter, err := op.bankTransfers(ctx)
	if err != nil {
		return false, err
	}
	f.Transfers = bankAfter[len(bankBefore):]
	if f.Listed, err = op.listed(ctx); err != nil {
		return false, err
	}
	if f.OpenRuns, err = op.openRuns(ctx); err != nil {
		return false, fmt.Errorf("open runs from Temporal visibility: %w", err)
	}
	var byStatus map[string]int
	if f.BadRuns, byStatus, err = op.badRuns(ctx); err != nil {
		return false, fmt.Errorf("closed runs from Temporal visibility: %w", err)
	}
	messages := 0
	for waited := time.Duration(0); ; waited += 3 * time.Second {
		n, err := readAudit(ctx, st.amqpURL, f.Events)
		messages += n
		f.EventsRead = err == nil
		if err != nil {
			say("read the audit queue: %v", err)
		}
		if v := f.judgeEvents(); v.OK || waited >= time.Minute || ctx.Err() != nil {
			break
		}
		sleep(ctx, 3*time.Second)
	}
	if f.Reconcile, err = op.reconcile(f.Transfers); err != nil {
		op.Errors = append(op.Errors, err.Error())
	} else {
		f.ReconcileRan = true
	}
	if f.Replay, f.Replayed, err = op.replayHistories(); err != nil {
		op.Errors = append(op.Errors, err.Error())
	}
	f.Windows = ch.windows
	say("settlement day: payctl settlements backfill of the run's Korea day(s), twice")
	op.settlementDay(ctx, sf, began, time.Now())
	f.Settle = sf
	verdicts := judge(f)
	judged = true
	var stats map[string]any
	_ = w.admin(ctx, http.MethodGet, "/admin/stats", nil, &stats)

	ok = true
	for _, v := range verdicts {
		ok = ok && v.OK
	}
	ok = ok && len(ch.errs) == 0 && len(op.Errors) == 0
	rep := report{o: o, runID: runID, dir: o.runDir, rate: rate, f: f, verdicts: verdicts, chaos: ch, op: op,
		byStatus: byStatus, messages: messages, stats: stats,
		phases: [][2]any{{"setup (build, start, seed)", time.Since(began) - drive - drain - time.Since(judgeStart)},
			{"of which seeding", setup}, {"drive", drive}, {"drain + payctl", drain}, {"judge", time.Since(judgeStart)}, {"total", time.Since(began)}}}
	out, err := os.Create(filepath.Join(o.runDir, "report.txt"))
	if err != nil {
		return ok, err
	}
	defer out.Close()
	rep.print(io.MultiWriter(os.Stdout, out), ok)
	return ok, nil
}

// report is what the run prints at the end.
type report struct {
	o        options
	runID    string
	dir      string
	rate     float64
	f        *facts
	verdicts []verdict
	chaos    *chaos
	op       *operator
	byStatus map[string]int
	messages int
	stats    map[string]any
	phases   [][2]any
}

func (r *report) print(w io.Writer, ok bool) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	p("")
	p("==== chaos run %s — seed %d ====", r.runID, r.o.seed)
	p("logs and this report: %s", r.dir)
	p("")
	p("time")
	for _, ph := range r.phases {
		p("  %-28s %s", ph[0], ph[1].(time.Duration).Round(100*time.Millisecond))
	}
	p("")
	p("chaos")
	var names []string
	for k := range r.chaos.counts {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		p("  %-28s %d", k, r.chaos.counts[k])
	}
	excused := map[string]int{}
	for _, a := range r.f.Answers {
		if a.Status < 500 {
			continue
		}
		for _, win := range r.chaos.windows {
			if win.covers(a) {
				excused[win.Why]++
				break
			}
		}
	}
	for _, win := range r.chaos.windows {
		if !win.Only503 {
			p("  window: %s, %d 5xx excused", win, excused[win.Why])
		} else if n := excused[win.Why]; n > 0 {
			p("  windows: %s (each until back + %s), %d 503 excused", win.Why, r.o.grace, n)
			excused[win.Why] = 0
		}
	}
	for _, e := range r.chaos.errs {
		p("  CHAOS ERROR: %s", e)
	}
	if faults, ok := r.stats["DrawingTransfer"].(map[string]any); ok {
		p("  bank DrawingTransfer: %v requests, faults %v", faults["requests"], faults["faults"])
	}
	if faults, ok := r.stats["ReceivedTransferFinAccount"].(map[string]any); ok {
		p("  bank ReceivedTransferFinAccount: %v requests, faults %v", faults["requests"], faults["faults"])
	}

	f := r.f
	p("")
	p("HTTP (%d answers from the two API instances)", len(f.Answers))
	classes := map[string]int{}
	for _, a := range f.Answers {
		switch {
		case a.Status == 0:
			classes["no answer (connection refused/reset, timeout)"]++
		default:
			classes[fmt.Sprintf("%d", a.Status)]++
		}
	}
	names = names[:0]
	for k := range classes {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		p("  %-48s %d", k, classes[k])
	}

	p("")
	p("payments (%d driven at %.2f/s)", len(f.Payments), r.rate)
	statuses := map[string]int{}
	var dups, manual, refused, plannedRefunds int
	for _, pm := range f.Payments {
		if fp := f.Final[pm.ID]; fp != nil {
			statuses[fp.Status]++
		} else if pm.Refused != "" {
			refused++
		}
		if pm.Dup != "" {
			dups++
		}
		if pm.Manual {
			manual++
		}
		plannedRefunds += len(pm.Refunds)
	}
	names = names[:0]
	for k := range statuses {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		p("  %-28s %d", k, statuses[k])
	}
	p("  %-28s %d", "refused (4xx, no payment)", refused)
	p("  %-28s %d (sequential or concurrent)", "re-sent with the same key", dups)
	p("  %-28s %d", "manual capture", manual)
	rs := map[string]int{}
	for _, fp := range f.Final {
		for _, rf := range fp.Refunds {
			rs[rf.Status]++
		}
	}
	p("refunds (%d requested; the engine holds %d, cancellations included)", plannedRefunds, rs["SUCCEEDED"]+rs["FAILED"]+rs["PENDING"]+rs["UNKNOWN"])
	for _, k := range []string{"SUCCEEDED", "FAILED", "PENDING", "UNKNOWN"} {
		if rs[k] > 0 {
			p("  %-28s %d", k, rs[k])
		}
	}
	p("operator (payctl): %d listed by payments stuck, %d resolved, %d refused (already settled), %d refund replays", r.op.Stuck, r.op.Resolved, r.op.Refused, r.op.Replayed)
	for _, e := range r.op.Errors {
		p("  PAYCTL ERROR: %s", e)
	}
	for _, n := range r.op.Notes {
		p("  note: %s", n)
	}
	var debits, credits int
	var debited, credited int64
	for _, tr := range f.Transfers {
		switch {
		case tr.API == "DrawingTransfer":
			debits++
			debited += tr.Amount
		case isCredit(tr.API):
			credits++
			credited += tr.Amount
		}
	}
	p("bank: %d debits executed (%d won), %d credits (%d won); total money before %d, after %d",
		debits, debited, credits, credited, f.MoneyBefore, f.MoneyAfter)
	p("events: %d messages on the audit queue; payctl reconcile paired %d bank rows with our transfers", r.messages, r.op.Reconciled)
	names = names[:0]
	for k := range r.byStatus {
		names = append(names, k)
	}
	sort.Strings(names)
	var closed []string
	for _, k := range names {
		closed = append(closed, fmt.Sprintf("%s %d", k, r.byStatus[k]))
	}
	if sf := f.Settle; sf != nil {
		var paid, fees int64
		byStatus := map[settlement.Status]int{}
		for _, s := range sf.Settlements {
			byStatus[s.Status]++
			fees += s.FeeAmount
			if s.Status == settlement.Paid {
				paid += s.Payout
			}
		}
		p("settlement of %v (payctl settlements backfill, twice): %d settlements (%d PAID, %d CARRIED_OVER), paid out %d won in %d bank transfers, fees %d won; the second pass executed %d transfers",
			sf.Days, len(sf.Settlements), byStatus[settlement.Paid], byStatus[settlement.CarriedOver], paid, len(sf.First), fees, len(sf.Second))
	}
	p("workflows closed: %s; %d payment and refund histories replayed", strings.Join(closed, ", "), f.Replayed)

	p("")
	p("invariants")
	for _, v := range r.verdicts {
		mark := "PASS"
		if !v.OK {
			mark = "FAIL"
		}
		p("  %s  %s", mark, v.Name)
		for _, pr := range v.Problems {
			p("        - %s", pr)
		}
	}
	p("")
	if ok {
		p("RESULT: PASS")
	} else {
		p("RESULT: FAIL — seed %d; logs, database %s and vhost %s kept", r.o.seed, "paysaga_chaos_"+r.runID, "paysaga_chaos_"+r.runID)
	}
}
