package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"paysaga"
	"paysaga/api"
	"paysaga/seal"
	"paysaga/store"
	"paysaga/workflows"
)

// The refund handler tests run on the payment tests' environment (real store, real tokens)
// with a fake RefundStarter standing in for the refund workflow on Temporal.

// refundCall is one call the handlers made to StartRefund.
type refundCall struct {
	In   workflows.RefundInput
	Wait time.Duration
}

// fakeRefundStarter is a PaymentStarter (the payment tests' fake) that is also a
// RefundStarter: it records every StartRefund and answers with what the test tells it.
type fakeRefundStarter struct {
	*fakeStarter
	refundMu    sync.Mutex
	refundCalls []refundCall
	refundWith  func(ctx context.Context, in workflows.RefundInput) (*paysaga.Refund, error)
}

func (s *fakeRefundStarter) StartRefund(ctx context.Context, in workflows.RefundInput, wait time.Duration) (*paysaga.Refund, error) {
	s.refundMu.Lock()
	s.refundCalls = append(s.refundCalls, refundCall{In: in, Wait: wait})
	answer := s.refundWith
	s.refundMu.Unlock()
	return answer(ctx, in)
}

func (s *fakeRefundStarter) DecidePayment(context.Context, string, string, workflows.CaptureDecision, time.Duration) (*paysaga.Payment, error) {
	return nil, paysaga.Errorf(paysaga.EINTERNAL, "DecidePayment is not part of these tests")
}

// respondRefund sets how the following StartRefund calls are answered.
func (s *fakeRefundStarter) respondRefund(answer func(ctx context.Context, in workflows.RefundInput) (*paysaga.Refund, error)) {
	s.refundMu.Lock()
	defer s.refundMu.Unlock()
	s.refundWith = answer
}

func (s *fakeRefundStarter) RefundCalls() []refundCall {
	s.refundMu.Lock()
	defer s.refundMu.Unlock()
	return append([]refundCall(nil), s.refundCalls...)
}

// reservation is the store reservation the refund workflow makes first for in.
func reservation(in workflows.RefundInput) store.RefundReservation {
	return store.RefundReservation{Refund: paysaga.Refund{
		ID: in.RefundID, PaymentID: in.PaymentID, Amount: in.Amount, Reason: in.Reason,
		CreatedBy: in.Actor, CreatedAt: in.CreatedAt,
	}}
}

// refundSettles answers as the refund workflow does: it reserves the amount on the real store
// (a refusal is the workflow's ECONFLICT) and settles the refund with status (SUCCEEDED or
// FAILED with code and message); with RefundPending it leaves the refund reserved and running,
// its outcome not known within the wait.
func refundSettles(db *store.DB, status paysaga.RefundStatus, code, message string) func(context.Context, workflows.RefundInput) (*paysaga.Refund, error) {
	return func(ctx context.Context, in workflows.RefundInput) (*paysaga.Refund, error) {
		r, err := db.ReserveRefund(ctx, reservation(in))
		if err != nil {
			return nil, err
		}
		if status == paysaga.RefundPending {
			return nil, nil
		}
		if r.Status.Final() {
			return r, nil // a retry of a settled refund
		}
		r, _, err = db.SettleRefund(ctx, store.RefundSettlement{RefundID: in.RefundID, Status: status,
			FailureCode: code, FailureMessage: message})
		return r, err
	}
}

// refundNotRecorded answers as a workflow whose first step has not run within the wait.
func refundNotRecorded(context.Context, workflows.RefundInput) (*paysaga.Refund, error) {
	return nil, nil
}

type refundEnv struct {
	*payEnv
	refunds *fakeRefundStarter
	keys    *seal.Keyring
}

// newRefundEnv is newPayEnv (SQLite) served with a starter that also starts refunds, and a
// keyring for typed-in destinations (none when noKeys).
func newRefundEnv(t *testing.T, noKeys ...bool) *refundEnv {
	t.Helper()
	pe := newPayEnv(t, store.DriverSQLite)
	env := &refundEnv{payEnv: pe, refunds: &fakeRefundStarter{fakeStarter: pe.starter}}
	env.refunds.respondRefund(refundSettles(pe.db, paysaga.RefundSucceeded, "", ""))
	if len(noKeys) == 0 || !noKeys[0] {
		env.keys = seal.NewDevKeyring()
	}
	pe.reg = prometheus.NewRegistry()
	pe.srv = api.New(api.Deps{
		Auth:    pe.svc,
		Users:   pe.db,
		Logger:  slog.New(slog.NewJSONHandler(pe.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Metrics: pe.reg,
		Payments: api.PaymentDeps{
			Store:    pe.db,
			Starter:  env.refunds,
			SyncWait: paymentsSyncWait,
			Keys:     env.keys,
		},
	})
	return env
}

// refundKeyScope is the scope the handler files a user's refund Idempotency-Keys under.
func refundKeyScope(userID string) string { return "refunds:" + userID }

func (e *refundEnv) refundKey(t *testing.T, userID, key string) *store.IdempotencyRecord {
	t.Helper()
	rec, err := e.db.IdempotencyKey(context.Background(), refundKeyScope(userID), key)
	require.NoError(t, err)
	return rec
}

func (e *refundEnv) requireNoRefundKey(t *testing.T, userID, key string) {
	t.Helper()
	_, err := e.db.IdempotencyKey(context.Background(), refundKeyScope(userID), key)
	require.Equal(t, paysaga.ENOTFOUND, paysaga.ErrorCode(err), "idempotency key %q must not be stored", key)
}

// refundBody is a create-refund request body; extra entries are added, nil ones removed.
func refundBody(t *testing.T, amount int64, extra ...map[string]any) string {
	t.Helper()
	m := map[string]any{"amount": amount, "reason": "고객 변심"}
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

// refund sends POST /v1/payments/{paymentID}/refunds as who, with key as the Idempotency-Key
// ("" sends none).
func (e *refundEnv) refund(t *testing.T, who *party, paymentID, key, body string) *httptest.ResponseRecorder {
	t.Helper()
	h := bearer(who.token)
	if key != "" {
		h["Idempotency-Key"] = key
	}
	return e.do(t, req{method: http.MethodPost, path: "/v1/payments/" + paymentID + "/refunds", body: body, header: h})
}

// decodeRefund reads a 200 refund answer (leaving rec.Body as it is).
func decodeRefund(t *testing.T, rec *httptest.ResponseRecorder) *paysaga.Refund {
	t.Helper()
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Equal(t, "application/json; charset=utf-8", rec.Header().Get("Content-Type"))
	var r paysaga.Refund
	dec := json.NewDecoder(bytes.NewReader(rec.Body.Bytes()))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&r))
	return &r
}

// refundDeclined is the body of a 402 refund answer.
type refundDeclined struct {
	api.ProblemDetails
	FailureCode    string          `json:"failure_code"`
	FailureMessage string          `json:"failure_message"`
	Refund         *paysaga.Refund `json:"refund"`
}

// refundPendingAnswer is the body of a 202 refund answer.
type refundPendingAnswer struct {
	Refund  *paysaga.Refund      `json:"refund"`
	Status  paysaga.RefundStatus `json:"status"`
	PollURL string               `json:"poll_url"`
}

// refundList is the body of GET /v1/payments/{id}/refunds.
type refundList struct {
	Data    []*paysaga.Refund `json:"data"`
	HasMore bool              `json:"has_more"`
}

func refundIDs(rs []*paysaga.Refund) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.ID
	}
	return out
}

// paymentNow reads a payment back from the store (Version cleared, as in answers).
func (e *refundEnv) paymentNow(t *testing.T, id string) *paysaga.Payment {
	t.Helper()
	p, err := e.db.GetPayment(context.Background(), id)
	require.NoError(t, err)
	p.Version = 0
	return p
}

func (e *refundEnv) reserved(t *testing.T, paymentID string) int64 {
	t.Helper()
	n, err := e.db.ReservedRefundAmount(context.Background(), paymentID)
	require.NoError(t, err)
	return n
}

// seedRefund stores a refund of payment p as the workflow would have: reserved, then settled
// with status (left PENDING when status is RefundPending).
func (e *refundEnv) seedRefund(t *testing.T, p *paysaga.Payment, amount int64, status paysaga.RefundStatus, at time.Time) *paysaga.Refund {
	t.Helper()
	ctx := context.Background()
	r, err := e.db.ReserveRefund(ctx, store.RefundReservation{Refund: paysaga.Refund{
		ID: paysaga.NewID(paysaga.PrefixRefund), PaymentID: p.ID, Amount: amount, Reason: "seeded",
		CreatedBy: p.MerchantID, CreatedAt: at,
	}})
	require.NoError(t, err)
	if status != paysaga.RefundPending {
		r, _, err = e.db.SettleRefund(ctx, store.RefundSettlement{RefundID: r.ID, Status: status})
		require.NoError(t, err)
	}
	return r
}
