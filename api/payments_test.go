package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paysaga"
	"paysaga/activities"
	"paysaga/api"
	"paysaga/saga"
	"paysaga/store"
	"paysaga/store/storetest"
	"paysaga/workflows"
)

func TestCreatePaymentSucceeds(t *testing.T) {
	env := newPayEnv(t, store.DriverSQLite)
	env.starter.respond(recordAs(env.db, paysaga.PaymentSucceeded))
	c := env.customer

	rec := env.pay(t, c, "order-1001", payBody(t, c.account.ID, 15000, env.merchant.ID()))
	p := decodePayment(t, rec)
	require.True(t, paysaga.HasPrefix(p.ID, paysaga.PrefixPayment), p.ID)
	require.Equal(t, "/v1/payments/"+p.ID, rec.Header().Get("Location"))
	require.Empty(t, rec.Header().Get("Idempotent-Replayed"), "a first answer is not a replay")
	require.Equal(t, paysaga.PaymentSucceeded, p.Status)
	require.Equal(t, c.ID(), p.CustomerID)
	require.Equal(t, env.merchant.ID(), p.MerchantID)
	require.Equal(t, c.account.ID, p.AccountID)
	require.Equal(t, int64(15000), p.Amount)
	require.Equal(t, "KRW", p.Currency)
	require.Equal(t, "아메리카노 2잔", p.Description)
	require.Equal(t, paysaga.CaptureAutomatic, p.CaptureMode)

	calls := env.starter.Calls()
	require.Len(t, calls, 1)
	in := calls[0].In
	require.False(t, in.CreatedAt.IsZero())
	require.Equal(t, workflows.PaymentInput{
		PaymentID: p.ID, CustomerID: c.ID(), MerchantID: env.merchant.ID(), AccountID: c.account.ID,
		Amount: 15000, Description: "아메리카노 2잔", CaptureMode: paysaga.CaptureAutomatic, CreatedAt: in.CreatedAt,
	}, in)
	require.Equal(t, paymentsSyncWait, calls[0].Wait, "the handler waits as long as it was configured to")

	// The final answer is remembered under the key, for this payment.
	k := env.key(t, c.ID(), "order-1001")
	require.True(t, k.Completed())
	require.Equal(t, http.StatusOK, k.ResponseStatus)
	require.Equal(t, p.ID, k.ResourceID)
	require.JSONEq(t, rec.Body.String(), string(k.ResponseBody))

	// The Location is where the client reads the payment back.
	got := decodePayment(t, env.get(t, c, rec.Header().Get("Location")))
	require.Equal(t, p, got)
}

func TestCreatePaymentAmountBounds(t *testing.T) {
	env := newPayEnv(t, store.DriverSQLite)
	c := env.customer
	for _, amount := range []int64{1, paysaga.MaxAmount} {
		t.Run(fmt.Sprint(amount), func(t *testing.T) {
			p := decodePayment(t, env.pay(t, c, fmt.Sprint("amount-", amount), payBody(t, c.account.ID, amount, env.merchant.ID())))
			require.Equal(t, amount, p.Amount)
		})
	}
	require.Len(t, env.starter.Calls(), 2)
}

func TestCreatePaymentProcessing(t *testing.T) {
	env := newPayEnv(t, store.DriverSQLite)
	c := env.customer
	body := payBody(t, c.account.ID, 30000, env.merchant.ID())
	env.starter.respond(stillRunning)

	rec := env.pay(t, c, "slow-bank", body)
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
	require.Equal(t, "application/json; charset=utf-8", rec.Header().Get("Content-Type"))
	require.Equal(t, "1", rec.Header().Get("Retry-After"))
	require.Empty(t, rec.Header().Get("Idempotent-Replayed"))
	var a processingAnswer
	dec := json.NewDecoder(rec.Body)
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&a))
	require.NotNil(t, a.Payment)
	id := a.Payment.ID
	require.True(t, paysaga.HasPrefix(id, paysaga.PrefixPayment), id)
	require.Equal(t, paysaga.PaymentProcessing, a.Status)
	require.Equal(t, paysaga.PaymentProcessing, a.Payment.Status)
	require.Equal(t, "/v1/payments/"+id, a.PollURL)
	require.Equal(t, a.PollURL, rec.Header().Get("Location"))
	require.Equal(t, c.ID(), a.Payment.CustomerID)
	require.Equal(t, env.merchant.ID(), a.Payment.MerchantID)
	require.Equal(t, c.account.ID, a.Payment.AccountID)
	require.Equal(t, int64(30000), a.Payment.Amount)
	require.Equal(t, "KRW", a.Payment.Currency)

	// 202 means "it exists": the poll URL answers at once (issue 11, item 6), before the
	// workflow has recorded anything.
	polled := decodePayment(t, env.get(t, c, a.PollURL))
	require.Equal(t, id, polled.ID)
	require.Equal(t, paysaga.PaymentPending, polled.Status)
	require.Equal(t, int64(30000), polled.Amount)

	calls := env.starter.Calls()
	require.Len(t, calls, 1)
	require.Equal(t, id, calls[0].In.PaymentID)
	// An answer that is not final is not stored: a retry asks again.
	k := env.key(t, c.ID(), "slow-bank")
	require.False(t, k.Completed())
	require.Equal(t, id, k.ResourceID)

	// Another body under the key is refused while the payment runs, and starts nothing.
	rec = env.pay(t, c, "slow-bank", payBody(t, c.account.ID, 30001, env.merchant.ID()))
	problem(t, rec, http.StatusUnprocessableEntity, paysaga.EIDEMPOTENCY)
	require.Len(t, env.starter.Calls(), 1)

	// The retry joins the same payment (never a second one) and gets the outcome once known.
	env.starter.respond(succeed)
	rec = env.pay(t, c, "slow-bank", body)
	p := decodePayment(t, rec)
	require.Equal(t, id, p.ID)
	require.Empty(t, rec.Header().Get("Idempotent-Replayed"))
	calls = env.starter.Calls()
	require.Len(t, calls, 2)
	require.Equal(t, calls[0].In, calls[1].In, "the retry starts (joins) the same workflow with the same input")

	// Now the answer is final and replayed without asking the workflow.
	replay := env.pay(t, c, "slow-bank", body)
	require.Equal(t, http.StatusOK, replay.Code)
	require.Equal(t, "true", replay.Header().Get("Idempotent-Replayed"))
	require.Equal(t, rec.Body.String(), replay.Body.String())
	require.Len(t, env.starter.Calls(), 2)
}

func TestCreatePaymentProcessingShowsRecordedPayment(t *testing.T) {
	env := newPayEnv(t, store.DriverSQLite)
	c := env.customer
	var stored *paysaga.Payment
	// The workflow recorded the payment before the wait ran out.
	env.starter.respond(func(ctx context.Context, in workflows.PaymentInput) (*paysaga.Payment, error) {
		p := paymentFrom(in, paysaga.PaymentPending)
		p.CreatedAt = in.CreatedAt.Add(-time.Second) // tell the stored payment from the input
		var err error
		stored, _, err = env.db.CreatePayment(ctx, p)
		return nil, err
	})
	rec := env.pay(t, c, "recorded", payBody(t, c.account.ID, 500, env.merchant.ID()))
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
	var a processingAnswer
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &a))
	require.Equal(t, stored.ID, a.Payment.ID)
	require.Equal(t, stored.CreatedAt, a.Payment.CreatedAt, "the stored payment is shown")
	require.Equal(t, paysaga.PaymentProcessing, a.Status, "PENDING is shown as PROCESSING")
	require.Equal(t, paysaga.PaymentProcessing, a.Payment.Status)
}

// An UNKNOWN outcome (the bank could not say; an operator will resolve it) is answered 200 but
// never stored as the key's answer: a retry asks the workflow again and may learn more.
func TestCreatePaymentUnknownIsAskedAgain(t *testing.T) {
	env := newPayEnv(t, store.DriverSQLite)
	c := env.customer
	body := payBody(t, c.account.ID, 7700, env.merchant.ID())
	env.starter.respond(func(_ context.Context, in workflows.PaymentInput) (*paysaga.Payment, error) {
		return paymentFrom(in, paysaga.PaymentUnknown), nil
	})

	rec := env.pay(t, c, "unsure", body)
	p := decodePayment(t, rec)
	require.Equal(t, paysaga.PaymentUnknown, p.Status)
	require.Equal(t, "/v1/payments/"+p.ID, rec.Header().Get("Location"))
	require.False(t, env.key(t, c.ID(), "unsure").Completed())

	env.starter.respond(succeed) // an operator resolved it
	rec = env.pay(t, c, "unsure", body)
	resolved := decodePayment(t, rec)
	require.Empty(t, rec.Header().Get("Idempotent-Replayed"))
	require.Equal(t, p.ID, resolved.ID)
	require.Equal(t, paysaga.PaymentSucceeded, resolved.Status)
	calls := env.starter.Calls()
	require.Len(t, calls, 2)
	require.Equal(t, calls[0].In, calls[1].In)
	require.True(t, env.key(t, c.ID(), "unsure").Completed())
}

func TestCreatePaymentDeclined(t *testing.T) {
	tests := []struct {
		name, code, message string
	}{
		{name: "code and message", code: "E0012", message: "잔액이 부족합니다"},
		{name: "code only", code: "E0099"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newPayEnv(t, store.DriverSQLite)
			c := env.customer
			body := payBody(t, c.account.ID, 99000, env.merchant.ID())
			env.starter.respond(decline(tt.code, tt.message))

			rec := env.pay(t, c, "declined-1", body)
			require.Equal(t, http.StatusPaymentRequired, rec.Code, rec.Body.String())
			require.Equal(t, api.ProblemContentType, rec.Header().Get("Content-Type"))
			var d declined
			dec := json.NewDecoder(strings.NewReader(rec.Body.String()))
			dec.DisallowUnknownFields()
			require.NoError(t, dec.Decode(&d))
			require.Equal(t, http.StatusPaymentRequired, d.Status)
			require.Equal(t, paysaga.EDECLINED, d.Code)
			require.Equal(t, api.ProblemType(paysaga.EDECLINED), d.Type)
			require.NotEmpty(t, d.Title)
			if tt.message != "" {
				require.Contains(t, d.Detail, tt.message)
			} else {
				require.Contains(t, d.Detail, tt.code)
			}
			require.Equal(t, rec.Header().Get(api.RequestIDHeader), d.RequestID)
			require.Equal(t, tt.code, d.BankCode)
			require.Equal(t, tt.message, d.BankMessage)
			if tt.message == "" {
				require.NotContains(t, rec.Body.String(), `"bank_message"`)
			}
			require.NotNil(t, d.Payment)
			require.Equal(t, paysaga.PaymentFailed, d.Payment.Status)
			require.Equal(t, tt.code, d.Payment.FailureCode)
			require.Equal(t, tt.message, d.Payment.FailureMessage)
			require.Equal(t, "/v1/payments/"+d.Payment.ID, rec.Header().Get("Location"))
			require.Len(t, env.starter.Calls(), 1)

			// A decline is final: the same request is answered the same, without a second try.
			k := env.key(t, c.ID(), "declined-1")
			require.True(t, k.Completed())
			require.Equal(t, http.StatusPaymentRequired, k.ResponseStatus)
			replay := env.pay(t, c, "declined-1", body)
			require.Equal(t, http.StatusPaymentRequired, replay.Code)
			require.Equal(t, api.ProblemContentType, replay.Header().Get("Content-Type"))
			require.Equal(t, "true", replay.Header().Get("Idempotent-Replayed"))
			require.Equal(t, rec.Body.String(), replay.Body.String())
			require.Equal(t, rec.Header().Get("Location"), replay.Header().Get("Location"))
			require.Len(t, env.starter.Calls(), 1, "a replay never reaches the workflow")
		})
	}
}

func TestCreatePaymentStarterFails(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		status int
		code   string
	}{
		{name: "temporal unavailable", status: http.StatusServiceUnavailable, code: paysaga.EUNAVAILABLE,
			err: fmt.Errorf("payment: %w", errors.Join(paysaga.Errorf(paysaga.EUNAVAILABLE, "the payment could not be started; retry with the same Idempotency-Key"), errors.New("frontend gone")))},
		{name: "unexpected error", status: http.StatusInternalServerError, code: paysaga.EINTERNAL,
			err: errors.New("secret internals exploded")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newPayEnv(t, store.DriverSQLite)
			c := env.customer
			body := payBody(t, c.account.ID, 1200, env.merchant.ID())
			env.starter.respond(failWith(tt.err))

			rec := env.pay(t, c, "flaky", body)
			problem(t, rec, tt.status, tt.code)
			require.NotContains(t, rec.Body.String(), "exploded")
			require.NotContains(t, rec.Body.String(), "frontend gone")
			calls := env.starter.Calls()
			require.Len(t, calls, 1)
			// The key keeps its payment: the workflow may have started, so a retry must join it.
			k := env.key(t, c.ID(), "flaky")
			require.False(t, k.Completed())
			require.Equal(t, calls[0].In.PaymentID, k.ResourceID)

			env.starter.respond(succeed)
			p := decodePayment(t, env.pay(t, c, "flaky", body))
			require.Equal(t, calls[0].In.PaymentID, p.ID)
			calls = env.starter.Calls()
			require.Len(t, calls, 2)
			require.Equal(t, calls[0].In.PaymentID, calls[1].In.PaymentID)
		})
	}
}

func TestCreatePaymentIdempotencyKeyHeader(t *testing.T) {
	env := newPayEnv(t, store.DriverSQLite)
	c := env.customer
	body := payBody(t, c.account.ID, 1000, env.merchant.ID())

	refused := []struct {
		name, key string
	}{
		{name: "missing", key: ""},
		{name: "256 characters", key: strings.Repeat("k", 256)},
		{name: "non-ASCII", key: "주문-1001"},
		{name: "space", key: "order 1001"},
		{name: "control character", key: "order\x7f1001"},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			rec := env.pay(t, c, tt.key, body)
			// 400, not 422: a missing or malformed header is a bad request, not a body that
			// fails validation (the IETF Idempotency-Key draft); the code stays "invalid".
			p := problem(t, rec, http.StatusBadRequest, paysaga.EINVALID)
			require.Len(t, p.Errors, 1)
			require.Equal(t, "Idempotency-Key", p.Errors[0].Field)
			require.Empty(t, env.starter.Calls())
			if tt.key != "" {
				env.requireNoKey(t, c.ID(), tt.key)
			}
		})
	}

	accepted := []struct {
		name, key string
	}{
		{name: "255 characters", key: strings.Repeat("k", 255)},
		{name: "printable punctuation", key: "~!@#$%^&*()_+{}|:<>?"},
		{name: "one character", key: "x"},
	}
	for i, tt := range accepted {
		t.Run(tt.name, func(t *testing.T) {
			p := decodePayment(t, env.pay(t, c, tt.key, body))
			require.Len(t, env.starter.Calls(), i+1)
			require.Equal(t, p.ID, env.key(t, c.ID(), tt.key).ResourceID)
		})
	}
}

func TestCreatePaymentReplay(t *testing.T) {
	env := newPayEnv(t, store.DriverSQLite)
	c, c2 := env.customer, env.customer2
	body := payBody(t, c.account.ID, 15000, env.merchant.ID())
	first := env.pay(t, c, "order-7", body)
	p := decodePayment(t, first)
	require.Len(t, env.starter.Calls(), 1)
	stored := env.key(t, c.ID(), "order-7")

	t.Run("same body", func(t *testing.T) {
		// The same request, as another client library would spell it.
		respelled := fmt.Sprintf(`{ "merchant_id": %q,  "description": "아메리카노 2잔", "amount": 15000, "account_id": %q }`,
			env.merchant.ID(), c.account.ID)
		for _, b := range []string{body, respelled} {
			rec := env.pay(t, c, "order-7", b)
			require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
			require.Equal(t, "true", rec.Header().Get("Idempotent-Replayed"))
			require.Equal(t, "application/json; charset=utf-8", rec.Header().Get("Content-Type"))
			require.Equal(t, first.Body.String(), rec.Body.String(), "the stored answer, byte for byte")
			require.Equal(t, first.Header().Get("Location"), rec.Header().Get("Location"))
		}
		require.Len(t, env.starter.Calls(), 1, "a replay never reaches the workflow")
	})

	t.Run("different body", func(t *testing.T) {
		for name, b := range map[string]string{
			"amount":      payBody(t, c.account.ID, 15001, env.merchant.ID()),
			"merchant":    payBody(t, c.account.ID, 15000, env.merchant2.ID()),
			"description": payBody(t, c.account.ID, 15000, env.merchant.ID(), map[string]any{"description": "라떼"}),
		} {
			t.Run(name, func(t *testing.T) {
				rec := env.pay(t, c, "order-7", b)
				problem(t, rec, http.StatusUnprocessableEntity, paysaga.EIDEMPOTENCY)
				require.Empty(t, rec.Header().Get("Idempotent-Replayed"))
				require.Len(t, env.starter.Calls(), 1)
				require.Equal(t, stored, env.key(t, c.ID(), "order-7"), "the stored answer is untouched")
			})
		}
	})

	t.Run("another customer's key is another key", func(t *testing.T) {
		// The first customer's exact request does not give the second one their payment.
		rec := env.pay(t, c2, "order-7", body)
		pd := problem(t, rec, http.StatusUnprocessableEntity, paysaga.EINVALID)
		require.Equal(t, []api.FieldError{{Field: "account_id", Message: "not an account of yours"}}, pd.Errors)
		require.NotContains(t, rec.Body.String(), p.ID)
		env.requireNoKey(t, c2.ID(), "order-7")

		rec = env.pay(t, c2, "order-7", payBody(t, c2.account.ID, 15000, env.merchant.ID()))
		p2 := decodePayment(t, rec)
		require.Empty(t, rec.Header().Get("Idempotent-Replayed"))
		require.NotEqual(t, p.ID, p2.ID)
		require.Equal(t, c2.ID(), p2.CustomerID)
		calls := env.starter.Calls()
		require.Len(t, calls, 2)
		require.Equal(t, p2.ID, calls[1].In.PaymentID)
		require.Equal(t, c2.ID(), calls[1].In.CustomerID)
		require.Equal(t, stored, env.key(t, c.ID(), "order-7"), "the first customer's key is untouched")
	})
}

// TestCreatePaymentConcurrentSameKey sends one request twenty times at once, as a client
// retrying over a flaky network would. The handler joins every duplicate to the payment of the
// one that claimed the key (it never answers 409 for a key in flight: the only 409 it can give
// is a key expiring between claim and read, which a 24h key cannot), so every caller gets the
// same 200 and the workflow is asked for one payment only.
func TestCreatePaymentConcurrentSameKey(t *testing.T) {
	for _, driver := range storetest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			env := newPayEnv(t, driver)
			c := env.customer
			body := payBody(t, c.account.ID, 42000, env.merchant.ID())
			const n = 20

			release := env.starter.hold(t)
			answers := make(chan *httptest.ResponseRecorder, n)
			for range n {
				go func() { answers <- env.pay(t, c, "same-key", body) }()
			}
			// Let every request reach the workflow before any gets its outcome, so that all of
			// them are in flight at once.
			var early []*httptest.ResponseRecorder
			deadline := time.After(time.Minute)
			for entered := 0; entered+len(early) < n; {
				select {
				case <-env.starter.entered:
					entered++
				case rec := <-answers:
					early = append(early, rec)
				case <-deadline:
					release()
					t.Fatalf("only %d of %d requests reached the starter or were answered", entered+len(early), n)
				}
			}
			for _, rec := range early {
				t.Errorf("answered before the payment's outcome was known: %d %s", rec.Code, rec.Body.String())
			}
			release()
			recs := early
			for len(recs) < n {
				recs = append(recs, <-answers)
			}

			var want *paysaga.Payment
			for _, rec := range recs {
				p := decodePayment(t, rec)
				if want == nil {
					want = p
				}
				require.Equal(t, want, p, "every caller sees the same payment")
				require.Equal(t, "/v1/payments/"+want.ID, rec.Header().Get("Location"))
			}
			calls := env.starter.Calls()
			require.Len(t, calls, n)
			for _, call := range calls {
				require.Equal(t, want.ID, call.In.PaymentID, "one payment, one workflow")
				require.Equal(t, calls[0].In, call.In)
			}

			k := env.key(t, c.ID(), "same-key")
			require.True(t, k.Completed())
			require.Equal(t, want.ID, k.ResourceID)
			replay := env.pay(t, c, "same-key", body)
			require.Equal(t, http.StatusOK, replay.Code, replay.Body.String())
			require.Equal(t, "true", replay.Header().Get("Idempotent-Replayed"))
			require.Equal(t, want, decodePayment(t, replay))
			require.Len(t, env.starter.Calls(), n)
		})
	}
}

func TestCreatePaymentValidation(t *testing.T) {
	env := newPayEnv(t, store.DriverSQLite)
	c := env.customer
	pending := env.seedAccount(t, c.ID(), paysaga.AccountPending)
	deleted := env.seedAccount(t, c.ID(), paysaga.AccountDeleted)
	acct, merchant := c.account.ID, env.merchant.ID()

	tests := []struct {
		name  string
		body  string
		field string // the field named in errors; "" when the problem names none
	}{
		{name: "amount 0", body: payBody(t, acct, 0, merchant), field: "amount"},
		{name: "negative amount", body: payBody(t, acct, -1000, merchant), field: "amount"},
		{name: "16-digit amount", body: payBody(t, acct, paysaga.MaxAmount+1, merchant), field: "amount"},
		{name: "amount as a string", body: payBody(t, acct, 0, merchant, map[string]any{"amount": "1000"}), field: "amount"},
		{name: "fractional amount", body: payBody(t, acct, 0, merchant, map[string]any{"amount": 10.5}), field: "amount"},
		{name: "missing amount", body: payBody(t, acct, 0, merchant, map[string]any{"amount": nil}), field: "amount"},
		{name: "unknown field", body: payBody(t, acct, 1000, merchant, map[string]any{"ammount": 1000})},
		{name: "capture deadline of an automatic payment", body: payBody(t, acct, 1000, merchant, map[string]any{"capture_within": 60}), field: "capture_within"},
		{name: "capture deadline of zero seconds", body: payBody(t, acct, 1000, merchant, map[string]any{"capture": "manual", "capture_within": -1}), field: "capture_within"},
		{name: "unknown capture", body: payBody(t, acct, 1000, merchant, map[string]any{"capture": "later"}), field: "capture"},
		{name: "description too long", body: payBody(t, acct, 1000, merchant, map[string]any{"description": strings.Repeat("가", 201)}), field: "description"},
		{name: "missing account", body: payBody(t, acct, 1000, merchant, map[string]any{"account_id": nil}), field: "account_id"},
		{name: "missing merchant", body: payBody(t, acct, 1000, merchant, map[string]any{"merchant_id": nil}), field: "merchant_id"},
		{name: "malformed JSON", body: `{"account_id":"` + acct + `","amount":1000`},
		{name: "two JSON values", body: payBody(t, acct, 1000, merchant) + `{}`},
		{name: "another customer's account", body: payBody(t, env.customer2.account.ID, 1000, merchant), field: "account_id"},
		{name: "no such account", body: payBody(t, "acct_doesnotexist", 1000, merchant), field: "account_id"},
		{name: "pending account", body: payBody(t, pending.ID, 1000, merchant), field: "account_id"},
		{name: "deleted account", body: payBody(t, deleted.ID, 1000, merchant), field: "account_id"},
		{name: "merchant is a customer", body: payBody(t, acct, 1000, env.customer2.ID()), field: "merchant_id"},
		{name: "merchant is the payer", body: payBody(t, acct, 1000, c.ID()), field: "merchant_id"},
		{name: "merchant is an operator", body: payBody(t, acct, 1000, env.operator.ID()), field: "merchant_id"},
		{name: "no such merchant", body: payBody(t, acct, 1000, "usr_doesnotexist"), field: "merchant_id"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := fmt.Sprintf("invalid-%d", i)
			rec := env.pay(t, c, key, tt.body)
			p := problem(t, rec, http.StatusUnprocessableEntity, paysaga.EINVALID)
			if tt.field != "" {
				require.NotEmpty(t, p.Errors, "errors must name the field")
				require.Equal(t, tt.field, p.Errors[0].Field)
			}
			require.Empty(t, rec.Header().Get("Location"))
			require.Empty(t, env.starter.Calls(), "nothing is started")
			env.requireNoKey(t, c.ID(), key)
		})
	}

	t.Run("another customer's account looks like a missing one", func(t *testing.T) {
		theirs := problem(t, env.pay(t, c, "probe-1", payBody(t, env.customer2.account.ID, 1000, merchant)),
			http.StatusUnprocessableEntity, paysaga.EINVALID)
		missing := problem(t, env.pay(t, c, "probe-2", payBody(t, "acct_doesnotexist", 1000, merchant)),
			http.StatusUnprocessableEntity, paysaga.EINVALID)
		theirs.RequestID, missing.RequestID = "", ""
		require.Equal(t, missing, theirs)
	})
}

func TestCreatePaymentRefusedAccountFreesKey(t *testing.T) {
	env := newPayEnv(t, store.DriverSQLite)
	c := env.customer

	rec := env.pay(t, c, "fix-me", payBody(t, env.customer2.account.ID, 5000, env.merchant.ID()))
	p := problem(t, rec, http.StatusUnprocessableEntity, paysaga.EINVALID)
	require.Equal(t, []api.FieldError{{Field: "account_id", Message: "not an account of yours"}}, p.Errors)
	require.Empty(t, env.starter.Calls())
	env.requireNoKey(t, c.ID(), "fix-me")

	// The corrected request under the same key is a new request, not a reused key.
	rec = env.pay(t, c, "fix-me", payBody(t, c.account.ID, 5000, env.merchant.ID()))
	paid := decodePayment(t, rec)
	require.Empty(t, rec.Header().Get("Idempotent-Replayed"))
	calls := env.starter.Calls()
	require.Len(t, calls, 1)
	require.Equal(t, c.account.ID, calls[0].In.AccountID)
	require.Equal(t, paid.ID, env.key(t, c.ID(), "fix-me").ResourceID)
}

func TestCreatePaymentCustomersOnly(t *testing.T) {
	env := newPayEnv(t, store.DriverSQLite)
	body := payBody(t, env.customer.account.ID, 1000, env.merchant.ID())
	for _, who := range []*party{env.merchant, env.operator} {
		t.Run(string(who.user.Role), func(t *testing.T) {
			rec := env.pay(t, who, "not-mine", body)
			problem(t, rec, http.StatusForbidden, paysaga.EFORBIDDEN)
			require.Empty(t, env.starter.Calls())
			env.requireNoKey(t, who.ID(), "not-mine")
		})
	}
	t.Run("no token", func(t *testing.T) {
		rec := env.do(t, req{method: http.MethodPost, path: "/v1/payments", body: body,
			header: map[string]string{"Idempotency-Key": "anon"}})
		problem(t, rec, http.StatusUnauthorized, paysaga.EUNAUTHORIZED)
		require.Empty(t, env.starter.Calls())
	})
}

// notFoundShape is a 404 problem without what differs between any two requests.
func notFoundShape(t *testing.T, rec *httptest.ResponseRecorder) api.ProblemDetails {
	t.Helper()
	p := problem(t, rec, http.StatusNotFound, paysaga.ENOTFOUND)
	require.Empty(t, rec.Header().Get("Location"))
	p.RequestID, p.Instance = "", ""
	return p
}

func TestReadPayment(t *testing.T) {
	env := newPayEnv(t, store.DriverSQLite)
	ctx := context.Background()
	c := env.customer
	at := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	// The payment's life as the workflow writes it: recorded, debit sent, declined.
	id := paysaga.NewID(paysaga.PrefixPayment)
	events := []paysaga.PaymentEvent{
		{ID: "evt_" + id + "_1", PaymentID: id, Type: "payment.created", Status: paysaga.PaymentPending, CreatedAt: at},
		{ID: "evt_" + id + "_2", PaymentID: id, Type: "debit.sent", Status: paysaga.PaymentProcessing, CreatedAt: at.Add(time.Second)},
		{ID: "evt_" + id + "_3", PaymentID: id, Type: "payment.failed", Status: paysaga.PaymentFailed,
			Rpcd: "E0012", Rsms: "잔액이 부족합니다", CreatedAt: at.Add(2 * time.Second)},
	}
	changes := []store.PaymentChange{
		{PaymentID: id, Status: paysaga.PaymentPending, Events: events[:1],
			Create: &paysaga.Payment{ID: id, CustomerID: c.ID(), MerchantID: env.merchant.ID(),
				AccountID: c.account.ID, Amount: 8800, Status: paysaga.PaymentPending, CreatedAt: at}},
		{PaymentID: id, Status: paysaga.PaymentProcessing, Events: events[1:2]},
		{PaymentID: id, Status: paysaga.PaymentFailed, FailureCode: "E0012", FailureMessage: "잔액이 부족합니다", Events: events[2:]},
	}
	for _, ch := range changes {
		require.NoError(t, env.db.RecordPaymentChange(ctx, ch))
	}
	p, err := env.db.GetPayment(ctx, id)
	require.NoError(t, err)
	p.Version = 0

	// What another user gets must be exactly what a payment that does not exist gets.
	missingGet := notFoundShape(t, env.get(t, c, "/v1/payments/pay_doesnotexist"))
	missingEvents := notFoundShape(t, env.get(t, c, "/v1/payments/pay_doesnotexist/events"))
	require.Equal(t, missingGet, notFoundShape(t, env.get(t, c, "/v1/payments/not-a-payment-id")))
	require.Equal(t, missingEvents, notFoundShape(t, env.get(t, c, "/v1/payments/not-a-payment-id/events")))

	tests := []struct {
		who  *party
		sees bool
	}{
		{who: env.customer, sees: true},
		{who: env.merchant, sees: true},
		{who: env.operator, sees: true},
		{who: env.customer2, sees: false},
		{who: env.merchant2, sees: false},
	}
	for _, tt := range tests {
		t.Run(tt.who.user.Name, func(t *testing.T) {
			rec := env.get(t, tt.who, "/v1/payments/"+p.ID)
			evRec := env.get(t, tt.who, "/v1/payments/"+p.ID+"/events")
			if !tt.sees {
				require.Equal(t, missingGet, notFoundShape(t, rec))
				require.Equal(t, missingEvents, notFoundShape(t, evRec))
				require.NotContains(t, rec.Body.String(), c.ID(), "nothing of the payment shows")
				require.NotContains(t, rec.Body.String(), `"amount"`)
				return
			}
			require.Equal(t, p, decodePayment(t, rec))

			require.Equal(t, http.StatusOK, evRec.Code, evRec.Body.String())
			var got struct {
				Data []paysaga.PaymentEvent `json:"data"`
			}
			dec := json.NewDecoder(evRec.Body)
			dec.DisallowUnknownFields()
			require.NoError(t, dec.Decode(&got))
			require.Equal(t, events, got.Data, "the whole history, oldest first, with the bank's answer")
		})
	}
	require.Empty(t, env.starter.Calls())
}

func TestListPayments(t *testing.T) {
	env := newPayEnv(t, store.DriverSQLite)
	c, c2 := env.customer, env.customer2
	t0 := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Minute) }

	// Oldest first; lists answer newest first.
	var all []*paysaga.Payment
	seed := func(cust, merch *party, status paysaga.PaymentStatus) {
		all = append(all, env.seedPayment(t, cust, merch, int64(1000*(len(all)+1)), status, at(len(all))))
	}
	seed(c, env.merchant, paysaga.PaymentSucceeded)  // 0
	seed(c, env.merchant, paysaga.PaymentFailed)     // 1
	seed(c2, env.merchant, paysaga.PaymentSucceeded) // 2
	seed(c, env.merchant, paysaga.PaymentSucceeded)  // 3
	seed(c, env.merchant2, paysaga.PaymentUnknown)   // 4
	seed(c, env.merchant, paysaga.PaymentPending)    // 5
	seed(c2, env.merchant2, paysaga.PaymentFailed)   // 6
	seed(c, env.merchant2, paysaga.PaymentSucceeded) // 7
	newest := func(idx ...int) []*paysaga.Payment {
		out := make([]*paysaga.Payment, len(idx))
		for i, n := range idx {
			out[i] = all[n]
		}
		return out
	}

	list := func(t *testing.T, who *party, query string) paymentList {
		t.Helper()
		rec := env.get(t, who, "/v1/payments"+query)
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		var l paymentList
		dec := json.NewDecoder(rec.Body)
		dec.DisallowUnknownFields()
		require.NoError(t, dec.Decode(&l))
		require.NotNil(t, l.Data, "an empty list is [], not null")
		return l
	}

	tests := []struct {
		name  string
		who   *party
		query string
		want  []*paysaga.Payment
	}{
		{name: "customer sees only their own", who: c, want: newest(7, 5, 4, 3, 1, 0)},
		{name: "second customer", who: c2, want: newest(6, 2)},
		{name: "merchant sees only theirs", who: env.merchant, want: newest(5, 3, 2, 1, 0)},
		{name: "second merchant", who: env.merchant2, want: newest(7, 6, 4)},
		{name: "operator sees all", who: env.operator, want: newest(7, 6, 5, 4, 3, 2, 1, 0)},
		{name: "operator filters by customer", who: env.operator, query: "?customer_id=" + c2.ID(), want: newest(6, 2)},
		{name: "operator filters by merchant", who: env.operator, query: "?merchant_id=" + env.merchant2.ID(), want: newest(7, 6, 4)},
		{name: "customer cannot widen with customer_id", who: c, query: "?customer_id=" + c2.ID(), want: newest(7, 5, 4, 3, 1, 0)},
		{name: "merchant cannot widen with merchant_id", who: env.merchant2, query: "?merchant_id=" + env.merchant.ID(), want: newest(7, 6, 4)},
		{name: "status filter", who: c, query: "?status=SUCCEEDED", want: newest(7, 3, 0)},
		{name: "status filter for a merchant", who: env.merchant, query: "?status=FAILED", want: newest(1)},
		{name: "status with nothing in it", who: c, query: "?status=REFUNDED", want: newest()},
		{name: "limit", who: c, query: "?limit=2", want: newest(7, 5)},
		{name: "limit 100", who: c, query: "?limit=100", want: newest(7, 5, 4, 3, 1, 0)},
		{name: "starting_after", who: c, query: "?starting_after=" + all[4].ID, want: newest(3, 1, 0)},
		{name: "starting_after with status", who: c, query: "?status=SUCCEEDED&starting_after=" + all[7].ID, want: newest(3, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := list(t, tt.who, tt.query)
			require.Equal(t, ids(tt.want), ids(l.Data))
			require.Equal(t, tt.want, l.Data)
		})
	}

	t.Run("pagination", func(t *testing.T) {
		for _, limit := range []int{1, 2, 4, 6, 7} {
			t.Run(fmt.Sprint(limit), func(t *testing.T) {
				var got []*paysaga.Payment
				after := ""
				for pages := 1; ; pages++ {
					q := fmt.Sprintf("?limit=%d", limit)
					if after != "" {
						q += "&starting_after=" + after
					}
					l := list(t, c, q)
					require.LessOrEqual(t, len(l.Data), limit)
					got = append(got, l.Data...)
					if !l.HasMore {
						require.Equal(t, (6+limit-1)/limit, pages)
						break
					}
					require.Len(t, l.Data, limit, "a page with more after it is full")
					require.Less(t, pages, 10, "pagination does not end")
					after = l.Data[len(l.Data)-1].ID
				}
				require.Equal(t, ids(newest(7, 5, 4, 3, 1, 0)), ids(got))
			})
		}
	})

	t.Run("refused", func(t *testing.T) {
		refused := []struct {
			name, query, field string
		}{
			{name: "limit 0", query: "?limit=0", field: "limit"},
			{name: "limit 101", query: "?limit=101", field: "limit"},
			{name: "negative limit", query: "?limit=-1", field: "limit"},
			{name: "limit not a number", query: "?limit=ten", field: "limit"},
			{name: "fractional limit", query: "?limit=1.5", field: "limit"},
			{name: "unknown status", query: "?status=PAID"},
			{name: "cursor of another customer", query: "?starting_after=" + all[2].ID},
			{name: "cursor that does not exist", query: "?starting_after=pay_doesnotexist"},
		}
		for _, tt := range refused {
			t.Run(tt.name, func(t *testing.T) {
				p := problem(t, env.get(t, c, "/v1/payments"+tt.query), http.StatusUnprocessableEntity, paysaga.EINVALID)
				if tt.field != "" {
					require.Equal(t, []api.FieldError{{Field: tt.field, Message: "1 to 100"}}, p.Errors)
				}
				require.NotContains(t, p.Detail, c2.ID())
			})
		}
		theirs := problem(t, env.get(t, c, "/v1/payments?starting_after="+all[2].ID), http.StatusUnprocessableEntity, paysaga.EINVALID)
		missing := problem(t, env.get(t, c, "/v1/payments?starting_after=pay_doesnotexist"), http.StatusUnprocessableEntity, paysaga.EINVALID)
		require.Equal(t, missing.Detail, theirs.Detail, "another customer's payment is not told apart from none")
	})
	require.Empty(t, env.starter.Calls())
}

func TestPaymentsUnavailableWithoutDeps(t *testing.T) {
	tests := []struct {
		name string
		deps func(env *payEnv) api.PaymentDeps
	}{
		{name: "no payment deps", deps: func(*payEnv) api.PaymentDeps { return api.PaymentDeps{} }},
		{name: "no starter", deps: func(env *payEnv) api.PaymentDeps { return api.PaymentDeps{Store: env.db} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newPayEnv(t, store.DriverSQLite)
			// The same store and auth, served by a server built without (all) the payment deps.
			env.srv = api.New(api.Deps{Auth: env.svc, Users: env.db, Payments: tt.deps(env),
				Logger: slog.New(slog.NewJSONHandler(env.logs, nil))})
			c := env.customer
			p := env.seedPayment(t, c, env.merchant, 1000, paysaga.PaymentSucceeded, time.Time{})

			for _, r := range []req{
				{method: http.MethodPost, path: "/v1/payments", body: payBody(t, c.account.ID, 1000, env.merchant.ID()),
					header: map[string]string{"Idempotency-Key": "while-down"}},
				{method: http.MethodGet, path: "/v1/payments"},
				{method: http.MethodGet, path: "/v1/payments/" + p.ID},
				{method: http.MethodGet, path: "/v1/payments/" + p.ID + "/events"},
			} {
				t.Run(r.method+" "+r.path, func(t *testing.T) {
					if r.header == nil {
						r.header = map[string]string{}
					}
					r.header["Authorization"] = "Bearer " + c.token
					rec := env.do(t, r)
					problem(t, rec, http.StatusServiceUnavailable, paysaga.EUNAVAILABLE)
					require.NotContains(t, rec.Body.String(), `"amount"`)

					delete(r.header, "Authorization")
					problem(t, env.do(t, r), http.StatusUnauthorized, paysaga.EUNAUTHORIZED)
				})
			}
			env.requireNoKey(t, c.ID(), "while-down")
			require.Empty(t, env.starter.Calls())
		})
	}
}

// Issue 11 (Low): a payment's history shows its customer what happened and when, but not which
// operator did it nor the internal reasons written for support; its merchant and operators
// see both.
func TestPaymentEventsHideActorsAndReasonsFromCustomers(t *testing.T) {
	env := newPayEnv(t, store.DriverSQLite)
	ctx := context.Background()
	c := env.customer
	at := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	id := paysaga.NewID(paysaga.PrefixPayment)
	opID := env.operator.ID()
	events := []paysaga.PaymentEvent{
		{ID: "evt_" + id + "_1", PaymentID: id, Type: "payment.created", Status: paysaga.PaymentPending, CreatedAt: at},
		{ID: "evt_" + id + "_2", PaymentID: id, Type: "payment.unknown", Status: paysaga.PaymentUnknown, CreatedAt: at.Add(time.Second)},
		{ID: "evt_" + id + "_3", PaymentID: id, Type: "payment.resolved", Status: paysaga.PaymentSucceeded,
			Actor: opID, Reason: "NH 상담원 확인: 티켓 OPS-4711, 거래 실행됨", CreatedAt: at.Add(2 * time.Second)},
	}
	err := env.db.RecordPaymentChange(ctx, store.PaymentChange{PaymentID: id, Status: paysaga.PaymentPending, Events: events[:1],
		Create: &paysaga.Payment{ID: id, CustomerID: c.ID(), MerchantID: env.merchant.ID(),
			AccountID: c.account.ID, Amount: 8800, Status: paysaga.PaymentPending, CreatedAt: at}})
	require.NoError(t, err)
	err = env.db.RecordPaymentChange(ctx, store.PaymentChange{PaymentID: id, Status: paysaga.PaymentProcessing})
	require.NoError(t, err)
	err = env.db.RecordPaymentChange(ctx, store.PaymentChange{PaymentID: id, Status: paysaga.PaymentUnknown, Events: events[1:2]})
	require.NoError(t, err)
	err = env.db.RecordPaymentChange(ctx, store.PaymentChange{PaymentID: id, Status: paysaga.PaymentSucceeded, Events: events[2:]})
	require.NoError(t, err)

	history := func(who *party) (string, []paysaga.PaymentEvent) {
		rec := env.get(t, who, "/v1/payments/"+id+"/events")
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		var got struct {
			Data []paysaga.PaymentEvent `json:"data"`
		}
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
		return rec.Body.String(), got.Data
	}

	body, got := history(c)
	require.Len(t, got, len(events))
	require.NotContains(t, body, opID, "the customer does not learn who the operator was")
	require.NotContains(t, body, "OPS-4711", "nor the reason written for support")
	require.NotContains(t, body, `"actor"`)
	require.NotContains(t, body, `"reason"`)
	require.Equal(t, paysaga.PaymentSucceeded, got[2].Status, "what happened still shows")
	require.Equal(t, "payment.resolved", got[2].Type)

	for _, who := range []*party{env.merchant, env.operator} {
		_, got := history(who)
		require.Equal(t, events, got, "%s sees the whole history", who.user.Role)
	}
}

// Issue 11, item 6: seen with the Temporal server killed — POST /v1/payments answered 202 with a
// poll URL for a payment whose workflow never started. A wait that runs out proves nothing: the
// answer is 202 only for a workflow the server confirms, else 503 + Retry-After, with the
// payment recorded (PENDING) under the key so that the retry joins it.
func TestCreatePaymentWhenTemporalNeverAnswers(t *testing.T) {
	env := newPayEnv(t, store.DriverSQLite)
	temporal := &deadTemporal{}
	env.srv = api.New(api.Deps{Auth: env.svc, Users: env.db, Logger: slog.New(slog.NewJSONHandler(env.logs, nil)),
		Payments: api.PaymentDeps{Store: env.db, Starter: saga.Payments{Client: temporal, Store: env.db},
			SyncWait: 200 * time.Millisecond}})
	c := env.customer
	body := payBody(t, c.account.ID, 4_000, env.merchant.ID())

	rec := env.pay(t, c, "server-killed", body)
	problem(t, rec, http.StatusServiceUnavailable, paysaga.EUNAVAILABLE)
	require.Equal(t, "1", rec.Header().Get("Retry-After"))
	require.Contains(t, rec.Body.String(), "retry with the same Idempotency-Key")
	require.Empty(t, rec.Header().Get("Location"))

	k := env.key(t, c.ID(), "server-killed")
	require.False(t, k.Completed())
	p := decodePayment(t, env.get(t, c, "/v1/payments/"+k.ResourceID))
	require.Equal(t, paysaga.PaymentPending, p.Status, "recorded before the start was tried")

	// The retry tries the same payment's workflow again, never another.
	problem(t, env.pay(t, c, "server-killed", body), http.StatusServiceUnavailable, paysaga.EUNAVAILABLE)
	require.Equal(t, []string{workflows.PaymentWorkflowID(k.ResourceID), workflows.PaymentWorkflowID(k.ResourceID)}, temporal.Started())
	page, err := env.db.ListPayments(context.Background(), store.PaymentFilter{CustomerID: c.ID()})
	require.NoError(t, err)
	require.Len(t, page.Payments, 1)
}

// Issue 11, item 9: the activities check a workflow's input against the payment row and refuse
// a debit from any workflow but "payment:<id>" — the ID the API starts it under.
func TestPaymentWorkflowIDIsWhatDebitChecks(t *testing.T) {
	id := paysaga.NewID(paysaga.PrefixPayment)
	require.Equal(t, activities.PaymentWorkflowPrefix+id, workflows.PaymentWorkflowID(id))
}

// Issue 11, item 5: a retry after the Idempotency-Key's time is up joins the payment the key
// created — never a new payment (a second debit). The key is not purged while its payment
// exists, and the answer of a payment that was still running is read afresh.
func TestRetryAfterTheKeyExpiredJoinsTheSamePayment(t *testing.T) {
	ctx := context.Background()
	env := newPayEnv(t, store.DriverSQLite)
	c := env.customer
	body := payBody(t, c.account.ID, 25_000, env.merchant.ID())
	expire := func(key string) {
		t.Helper()
		_, err := env.db.Bun().NewUpdate().Table("idempotency_keys").Set("expires_at = ?", time.Now().Add(-time.Hour).UTC()).
			Where("scope = ? AND idem_key = ?", paymentKeyScope(c.ID()), key).Exec(ctx)
		require.NoError(t, err)
		_, err = env.db.PurgeExpiredIdempotencyKeys(ctx) // the worker's hourly housekeeping
		require.NoError(t, err)
	}

	// Still running when the client gave up (202): nothing final was stored for the key.
	env.starter.respond(stillRunning)
	rec := env.pay(t, c, "order-77", body)
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
	var a processingAnswer
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &a))
	id := a.Payment.ID
	expire("order-77")

	env.starter.respond(recordAs(env.db, paysaga.PaymentSucceeded))
	p := decodePayment(t, env.pay(t, c, "order-77", body))
	require.Equal(t, id, p.ID, "the same payment, not a new one")
	calls := env.starter.Calls()
	require.Len(t, calls, 2)
	require.Equal(t, id, calls[1].In.PaymentID, "the retry joins the same workflow")
	page, err := env.db.ListPayments(ctx, store.PaymentFilter{CustomerID: c.ID()})
	require.NoError(t, err)
	require.Len(t, page.Payments, 1)

	// Its answer is now stored; long after, the same key still answers with it.
	expire("order-77")
	replay := env.pay(t, c, "order-77", body)
	require.Equal(t, http.StatusOK, replay.Code, replay.Body.String())
	require.Equal(t, "true", replay.Header().Get("Idempotent-Replayed"))
	require.Equal(t, id, decodePayment(t, replay).ID)
	require.Len(t, env.starter.Calls(), 2)
}

// A key whose answer was never stored (the client went away before the outcome) is answered
// from the payment's row once the payment has ended: nothing is started again.
func TestRetryOfAnEndedPaymentIsAnsweredFromItsRow(t *testing.T) {
	ctx := context.Background()
	env := newPayEnv(t, store.DriverSQLite)
	c := env.customer
	body := payBody(t, c.account.ID, 9_000, env.merchant.ID())
	env.starter.respond(stillRunning)
	rec := env.pay(t, c, "order-88", body)
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
	var a processingAnswer
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &a))
	// The workflow ends meanwhile, declined by the bank.
	err := env.db.RecordPaymentChange(ctx, store.PaymentChange{PaymentID: a.Payment.ID, Status: paysaga.PaymentProcessing})
	require.NoError(t, err)
	err = env.db.RecordPaymentChange(ctx, store.PaymentChange{PaymentID: a.Payment.ID, Status: paysaga.PaymentFailed,
		FailureCode: "E0012", FailureMessage: "잔액 부족"})
	require.NoError(t, err)

	env.starter.respond(failWith(errors.New("must not be asked")))
	retry := env.pay(t, c, "order-88", body)
	require.Equal(t, http.StatusPaymentRequired, retry.Code, retry.Body.String())
	var d declined
	require.NoError(t, json.Unmarshal(retry.Body.Bytes(), &d))
	require.Equal(t, "E0012", d.BankCode)
	require.Equal(t, a.Payment.ID, d.Payment.ID)
	require.Len(t, env.starter.Calls(), 1, "an ended payment is not started again")
	require.True(t, env.key(t, c.ID(), "order-88").Completed())
}

// A retry of a payment that has ended answers with it even when its account has gone since
// (deleted after the payment): the key's payment is the answer, not a validation of a new one.
func TestRetryOfAnEndedPaymentOutlivesItsAccount(t *testing.T) {
	ctx := context.Background()
	env := newPayEnv(t, store.DriverSQLite)
	c := env.customer
	body := payBody(t, c.account.ID, 3_000, env.merchant.ID())
	env.starter.respond(stillRunning)
	rec := env.pay(t, c, "order-99", body)
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
	var a processingAnswer
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &a))
	env.starter.respond(failWith(errors.New("an ended payment is not started again")))
	err := env.db.RecordPaymentChange(ctx, store.PaymentChange{PaymentID: a.Payment.ID, Status: paysaga.PaymentProcessing})
	require.NoError(t, err)
	err = env.db.RecordPaymentChange(ctx, store.PaymentChange{PaymentID: a.Payment.ID, Status: paysaga.PaymentSucceeded})
	require.NoError(t, err)
	_, err = env.db.DeleteAccount(ctx, c.account.ID)
	require.NoError(t, err)

	p := decodePayment(t, env.pay(t, c, "order-99", body))
	require.Equal(t, a.Payment.ID, p.ID)
	require.Equal(t, paysaga.PaymentSucceeded, p.Status)
	require.Len(t, env.starter.Calls(), 1)
}

// answerStoreGate holds CompleteIdempotencyKey until released, announcing each call.
type answerStoreGate struct {
	*store.DB
	entered chan struct{}
	release chan struct{}
}

func (s *answerStoreGate) CompleteIdempotencyKey(ctx context.Context, scope, key string, status int, body []byte, resourceID string) error {
	s.entered <- struct{}{}
	<-s.release
	return s.DB.CompleteIdempotencyKey(ctx, scope, key, status, body, resourceID)
}

// The client has its whole answer before the answer is stored for the key: storing it is
// bookkeeping for retries, not a reason to keep the client waiting.
func TestPaymentIsAnsweredBeforeItsAnswerIsStored(t *testing.T) {
	gate := &answerStoreGate{entered: make(chan struct{}, 4), release: make(chan struct{})}
	env := newPayEnv(t, store.DriverSQLite, func(d *api.Deps) {
		gate.DB = d.Payments.Store.(*store.DB)
		d.Payments.Store = gate
	})
	env.starter.respond(recordAs(env.db, paysaga.PaymentSucceeded))
	srv := httptest.NewServer(env.srv)
	t.Cleanup(srv.Close)
	var once sync.Once
	release := func() { once.Do(func() { close(gate.release) }) }
	t.Cleanup(release)

	c := env.customer
	body := payBody(t, c.account.ID, 12_000, env.merchant.ID())
	type answer struct {
		status int
		body   []byte
		err    error
	}
	post := func() <-chan answer {
		got := make(chan answer, 1)
		go func() {
			hr, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/payments", strings.NewReader(body))
			hr.Header.Set("Authorization", "Bearer "+c.token)
			hr.Header.Set("Content-Type", "application/json")
			hr.Header.Set("Idempotency-Key", "order-answered-first")
			resp, err := http.DefaultClient.Do(hr)
			if err != nil {
				got <- answer{err: err}
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			got <- answer{resp.StatusCode, b, err}
		}()
		return got
	}
	receive := func(got <-chan answer) answer {
		<-gate.entered // the handler is storing the answer, and waits there
		select {
		case a := <-got:
			require.NoError(t, a.err)
			require.Equal(t, http.StatusOK, a.status, string(a.body))
			return a
		case <-time.After(10 * time.Second):
			t.Fatal("the client was not answered while the answer was being stored")
			return answer{}
		}
	}

	first := receive(post())
	require.Len(t, env.starter.Calls(), 1)
	var p paysaga.Payment
	require.NoError(t, json.Unmarshal(first.body, &p))
	require.Equal(t, paysaga.PaymentSucceeded, p.Status)

	// Until the answer is stored a retry finds the key pending and the payment final, and is
	// answered from the payment's row: TestRetryOfAnEndedPaymentIsAnsweredFromItsRow.
	release()
	require.Eventually(t, func() bool {
		k, err := env.db.IdempotencyKey(context.Background(), paymentKeyScope(c.ID()), "order-answered-first")
		return err == nil && k.Completed()
	}, 10*time.Second, 10*time.Millisecond)
	require.JSONEq(t, string(first.body), string(env.key(t, c.ID(), "order-answered-first").ResponseBody))
}
