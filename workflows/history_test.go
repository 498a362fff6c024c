package workflows_test

import (
	"context"
	"errors"
	"flag"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/temporalproto"
	"go.temporal.io/sdk/client"

	"paysaga"
	"paysaga/events"
	"paysaga/internal/temporaltest"
	"paysaga/nh"
	"paysaga/nhsim"
	"paysaga/store"
	"paysaga/store/storetest"
	"paysaga/worker"
	"paysaga/workflows"
)

// go test ./workflows -run TestScenariosOnDevServer -args -record  rewrites testdata/ from
// real runs.
var record = flag.Bool("record", false, "write the histories of the dev-server scenarios to testdata/")

// recordConfig is the configuration the histories are recorded (and replayed) with: short
// deadlines, so that the unknown-outcome scenario takes seconds.
var recordConfig = workflows.PaymentConfig{
	BankCallTimeout:  2 * time.Second,
	DebitDeadline:    30 * time.Second,
	UnknownDeadline:  4 * time.Second,
	SendMargin:       500 * time.Millisecond,
	MaxDebitAttempts: 3,
	RetryDelay:       500 * time.Millisecond,
}

// recordRefundConfig is recordConfig's counterpart for refunds.
var recordRefundConfig = workflows.RefundConfig{
	BankCallTimeout:   2 * time.Second,
	CreditDeadline:    30 * time.Second,
	UnknownDeadline:   4 * time.Second,
	SendMargin:        500 * time.Millisecond,
	MaxCreditAttempts: 3,
	RetryDelay:        500 * time.Millisecond,
}

// recordConfigs are the configurations of every workflow the histories are recorded with.
var recordConfigs = worker.Config{Payments: recordConfig, Refunds: recordRefundConfig, FinAccounts: finRecordConfig}

const (
	recIscd  = "000123"
	recToken = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
)

// scriptedBank is the real nh client against the simulator, with a hook before each
// DrawingTransfer to arm or clear the simulator's faults.
type scriptedBank struct {
	*nh.Client
	mu     sync.Mutex
	n      int
	before func(n int)
}

func (b *scriptedBank) DrawingTransfer(ctx context.Context, ref nh.Ref, req nh.DrawingTransferRequest) (*nh.DrawingTransferResult, error) {
	b.mu.Lock()
	b.n++
	n := b.n
	b.mu.Unlock()
	if b.before != nil {
		b.before(n)
	}
	return b.Client.DrawingTransfer(ctx, ref, req)
}

// flakyBroker refuses the first `failures` events.
type flakyBroker struct {
	mu        sync.Mutex
	failures  int
	calls     int
	published []events.Event
}

func (f *flakyBroker) Publish(_ context.Context, ev events.Event) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.calls <= f.failures {
		return errors.New("broker unreachable")
	}
	f.published = append(f.published, ev)
	return nil
}

type scenario struct {
	name     string
	amount   int64
	setup    func(sim *nhsim.Sim, bank *scriptedBank)
	failures int // events refused by the broker first
	resolve  *workflows.Resolution
	want     paysaga.PaymentStatus
	outcome  paysaga.PaymentStatus // answer of the outcome update
	debits   int                   // executed at the bank
}

var scenarios = []scenario{
	{name: "success", amount: 15_000, want: paysaga.PaymentSucceeded, outcome: paysaga.PaymentSucceeded, debits: 1},
	{name: "declined", amount: 150_000, want: paysaga.PaymentFailed, outcome: paysaga.PaymentFailed},
	{name: "lost_answer_executed", amount: 15_000, want: paysaga.PaymentSucceeded, outcome: paysaga.PaymentSucceeded, debits: 1,
		setup: func(sim *nhsim.Sim, _ *scriptedBank) {
			must(sim.SetFault(nh.APIDrawingTransfer, nhsim.Fault{Kind: nhsim.FaultLostResponse, Probability: 1}))
		}},
	{name: "lost_answer_not_executed", amount: 15_000, want: paysaga.PaymentSucceeded, outcome: paysaga.PaymentSucceeded, debits: 1,
		setup: func(sim *nhsim.Sim, bank *scriptedBank) {
			bank.before = func(n int) {
				if n == 1 {
					must(sim.SetFault(nh.APIDrawingTransfer, nhsim.Fault{Kind: nhsim.FaultHTTP500, Probability: 1}))
				} else {
					sim.ClearFaults()
				}
			}
		}},
	{name: "unknown_resolved", amount: 15_000, want: paysaga.PaymentSucceeded, outcome: paysaga.PaymentUnknown, debits: 1,
		setup: func(sim *nhsim.Sim, _ *scriptedBank) {
			must(sim.SetFault(nh.APIDrawingTransfer, nhsim.Fault{Kind: nhsim.FaultLostResponse, Probability: 1}))
			must(sim.SetFault(nh.APICheckOnDrawingTransfer, nhsim.Fault{Kind: nhsim.FaultHTTP500, Probability: 1}))
		},
		resolve: &workflows.Resolution{As: workflows.ResolveSucceeded, Reason: "debit found on the bank statement", Actor: "usr_operator"}},
	{name: "broker_down", amount: 15_000, failures: 4, want: paysaga.PaymentSucceeded, outcome: paysaga.PaymentSucceeded, debits: 1},
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

// TestScenariosOnDevServer runs every scenario on a real dev server (bin/temporal) with a real
// worker, real activities, SQLite and the simulator, and checks the outcome, the bank's ledger,
// the database and the size of the history. With -record it also writes the histories that
// TestReplayHistories replays.
func TestScenariosOnDevServer(t *testing.T) {
	srv := temporaltest.Start(t)
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			hist := runScenario(t, srv.Client, sc)
			t.Logf("%s: %d history events", sc.name, len(hist.Events))
			if sc.name == "success" {
				require.LessOrEqual(t, len(hist.Events), successHistoryEvents, "history events of a successful payment")
			}
			if !*record {
				return
			}
			b, err := temporalproto.CustomJSONMarshalOptions{Indent: "  "}.Marshal(hist)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(filepath.Join("testdata", "payment_"+sc.name+".json"), append(b, '\n'), 0o644))
		})
	}
}

// successHistoryEvents is the size of a successful payment's history: started 1, first
// workflow task 3, outcome update accepted 1, record marker (local activity) 1, search
// attributes 1, debit activity 3 and the workflow task it wakes 3, record marker 1, search
// attributes 1, outcome update completed 1, publish marker 1, completed 1.
const successHistoryEvents = 18

func runScenario(t *testing.T, c client.Client, sc scenario) *historypb.History {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	db := storetest.Open(t, store.DriverSQLite)
	sim := nhsim.New(nhsim.Config{Iscd: recIscd, AccessToken: recToken, Seed: 1})
	t.Cleanup(sim.Close)
	hs := httptest.NewServer(sim.Handler())
	t.Cleanup(hs.Close)
	nhc, err := nh.New(nh.Config{BaseURL: hs.URL, Iscd: recIscd, AccessToken: recToken,
		Timeouts: map[string]time.Duration{"*": 2 * time.Second}}, db)
	require.NoError(t, err)
	bank := &scriptedBank{Client: nhc}
	broker := &flakyBroker{failures: sc.failures}
	if sc.setup != nil {
		sc.setup(sim, bank)
	}

	bankAcct, err := sim.CreateAccount(nhsim.Account{Holder: "김민준", Birth: "19900101", Balance: 100_000})
	require.NoError(t, err)
	fin, err := sim.RegisterFinAccount(bankAcct.Bncd, bankAcct.Acno, true)
	require.NoError(t, err)
	u := &paysaga.User{ID: paysaga.NewID(paysaga.PrefixUser), Email: "kim@example.com", Name: "김민준",
		Role: paysaga.RoleCustomer, PasswordHash: "x"}
	require.NoError(t, db.CreateUser(ctx, u))
	acct := &paysaga.Account{ID: paysaga.NewID(paysaga.PrefixAccount), OwnerID: u.ID, BankCode: bankAcct.Bncd,
		MaskedNumber: paysaga.MaskAccountNumber(bankAcct.Acno), Status: paysaga.AccountActive, FinAccount: fin}
	require.NoError(t, db.CreateAccount(ctx, acct, store.SealedAccountNumber{Ciphertext: []byte("x"), KeyID: "k", Hash: "h"}))

	w, err := worker.New(c, worker.Deps{Store: db, Bank: bank, Events: broker, Payments: recordConfig, Refunds: recordRefundConfig})
	require.NoError(t, err)
	require.NoError(t, w.Start())
	defer w.Stop()

	in := workflows.PaymentInput{
		PaymentID: paysaga.NewID(paysaga.PrefixPayment), CustomerID: u.ID, MerchantID: "usr_shop", AccountID: acct.ID,
		Amount: sc.amount, Description: "원두 1kg", CaptureMode: paysaga.CaptureAutomatic, CreatedAt: time.Now().UTC(),
	}
	// As the API does it: the payment's row first (the authority the steps check the input
	// against), then Update-with-Start, waiting on the outcome.
	_, _, err = db.CreatePayment(ctx, &paysaga.Payment{ID: in.PaymentID, CustomerID: in.CustomerID, MerchantID: in.MerchantID,
		AccountID: in.AccountID, Amount: in.Amount, Description: in.Description, CaptureMode: in.CaptureMode,
		Status: paysaga.PaymentPending, CreatedAt: in.CreatedAt})
	require.NoError(t, err)
	id := workflows.PaymentWorkflowID(in.PaymentID)
	op := c.NewWithStartWorkflowOperation(client.StartWorkflowOptions{
		ID: id, TaskQueue: workflows.TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		TypedSearchAttributes:    workflows.SearchAttributesForStart(in),
	}, workflows.PaymentWorkflowName, in)
	h, err := c.UpdateWithStartWorkflow(ctx, client.UpdateWithStartWorkflowOptions{
		StartWorkflowOperation: op,
		UpdateOptions: client.UpdateWorkflowOptions{UpdateName: workflows.UpdateOutcome, UpdateID: "outcome",
			WaitForStage: client.WorkflowUpdateStageCompleted},
	})
	require.NoError(t, err)
	var outcome paysaga.Payment
	require.NoError(t, h.Get(ctx, &outcome))
	require.Equal(t, sc.outcome, outcome.Status)

	if sc.resolve != nil {
		var view workflows.PaymentView
		require.Eventually(t, func() bool {
			v, err := c.QueryWorkflow(ctx, id, "", workflows.QueryStatus)
			return err == nil && v.Get(&view) == nil && view.AwaitingResolution
		}, 30*time.Second, 100*time.Millisecond)
		require.True(t, view.NeedsAttention)
		sim.ClearFaults()
		rh, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: id, UpdateName: workflows.UpdateResolve,
			UpdateID: "resolve", Args: []any{*sc.resolve}, WaitForStage: client.WorkflowUpdateStageCompleted})
		require.NoError(t, err)
		var resolved paysaga.Payment
		require.NoError(t, rh.Get(ctx, &resolved))
		require.Equal(t, sc.want, resolved.Status)
	}

	var final paysaga.Payment
	require.NoError(t, c.GetWorkflow(ctx, id, "").Get(ctx, &final))
	require.Equal(t, sc.want, final.Status)
	stored, err := db.GetPayment(ctx, in.PaymentID)
	require.NoError(t, err)
	require.Equal(t, sc.want, stored.Status, "the database agrees with the workflow")
	debits := 0
	for _, tr := range sim.Transfers() {
		if tr.API == nh.APIDrawingTransfer {
			debits++
		}
	}
	require.Equal(t, sc.debits, debits, "debits executed at the bank")
	broker.mu.Lock()
	require.NotEmpty(t, broker.published, "the outcome event went out")
	broker.mu.Unlock()

	desc, err := c.DescribeWorkflowExecution(ctx, id, "")
	require.NoError(t, err)
	require.NotNil(t, desc.WorkflowExecutionInfo.SearchAttributes.IndexedFields["PaymentStatus"])

	var hist historypb.History
	it := c.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(t, err)
		hist.Events = append(hist.Events, ev)
	}
	return &hist
}
