package sim

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"
	"modernc.org/sqlite"

	"paysaga"
	"paysaga/activities"
	"paysaga/events"
	"paysaga/nh"
	"paysaga/nhsim"
	"paysaga/store"
	"paysaga/worker"
	"paysaga/workflows"
)

const (
	simIscd  = "000777"
	simToken = "77777777777777777777777777777777777777777777777777777777777777aa"
	// nhTimeout bounds one bank call of the nh client (real time); bankCallTimeout is the
	// activities' start-to-close timeout, longer, as in production.
	nhTimeout       = 300 * time.Millisecond
	bankCallTimeout = 1500 * time.Millisecond
)

// simConfig is the saga configuration the simulator runs: production deadlines, except the bank
// call timeout (real time, shortened so that a hanging call costs little) and the capture
// deadline (so that an uncaptured payment is canceled within a schedule).
func simConfig() workflows.PaymentConfig {
	return workflows.PaymentConfig{BankCallTimeout: bankCallTimeout, CaptureDeadline: captureDeadline}
}

// options of the whole run.
type options struct {
	dbDriver string // store.DriverSQLite or store.DriverMySQL
	mysqlDSN string
	dir      string // SQLite files
	template string // a migrated SQLite file copied for each schedule
}

// world is one schedule's engine: the real workflows and activities on the test environment,
// the store behind a fault gate, the simulated bank behind a faulty network, an in-memory
// broker.
type world struct {
	opts  *options
	plan  *plan
	tr    *trace
	env   *testsuite.TestWorkflowEnvironment
	t0    time.Time
	db    *store.DB // the engine's handle, through the gate
	admin *store.DB // the operators' and the checker's handle: never faulted
	gate  *dbGate
	bank  *nhsim.Sim
	net   *bankNet
	pub   *publisher
	acts  *activityFaults

	initialTotal int64
	bankAccounts map[string]nhsim.AccountID // by store account ID
	cleanup      []func()

	mu        sync.Mutex
	completed map[string][]runEnd // by workflow ID, in completion order
	started   map[string]int      // runs started, by workflow ID
	seen      map[string]*seenState
	replays   map[string]int
	updates   []updateRecord
	answers   map[string][]string // statuses the outcome Update answered with, by workflow ID
}

// runEnd is how a workflow run ended, from the test environment's completion listener.
type runEnd struct {
	At      time.Duration
	RunID   string
	Status  string
	Err     error
	Result  json.RawMessage
	Failed  bool // ended with an error other than a cancellation or a refusal
	Refused bool // a refund refused at reservation (ECONFLICT, nothing reserved)
}

// seenState is what the operator passes saw of a payment or refund that waited for them.
type seenState struct {
	waited         bool // awaited an operator's resolution at least once
	needsAttention bool // and said so
}

type updateRecord struct {
	at   time.Duration
	id   string
	name string
}

type publisher struct {
	mu        sync.Mutex
	down      bool
	refused   int
	published []events.Event
}

func (p *publisher) Publish(_ context.Context, ev events.Event) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		p.refused++
		return errors.New("sim: broker unreachable (injected outage)")
	}
	p.published = append(p.published, ev)
	return nil
}

func (p *publisher) setDown(down bool) {
	p.mu.Lock()
	p.down = down
	p.mu.Unlock()
}

func (p *publisher) events() []events.Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]events.Event(nil), p.published...)
}

// newWorld builds the engine for a plan. The caller runs it and closes it.
func newWorld(opts *options, p *plan) (w *world, err error) {
	w = &world{
		opts: opts, plan: p, tr: &trace{},
		completed: map[string][]runEnd{}, started: map[string]int{}, answers: map[string][]string{}, seen: map[string]*seenState{}, replays: map[string]int{},
		bankAccounts: map[string]nhsim.AccountID{},
	}
	defer func() {
		if err != nil {
			w.close()
		}
	}()
	ctx := context.Background()
	w.gate = newDBGate(p.Seed)
	w.gate.conflictPermille.Store(int64(p.ConflictPermill))
	if w.db, w.admin, err = openStores(ctx, opts, p.Seed, w.gate, &w.cleanup); err != nil {
		return w, err
	}

	w.bank = nhsim.New(nhsim.Config{Iscd: simIscd, AccessToken: simToken, Seed: p.Seed})
	w.cleanup = append(w.cleanup, w.bank.Close)
	for i, c := range p.Customers {
		a, err := w.bank.CreateAccount(nhsim.Account{Holder: fmt.Sprintf("고객%d", i+1), Birth: "19900101", Balance: c.Balance})
		if err != nil {
			return w, err
		}
		fin, err := w.bank.RegisterFinAccount(a.Bncd, a.Acno, true)
		if err != nil {
			return w, err
		}
		w.bankAccounts[c.Account] = nhsim.AccountID{Bncd: a.Bncd, Acno: a.Acno}
		if err := w.admin.CreateUser(ctx, &paysaga.User{ID: c.ID, Email: c.ID + "@sim.example", Name: "sim customer",
			Role: paysaga.RoleCustomer, PasswordHash: "x"}); err != nil {
			return w, err
		}
		if err := w.admin.CreateAccount(ctx, &paysaga.Account{ID: c.Account, OwnerID: c.ID, BankCode: a.Bncd,
			MaskedNumber: paysaga.MaskAccountNumber(a.Acno), Status: paysaga.AccountActive, FinAccount: fin},
			store.SealedAccountNumber{Ciphertext: []byte("sim"), KeyID: "sim", Hash: "sim-" + c.Account}); err != nil {
			return w, err
		}
	}
	if err := w.admin.CreateUser(ctx, &paysaga.User{ID: merchantID, Email: "merchant@sim.example", Name: "sim merchant",
		Role: paysaga.RoleMerchant, PasswordHash: "x"}); err != nil {
		return w, err
	}
	w.initialTotal = w.bank.TotalMoney()

	var suite testsuite.WorkflowTestSuite
	suite.SetLogger(tlog.NewStructuredLogger(slog.New(slog.DiscardHandler)))
	w.env = suite.NewTestWorkflowEnvironment()
	w.env.SetTestTimeout(3 * time.Minute)
	w.env.SetDetachedChildWait(false)
	w.t0 = w.env.Now()
	w.tr.now = func() time.Duration { return w.env.Now().Sub(w.t0) }

	w.pub = &publisher{}
	w.net = &bankNet{
		handler: w.bank.Handler(), seed: p.Seed, rates: p.Bank, hangFor: bankCallTimeout + 200*time.Millisecond,
		lateMax: bankCallTimeout, later: func(d time.Duration, f func()) { w.env.RegisterDelayedCallback(f, d) }, tr: w.tr,
		calls: map[string]int{}, count: map[bankFault]int{},
	}
	w.net.hangs.Store(int32(p.Hangs))
	client, err := nh.New(nh.Config{
		BaseURL: "http://nhsim.invalid", Iscd: simIscd, AccessToken: simToken,
		Timeouts:   map[string]time.Duration{"*": nhTimeout},
		HTTPClient: &http.Client{Transport: w.net},
	}, w.db)
	if err != nil {
		return w, err
	}
	w.acts = &activityFaults{seed: p.Seed, permille: p.LostCompletion, refusePermille: p.StoreRefusal, refused: map[string]bool{},
		tr: w.tr, counts: map[string]int{},
		cancelInCredit: map[string]bool{}, cancel: func(id string) {
			w.env.RegisterDelayedCallback(func() { w.cancelRequest(id) }, 0)
		}}
	for _, r := range p.Refunds {
		if r.CancelInCredit {
			w.acts.cancelInCredit[r.ID] = true
		}
	}
	logger := slog.New(slog.DiscardHandler)
	worker.RegisterWorkflows(w.env, worker.Config{Payments: simConfig(), Refunds: workflows.RefundConfig{BankCallTimeout: bankCallTimeout}})
	w.acts.register(w.env,
		&activities.Activities{Store: w.db, Bank: client, Events: w.pub, Logger: logger},
		&activities.RefundActivities{Store: w.db, Bank: client, Events: w.pub, Logger: logger})
	w.env.RegisterWorkflowWithOptions(simDriver, workflow.RegisterOptions{Name: driverName})
	w.env.RegisterActivityWithOptions(w.createPaymentRow, activity.RegisterOptions{Name: createPaymentName})
	w.env.SetOnChildWorkflowCompletedListener(w.onCompleted)
	w.env.SetOnChildWorkflowStartedListener(func(info *workflow.Info, _ workflow.Context, _ converter.EncodedValues) {
		w.mu.Lock()
		w.started[info.WorkflowExecution.ID]++
		w.mu.Unlock()
	})
	return w, nil
}

func (w *world) close() {
	for i := len(w.cleanup) - 1; i >= 0; i-- {
		w.cleanup[i]()
	}
}

// createPaymentRow is the API's write of the payment row before it starts the workflow.
func (w *world) createPaymentRow(ctx context.Context, p planPayment) error {
	mode := paysaga.CaptureAutomatic
	if p.Manual {
		mode = paysaga.CaptureManual
	}
	_, _, err := w.db.CreatePayment(ctx, &paysaga.Payment{
		ID: p.ID, CustomerID: p.CustomerID, MerchantID: merchantID, AccountID: p.AccountID, Amount: p.Amount,
		Currency: "KRW", Description: "sim " + p.ID, Status: paysaga.PaymentPending, CaptureMode: mode,
	})
	return err
}

func (w *world) since() time.Duration { return w.env.Now().Sub(w.t0) }

// isOpen reports whether a run of the workflow is still open.
func (w *world) isOpen(workflowID string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.started[workflowID] > len(w.completed[workflowID])
}

// cancelRequest asks Temporal to cancel a workflow (as `temporal workflow cancel` or a client
// would); it runs on the test environment's main loop.
func (w *world) cancelRequest(workflowID string) {
	if !w.isOpen(workflowID) {
		w.tr.add("api: cancellation request of %s: not running", workflowID)
		return
	}
	w.tr.add("api: cancellation request of %s", workflowID)
	w.env.CancelWorkflowByID(workflowID, "")
}

// onCompleted records how each child run ended (the driver's children and the payment
// workflows' cancellation refunds alike).
func (w *world) onCompleted(info *workflow.Info, result converter.EncodedValue, err error) {
	end := runEnd{At: w.since(), RunID: info.WorkflowExecution.RunID, Err: err}
	var body struct {
		Status string `json:"status"`
	}
	if result != nil && result.HasValue() {
		var raw json.RawMessage
		if result.Get(&raw) == nil {
			end.Result = raw
			_ = json.Unmarshal(raw, &body)
		}
	}
	end.Status = body.Status
	if err != nil {
		var appErr *temporal.ApplicationError
		switch {
		case temporal.IsCanceledError(err):
		case errors.As(err, &appErr) && appErr.Type() == paysaga.ECONFLICT && info.WorkflowType.Name == workflows.RefundWorkflowName:
			end.Refused = true
		default:
			end.Failed = true
		}
	}
	msg := "completed"
	if err != nil {
		msg = "ended with error: " + rootCause(err)
	}
	w.tr.add("%s %s (%s) %s, status %q", info.WorkflowType.Name, info.WorkflowExecution.ID, info.WorkflowExecution.RunID, msg, end.Status)
	w.mu.Lock()
	w.completed[info.WorkflowExecution.ID] = append(w.completed[info.WorkflowExecution.ID], end)
	w.mu.Unlock()
}

func rootCause(err error) string {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return strings.ReplaceAll(err.Error(), "\n", " | ")
		}
		err = u
	}
}

// openStores returns the engine's handle (behind gate) and an administrative handle on a fresh
// migrated database.
func openStores(ctx context.Context, opts *options, seed uint64, gate *dbGate, cleanup *[]func()) (*store.DB, *store.DB, error) {
	switch opts.dbDriver {
	case store.DriverSQLite:
		path := filepath.Join(opts.dir, fmt.Sprintf("s%d.db", seed))
		if err := copyFile(opts.template, path); err != nil {
			return nil, nil, err
		}
		*cleanup = append(*cleanup, func() {
			for _, suffix := range []string{"", "-wal", "-shm"} {
				_ = os.Remove(path + suffix)
			}
		})
		return openPair(ctx, store.Config{Driver: store.DriverSQLite, DSN: path}, func() *sql.DB {
			dsn := path + "?_pragma=busy_timeout(10000)&_pragma=foreign_keys(ON)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate"
			db := gatedDB(&sqlite.Driver{}, dsn, gate)
			db.SetMaxOpenConns(8)
			db.SetMaxIdleConns(8)
			return db
		}, cleanup)
	case store.DriverMySQL:
		cfg, err := mysql.ParseDSN(opts.mysqlDSN)
		if err != nil {
			return nil, nil, fmt.Errorf("sim: bad MySQL DSN")
		}
		admin, err := sql.Open("mysql", cfg.FormatDSN())
		if err != nil {
			return nil, nil, err
		}
		defer admin.Close()
		name := fmt.Sprintf("paysaga_sim_%d_%s", seed, hex.EncodeToString([]byte(fmt.Sprint(time.Now().UnixNano()%1e6))))
		if _, err := admin.ExecContext(ctx, "CREATE DATABASE `"+name+"` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"); err != nil {
			return nil, nil, fmt.Errorf("sim: create database: %w", err)
		}
		*cleanup = append(*cleanup, func() {
			if a, err := sql.Open("mysql", cfg.FormatDSN()); err == nil {
				_, _ = a.Exec("DROP DATABASE IF EXISTS `" + name + "`")
				_ = a.Close()
			}
		})
		cfg.DBName = name
		scfg := store.Config{Driver: store.DriverMySQL, DSN: cfg.FormatDSN()}
		mdb, err := store.Open(ctx, scfg)
		if err != nil {
			return nil, nil, err
		}
		err = mdb.Migrate(ctx)
		_ = mdb.Close()
		if err != nil {
			return nil, nil, err
		}
		return openPair(ctx, scfg, func() *sql.DB {
			c := cfg.Clone()
			c.ParseTime, c.Loc = true, time.UTC
			if c.Params == nil {
				c.Params = map[string]string{}
			}
			c.Params["time_zone"] = "'+00:00'"
			db := gatedDB(&mysql.MySQLDriver{}, c.FormatDSN(), gate)
			db.SetMaxOpenConns(20)
			return db
		}, cleanup)
	}
	return nil, nil, fmt.Errorf("sim: unknown database %q", opts.dbDriver)
}

// openPair opens the database twice: once as the store opens it (the administrative handle),
// once with the store's connection pool replaced by one through the fault gate. The store has
// no constructor from a pool of the caller's; swapping the pool inside its Bun handle keeps the
// store's code untouched.
func openPair(ctx context.Context, cfg store.Config, gated func() *sql.DB, cleanup *[]func()) (*store.DB, *store.DB, error) {
	admin, err := store.Open(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	*cleanup = append(*cleanup, func() { _ = admin.Close() })
	eng, err := store.Open(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	plain := eng.Bun().DB
	eng.Bun().DB = gated()
	_ = plain.Close()
	*cleanup = append(*cleanup, func() { _ = eng.Close() })
	return eng, admin, nil
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		return err
	}
	return out.Close()
}

// sqliteTemplate migrates an empty SQLite database once, to be copied for each schedule.
func sqliteTemplate(dir string) (string, error) {
	path := filepath.Join(dir, "template.db")
	db, err := store.Open(context.Background(), store.Config{Driver: store.DriverSQLite, DSN: path})
	if err != nil {
		return "", err
	}
	if err := db.Migrate(context.Background()); err != nil {
		_ = db.Close()
		return "", err
	}
	if _, err := db.Bun().Exec("PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		_ = db.Close()
		return "", err
	}
	return path, db.Close()
}
