package activities_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"paysaga"
	"paysaga/activities"
	"paysaga/events"
	"paysaga/nh"
	"paysaga/nhsim"
	"paysaga/seal"
	"paysaga/store"
	"paysaga/store/storetest"
)

type regClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *regClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *regClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type regPublisher struct {
	mu     sync.Mutex
	events []events.Event
}

func (p *regPublisher) Publish(_ context.Context, ev events.Event) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.events = append(p.events, ev)
	return nil
}

// regFixture is a database, a simulated bank (fin accounts issued after issueDelay on a clock
// the test moves) behind a real nh client, the registration steps and a customer.
type regFixture struct {
	db     *store.DB
	sim    *nhsim.Sim
	clock  *regClock
	keys   *seal.Keyring
	client *nh.Client
	acts   *activities.AccountActivities
	pub    *regPublisher
	owner  string
	bank   nhsim.Account // the customer's account at the bank
}

func newRegFixture(t *testing.T, issueDelay time.Duration) *regFixture {
	t.Helper()
	ctx := context.Background()
	db := storetest.Open(t, store.DriverSQLite)
	clock := &regClock{now: time.Date(2026, 11, 25, 1, 0, 0, 0, time.UTC)}
	sim := nhsim.New(nhsim.Config{IssueDelay: issueDelay, Clock: clock.Now, Seed: 1})
	t.Cleanup(sim.Close)
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	cfg := sim.ClientConfig(srv.URL)
	cfg.Timeouts = map[string]time.Duration{"*": 2 * time.Second}
	client, err := nh.New(cfg, db)
	require.NoError(t, err)
	bankAcct, err := sim.CreateAccount(nhsim.Account{Holder: "이서연", Birth: "19881224", Balance: 50_000})
	require.NoError(t, err)

	u := &paysaga.User{ID: paysaga.NewID(paysaga.PrefixUser), Email: paysaga.NewID("") + "@example.com", Name: "이서연",
		Role: paysaga.RoleCustomer, PasswordHash: "x"}
	require.NoError(t, db.CreateUser(ctx, u))
	keys := seal.NewDevKeyring()
	pub := &regPublisher{}
	return &regFixture{
		db: db, sim: sim, clock: clock, keys: keys, client: client, pub: pub, owner: u.ID, bank: bankAcct,
		acts: &activities.AccountActivities{Store: db, Bank: client, Keys: keys, Events: pub},
	}
}

// register stores a PENDING account the way POST /v1/accounts does: number and birth date sealed.
func (f *regFixture) register(t *testing.T, number, birth string) string {
	t.Helper()
	id := paysaga.NewID(paysaga.PrefixAccount)
	n, err := f.keys.Seal([]byte(number), seal.AccountNumberAD(id))
	require.NoError(t, err)
	b, err := f.keys.Seal([]byte(birth), seal.BirthDateAD(id))
	require.NoError(t, err)
	_, created, err := f.db.RegisterAccount(context.Background(),
		&paysaga.Account{ID: id, OwnerID: f.owner, BankCode: f.bank.Bncd, MaskedNumber: seal.Mask(number)},
		store.SealedAccountNumber{Ciphertext: n.Ciphertext, KeyID: n.KeyID, Hash: f.keys.AccountNumberHash(f.bank.Bncd, number)},
		store.SealedSecret{Ciphertext: b.Ciphertext, KeyID: b.KeyID})
	require.NoError(t, err)
	require.True(t, created)
	return id
}

func (f *regFixture) requests(api string) int { return f.sim.Stats()[api].Requests }

// requireAppError checks err's application error type and whether Temporal may retry it.
func requireAppError(t *testing.T, err error, typ string, retryable bool) *temporal.ApplicationError {
	t.Helper()
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr), "want an application error, got %v", err)
	require.Equal(t, typ, appErr.Type())
	require.Equal(t, !retryable, appErr.NonRetryable())
	return appErr
}

func TestRegistrationQuickIssuance(t *testing.T) {
	ctx := context.Background()
	f := newRegFixture(t, 0)
	id := f.register(t, f.bank.Acno, f.bank.Birth)

	require.NoError(t, f.acts.OpenFinAccount(ctx, activities.FinAccountInput{AccountID: id}))
	reg, err := f.db.AccountRegistration(ctx, id)
	require.NoError(t, err)
	require.NotEmpty(t, reg.Rgno, "the registration number is stored for the check")
	require.NoError(t, f.acts.OpenFinAccount(ctx, activities.FinAccountInput{AccountID: id}))
	require.Equal(t, 1, f.requests(nh.APIOpenFinAccountDirect), "opened once: a retry finds the Rgno")

	acct, err := f.acts.CheckFinAccount(ctx, activities.FinAccountInput{AccountID: id})
	require.NoError(t, err)
	require.Equal(t, paysaga.AccountActive, acct.Status)
	require.Empty(t, acct.FinAccount, "the fin account never leaves the activity")
	require.Equal(t, seal.Mask(f.bank.Acno), acct.MaskedNumber)

	stored, err := f.db.GetAccount(ctx, id)
	require.NoError(t, err)
	require.NotEmpty(t, stored.FinAccount)
	bal, ok := f.sim.FinAccountBalance(stored.FinAccount)
	require.True(t, ok, "the stored fin account is the bank's")
	require.Equal(t, int64(50_000), bal)

	// Registered for withdrawals (DrtrRgyn=Y): the bank lets a debit through.
	ref, err := nh.NewRef(ctx, f.db, f.clock.Now())
	require.NoError(t, err)
	_, err = f.client.DrawingTransfer(ctx, ref, nh.DrawingTransferRequest{FinAcno: stored.FinAccount, Tram: 1000, DractOtlt: "test"})
	require.NoError(t, err)

	again, err := f.acts.CheckFinAccount(ctx, activities.FinAccountInput{AccountID: id})
	require.NoError(t, err, "a retried check of an ACTIVE account answers from the database")
	require.Equal(t, paysaga.AccountActive, again.Status)
	require.Equal(t, 1, f.requests(nh.APICheckOpenFinAccountDirect))

	// A run started after the registration ended is told so, with the account as it is.
	err = f.acts.OpenFinAccount(ctx, activities.FinAccountInput{AccountID: id})
	notPending := requireAppError(t, err, activities.ErrTypeNotPending, false)
	var asIs paysaga.Account
	require.NoError(t, notPending.Details(&asIs))
	require.Equal(t, paysaga.AccountActive, asIs.Status)
	require.Empty(t, asIs.FinAccount)
	require.Equal(t, 1, f.requests(nh.APIOpenFinAccountDirect))

	// account.registered carries the account without its fin account.
	require.NoError(t, f.acts.PublishAccountEvent(ctx, activities.PublishAccountEventInput{
		EventID: "evt_x_reg_1", Type: events.AccountRegistered, Account: *stored, OccurredAt: stored.UpdatedAt}))
	require.Len(t, f.pub.events, 1)
	require.Equal(t, "evt_x_reg_1", f.pub.events[0].ID)
	require.NotContains(t, string(f.pub.events[0].Data), stored.FinAccount)
	require.NotContains(t, string(f.pub.events[0].Data), f.bank.Acno)
	var published paysaga.Account
	require.NoError(t, json.Unmarshal(f.pub.events[0].Data, &published))
	require.Equal(t, id, published.ID)
}

func TestRegistrationSlowIssuance(t *testing.T) {
	ctx := context.Background()
	f := newRegFixture(t, time.Minute)
	id := f.register(t, f.bank.Acno, f.bank.Birth)
	require.NoError(t, f.acts.OpenFinAccount(ctx, activities.FinAccountInput{AccountID: id}))

	for i := 0; i < 3; i++ {
		_, err := f.acts.CheckFinAccount(ctx, activities.FinAccountInput{AccountID: id})
		appErr := requireAppError(t, err, activities.ErrTypeInProgress, true)
		var ans activities.BankAnswer
		require.NoError(t, appErr.Details(&ans))
		require.Equal(t, nh.RpcdInProgress, ans.Rpcd)
		f.clock.Advance(15 * time.Second)
	}
	stored, err := f.db.GetAccount(ctx, id)
	require.NoError(t, err)
	require.Equal(t, paysaga.AccountPending, stored.Status)

	f.clock.Advance(15 * time.Second)
	acct, err := f.acts.CheckFinAccount(ctx, activities.FinAccountInput{AccountID: id})
	require.NoError(t, err)
	require.Equal(t, paysaga.AccountActive, acct.Status)
	require.Equal(t, 4, f.requests(nh.APICheckOpenFinAccountDirect))
	require.Equal(t, 1, f.requests(nh.APIOpenFinAccountDirect))
}

func TestRegistrationRefused(t *testing.T) {
	ctx := context.Background()
	for name, tc := range map[string]struct {
		number, birth string
		rpcd          string
	}{
		"wrong birth date": {birth: "19900101", rpcd: nhsim.CodeBirthMismatch},
		"no such account":  {number: "35199999999", rpcd: nhsim.CodeUnknownAccount},
	} {
		t.Run(name, func(t *testing.T) {
			f := newRegFixture(t, 0)
			number, birth := f.bank.Acno, f.bank.Birth
			if tc.number != "" {
				number = tc.number
			}
			if tc.birth != "" {
				birth = tc.birth
			}
			id := f.register(t, number, birth)
			err := f.acts.OpenFinAccount(ctx, activities.FinAccountInput{AccountID: id})
			appErr := requireAppError(t, err, activities.ErrTypeDeclined, false)
			var ans activities.BankAnswer
			require.NoError(t, appErr.Details(&ans))
			require.Equal(t, tc.rpcd, ans.Rpcd)
			require.NotEmpty(t, ans.Rsms)
			require.NotContains(t, err.Error(), number, "no account number in an error")
			require.NotContains(t, err.Error(), birth, "no birth date in an error")

			acct, err := f.acts.FailFinAccount(ctx, activities.FailFinAccountInput{AccountID: id, Code: ans.Rpcd, Message: ans.Rsms})
			require.NoError(t, err)
			require.Equal(t, paysaga.AccountFailed, acct.Status)
			require.Equal(t, tc.rpcd, acct.FailureCode)
			_, err = f.db.AccountRegistration(ctx, id)
			require.Equal(t, paysaga.ECONFLICT, paysaga.ErrorCode(err), "the birth date is forgotten")
		})
	}
}

func TestRegistrationBankFailuresAreRetried(t *testing.T) {
	ctx := context.Background()
	f := newRegFixture(t, 0)
	id := f.register(t, f.bank.Acno, f.bank.Birth)

	require.NoError(t, f.sim.SetFault(nh.APIOpenFinAccountDirect, nhsim.Fault{Kind: nhsim.FaultHTTP500, Probability: 1}))
	err := f.acts.OpenFinAccount(ctx, activities.FinAccountInput{AccountID: id})
	require.Error(t, err)
	var appErr *temporal.ApplicationError
	require.False(t, errors.As(err, &appErr) && appErr.NonRetryable(), "a transport failure is retried: %v", err)
	f.sim.ClearFaults()
	require.NoError(t, f.acts.OpenFinAccount(ctx, activities.FinAccountInput{AccountID: id}))

	require.NoError(t, f.sim.SetFault(nh.APICheckOpenFinAccountDirect, nhsim.Fault{Kind: nhsim.FaultDrop, Probability: 1}))
	_, err = f.acts.CheckFinAccount(ctx, activities.FinAccountInput{AccountID: id})
	require.Error(t, err)
	require.False(t, errors.As(err, &appErr) && appErr.NonRetryable(), "a lost check is asked again: %v", err)
	f.sim.ClearFaults()
	acct, err := f.acts.CheckFinAccount(ctx, activities.FinAccountInput{AccountID: id})
	require.NoError(t, err)
	require.Equal(t, paysaga.AccountActive, acct.Status)
}

func TestRegistrationWithoutTheKeyFails(t *testing.T) {
	ctx := context.Background()
	f := newRegFixture(t, 0)
	id := f.register(t, f.bank.Acno, f.bank.Birth)
	f.acts.Keys = seal.NewDevKeyring() // the sealing key is gone from the configuration
	err := f.acts.OpenFinAccount(ctx, activities.FinAccountInput{AccountID: id})
	requireAppError(t, err, activities.ErrTypeStateConflict, false)
	require.Zero(t, f.requests(nh.APIOpenFinAccountDirect), "nothing sent")
	require.False(t, strings.Contains(err.Error(), f.bank.Acno))
}

// A check retried after the registration ended (FAILED: number_in_use at activation, or a
// failure recorded meanwhile) answers with the account as it ended — not a conflict that
// would fail the workflow run.
func TestCheckFinAccountOfAnEndedRegistrationAnswersItsEnd(t *testing.T) {
	ctx := context.Background()
	f := newRegFixture(t, 0)
	id := f.register(t, f.bank.Acno, f.bank.Birth)
	require.NoError(t, f.acts.OpenFinAccount(ctx, activities.FinAccountInput{AccountID: id}))
	_, err := f.acts.FailFinAccount(ctx, activities.FailFinAccountInput{AccountID: id, Code: "number_in_use", Message: "held by another verified registration"})
	require.NoError(t, err)

	_, err = f.acts.CheckFinAccount(ctx, activities.FinAccountInput{AccountID: id})
	appErr := requireAppError(t, err, activities.ErrTypeNotPending, false)
	var acct paysaga.Account
	require.NoError(t, appErr.Details(&acct))
	require.Equal(t, paysaga.AccountFailed, acct.Status)
	require.Empty(t, acct.FinAccount)
}
