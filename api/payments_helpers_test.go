package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"paysaga"
	"paysaga/api"
	"paysaga/auth"
	"paysaga/store"
	"paysaga/store/storetest"
	"paysaga/workflows"
)

// The payment handler tests run against the real store (SQLite, and MariaDB where concurrency
// matters), real access tokens from the auth service on the test Redis, and a fake
// PaymentStarter standing in for Temporal.

// starterCall is one call the handlers made to the PaymentStarter.
type starterCall struct {
	In   workflows.PaymentInput
	Wait time.Duration
}

// fakeStarter is a PaymentStarter that records every call and answers with what the test
// tells it. While held, calls wait (each announcing itself on entered first) until released.
type fakeStarter struct {
	mu      sync.Mutex
	calls   []starterCall
	gate    chan struct{} // non-nil while held
	answer  func(ctx context.Context, in workflows.PaymentInput) (*paysaga.Payment, error)
	entered chan workflows.PaymentInput
}

func newFakeStarter() *fakeStarter {
	return &fakeStarter{answer: succeed, entered: make(chan workflows.PaymentInput, 256)}
}

func (s *fakeStarter) StartPayment(ctx context.Context, in workflows.PaymentInput, wait time.Duration) (*paysaga.Payment, error) {
	s.mu.Lock()
	s.calls = append(s.calls, starterCall{In: in, Wait: wait})
	gate, answer := s.gate, s.answer
	s.mu.Unlock()
	select {
	case s.entered <- in:
	default: // nobody is counting
	}
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return answer(ctx, in)
}

// respond sets how the following calls are answered.
func (s *fakeStarter) respond(answer func(ctx context.Context, in workflows.PaymentInput) (*paysaga.Payment, error)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.answer = answer
}

// hold makes the following calls wait until the returned release is called (idempotent; it is
// also called when the test ends so that no request is left hanging).
func (s *fakeStarter) hold(t *testing.T) (release func()) {
	t.Helper()
	gate := make(chan struct{})
	s.mu.Lock()
	s.gate = gate
	s.mu.Unlock()
	var once sync.Once
	release = func() {
		once.Do(func() {
			s.mu.Lock()
			s.gate = nil
			s.mu.Unlock()
			close(gate)
		})
	}
	t.Cleanup(release)
	return release
}

func (s *fakeStarter) Calls() []starterCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]starterCall(nil), s.calls...)
}

// paymentFrom is the payment a workflow started with in would report.
func paymentFrom(in workflows.PaymentInput, status paysaga.PaymentStatus) *paysaga.Payment {
	return &paysaga.Payment{
		ID: in.PaymentID, CustomerID: in.CustomerID, MerchantID: in.MerchantID, AccountID: in.AccountID,
		Amount: in.Amount, Currency: "KRW", Description: in.Description, Status: status,
		CaptureMode: in.CaptureMode, CreatedAt: in.CreatedAt, UpdatedAt: in.CreatedAt,
	}
}

// succeed answers as a workflow whose debit went through.
func succeed(_ context.Context, in workflows.PaymentInput) (*paysaga.Payment, error) {
	return paymentFrom(in, paysaga.PaymentSucceeded), nil
}

// stillRunning answers as a workflow whose outcome is not known within the wait.
func stillRunning(context.Context, workflows.PaymentInput) (*paysaga.Payment, error) {
	return nil, nil
}

// decline answers as a workflow whose debit the bank refused with code and message.
func decline(code, message string) func(context.Context, workflows.PaymentInput) (*paysaga.Payment, error) {
	return func(_ context.Context, in workflows.PaymentInput) (*paysaga.Payment, error) {
		p := paymentFrom(in, paysaga.PaymentFailed)
		p.FailureCode, p.FailureMessage = code, message
		return p, nil
	}
}

func failWith(err error) func(context.Context, workflows.PaymentInput) (*paysaga.Payment, error) {
	return func(context.Context, workflows.PaymentInput) (*paysaga.Payment, error) { return nil, err }
}

// recordAs answers like the real workflow does: it finds the payment the API recorded
// (PENDING), moves it on to status, and answers with its stored state.
func recordAs(db *store.DB, status paysaga.PaymentStatus) func(context.Context, workflows.PaymentInput) (*paysaga.Payment, error) {
	return func(ctx context.Context, in workflows.PaymentInput) (*paysaga.Payment, error) {
		p, err := db.GetPayment(ctx, in.PaymentID)
		if err != nil {
			return nil, err
		}
		for _, next := range []paysaga.PaymentStatus{paysaga.PaymentProcessing, status} {
			if p.Status == status || !p.Status.CanTransition(next) {
				continue
			}
			if p, err = db.UpdatePaymentStatus(ctx, in.PaymentID, next, store.PaymentStatusChange{}); err != nil {
				return nil, err
			}
		}
		return p, nil
	}
}

// party is a seeded user with an access token and, for customers, an ACTIVE account.
type party struct {
	user    *paysaga.User
	token   string
	account *paysaga.Account
}

func (p *party) ID() string { return p.user.ID }

type payEnv struct {
	*testEnv
	db      *store.DB
	svc     *auth.Service
	starter *fakeStarter
	hash    string // password hash every seeded user shares

	customer, customer2 *party
	merchant, merchant2 *party
	operator            *party
}

const paymentsSyncWait = 3 * time.Second

// newPayEnv builds the API with the payment routes on a fresh database of the given driver,
// real auth on the test Redis, and a fake starter.
func newPayEnv(t *testing.T, driver string, opts ...func(*api.Deps)) *payEnv {
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
	prefix := "paysaga:test:api-payments:" + strings.TrimPrefix(paysaga.NewID("t_"), "t_") + ":"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		keys, _ := rdb.Keys(ctx, prefix+"*").Result()
		if len(keys) > 0 {
			_ = rdb.Del(ctx, keys...).Err()
		}
	})

	params := auth.PasswordParams{Memory: 1024, Time: 1, Threads: 1}
	db := storetest.Open(t, driver)
	svc, err := auth.NewService(auth.Config{Secret: []byte(testSecret), KeyPrefix: prefix, Password: params}, db, rdb)
	require.NoError(t, err)
	hash, err := auth.HashPassword(testPassword, params)
	require.NoError(t, err)

	env := &payEnv{
		testEnv: &testEnv{logs: &syncBuffer{}, reg: prometheus.NewRegistry()},
		db:      db, svc: svc, starter: newFakeStarter(), hash: hash,
	}
	deps := api.Deps{
		Auth:    svc,
		Users:   db,
		Logger:  slog.New(slog.NewJSONHandler(env.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Metrics: env.reg,
		Payments: api.PaymentDeps{
			Store:    db,
			Starter:  env.starter,
			SyncWait: paymentsSyncWait,
		},
	}
	for _, o := range opts {
		o(&deps)
	}
	env.srv = api.New(deps)

	env.customer = env.newParty(t, "kim", paysaga.RoleCustomer)
	env.customer2 = env.newParty(t, "lee", paysaga.RoleCustomer)
	env.merchant = env.newParty(t, "cafe", paysaga.RoleMerchant)
	env.merchant2 = env.newParty(t, "bakery", paysaga.RoleMerchant)
	env.operator = env.newParty(t, "ops", paysaga.RoleOperator)
	return env
}

// newParty stores a user with role and logs it in; a customer also gets an ACTIVE account.
func (e *payEnv) newParty(t *testing.T, name string, role paysaga.Role) *party {
	t.Helper()
	ctx := context.Background()
	u := &paysaga.User{ID: paysaga.NewID(paysaga.PrefixUser), Email: name + "@example.com", Name: name,
		Role: role, PasswordHash: e.hash}
	require.NoError(t, e.db.CreateUser(ctx, u))
	tp, err := e.svc.Login(ctx, u.Email, testPassword, "")
	require.NoError(t, err)
	p := &party{user: u, token: tp.AccessToken}
	if role == paysaga.RoleCustomer {
		p.account = e.seedAccount(t, u.ID, paysaga.AccountActive)
	}
	return p
}

func (e *payEnv) seedAccount(t *testing.T, ownerID string, status paysaga.AccountStatus) *paysaga.Account {
	t.Helper()
	a := &paysaga.Account{ID: paysaga.NewID(paysaga.PrefixAccount), OwnerID: ownerID, BankCode: "011",
		MaskedNumber: "****1234", Status: status, FinAccount: "00820100000000000000000000001"}
	require.NoError(t, e.db.CreateAccount(context.Background(), a, store.SealedAccountNumber{
		Ciphertext: []byte("sealed"), KeyID: "k1", Hash: paysaga.NewID("h_"),
	}))
	return a
}

// seedPayment stores a payment of customer to merchant as the workflow would have.
func (e *payEnv) seedPayment(t *testing.T, customer, merchant *party, amount int64, status paysaga.PaymentStatus, at time.Time) *paysaga.Payment {
	t.Helper()
	p, created, err := e.db.CreatePayment(context.Background(), &paysaga.Payment{
		ID: paysaga.NewID(paysaga.PrefixPayment), CustomerID: customer.ID(), MerchantID: merchant.ID(),
		AccountID: customer.account.ID, Amount: amount, Description: "아메리카노", Status: status,
		CreatedAt: at,
	})
	require.NoError(t, err)
	require.True(t, created)
	p.Version = 0 // not part of the JSON
	return p
}

// paymentKeyScope is the scope the handler files a customer's payment Idempotency-Keys under.
func paymentKeyScope(userID string) string { return "payments:" + userID }

// requireNoKey checks that no Idempotency-Key record was left behind.
func (e *payEnv) requireNoKey(t *testing.T, userID, key string) {
	t.Helper()
	_, err := e.db.IdempotencyKey(context.Background(), paymentKeyScope(userID), key)
	require.Equal(t, paysaga.ENOTFOUND, paysaga.ErrorCode(err), "idempotency key %q must not be stored", key)
}

func (e *payEnv) key(t *testing.T, userID, key string) *store.IdempotencyRecord {
	t.Helper()
	rec, err := e.db.IdempotencyKey(context.Background(), paymentKeyScope(userID), key)
	require.NoError(t, err)
	return rec
}

// payBody is a create-payment request body.
func payBody(t *testing.T, accountID string, amount int64, merchantID string, extra ...map[string]any) string {
	t.Helper()
	m := map[string]any{"account_id": accountID, "amount": amount, "merchant_id": merchantID, "description": "아메리카노 2잔"}
	for _, x := range extra {
		for k, v := range x {
			if v == nil {
				delete(m, k)
			} else {
				m[k] = v
			}
		}
	}
	b, err := json.Marshal(m)
	require.NoError(t, err)
	return string(b)
}

// pay sends POST /v1/payments as who, with key as the Idempotency-Key ("" sends none).
func (e *payEnv) pay(t *testing.T, who *party, key, body string) *httptest.ResponseRecorder {
	t.Helper()
	h := bearer(who.token)
	if key != "" {
		h["Idempotency-Key"] = key
	}
	return e.do(t, req{method: http.MethodPost, path: "/v1/payments", body: body, header: h})
}

func (e *payEnv) get(t *testing.T, who *party, path string) *httptest.ResponseRecorder {
	t.Helper()
	return e.do(t, req{method: http.MethodGet, path: path, header: bearer(who.token)})
}

// decodePayment reads a 200 payment answer (leaving rec.Body as it is, for comparisons).
func decodePayment(t *testing.T, rec *httptest.ResponseRecorder) *paysaga.Payment {
	t.Helper()
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Equal(t, "application/json; charset=utf-8", rec.Header().Get("Content-Type"))
	var p paysaga.Payment
	dec := json.NewDecoder(bytes.NewReader(rec.Body.Bytes()))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&p))
	return &p
}

// declined is the body of a 402 answer.
type declined struct {
	api.ProblemDetails
	BankCode    string           `json:"bank_code"`
	BankMessage string           `json:"bank_message"`
	Payment     *paysaga.Payment `json:"payment"`
}

// processingAnswer is the body of a 202 answer.
type processingAnswer struct {
	Payment *paysaga.Payment      `json:"payment"`
	Status  paysaga.PaymentStatus `json:"status"`
	PollURL string                `json:"poll_url"`
}

// paymentList is the body of GET /v1/payments.
type paymentList struct {
	Data    []*paysaga.Payment `json:"data"`
	HasMore bool               `json:"has_more"`
}

func ids(ps []*paysaga.Payment) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.ID
	}
	return out
}

// problem is requireProblem that leaves rec.Body readable afterwards, so that a test can still
// check what the body does not say.
func problem(t *testing.T, rec *httptest.ResponseRecorder, status int, code string) api.ProblemDetails {
	t.Helper()
	saved := bytes.Clone(rec.Body.Bytes())
	p := requireProblem(t, rec, status, code)
	rec.Body = bytes.NewBuffer(saved)
	return p
}

// deadTemporal is a Temporal client whose frontend never answers (the server was killed):
// an Update-with-Start waits until its context runs out, exactly like a wait for a slow
// workflow, and nothing can be described. It records the workflow IDs it was asked to start.
type deadTemporal struct {
	client.Client // nil: any other call panics, so the test shows what was used
	mu            sync.Mutex
	started       []string
}

type neverStarted struct{}

func (neverStarted) Get(ctx context.Context) (client.WorkflowRun, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func (u *deadTemporal) NewWithStartWorkflowOperation(o client.StartWorkflowOptions, _ any, _ ...any) client.WithStartWorkflowOperation {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.started = append(u.started, o.ID)
	return neverStarted{}
}

func (u *deadTemporal) UpdateWithStartWorkflow(ctx context.Context, _ client.UpdateWithStartWorkflowOptions) (client.WorkflowUpdateHandle, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func (u *deadTemporal) DescribeWorkflowExecution(context.Context, string, string) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
	return nil, serviceerror.NewUnavailable("connection refused")
}

func (u *deadTemporal) Started() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.started...)
}
