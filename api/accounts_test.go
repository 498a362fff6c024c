package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"paysaga"
	"paysaga/activities"
	"paysaga/api"
	"paysaga/balance"
	"paysaga/events"
	"paysaga/nh"
	"paysaga/nhsim"
	"paysaga/saga"
	"paysaga/seal"
	"paysaga/store"
	"paysaga/store/storetest"
	"paysaga/workflows"
)

// These tests run the account routes on a real SQLite store, the real Redis at
// PAYSAGA_TEST_REDIS_ADDR (an unreachable one fails them) and the in-process bank simulator.
// The workflow starter is a stand-in that runs the registration steps (the real activities)
// in the request, as FinAccountWorkflow would, without Temporal: open, then check once.

// regStarter runs the registration activities in the request: the outcome, or nil when the
// bank is still issuing (the workflow would go on polling; tests call finish for it).
type regStarter struct {
	acts  *activities.AccountActivities
	mu    sync.Mutex
	calls []workflows.FinAccountInput
}

func (s *regStarter) StartRegistration(ctx context.Context, in workflows.FinAccountInput, _ time.Duration) (*paysaga.Account, error) {
	s.mu.Lock()
	s.calls = append(s.calls, in)
	s.mu.Unlock()
	step := activities.FinAccountInput{AccountID: in.AccountID}
	err := s.acts.OpenFinAccount(ctx, step)
	if err == nil {
		var a paysaga.Account
		if a, err = s.acts.CheckFinAccount(ctx, step); err == nil {
			return &a, nil
		}
	}
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) {
		return nil, err
	}
	switch appErr.Type() {
	case activities.ErrTypeInProgress:
		return nil, nil
	case activities.ErrTypeDeclined:
		var ans activities.BankAnswer
		_ = appErr.Details(&ans)
		a, err := s.acts.FailFinAccount(ctx, activities.FailFinAccountInput{AccountID: in.AccountID, Code: ans.Rpcd, Message: ans.Rsms})
		return &a, err
	}
	return nil, err
}

func (s *regStarter) started() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.calls)
}

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

type acctEnv struct {
	*testEnv
	db      *store.DB
	sim     *nhsim.Sim
	clock   *regClock
	client  *nh.Client
	starter *regStarter
	acts    *activities.AccountActivities
}

type acctUser struct {
	id, token string
}

func acctRedis(t *testing.T) (*redis.Client, string) {
	t.Helper()
	addr := os.Getenv("PAYSAGA_TEST_REDIS_ADDR")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = rdb.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, rdb.Ping(ctx).Err(), "Redis at %s is unreachable; start it or set PAYSAGA_TEST_REDIS_ADDR", addr)
	prefix := "paysaga:test:accounts:" + strings.TrimPrefix(paysaga.NewID("t_"), "t_") + ":"
	t.Cleanup(func() {
		keys, _ := rdb.Keys(context.Background(), prefix+"*").Result()
		if len(keys) > 0 {
			_ = rdb.Del(context.Background(), keys...).Err()
		}
	})
	return rdb, prefix
}

func newAcctEnv(t *testing.T, issueDelay time.Duration) *acctEnv {
	t.Helper()
	db := storetest.Open(t, store.DriverSQLite)
	clock := &regClock{now: time.Now().UTC()}
	sim := nhsim.New(nhsim.Config{IssueDelay: issueDelay, Clock: clock.Now, Seed: 1})
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	t.Cleanup(sim.Close)
	cfg := sim.ClientConfig(srv.URL)
	cfg.Timeouts = map[string]time.Duration{"*": 2 * time.Second}
	client, err := nh.New(cfg, db)
	require.NoError(t, err)
	keys := seal.NewDevKeyring()
	acts := &activities.AccountActivities{Store: db, Bank: client, Keys: keys, Events: events.NoBroker{}}
	rdb, prefix := acctRedis(t)
	bal, err := balance.New(balance.Config{Redis: rdb, Bank: client, Accounts: db, KeyPrefix: prefix,
		Timeout: 500 * time.Millisecond, FailuresToOpen: 3, OpenFor: 300 * time.Millisecond,
		RefreshEvery: -1}) // the refresh throttle has tests of its own (package balance)
	require.NoError(t, err)
	starter := &regStarter{acts: acts}
	env := newTestEnv(t, func(d *api.Deps) {
		d.Accounts = api.AccountDeps{Store: db, Starter: starter, Keys: keys, Balances: bal}
	})
	return &acctEnv{testEnv: env, db: db, sim: sim, clock: clock, client: client, starter: starter, acts: acts}
}

// customer is a user known to both the fake auth and the database (accounts reference users).
func (e *acctEnv) customer(t *testing.T, role paysaga.Role) acctUser {
	t.Helper()
	u, token := e.auth.addUser(paysaga.NewID("")+"@example.com", "pw", role)
	u.PasswordHash = "x"
	require.NoError(t, e.db.CreateUser(context.Background(), u))
	return acctUser{id: u.ID, token: token}
}

// bankAccount opens an account at the simulated bank.
func (e *acctEnv) bankAccount(t *testing.T, balance int64) nhsim.Account {
	t.Helper()
	a, err := e.sim.CreateAccount(nhsim.Account{Holder: "정하늘", Birth: "19920315", Balance: balance})
	require.NoError(t, err)
	return a
}

func regBody(bank nhsim.Account, birth, nickname string) string {
	b, _ := json.Marshal(map[string]string{"bank_code": bank.Bncd, "account_number": bank.Acno, "birth_date": birth, "nickname": nickname})
	return string(b)
}

func (e *acctEnv) register(t *testing.T, who acctUser, key, body string) *httptest.ResponseRecorder {
	t.Helper()
	h := bearer(who.token)
	h["Idempotency-Key"] = key
	return e.do(t, req{method: http.MethodPost, path: "/v1/accounts", body: body, header: h})
}

func (e *acctEnv) call(t *testing.T, who acctUser, method, path, body string) *httptest.ResponseRecorder {
	t.Helper()
	return e.do(t, req{method: method, path: path, body: body, header: bearer(who.token)})
}

func decodeAccount(t *testing.T, rec *httptest.ResponseRecorder) paysaga.Account {
	t.Helper()
	var a paysaga.Account
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &a), rec.Body.String())
	return a
}

type declinedBody struct {
	api.ProblemDetails
	BankCode    string          `json:"bank_code"`
	BankMessage string          `json:"bank_message"`
	Account     paysaga.Account `json:"account"`
}

// requireSecretsHidden checks that an answer and the server's log never show the account
// number or the birth date (tests check the fin account where they know it).
func (e *acctEnv) requireSecretsHidden(t *testing.T, rec *httptest.ResponseRecorder, bank nhsim.Account) {
	t.Helper()
	for _, s := range []string{rec.Body.String(), e.logs.String()} {
		require.NotContains(t, s, bank.Acno)
		require.NotContains(t, s, bank.Birth)
	}
}

func (e *acctEnv) finAccount(t *testing.T, id string) string {
	t.Helper()
	a, err := e.db.GetAccount(context.Background(), id)
	require.NoError(t, err)
	return a.FinAccount
}

func TestRegisterAccountQuickly(t *testing.T) {
	e := newAcctEnv(t, 0)
	kim := e.customer(t, paysaga.RoleCustomer)
	bank := e.bankAccount(t, 10_000)
	body := regBody(bank, bank.Birth, "생활비")

	rec := e.register(t, kim, "reg-1", body)
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	a := decodeAccount(t, rec)
	require.Equal(t, paysaga.AccountActive, a.Status)
	require.Equal(t, kim.id, a.OwnerID)
	require.Equal(t, seal.Mask(bank.Acno), a.MaskedNumber)
	require.Equal(t, "생활비", a.Nickname)
	require.Equal(t, "/v1/accounts/"+a.ID, rec.Header().Get("Location"))
	fin := e.finAccount(t, a.ID)
	require.NotEmpty(t, fin, "the fin account is stored, for payments")
	require.NotContains(t, rec.Body.String(), fin, "and never shown")
	e.requireSecretsHidden(t, rec, bank)

	replay := e.register(t, kim, "reg-1", body)
	require.Equal(t, http.StatusCreated, replay.Code)
	require.Equal(t, rec.Body.String(), replay.Body.String())
	require.Equal(t, "true", replay.Header().Get("Idempotent-Replayed"))
	require.Equal(t, 1, e.starter.started(), "a replay starts nothing")

	other := e.register(t, kim, "reg-1", regBody(bank, bank.Birth, "다른 이름"))
	requireProblem(t, other, http.StatusUnprocessableEntity, paysaga.EIDEMPOTENCY)

	got := e.call(t, kim, http.MethodGet, "/v1/accounts/"+a.ID, "")
	require.Equal(t, http.StatusOK, got.Code)
	require.Equal(t, a, decodeAccount(t, got))
	require.NotContains(t, got.Body.String(), fin)
}

func TestRegisterAccountSlowly(t *testing.T) {
	e := newAcctEnv(t, time.Minute)
	kim := e.customer(t, paysaga.RoleCustomer)
	bank := e.bankAccount(t, 10_000)

	rec := e.register(t, kim, "reg-slow", regBody(bank, bank.Birth, ""))
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
	var pending struct {
		Account paysaga.Account       `json:"account"`
		Status  paysaga.AccountStatus `json:"status"`
		PollURL string                `json:"poll_url"`
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &pending))
	require.Equal(t, paysaga.AccountPending, pending.Status)
	require.Equal(t, "/v1/accounts/"+pending.Account.ID, pending.PollURL)
	require.Equal(t, pending.PollURL, rec.Header().Get("Location"))

	poll := e.call(t, kim, http.MethodGet, pending.PollURL, "")
	require.Equal(t, http.StatusOK, poll.Code)
	require.Equal(t, paysaga.AccountPending, decodeAccount(t, poll).Status)
	del := e.call(t, kim, http.MethodDelete, pending.PollURL, "")
	requireProblem(t, del, http.StatusConflict, paysaga.ECONFLICT)

	// The bank issues; the workflow's next check stores it.
	e.clock.Advance(time.Minute)
	_, err := e.acts.CheckFinAccount(context.Background(), activities.FinAccountInput{AccountID: pending.Account.ID})
	require.NoError(t, err)

	poll = e.call(t, kim, http.MethodGet, pending.PollURL, "")
	require.Equal(t, http.StatusOK, poll.Code)
	require.Equal(t, paysaga.AccountActive, decodeAccount(t, poll).Status)
	e.requireSecretsHidden(t, poll, bank)
}

func TestRegisterAccountRefusedByTheBank(t *testing.T) {
	e := newAcctEnv(t, 0)
	kim := e.customer(t, paysaga.RoleCustomer)
	bank := e.bankAccount(t, 10_000)

	rec := e.register(t, kim, "reg-wrong-birth", regBody(bank, "19700101", ""))
	require.Equal(t, http.StatusUnprocessableEntity, rec.Code, rec.Body.String())
	require.Equal(t, api.ProblemContentType, rec.Header().Get("Content-Type"))
	var d declinedBody
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &d))
	require.Equal(t, paysaga.EDECLINED, d.Code)
	require.Equal(t, nhsim.CodeBirthMismatch, d.BankCode)
	require.Equal(t, "생년월일이 일치하지 않습니다.", d.BankMessage)
	require.Contains(t, d.Detail, "생년월일이 일치하지 않습니다.")
	require.Equal(t, paysaga.AccountFailed, d.Account.Status)
	e.requireSecretsHidden(t, rec, bank)
	require.NotContains(t, rec.Body.String(), "19700101")

	replay := e.register(t, kim, "reg-wrong-birth", regBody(bank, "19700101", ""))
	require.Equal(t, http.StatusUnprocessableEntity, replay.Code)
	require.Equal(t, rec.Body.String(), replay.Body.String())

	// Corrected, with a new key: the same account is registered again.
	again := e.register(t, kim, "reg-right-birth", regBody(bank, bank.Birth, ""))
	require.Equal(t, http.StatusOK, again.Code, again.Body.String())
	a := decodeAccount(t, again)
	require.Equal(t, d.Account.ID, a.ID, "one account per number: the failed one is registered again")
	require.Equal(t, paysaga.AccountActive, a.Status)
	require.Empty(t, a.FailureCode)
}

func TestRegisterAccountTwice(t *testing.T) {
	e := newAcctEnv(t, 0)
	kim, lee := e.customer(t, paysaga.RoleCustomer), e.customer(t, paysaga.RoleCustomer)
	bank := e.bankAccount(t, 10_000)
	first := decodeAccount(t, e.register(t, kim, "k1", regBody(bank, bank.Birth, "")))
	require.Equal(t, paysaga.AccountActive, first.Status)

	// The same customer, the number typed with hyphens: the account they have.
	typed := map[string]string{"bank_code": bank.Bncd, "account_number": bank.Acno[:3] + "-" + bank.Acno[3:7] + "-" + bank.Acno[7:], "birth_date": bank.Birth}
	b, _ := json.Marshal(typed)
	same := e.register(t, kim, "k2", string(b))
	require.Equal(t, http.StatusOK, same.Code, same.Body.String())
	require.Equal(t, first.ID, decodeAccount(t, same).ID)
	require.Equal(t, 1, e.starter.started(), "nothing sent to the bank again")

	// Another customer whom the bank accepts as the holder (right birth date): the bank
	// verified them, but the number stays Kim's; they learn nothing of whose it is.
	theirs := e.register(t, lee, "k1", regBody(bank, bank.Birth, ""))
	require.Equal(t, http.StatusUnprocessableEntity, theirs.Code, theirs.Body.String())
	var d declinedBody
	require.NoError(t, json.Unmarshal(theirs.Body.Bytes(), &d))
	require.Equal(t, paysaga.EDECLINED, d.Code)
	require.Equal(t, store.FailureNumberRegistered, d.BankCode)
	require.Equal(t, paysaga.AccountFailed, d.Account.Status)
	require.Equal(t, lee.id, d.Account.OwnerID, "a registration of Lee's own, FAILED")
	require.NotContains(t, theirs.Body.String(), first.ID)
	require.NotContains(t, theirs.Body.String(), kim.id)
	require.NotContains(t, d.Detail, bank.Acno)

	// …and Kim's account is invisible to Lee.
	for _, r := range []struct{ method, path, body string }{
		{http.MethodGet, "/v1/accounts/" + first.ID, ""},
		{http.MethodPatch, "/v1/accounts/" + first.ID, `{"nickname":"mine"}`},
		{http.MethodDelete, "/v1/accounts/" + first.ID, ""},
		{http.MethodGet, "/v1/accounts/" + first.ID + "/balance", ""},
		{http.MethodGet, "/v1/accounts/acct_doesnotexist", ""},
	} {
		requireProblem(t, e.call(t, lee, r.method, r.path, r.body), http.StatusNotFound, paysaga.ENOTFOUND)
	}
	list := e.call(t, lee, http.MethodGet, "/v1/accounts?status=ACTIVE", "")
	require.Equal(t, http.StatusOK, list.Code)
	require.JSONEq(t, `{"data":[],"has_more":false}`, list.Body.String())
	list = e.call(t, lee, http.MethodGet, "/v1/accounts?status=FAILED", "")
	require.Equal(t, http.StatusOK, list.Code)
	require.NotContains(t, list.Body.String(), first.ID)
	got, err := e.db.GetAccount(context.Background(), first.ID)
	require.NoError(t, err)
	require.Equal(t, paysaga.AccountActive, got.Status, "Lee's DELETE changed nothing")
	require.Empty(t, got.Nickname)
}

// Issue 11, item 7: a stranger who types someone's account number with a wrong birth date
// blocks nobody (their FAILED registration holds nothing), and cannot learn from the answer
// whether the number is registered here.
func TestRegisterAccountStrangerCannotBlockOrProbe(t *testing.T) {
	e := newAcctEnv(t, 0)
	attacker, victim := e.customer(t, paysaga.RoleCustomer), e.customer(t, paysaga.RoleCustomer)
	bank := e.bankAccount(t, 10_000)
	never := e.bankAccount(t, 10_000) // nobody registers it here

	first := e.register(t, attacker, "a1", regBody(bank, "19700101", ""))
	require.Equal(t, http.StatusUnprocessableEntity, first.Code, first.Body.String())

	mine := e.register(t, victim, "v1", regBody(bank, bank.Birth, "내 통장"))
	require.Equal(t, http.StatusCreated, mine.Code, "the stranger's failed registration does not block the holder: %s", mine.Body.String())
	a := decodeAccount(t, mine)
	require.Equal(t, paysaga.AccountActive, a.Status)
	require.Equal(t, victim.id, a.OwnerID)

	// The stranger probes: the registered number answers exactly as a number never registered
	// here does (the bank's refusal), with nothing of the victim's in it.
	probe := e.register(t, attacker, "a2", regBody(bank, "19700101", ""))
	control := e.register(t, attacker, "a3", regBody(never, "19700101", ""))
	require.Equal(t, control.Code, probe.Code, probe.Body.String())
	require.Equal(t, control.Header().Get("Content-Type"), probe.Header().Get("Content-Type"))
	var p, c declinedBody
	require.NoError(t, json.Unmarshal(probe.Body.Bytes(), &p))
	require.NoError(t, json.Unmarshal(control.Body.Bytes(), &c))
	require.Equal(t, c.Code, p.Code)
	require.Equal(t, c.Title, p.Title)
	require.Equal(t, c.Detail, p.Detail)
	require.Equal(t, c.BankCode, p.BankCode)
	require.Equal(t, c.BankMessage, p.BankMessage)
	require.Equal(t, c.Account.Status, p.Account.Status)
	require.Equal(t, attacker.id, p.Account.OwnerID)
	require.NotContains(t, probe.Body.String(), a.ID)
	require.NotContains(t, probe.Body.String(), victim.id)
	var pk, ck map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(probe.Body.Bytes(), &pk))
	require.NoError(t, json.Unmarshal(control.Body.Bytes(), &ck))
	require.Equal(t, len(ck), len(pk), "the same fields")
	for k := range ck {
		require.Contains(t, pk, k)
	}

	got, err := e.db.GetAccount(context.Background(), a.ID)
	require.NoError(t, err)
	require.Equal(t, paysaga.AccountActive, got.Status, "the victim's account is untouched")
}

func TestManageAccounts(t *testing.T) {
	e := newAcctEnv(t, 0)
	kim := e.customer(t, paysaga.RoleCustomer)
	var ids []string
	for i := 0; i < 3; i++ {
		bank := e.bankAccount(t, 1_000)
		rec := e.register(t, kim, "m"+string(rune('a'+i)), regBody(bank, bank.Birth, ""))
		require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
		ids = append(ids, decodeAccount(t, rec).ID)
	}

	renamed := e.call(t, kim, http.MethodPatch, "/v1/accounts/"+ids[0], `{"nickname":"월급통장"}`)
	require.Equal(t, http.StatusOK, renamed.Code, renamed.Body.String())
	require.Equal(t, "월급통장", decodeAccount(t, renamed).Nickname)
	requireProblem(t, e.call(t, kim, http.MethodPatch, "/v1/accounts/"+ids[0], `{}`), http.StatusUnprocessableEntity, paysaga.EINVALID)
	requireProblem(t, e.call(t, kim, http.MethodPatch, "/v1/accounts/"+ids[0], `{"nickname":"`+strings.Repeat("가", 51)+`"}`), http.StatusUnprocessableEntity, paysaga.EINVALID)

	deleted := e.call(t, kim, http.MethodDelete, "/v1/accounts/"+ids[0], "")
	require.Equal(t, http.StatusOK, deleted.Code, deleted.Body.String())
	require.Equal(t, paysaga.AccountDeleted, decodeAccount(t, deleted).Status)
	still := e.call(t, kim, http.MethodGet, "/v1/accounts/"+ids[0], "")
	require.Equal(t, http.StatusOK, still.Code, "history kept")
	require.Equal(t, paysaga.AccountDeleted, decodeAccount(t, still).Status)
	requireProblem(t, e.call(t, kim, http.MethodPatch, "/v1/accounts/"+ids[0], `{"nickname":"x"}`), http.StatusConflict, paysaga.ECONFLICT)
	requireProblem(t, e.call(t, kim, http.MethodGet, "/v1/accounts/"+ids[0]+"/balance", ""), http.StatusConflict, paysaga.ECONFLICT)

	var page struct {
		Data    []paysaga.Account `json:"data"`
		HasMore bool              `json:"has_more"`
	}
	list := e.call(t, kim, http.MethodGet, "/v1/accounts?limit=1", "")
	require.Equal(t, http.StatusOK, list.Code)
	require.NoError(t, json.Unmarshal(list.Body.Bytes(), &page))
	require.Len(t, page.Data, 1)
	require.True(t, page.HasMore)
	list = e.call(t, kim, http.MethodGet, "/v1/accounts?starting_after="+page.Data[0].ID, "")
	require.NoError(t, json.Unmarshal(list.Body.Bytes(), &page))
	require.Len(t, page.Data, 1, "the deleted account is left out")
	require.False(t, page.HasMore)
	list = e.call(t, kim, http.MethodGet, "/v1/accounts?status=DELETED", "")
	require.NoError(t, json.Unmarshal(list.Body.Bytes(), &page))
	require.Len(t, page.Data, 1)
	require.Equal(t, ids[0], page.Data[0].ID)
	requireProblem(t, e.call(t, kim, http.MethodGet, "/v1/accounts?limit=0", ""), http.StatusUnprocessableEntity, paysaga.EINVALID)
}

func TestRegisterAccountValidation(t *testing.T) {
	e := newAcctEnv(t, 0)
	kim := e.customer(t, paysaga.RoleCustomer)
	shop := e.customer(t, paysaga.RoleMerchant)
	bank := e.bankAccount(t, 1_000)
	tomorrow := time.Now().In(nh.KST).AddDate(0, 0, 1).Format("20060102")
	for name, tc := range map[string]struct {
		body  map[string]string
		field string
	}{
		"unknown bank":        {map[string]string{"bank_code": "999"}, "bank_code"},
		"letters in number":   {map[string]string{"account_number": "3021234abc"}, "account_number"},
		"short number":        {map[string]string{"account_number": "12345"}, "account_number"},
		"not a date":          {map[string]string{"birth_date": "1990-01-01"}, "birth_date"},
		"no such day":         {map[string]string{"birth_date": "19900230"}, "birth_date"},
		"born tomorrow":       {map[string]string{"birth_date": tomorrow}, "birth_date"},
		"born before 1900":    {map[string]string{"birth_date": "18991231"}, "birth_date"},
		"business number":     {map[string]string{"birth_date": "1234567890"}, "birth_date"},
		"long nickname":       {map[string]string{"nickname": strings.Repeat("가", 51)}, "nickname"},
		"missing birth date":  {map[string]string{"birth_date": ""}, "birth_date"},
		"missing bank number": {map[string]string{"account_number": ""}, "account_number"},
	} {
		t.Run(name, func(t *testing.T) {
			body := map[string]string{"bank_code": bank.Bncd, "account_number": bank.Acno, "birth_date": bank.Birth}
			for k, v := range tc.body {
				body[k] = v
			}
			b, _ := json.Marshal(body)
			p := requireProblem(t, e.register(t, kim, "v-"+strings.ReplaceAll(name, " ", "-"), string(b)), http.StatusUnprocessableEntity, paysaga.EINVALID)
			require.NotEmpty(t, p.Errors)
			require.Equal(t, tc.field, p.Errors[0].Field)
			require.NotContains(t, p.Detail+p.Errors[0].Message, bank.Acno)
		})
	}
	h := bearer(kim.token)
	requireProblem(t, e.do(t, req{method: http.MethodPost, path: "/v1/accounts", body: regBody(bank, bank.Birth, ""), header: h}),
		http.StatusBadRequest, paysaga.EINVALID)
	requireProblem(t, e.register(t, shop, "m1", regBody(bank, bank.Birth, "")), http.StatusForbidden, paysaga.EFORBIDDEN)
	require.Zero(t, e.starter.started(), "nothing invalid reached the bank")

	// After refusals, the key is free for a corrected request.
	rec := e.register(t, kim, "v-unknown-bank", regBody(bank, bank.Birth, ""))
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
}

func TestAccountsUnavailableWithoutDeps(t *testing.T) {
	env := newTestEnv(t)
	_, token := env.auth.addUser("a@example.com", "pw", paysaga.RoleCustomer)
	h := bearer(token)
	h["Idempotency-Key"] = "x"
	requireProblem(t, env.do(t, req{method: http.MethodPost, path: "/v1/accounts", body: `{}`, header: h}),
		http.StatusServiceUnavailable, paysaga.EUNAVAILABLE)
	requireProblem(t, env.do(t, req{method: http.MethodGet, path: "/v1/accounts/acct_x/balance", header: bearer(token)}),
		http.StatusServiceUnavailable, paysaga.EUNAVAILABLE)
}

type balanceBody struct {
	Balance   int64     `json:"balance"`
	Available int64     `json:"available"`
	AsOf      time.Time `json:"as_of"`
	Stale     bool      `json:"stale"`
}

func (e *acctEnv) balance(t *testing.T, who acctUser, id string, refresh bool) balanceBody {
	t.Helper()
	path := "/v1/accounts/" + id + "/balance"
	if refresh {
		path += "?refresh=true"
	}
	rec := e.call(t, who, http.MethodGet, path, "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Equal(t, "no-store", rec.Header().Get("Cache-Control"))
	var b balanceBody
	dec := json.NewDecoder(rec.Body)
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&b))
	return b
}

func (e *acctEnv) inquiries() int { return e.sim.Stats()[nh.APIInquireBalance].Requests }

// spend moves money out of the account at the bank, as a payment would.
func (e *acctEnv) spend(t *testing.T, accountID string, amount int64) {
	t.Helper()
	ctx := context.Background()
	ref, err := nh.NewRef(ctx, e.db, time.Now())
	require.NoError(t, err)
	_, err = e.client.DrawingTransfer(ctx, ref, nh.DrawingTransferRequest{FinAcno: e.finAccount(t, accountID), Tram: amount, DractOtlt: "test"})
	require.NoError(t, err)
}

func TestAccountBalance(t *testing.T) {
	e := newAcctEnv(t, 0)
	kim := e.customer(t, paysaga.RoleCustomer)
	bank := e.bankAccount(t, 80_000)
	a := decodeAccount(t, e.register(t, kim, "b1", regBody(bank, bank.Birth, "")))

	first := e.balance(t, kim, a.ID, false)
	require.Equal(t, balanceBody{Balance: 80_000, Available: 80_000, AsOf: first.AsOf}, first, "nothing cached: asked the bank")
	require.False(t, first.AsOf.IsZero())

	e.spend(t, a.ID, 30_000)
	cached := e.balance(t, kim, a.ID, false)
	require.Equal(t, first, cached, "answered at once from the cache")
	require.Equal(t, 1, e.inquiries())
	rec := e.call(t, kim, http.MethodGet, "/v1/accounts/"+a.ID+"/balance", "")
	age, err := strconv.Atoi(rec.Header().Get("Age"))
	require.NoError(t, err, "the answer says how old it is")
	require.GreaterOrEqual(t, age, 0)

	fresh := e.balance(t, kim, a.ID, true)
	require.Equal(t, int64(50_000), fresh.Balance)
	require.False(t, fresh.Stale)
	require.Equal(t, 2, e.inquiries())

	// The bank fails: the last known balance, marked stale.
	require.NoError(t, e.sim.SetFault(nh.APIInquireBalance, nhsim.Fault{Kind: nhsim.FaultHTTP500, Probability: 1}))
	stale := e.balance(t, kim, a.ID, true)
	require.True(t, stale.Stale)
	require.Equal(t, int64(50_000), stale.Balance)
	require.Equal(t, fresh.AsOf, stale.AsOf)

	// Nothing known and the bank down: 503 with Retry-After.
	other := e.bankAccount(t, 1_000)
	e.sim.ClearFaults()
	b := decodeAccount(t, e.register(t, kim, "b2", regBody(other, other.Birth, "")))
	require.NoError(t, e.sim.SetFault(nh.APIInquireBalance, nhsim.Fault{Kind: nhsim.FaultDrop, Probability: 1}))
	rec = e.call(t, kim, http.MethodGet, "/v1/accounts/"+b.ID+"/balance", "")
	requireProblem(t, rec, http.StatusServiceUnavailable, paysaga.EUNAVAILABLE)
	require.NotEmpty(t, rec.Header().Get("Retry-After"))
	require.NotContains(t, rec.Body.String(), e.finAccount(t, b.ID))
	requireProblem(t, e.call(t, kim, http.MethodGet, "/v1/accounts/"+a.ID+"/balance?refresh=maybe", ""), http.StatusUnprocessableEntity, paysaga.EINVALID)
	require.NotContains(t, e.logs.String(), e.finAccount(t, a.ID))
}

func TestAccountBalanceCircuitBreaker(t *testing.T) {
	e := newAcctEnv(t, 0) // 3 failed inquiries open the circuit for 300ms
	kim := e.customer(t, paysaga.RoleCustomer)
	bank := e.bankAccount(t, 5_000)
	a := decodeAccount(t, e.register(t, kim, "cb", regBody(bank, bank.Birth, "")))
	require.False(t, e.balance(t, kim, a.ID, true).Stale)

	require.NoError(t, e.sim.SetFault(nh.APIInquireBalance, nhsim.Fault{Kind: nhsim.FaultHTTP500, Probability: 1}))
	for i := 0; i < 3; i++ {
		require.True(t, e.balance(t, kim, a.ID, true).Stale)
	}
	asked := e.inquiries()
	for i := 0; i < 10; i++ {
		require.True(t, e.balance(t, kim, a.ID, true).Stale, "open: served stale at once")
	}
	require.Equal(t, asked, e.inquiries(), "open: the bank is not asked at all")

	// The bank is back: after the open period one trial inquiry closes the circuit.
	e.sim.ClearFaults()
	require.Eventually(t, func() bool { return !e.balance(t, kim, a.ID, true).Stale }, 5*time.Second, 50*time.Millisecond)
	require.Equal(t, asked+1, e.inquiries(), "one trial inquiry, not a stampede")
	require.False(t, e.balance(t, kim, a.ID, true).Stale)
	require.Equal(t, asked+2, e.inquiries())
}

// unreachableTemporal is a Temporal client whose calls never get through while down: the
// Update-with-Start waits out its context, as it does when the frontend cannot be reached,
// and the workflow is unknown. Up, the registration starts and is still running when the wait
// runs out.
type unreachableTemporal struct {
	client.Client // nil: any other call panics
	mu            sync.Mutex
	up            bool
	started       []string
}

func (f *unreachableTemporal) setUp(up bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.up = up
}

func (f *unreachableTemporal) NewWithStartWorkflowOperation(client.StartWorkflowOptions, any, ...any) client.WithStartWorkflowOperation {
	return nil
}

func (f *unreachableTemporal) UpdateWithStartWorkflow(ctx context.Context, o client.UpdateWithStartWorkflowOptions) (client.WorkflowUpdateHandle, error) {
	f.mu.Lock()
	if f.up {
		f.started = append(f.started, o.UpdateOptions.UpdateName)
	}
	f.mu.Unlock()
	<-ctx.Done()
	return nil, ctx.Err()
}

func (f *unreachableTemporal) DescribeWorkflowExecution(ctx context.Context, workflowID, _ string) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.up {
		return nil, serviceerror.NewUnavailable("connection refused")
	}
	if len(f.started) == 0 {
		return nil, serviceerror.NewNotFound("workflow not found for ID: " + workflowID)
	}
	return &workflowservice.DescribeWorkflowExecutionResponse{WorkflowExecutionInfo: &workflowpb.WorkflowExecutionInfo{
		Status: enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING,
	}}, nil
}

// Issue 11, item 6: POST /v1/accounts never answers 202 ("being registered, poll here") for a
// registration whose workflow never started; it answers 503 with Retry-After, and the retry
// with the same Idempotency-Key starts it.
func TestRegisterAccountNot202WhenTheWorkflowNeverStarted(t *testing.T) {
	db := storetest.Open(t, store.DriverSQLite)
	tc := &unreachableTemporal{}
	env := newTestEnv(t, func(d *api.Deps) {
		d.Accounts = api.AccountDeps{Store: db, Starter: saga.Accounts{Client: tc, Store: db},
			Keys: seal.NewDevKeyring(), SyncWait: 100 * time.Millisecond}
	})
	e := &acctEnv{testEnv: env, db: db}
	kim := e.customer(t, paysaga.RoleCustomer)
	bank := nhsim.Account{Bncd: "011", Acno: "3021234567891", Birth: "19920315"}

	rec := e.register(t, kim, "never-started", regBody(bank, bank.Birth, ""))
	e.requireSecretsHidden(t, rec, bank)
	p := requireProblem(t, rec, http.StatusServiceUnavailable, paysaga.EUNAVAILABLE)
	require.NotEmpty(t, rec.Header().Get("Retry-After"))
	require.Empty(t, rec.Header().Get("Location"), "no URL to poll for a registration that is not running")
	require.Contains(t, p.Detail, "Idempotency-Key")

	tc.setUp(true)
	rec = e.register(t, kim, "never-started", regBody(bank, bank.Birth, ""))
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
	poll := e.call(t, kim, http.MethodGet, rec.Header().Get("Location"), "")
	require.Equal(t, http.StatusOK, poll.Code, poll.Body.String())
	require.Equal(t, paysaga.AccountPending, decodeAccount(t, poll).Status)
}

// Issue 11, Low: another customer's account and an account that does not exist answer the
// same 404, word for word (request IDs aside), on every route.
func TestAccountNotFoundLooksTheSameForAnotherCustomersAccount(t *testing.T) {
	e := newAcctEnv(t, 0)
	kim, lee := e.customer(t, paysaga.RoleCustomer), e.customer(t, paysaga.RoleCustomer)
	bank := e.bankAccount(t, 1_000)
	a := decodeAccount(t, e.register(t, kim, "nf", regBody(bank, bank.Birth, "")))
	missing := paysaga.NewID(paysaga.PrefixAccount)
	strip := func(rec *httptest.ResponseRecorder, id string) map[string]any {
		var m map[string]any
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &m), rec.Body.String())
		delete(m, "request_id")
		m["instance"] = strings.ReplaceAll(m["instance"].(string), id, "{id}")
		return m
	}
	for _, r := range []struct{ method, suffix, body string }{
		{http.MethodGet, "", ""},
		{http.MethodPatch, "", `{"nickname":"x"}`},
		{http.MethodDelete, "", ""},
		{http.MethodGet, "/balance", ""},
	} {
		theirs := e.call(t, lee, r.method, "/v1/accounts/"+a.ID+r.suffix, r.body)
		none := e.call(t, lee, r.method, "/v1/accounts/"+missing+r.suffix, r.body)
		require.Equal(t, http.StatusNotFound, theirs.Code)
		require.Equal(t, http.StatusNotFound, none.Code)
		require.Equal(t, strip(none, missing), strip(theirs, a.ID), "%s %s", r.method, r.suffix)
		require.Equal(t, none.Header().Get("Content-Type"), theirs.Header().Get("Content-Type"))
	}
}
