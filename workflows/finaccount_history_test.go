package workflows_test

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/temporalproto"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"paysaga"
	"paysaga/activities"
	"paysaga/events"
	"paysaga/internal/temporaltest"
	"paysaga/nh"
	"paysaga/nhsim"
	"paysaga/saga"
	"paysaga/seal"
	"paysaga/store"
	"paysaga/store/storetest"
	"paysaga/worker"
	"paysaga/workflows"
)

// finRecordConfig is the configuration FinAccountWorkflow histories are recorded (and replayed)
// with: short deadlines and polls, so that the slow scenario takes seconds.
var finRecordConfig = workflows.FinAccountConfig{
	BankCallTimeout: 10 * time.Second,
	OpenDeadline:    10 * time.Second,
	IssueDeadline:   20 * time.Second,
	PollInterval:    300 * time.Millisecond,
	MaxPollInterval: time.Second,
}

type finPublisher struct {
	mu     sync.Mutex
	events []events.Event
}

func (p *finPublisher) Publish(_ context.Context, ev events.Event) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.events = append(p.events, ev)
	return nil
}

// finBench is one registration run on a real dev server: a worker with the real registration
// activities, SQLite, the simulator, and the API's starter (Update-with-Start).
type finBench struct {
	c       client.Client
	db      *store.DB
	sim     *nhsim.Sim
	keys    *seal.Keyring
	pub     *finPublisher
	starter saga.Accounts
	owner   string
}

func newFinBench(t *testing.T, c client.Client, issueDelay time.Duration) *finBench {
	t.Helper()
	db := storetest.Open(t, store.DriverSQLite)
	sim := nhsim.New(nhsim.Config{Iscd: recIscd, AccessToken: recToken, IssueDelay: issueDelay, Seed: 1})
	hs := httptest.NewServer(sim.Handler())
	t.Cleanup(hs.Close)
	t.Cleanup(sim.Close)
	nhc, err := nh.New(nh.Config{BaseURL: hs.URL, Iscd: recIscd, AccessToken: recToken,
		Timeouts: map[string]time.Duration{"*": 2 * time.Second}}, db)
	require.NoError(t, err)
	keys := seal.NewDevKeyring()
	pub := &finPublisher{}
	// A task queue of its own: nothing else polls it.
	queue := "finaccount-" + strings.TrimPrefix(paysaga.NewID("q_"), "q_")
	w := sdkworker.New(c, queue, sdkworker.Options{})
	worker.RegisterWorkflows(w, recordConfigs)
	worker.RegisterActivities(w, worker.Activities{Accounts: &activities.AccountActivities{Store: db, Bank: nhc, Keys: keys, Events: pub}})
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)
	u := &paysaga.User{ID: paysaga.NewID(paysaga.PrefixUser), Email: "lee@example.com", Name: "이서연",
		Role: paysaga.RoleCustomer, PasswordHash: "x"}
	require.NoError(t, db.CreateUser(context.Background(), u))
	return &finBench{c: c, db: db, sim: sim, keys: keys, pub: pub, owner: u.ID,
		starter: saga.Accounts{Client: queueClient{Client: c, queue: queue}, Store: db}}
}

// queueClient starts workflows on the bench's own task queue.
type queueClient struct {
	client.Client
	queue string
}

func (q queueClient) NewWithStartWorkflowOperation(opts client.StartWorkflowOptions, wf any, args ...any) client.WithStartWorkflowOperation {
	opts.TaskQueue = q.queue
	return q.Client.NewWithStartWorkflowOperation(opts, wf, args...)
}

// register stores a PENDING account as the API does.
func (b *finBench) register(t *testing.T, bank nhsim.Account, birth string) string {
	t.Helper()
	id := paysaga.NewID(paysaga.PrefixAccount)
	n, err := b.keys.Seal([]byte(bank.Acno), seal.AccountNumberAD(id))
	require.NoError(t, err)
	bd, err := b.keys.Seal([]byte(birth), seal.BirthDateAD(id))
	require.NoError(t, err)
	_, _, err = b.db.RegisterAccount(context.Background(),
		&paysaga.Account{ID: id, OwnerID: b.owner, BankCode: bank.Bncd, MaskedNumber: seal.Mask(bank.Acno)},
		store.SealedAccountNumber{Ciphertext: n.Ciphertext, KeyID: n.KeyID, Hash: b.keys.AccountNumberHash(bank.Bncd, bank.Acno)},
		store.SealedSecret{Ciphertext: bd.Ciphertext, KeyID: bd.KeyID})
	require.NoError(t, err)
	return id
}

func (b *finBench) history(t *testing.T, id, runID string) *historypb.History {
	t.Helper()
	var hist historypb.History
	it := b.c.GetWorkflowHistory(context.Background(), workflows.FinAccountWorkflowID(id), runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(t, err)
		hist.Events = append(hist.Events, ev)
	}
	return &hist
}

// keep checks that a history holds none of the account's secrets, and records it with -record.
func (b *finBench) keep(t *testing.T, name string, hist *historypb.History, secrets ...string) {
	t.Helper()
	raw, err := temporalproto.CustomJSONMarshalOptions{Indent: "  "}.Marshal(hist)
	require.NoError(t, err)
	for _, s := range secrets {
		require.NotContains(t, string(raw), s, "a secret in workflow history")
	}
	t.Logf("%s: %d history events", name, len(hist.Events))
	if *record {
		require.NoError(t, os.WriteFile(filepath.Join("testdata", "finaccount_"+name+".json"), append(raw, '\n'), 0o644))
	}
}

// TestFinAccountOnDevServer registers accounts through the API's starter on a real dev server:
// issued at once, issued after a while (the starter gives up waiting, the workflow goes on),
// refused and then registered again with the right birth date (a new run under the same
// workflow ID). With -record it writes the histories TestReplayFinAccountHistories replays.
func TestFinAccountOnDevServer(t *testing.T) {
	srv := temporaltest.Start(t)
	ctx := context.Background()

	t.Run("issued", func(t *testing.T) {
		b := newFinBench(t, srv.Client, 0)
		bank, err := b.sim.CreateAccount(nhsim.Account{Holder: "이서연", Birth: "19881224", Balance: 1_000})
		require.NoError(t, err)
		id := b.register(t, bank, bank.Birth)
		a, err := b.starter.StartRegistration(ctx, workflows.FinAccountInput{AccountID: id, OwnerID: b.owner}, 20*time.Second)
		require.NoError(t, err)
		require.NotNil(t, a)
		require.Equal(t, paysaga.AccountActive, a.Status)
		stored, err := b.db.GetAccount(ctx, id)
		require.NoError(t, err)
		require.Equal(t, paysaga.AccountActive, stored.Status)
		require.Eventually(t, func() bool {
			b.pub.mu.Lock()
			defer b.pub.mu.Unlock()
			return len(b.pub.events) == 1 && b.pub.events[0].Type == events.AccountRegistered
		}, 20*time.Second, 50*time.Millisecond)
		require.NoError(t, b.c.GetWorkflow(ctx, workflows.FinAccountWorkflowID(id), "").Get(ctx, nil))
		b.keep(t, "issued", b.history(t, id, ""), bank.Acno, bank.Birth, stored.FinAccount)
	})

	t.Run("slow", func(t *testing.T) {
		b := newFinBench(t, srv.Client, 3*time.Second)
		bank, err := b.sim.CreateAccount(nhsim.Account{Holder: "이서연", Birth: "19881224", Balance: 1_000})
		require.NoError(t, err)
		id := b.register(t, bank, bank.Birth)
		in := workflows.FinAccountInput{AccountID: id, OwnerID: b.owner}
		a, err := b.starter.StartRegistration(ctx, in, 500*time.Millisecond)
		require.NoError(t, err)
		require.Nil(t, a, "not issued in time: the client is told to poll")
		run := b.c.GetWorkflow(ctx, workflows.FinAccountWorkflowID(id), "")
		joined, err := b.starter.StartRegistration(ctx, in, 15*time.Second)
		require.NoError(t, err, "a retry joins the running registration")
		require.Equal(t, paysaga.AccountActive, joined.Status)
		require.NoError(t, run.Get(ctx, nil))
		require.Equal(t, run.GetRunID(), b.c.GetWorkflow(ctx, workflows.FinAccountWorkflowID(id), "").GetRunID(), "one run")
		checks := b.sim.Stats()[nh.APICheckOpenFinAccountDirect]
		require.Greater(t, checks.Answered[nh.RpcdInProgress], 0, "the bank said A0017 before issuing")
		stored, err := b.db.GetAccount(ctx, id)
		require.NoError(t, err)
		hist := b.history(t, id, run.GetRunID())

		// A retry that comes after the end starts a run that only reports the account as it is.
		late, err := b.starter.StartRegistration(ctx, in, 15*time.Second)
		require.NoError(t, err)
		require.Equal(t, paysaga.AccountActive, late.Status)
		require.Equal(t, 1, b.sim.Stats()[nh.APIOpenFinAccountDirect].Requests, "nothing sent to the bank again")
		require.Eventually(t, func() bool {
			err := b.c.GetWorkflow(ctx, workflows.FinAccountWorkflowID(id), "").Get(ctx, nil)
			return err == nil
		}, 20*time.Second, 100*time.Millisecond)
		b.pub.mu.Lock()
		require.Len(t, b.pub.events, 1, "announced once")
		b.pub.mu.Unlock()
		b.keep(t, "slow", hist, bank.Acno, bank.Birth, stored.FinAccount)
	})

	t.Run("refused_then_registered", func(t *testing.T) {
		b := newFinBench(t, srv.Client, 0)
		bank, err := b.sim.CreateAccount(nhsim.Account{Holder: "이서연", Birth: "19881224", Balance: 1_000})
		require.NoError(t, err)
		id := b.register(t, bank, "19700101")
		in := workflows.FinAccountInput{AccountID: id, OwnerID: b.owner}
		a, err := b.starter.StartRegistration(ctx, in, 20*time.Second)
		require.NoError(t, err)
		require.Equal(t, paysaga.AccountFailed, a.Status)
		require.Equal(t, nhsim.CodeBirthMismatch, a.FailureCode)
		run := b.c.GetWorkflow(ctx, workflows.FinAccountWorkflowID(id), "")
		require.NoError(t, run.Get(ctx, nil))
		b.keep(t, "refused", b.history(t, id, run.GetRunID()), bank.Acno, "19700101")

		// Registered again (the API does this on a new POST): a new run, its own outcome.
		bd, err := b.keys.Seal([]byte(bank.Birth), seal.BirthDateAD(id))
		require.NoError(t, err)
		_, err = b.db.RestartAccountRegistration(ctx, id, store.SealedSecret{Ciphertext: bd.Ciphertext, KeyID: bd.KeyID})
		require.NoError(t, err)
		a, err = b.starter.StartRegistration(ctx, in, 20*time.Second)
		require.NoError(t, err)
		require.Equal(t, paysaga.AccountActive, a.Status)
		require.Empty(t, a.FailureCode)
	})
}

// TestReplayFinAccountHistories replays the recorded registration histories against the code.
func TestReplayFinAccountHistories(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "finaccount_*.json"))
	require.NoError(t, err)
	require.Len(t, files, 3, "recorded histories (go test ./workflows -run TestFinAccountOnDevServer -args -record)")
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			r := sdkworker.NewWorkflowReplayer()
			worker.RegisterWorkflows(r, recordConfigs)
			require.NoError(t, r.ReplayWorkflowHistoryFromJSONFile(quietLogger(), file))
		})
	}
	// Not a formality: a registration that skips the check does not replay.
	r := sdkworker.NewWorkflowReplayer()
	r.RegisterWorkflowWithOptions(func(ctx workflow.Context, in workflows.FinAccountInput) (paysaga.Account, error) {
		return paysaga.Account{ID: in.AccountID, Status: paysaga.AccountActive}, nil
	}, workflow.RegisterOptions{Name: workflows.FinAccountWorkflowName})
	require.Error(t, r.ReplayWorkflowHistoryFromJSONFile(quietLogger(), filepath.Join("testdata", "finaccount_issued.json")))
}
