package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paysaga"
	"paysaga/api"
	"paysaga/saga"
	"paysaga/store"
	"paysaga/workflows"
)

func TestCreateRefundSucceeds(t *testing.T) {
	env := newRefundEnv(t)
	c, m := env.customer, env.merchant
	p := env.seedPayment(t, c, m, 10000, paysaga.PaymentSucceeded, time.Time{})

	rec := env.refund(t, m, p.ID, "refund-1", refundBody(t, 4000))
	r := decodeRefund(t, rec)
	require.True(t, paysaga.HasPrefix(r.ID, paysaga.PrefixRefund), r.ID)
	require.Equal(t, "/v1/refunds/"+r.ID, rec.Header().Get("Location"))
	require.Empty(t, rec.Header().Get("Idempotent-Replayed"), "a first answer is not a replay")
	require.Equal(t, p.ID, r.PaymentID)
	require.Equal(t, int64(4000), r.Amount)
	require.Equal(t, "고객 변심", r.Reason)
	require.Equal(t, paysaga.RefundSucceeded, r.Status)
	require.Equal(t, m.ID(), r.CreatedBy)
	require.Equal(t, paysaga.RefundDestination{Kind: paysaga.DestinationFinAccount, BankCode: "011", MaskedNumber: "****1234"},
		r.Destination, "without a typed-in account, the money goes back to the paying account")
	require.Empty(t, r.FailureCode)

	calls := env.refunds.RefundCalls()
	require.Len(t, calls, 1)
	in := calls[0].In
	require.False(t, in.CreatedAt.IsZero())
	require.Equal(t, workflows.RefundInput{
		RefundID: r.ID, PaymentID: p.ID, CustomerID: c.ID(), MerchantID: m.ID(),
		Amount: 4000, Reason: "고객 변심", Actor: m.ID(), CreatedAt: in.CreatedAt,
	}, in)
	require.Equal(t, paymentsSyncWait, calls[0].Wait, "the handler waits as long as it was configured to")
	require.Empty(t, env.starter.Calls(), "no payment is started")

	// The final answer is remembered under the merchant's key, for this refund.
	k := env.refundKey(t, m.ID(), "refund-1")
	require.True(t, k.Completed())
	require.Equal(t, http.StatusOK, k.ResponseStatus)
	require.Equal(t, r.ID, k.ResourceID)
	require.JSONEq(t, rec.Body.String(), string(k.ResponseBody))

	// The Location is where the refund is read back; the payment shows what was given back.
	require.Equal(t, r, decodeRefund(t, env.get(t, m, rec.Header().Get("Location"))))
	after := env.paymentNow(t, p.ID)
	require.Equal(t, paysaga.PaymentPartiallyRefunded, after.Status)
	require.Equal(t, int64(4000), after.RefundedAmount)
	require.Zero(t, env.reserved(t, p.ID))
}

func TestCreateRefundPending(t *testing.T) {
	env := newRefundEnv(t)
	c, m := env.customer, env.merchant
	p := env.seedPayment(t, c, m, 10000, paysaga.PaymentSucceeded, time.Time{})
	body := refundBody(t, 3000)
	env.refunds.respondRefund(refundSettles(env.db, paysaga.RefundPending, "", ""))

	rec := env.refund(t, m, p.ID, "slow-bank", body)
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
	require.Equal(t, "application/json; charset=utf-8", rec.Header().Get("Content-Type"))
	require.Equal(t, "1", rec.Header().Get("Retry-After"))
	require.Empty(t, rec.Header().Get("Idempotent-Replayed"))
	var a refundPendingAnswer
	dec := json.NewDecoder(rec.Body)
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&a))
	require.NotNil(t, a.Refund)
	id := a.Refund.ID
	require.True(t, paysaga.HasPrefix(id, paysaga.PrefixRefund), id)
	require.Equal(t, paysaga.RefundPending, a.Status)
	require.Equal(t, paysaga.RefundPending, a.Refund.Status)
	require.Equal(t, "/v1/refunds/"+id, a.PollURL)
	require.Equal(t, a.PollURL, rec.Header().Get("Location"))
	require.Equal(t, p.ID, a.Refund.PaymentID)
	require.Equal(t, int64(3000), a.Refund.Amount)
	require.Equal(t, paysaga.DestinationFinAccount, a.Refund.Destination.Kind, "the stored refund is shown")

	// Not final: not stored as the key's answer; the amount stays reserved meanwhile.
	k := env.refundKey(t, m.ID(), "slow-bank")
	require.False(t, k.Completed())
	require.Equal(t, id, k.ResourceID)
	require.Equal(t, int64(3000), env.reserved(t, p.ID))
	polled := decodeRefund(t, env.get(t, m, a.PollURL))
	require.Equal(t, a.Refund, polled)

	// Another body under the key is refused while the refund runs, and starts nothing.
	problem(t, env.refund(t, m, p.ID, "slow-bank", refundBody(t, 3001)), http.StatusUnprocessableEntity, paysaga.EIDEMPOTENCY)
	require.Len(t, env.refunds.RefundCalls(), 1)

	// The retry joins the same refund (never a second one) and gets the outcome once known.
	env.refunds.respondRefund(refundSettles(env.db, paysaga.RefundSucceeded, "", ""))
	rec = env.refund(t, m, p.ID, "slow-bank", body)
	r := decodeRefund(t, rec)
	require.Equal(t, id, r.ID)
	require.Equal(t, paysaga.RefundSucceeded, r.Status)
	require.Empty(t, rec.Header().Get("Idempotent-Replayed"))
	calls := env.refunds.RefundCalls()
	require.Len(t, calls, 2)
	require.Equal(t, calls[0].In, calls[1].In, "the retry starts (joins) the same workflow with the same input")
	require.Equal(t, int64(3000), env.paymentNow(t, p.ID).RefundedAmount, "refunded once")

	// Now final: replayed without asking the workflow.
	replay := env.refund(t, m, p.ID, "slow-bank", body)
	require.Equal(t, http.StatusOK, replay.Code)
	require.Equal(t, "true", replay.Header().Get("Idempotent-Replayed"))
	require.Equal(t, "/v1/refunds/"+id, replay.Header().Get("Location"))
	require.Equal(t, rec.Body.String(), replay.Body.String())
	require.Len(t, env.refunds.RefundCalls(), 2)
}

// Issue 11, item 6: 202 means "it exists". When the wait runs out before the workflow recorded
// the refund, its URL would answer 404: the answer is 503 + Retry-After instead, the key keeps
// the refund's ID, and the retry joins the same refund.
func TestCreateRefundPendingNotRecorded(t *testing.T) {
	env := newRefundEnv(t)
	m := env.merchant
	p := env.seedPayment(t, env.customer, m, 10000, paysaga.PaymentSucceeded, time.Time{})
	env.refunds.respondRefund(refundNotRecorded)

	rec := env.refund(t, m, p.ID, "not-yet", refundBody(t, 2500))
	problem(t, rec, http.StatusServiceUnavailable, paysaga.EUNAVAILABLE)
	require.Equal(t, "1", rec.Header().Get("Retry-After"))
	require.Contains(t, rec.Body.String(), "retry with the same Idempotency-Key")
	require.Empty(t, rec.Header().Get("Location"))
	k := env.refundKey(t, m.ID(), "not-yet")
	require.False(t, k.Completed())
	require.Zero(t, env.reserved(t, p.ID), "nothing was reserved by the handler itself")

	// The retry, once the workflow has recorded it: 202, and its URL answers.
	env.refunds.respondRefund(refundSettles(env.db, paysaga.RefundPending, "", ""))
	rec = env.refund(t, m, p.ID, "not-yet", refundBody(t, 2500))
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
	var a refundPendingAnswer
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &a))
	require.Equal(t, k.ResourceID, a.Refund.ID)
	require.Equal(t, paysaga.RefundPending, a.Status)
	require.Equal(t, "/v1/refunds/"+a.Refund.ID, rec.Header().Get("Location"))
	got := decodeRefund(t, env.get(t, m, a.PollURL))
	require.Equal(t, k.ResourceID, got.ID)
	calls := env.refunds.RefundCalls()
	require.Len(t, calls, 2)
	require.Equal(t, calls[0].In.RefundID, calls[1].In.RefundID, "the retry joins the same refund")
}

func TestCreateRefundDeclined(t *testing.T) {
	tests := []struct {
		name, code, message string
	}{
		{name: "code and message", code: "A0013", message: "입금계좌 오류"},
		{name: "code only", code: "E0099"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newRefundEnv(t)
			m := env.merchant
			p := env.seedPayment(t, env.customer, m, 10000, paysaga.PaymentSucceeded, time.Time{})
			body := refundBody(t, 6000)
			env.refunds.respondRefund(refundSettles(env.db, paysaga.RefundFailed, tt.code, tt.message))

			rec := env.refund(t, m, p.ID, "declined-1", body)
			require.Equal(t, http.StatusPaymentRequired, rec.Code, rec.Body.String())
			require.Equal(t, api.ProblemContentType, rec.Header().Get("Content-Type"))
			require.Equal(t, "no-store", rec.Header().Get("Cache-Control"))
			var d refundDeclined
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
				require.NotContains(t, rec.Body.String(), `"failure_message"`)
			}
			require.Equal(t, rec.Header().Get(api.RequestIDHeader), d.RequestID)
			require.Equal(t, tt.code, d.FailureCode)
			require.Equal(t, tt.message, d.FailureMessage)
			require.NotNil(t, d.Refund)
			require.Equal(t, paysaga.RefundFailed, d.Refund.Status)
			require.Equal(t, tt.code, d.Refund.FailureCode)
			require.Equal(t, tt.message, d.Refund.FailureMessage)
			require.Equal(t, "/v1/refunds/"+d.Refund.ID, rec.Header().Get("Location"))

			// Nothing was given back and nothing stays reserved.
			after := env.paymentNow(t, p.ID)
			require.Equal(t, paysaga.PaymentSucceeded, after.Status)
			require.Zero(t, after.RefundedAmount)
			require.Zero(t, env.reserved(t, p.ID))

			// A failure is final: the same request is answered the same, without a second try.
			k := env.refundKey(t, m.ID(), "declined-1")
			require.True(t, k.Completed())
			require.Equal(t, http.StatusPaymentRequired, k.ResponseStatus)
			require.Equal(t, d.Refund.ID, k.ResourceID)
			replay := env.refund(t, m, p.ID, "declined-1", body)
			require.Equal(t, http.StatusPaymentRequired, replay.Code)
			require.Equal(t, api.ProblemContentType, replay.Header().Get("Content-Type"))
			require.Equal(t, "true", replay.Header().Get("Idempotent-Replayed"))
			require.Equal(t, rec.Body.String(), replay.Body.String())
			require.Equal(t, rec.Header().Get("Location"), replay.Header().Get("Location"))
			require.Len(t, env.refunds.RefundCalls(), 1, "a replay never reaches the workflow")
		})
	}
}

// A refund over what is left is refused by the store's reservation (through the workflow):
// 409, nothing reserved, and the same request gets the same answer. The refused refund is
// readable at its URL with its refusal (issue 11, item 6: it used to answer 404 forever).
func TestCreateRefundExceedsWhatIsLeft(t *testing.T) {
	env := newRefundEnv(t)
	m := env.merchant
	p := env.seedPayment(t, env.customer, m, 10000, paysaga.PaymentSucceeded, time.Time{})

	first := decodeRefund(t, env.refund(t, m, p.ID, "first", refundBody(t, 7000)))
	require.Equal(t, paysaga.RefundSucceeded, first.Status)

	body := refundBody(t, 4000)
	rec := env.refund(t, m, p.ID, "too-much", body)
	pd := problem(t, rec, http.StatusConflict, paysaga.ECONFLICT)
	require.Contains(t, pd.Detail, "3000", "the answer says how much is left")
	require.Equal(t, "no-store", rec.Header().Get("Cache-Control"))

	k := env.refundKey(t, m.ID(), "too-much")
	require.True(t, k.Completed())
	require.Equal(t, http.StatusConflict, k.ResponseStatus)
	require.Equal(t, "/v1/refunds/"+k.ResourceID, rec.Header().Get("Location"), "the refused refund has a URL")
	for _, who := range []*party{m, env.customer, env.operator} {
		refused := decodeRefund(t, env.get(t, who, "/v1/refunds/"+k.ResourceID))
		require.Equal(t, paysaga.RefundFailed, refused.Status)
		require.Equal(t, store.RefundRefused, refused.FailureCode)
		require.Contains(t, refused.FailureMessage, "3000")
		require.Equal(t, int64(4000), refused.Amount)
		require.Equal(t, m.ID(), refused.CreatedBy)
	}
	after := env.paymentNow(t, p.ID)
	require.Equal(t, paysaga.PaymentPartiallyRefunded, after.Status)
	require.Equal(t, int64(7000), after.RefundedAmount)
	require.Zero(t, env.reserved(t, p.ID))

	replay := env.refund(t, m, p.ID, "too-much", body)
	require.Equal(t, http.StatusConflict, replay.Code)
	require.Equal(t, "true", replay.Header().Get("Idempotent-Replayed"))
	require.Equal(t, rec.Header().Get("Location"), replay.Header().Get("Location"))
	require.Equal(t, rec.Body.String(), replay.Body.String())
	require.Len(t, env.refunds.RefundCalls(), 2, "the replay never reaches the workflow")

	// What is left can still be refunded, in full.
	rest := decodeRefund(t, env.refund(t, m, p.ID, "the-rest", refundBody(t, 3000)))
	require.Equal(t, paysaga.RefundSucceeded, rest.Status)
	after = env.paymentNow(t, p.ID)
	require.Equal(t, paysaga.PaymentRefunded, after.Status)
	require.Equal(t, int64(10000), after.RefundedAmount)
	problem(t, env.refund(t, m, p.ID, "one-more", refundBody(t, 1)), http.StatusConflict, paysaga.ECONFLICT)

	// A payment that never succeeded cannot be refunded at all.
	failed := env.seedPayment(t, env.customer, m, 5000, paysaga.PaymentFailed, time.Time{})
	problem(t, env.refund(t, m, failed.ID, "of-failed", refundBody(t, 1000)), http.StatusConflict, paysaga.ECONFLICT)
	require.Zero(t, env.paymentNow(t, failed.ID).RefundedAmount)
}

func TestCreateRefundIdempotencyKey(t *testing.T) {
	env := newRefundEnv(t)
	m := env.merchant
	p := env.seedPayment(t, env.customer, m, 10000, paysaga.PaymentSucceeded, time.Time{})
	other := env.seedPayment(t, env.customer, m, 10000, paysaga.PaymentSucceeded, time.Time{})
	body := refundBody(t, 1000)

	t.Run("missing", func(t *testing.T) {
		pd := problem(t, env.refund(t, m, p.ID, "", body), http.StatusBadRequest, paysaga.EINVALID)
		require.Len(t, pd.Errors, 1)
		require.Equal(t, "Idempotency-Key", pd.Errors[0].Field)
		require.Empty(t, env.refunds.RefundCalls())
	})

	rec := env.refund(t, m, p.ID, "same-key", body)
	r := decodeRefund(t, rec)

	t.Run("same body is replayed", func(t *testing.T) {
		// The same JSON written differently is the same request.
		replay := env.refund(t, m, p.ID, "same-key", `{"reason":"고객 변심","amount":1000}`)
		require.Equal(t, http.StatusOK, replay.Code, replay.Body.String())
		require.Equal(t, "true", replay.Header().Get("Idempotent-Replayed"))
		require.Equal(t, "/v1/refunds/"+r.ID, replay.Header().Get("Location"))
		require.Equal(t, rec.Body.String(), replay.Body.String())
		require.Len(t, env.refunds.RefundCalls(), 1, "the starter is not called again")
	})

	reused := []struct {
		name, paymentID, body string
	}{
		{name: "another amount", paymentID: p.ID, body: refundBody(t, 1001)},
		{name: "another reason", paymentID: p.ID, body: refundBody(t, 1000, map[string]any{"reason": "파손"})},
		{name: "another payment", paymentID: other.ID, body: body},
	}
	for _, tt := range reused {
		t.Run(tt.name, func(t *testing.T) {
			rec := env.refund(t, m, tt.paymentID, "same-key", tt.body)
			problem(t, rec, http.StatusUnprocessableEntity, paysaga.EIDEMPOTENCY)
			require.Empty(t, rec.Header().Get("Idempotent-Replayed"))
			require.Empty(t, rec.Header().Get("Location"))
			require.NotContains(t, rec.Body.String(), r.ID)
		})
	}
	require.Len(t, env.refunds.RefundCalls(), 1)
	require.Equal(t, int64(1000), env.paymentNow(t, p.ID).RefundedAmount)
	require.Zero(t, env.paymentNow(t, other.ID).RefundedAmount)

	t.Run("keys are per user", func(t *testing.T) {
		// The operator's "same-key" is not the merchant's: a refund of its own.
		r2 := decodeRefund(t, env.refund(t, env.operator, p.ID, "same-key", body))
		require.NotEqual(t, r.ID, r2.ID)
		require.Equal(t, env.operator.ID(), r2.CreatedBy)
		require.Equal(t, int64(2000), env.paymentNow(t, p.ID).RefundedAmount)
	})
}

func TestCreateRefundValidation(t *testing.T) {
	env := newRefundEnv(t)
	m := env.merchant
	p := env.seedPayment(t, env.customer, m, paysaga.MaxAmount, paysaga.PaymentSucceeded, time.Time{})

	tests := []struct {
		name, body, field string
	}{
		{name: "amount 0", body: refundBody(t, 0), field: "amount"},
		{name: "negative amount", body: refundBody(t, -1000), field: "amount"},
		{name: "16 digits", body: refundBody(t, paysaga.MaxAmount+1), field: "amount"},
		{name: "amount missing", body: refundBody(t, 1, map[string]any{"amount": nil}), field: "amount"},
		{name: "amount as a string", body: `{"amount":"1000"}`, field: "amount"},
		{name: "fractional amount", body: `{"amount":1000.5}`, field: "amount"},
		{name: "unknown field", body: refundBody(t, 1000, map[string]any{"currency": "KRW"})},
		{name: "reason too long", body: refundBody(t, 1000, map[string]any{"reason": strings.Repeat("가", 501)}), field: "reason"},
		{name: "not JSON", body: `amount=1000`},
		{name: "two documents", body: `{"amount":1000}{"amount":2000}`},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := fmt.Sprint("invalid-", i)
			pd := problem(t, env.refund(t, m, p.ID, key, tt.body), http.StatusUnprocessableEntity, paysaga.EINVALID)
			if tt.field != "" {
				require.NotEmpty(t, pd.Errors)
				require.Equal(t, tt.field, pd.Errors[0].Field)
			}
			env.requireNoRefundKey(t, m.ID(), key)
		})
	}
	require.Empty(t, env.refunds.RefundCalls(), "nothing was started")
	require.Zero(t, env.reserved(t, p.ID))
	require.Zero(t, env.paymentNow(t, p.ID).RefundedAmount)

	t.Run("bounds are accepted", func(t *testing.T) {
		r := decodeRefund(t, env.refund(t, m, p.ID, "one-won", refundBody(t, 1)))
		require.Equal(t, int64(1), r.Amount)
		r = decodeRefund(t, env.refund(t, m, p.ID, "the-rest", refundBody(t, paysaga.MaxAmount-1)))
		require.Equal(t, paysaga.MaxAmount-1, r.Amount)
		require.Equal(t, paysaga.PaymentRefunded, env.paymentNow(t, p.ID).Status)
	})
}

// Who may refund: the payment's merchant or an operator. Customers are refused for their role;
// another merchant gets exactly the 404 of a payment that does not exist.
func TestCreateRefundWho(t *testing.T) {
	env := newRefundEnv(t)
	c, m := env.customer, env.merchant
	p := env.seedPayment(t, c, m, 10000, paysaga.PaymentSucceeded, time.Time{})
	body := refundBody(t, 1000)

	missing := notFoundShape(t, env.refund(t, env.merchant2, "pay_doesnotexist", "who-missing", body))
	require.Equal(t, missing, notFoundShape(t, env.refund(t, env.merchant2, "not-a-payment", "who-bad-id", body)))
	require.Equal(t, missing, notFoundShape(t, env.get(t, env.merchant2, "/v1/payments/pay_doesnotexist")),
		"the same 404 as reading a payment that does not exist")

	refused := []struct {
		name   string
		who    *party
		status int
		code   string
	}{
		{name: "the payment's customer", who: c, status: http.StatusForbidden, code: paysaga.EFORBIDDEN},
		{name: "another customer", who: env.customer2, status: http.StatusForbidden, code: paysaga.EFORBIDDEN},
		{name: "another merchant", who: env.merchant2, status: http.StatusNotFound, code: paysaga.ENOTFOUND},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			rec := env.refund(t, tt.who, p.ID, "who-1", body)
			if tt.status == http.StatusNotFound {
				require.Equal(t, missing, notFoundShape(t, rec))
			} else {
				problem(t, rec, tt.status, tt.code)
			}
			require.NotContains(t, rec.Body.String(), `"amount"`)
			require.NotContains(t, rec.Body.String(), c.ID())
			env.requireNoRefundKey(t, tt.who.ID(), "who-1")
		})
	}
	t.Run("unauthenticated", func(t *testing.T) {
		rec := env.do(t, req{method: http.MethodPost, path: "/v1/payments/" + p.ID + "/refunds", body: body,
			header: map[string]string{"Idempotency-Key": "who-1"}})
		problem(t, rec, http.StatusUnauthorized, paysaga.EUNAUTHORIZED)
	})
	require.Empty(t, env.refunds.RefundCalls())
	require.Zero(t, env.paymentNow(t, p.ID).RefundedAmount)
	require.Zero(t, env.reserved(t, p.ID))

	t.Run("operator", func(t *testing.T) {
		rec := env.refund(t, env.operator, p.ID, "who-1", body)
		r := decodeRefund(t, rec)
		require.Equal(t, env.operator.ID(), r.CreatedBy)
		calls := env.refunds.RefundCalls()
		require.Len(t, calls, 1)
		require.Equal(t, env.operator.ID(), calls[0].In.Actor)
		require.Equal(t, m.ID(), calls[0].In.MerchantID, "the payment's merchant, not the operator")
		require.Equal(t, c.ID(), calls[0].In.CustomerID)
	})
	t.Run("merchant", func(t *testing.T) {
		r := decodeRefund(t, env.refund(t, m, p.ID, "who-1", body))
		require.Equal(t, m.ID(), r.CreatedBy)
		require.Equal(t, int64(2000), env.paymentNow(t, p.ID).RefundedAmount)
	})
}

// A typed-in destination: the number is checked, sealed, and never shown again, neither in
// the answers nor in the stored Idempotency-Key record nor in the logs.
// Only an operator may type one in (support sends a refund elsewhere when the paying account
// is closed); the bank is asked whose account it is, by the workflow, not the caller.
func TestCreateRefundTypedDestination(t *testing.T) {
	env := newRefundEnv(t)
	m := env.operator
	p := env.seedPayment(t, env.customer, env.merchant, 100000, paysaga.PaymentSucceeded, time.Time{})
	const number = "302123456789"
	dest := func(bank, acct string) map[string]any {
		return map[string]any{"destination": map[string]any{"bank_code": bank, "account_number": acct}}
	}

	refusedNumbers := []struct {
		name, number string
	}{
		{name: "5 digits", number: "12345"},
		{name: "17 digits", number: "12345678901234567"},
		{name: "letters", number: "3021234x6789"},
		{name: "other separators", number: "302.1234.5678"},
	}
	for i, tt := range refusedNumbers {
		t.Run(tt.name, func(t *testing.T) {
			key := fmt.Sprint("bad-number-", i)
			rec := env.refund(t, m, p.ID, key, refundBody(t, 1000, dest("004", tt.number)))
			pd := problem(t, rec, http.StatusUnprocessableEntity, paysaga.EINVALID)
			require.Equal(t, []api.FieldError{{Field: "destination.account_number", Message: "6 to 16 digits"}}, pd.Errors)
			require.NotContains(t, rec.Body.String(), tt.number)
			env.requireNoRefundKey(t, m.ID(), key)
		})
	}
	refusedDestinations := []struct {
		name  string
		dest  map[string]any
		field string
	}{
		{name: "no number", dest: map[string]any{"destination": map[string]any{"bank_code": "004"}}},
		{name: "bank code of 2 digits", dest: dest("04", number)},
		{name: "bank code not digits", dest: dest("0a4", number)},
		{name: "unknown destination field", dest: map[string]any{"destination": map[string]any{"bank_code": "004", "account_number": number, "iban": "x"}}},
		// Whose account it must be is the bank's answer for the paying account, never the caller's.
		{name: "a holder name", dest: map[string]any{"destination": map[string]any{"bank_code": "004", "account_number": number, "holder_name": "김민수"}}},
	}
	for i, tt := range refusedDestinations {
		t.Run(tt.name, func(t *testing.T) {
			key := fmt.Sprint("bad-destination-", i)
			rec := env.refund(t, m, p.ID, key, refundBody(t, 1000, tt.dest))
			problem(t, rec, http.StatusUnprocessableEntity, paysaga.EINVALID)
			require.NotContains(t, rec.Body.String(), number)
			env.requireNoRefundKey(t, m.ID(), key)
		})
	}
	require.Empty(t, env.refunds.RefundCalls())

	tests := []struct {
		name, bank string
		kind       paysaga.DestinationKind
	}{
		{name: "NH account", bank: "011", kind: paysaga.DestinationAccountNumber},
		{name: "other bank", bank: "004", kind: paysaga.DestinationOtherBank},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := "typed-" + tt.bank
			body := refundBody(t, 1000, dest(tt.bank, number))
			rec := env.refund(t, m, p.ID, key, body)
			r := decodeRefund(t, rec)
			require.Equal(t, paysaga.RefundDestination{Kind: tt.kind, BankCode: tt.bank, MaskedNumber: "****6789"}, r.Destination)
			require.NotContains(t, rec.Body.String(), number)

			// The workflow finds the destination sealed, never in its input.
			sealed, err := env.db.RefundDestinationOf(context.Background(), r.ID)
			require.NoError(t, err)
			require.Equal(t, tt.kind, sealed.Kind)
			require.NotEmpty(t, sealed.Sealed.Ciphertext)
			require.NotContains(t, string(sealed.Sealed.Ciphertext), number)
			calls := env.refunds.RefundCalls()
			in, _ := json.Marshal(calls[len(calls)-1].In)
			require.NotContains(t, string(in), number)

			k := env.refundKey(t, m.ID(), key)
			require.True(t, k.Completed())
			require.NotContains(t, k.RequestHash, number)
			require.NotContains(t, string(k.ResponseBody), number)

			// The same account typed with separators is the same request: replayed.
			spaced := refundBody(t, 1000, dest(tt.bank, "302-1234-5678 9"))
			replay := env.refund(t, m, p.ID, key, spaced)
			require.Equal(t, http.StatusOK, replay.Code, replay.Body.String())
			require.Equal(t, "true", replay.Header().Get("Idempotent-Replayed"))
			require.Equal(t, rec.Body.String(), replay.Body.String())
			require.Len(t, env.refunds.RefundCalls(), len(calls))

			// Another account under the key is another request.
			other := env.refund(t, m, p.ID, key, refundBody(t, 1000, dest(tt.bank, "302123456780")))
			problem(t, other, http.StatusUnprocessableEntity, paysaga.EIDEMPOTENCY)
			require.NotContains(t, other.Body.String(), "302123456780")

			require.Equal(t, r, decodeRefund(t, env.get(t, env.customer, "/v1/refunds/"+r.ID)))
			require.Equal(t, m.ID(), calls[len(calls)-1].In.Actor, "the operator who typed it is the refund's actor")
		})
	}
	require.NotContains(t, env.logs.String(), number)
	require.NotContains(t, env.logs.String(), "3021234x6789")
}

// Issue 11, item 1: a merchant cannot send a refund anywhere but back to the account that paid.
// A destination from a merchant is 403 with nothing written: no refund, no sealed destination,
// the key free for the same refund without one.
func TestCreateRefundTypedDestinationIsForOperatorsOnly(t *testing.T) {
	env := newRefundEnv(t)
	m := env.merchant
	p := env.seedPayment(t, env.customer, m, 10000, paysaga.PaymentSucceeded, time.Time{})
	const number = "302123456789"
	for _, bank := range []string{"004", "011"} {
		body := refundBody(t, 10000, map[string]any{"destination": map[string]any{"bank_code": bank, "account_number": number}})
		rec := env.refund(t, m, p.ID, "to-my-own-account", body)
		problem(t, rec, http.StatusForbidden, paysaga.EFORBIDDEN)
		require.NotContains(t, rec.Body.String(), number)
	}
	env.requireNoRefundKey(t, m.ID(), "to-my-own-account")
	require.Empty(t, env.refunds.RefundCalls(), "no refund workflow started")
	page, err := env.db.ListRefunds(context.Background(), store.RefundFilter{PaymentID: p.ID})
	require.NoError(t, err)
	require.Empty(t, page.Refunds)
	require.Zero(t, env.paymentNow(t, p.ID).RefundedAmount)

	// The same key, without a destination: back to the paying account.
	r := decodeRefund(t, env.refund(t, m, p.ID, "to-my-own-account", refundBody(t, 10000)))
	require.Equal(t, paysaga.DestinationFinAccount, r.Destination.Kind)
	_, err = env.db.RefundDestinationOf(context.Background(), r.ID)
	require.NoError(t, err)
}

// Without a keyring, typed-in destinations are refused (503, nothing started or kept), while
// refunds to the paying account still work.
func TestCreateRefundTypedDestinationWithoutKeys(t *testing.T) {
	env := newRefundEnv(t, true)
	m := env.operator
	p := env.seedPayment(t, env.customer, env.merchant, 10000, paysaga.PaymentSucceeded, time.Time{})
	body := refundBody(t, 1000, map[string]any{"destination": map[string]any{"bank_code": "004", "account_number": "302123456789"}})

	rec := env.refund(t, m, p.ID, "no-keys", body)
	problem(t, rec, http.StatusServiceUnavailable, paysaga.EUNAVAILABLE)
	require.NotContains(t, rec.Body.String(), "302123456789")
	env.requireNoRefundKey(t, m.ID(), "no-keys")
	require.Empty(t, env.refunds.RefundCalls())

	r := decodeRefund(t, env.refund(t, m, p.ID, "own-account", refundBody(t, 1000)))
	require.Equal(t, paysaga.DestinationFinAccount, r.Destination.Kind)
}

func TestReadRefund(t *testing.T) {
	env := newRefundEnv(t)
	c := env.customer
	p := env.seedPayment(t, c, env.merchant, 10000, paysaga.PaymentSucceeded, time.Time{})
	r := env.seedRefund(t, p, 2500, paysaga.RefundSucceeded, time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC))

	missing := notFoundShape(t, env.get(t, c, "/v1/refunds/ref_doesnotexist"))
	require.Equal(t, missing, notFoundShape(t, env.get(t, c, "/v1/refunds/"+p.ID)), "a payment's ID is no refund's")
	require.Equal(t, missing, notFoundShape(t, env.get(t, c, "/v1/refunds/not-a-refund")))

	tests := []struct {
		who  *party
		sees bool
	}{
		{who: c, sees: true},
		{who: env.merchant, sees: true},
		{who: env.operator, sees: true},
		{who: env.customer2, sees: false},
		{who: env.merchant2, sees: false},
	}
	for _, tt := range tests {
		t.Run(tt.who.user.Name, func(t *testing.T) {
			rec := env.get(t, tt.who, "/v1/refunds/"+r.ID)
			if !tt.sees {
				require.Equal(t, missing, notFoundShape(t, rec))
				require.NotContains(t, rec.Body.String(), p.ID)
				require.NotContains(t, rec.Body.String(), `"amount"`)
				return
			}
			require.Equal(t, r, decodeRefund(t, rec))
		})
	}
	require.Empty(t, env.refunds.RefundCalls())
}

func TestListRefunds(t *testing.T) {
	env := newRefundEnv(t)
	c, m := env.customer, env.merchant
	p := env.seedPayment(t, c, m, 100000, paysaga.PaymentSucceeded, time.Time{})
	empty := env.seedPayment(t, c, m, 100000, paysaga.PaymentSucceeded, time.Time{})
	elsewhere := env.seedPayment(t, env.customer2, env.merchant2, 100000, paysaga.PaymentSucceeded, time.Time{})
	t0 := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)

	// Oldest first; the list answers newest first.
	var all []*paysaga.Refund
	for i, status := range []paysaga.RefundStatus{paysaga.RefundSucceeded, paysaga.RefundFailed, paysaga.RefundSucceeded, paysaga.RefundPending, paysaga.RefundSucceeded} {
		all = append(all, env.seedRefund(t, p, int64(1000*(i+1)), status, t0.Add(time.Duration(i)*time.Minute)))
	}
	theirs := env.seedRefund(t, elsewhere, 1000, paysaga.RefundSucceeded, t0.Add(2*time.Minute+30*time.Second))
	newest := func(idx ...int) []*paysaga.Refund {
		out := make([]*paysaga.Refund, len(idx))
		for i, n := range idx {
			out[i] = all[n]
		}
		return out
	}
	list := func(t *testing.T, who *party, paymentID, query string) refundList {
		t.Helper()
		rec := env.get(t, who, "/v1/payments/"+paymentID+"/refunds"+query)
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		var l refundList
		dec := json.NewDecoder(rec.Body)
		dec.DisallowUnknownFields()
		require.NoError(t, dec.Decode(&l))
		require.NotNil(t, l.Data, "an empty list is [], not null")
		return l
	}

	missing := notFoundShape(t, env.get(t, c, "/v1/payments/pay_doesnotexist/refunds"))
	require.Equal(t, missing, notFoundShape(t, env.get(t, c, "/v1/payments/not-a-payment/refunds")))

	visibility := []struct {
		who  *party
		sees bool
	}{
		{who: c, sees: true},
		{who: m, sees: true},
		{who: env.operator, sees: true},
		{who: env.customer2, sees: false},
		{who: env.merchant2, sees: false},
	}
	for _, tt := range visibility {
		t.Run(tt.who.user.Name, func(t *testing.T) {
			if !tt.sees {
				rec := env.get(t, tt.who, "/v1/payments/"+p.ID+"/refunds")
				require.Equal(t, missing, notFoundShape(t, rec))
				require.NotContains(t, rec.Body.String(), all[0].ID)
				return
			}
			l := list(t, tt.who, p.ID, "")
			require.Equal(t, newest(4, 3, 2, 1, 0), l.Data)
			require.False(t, l.HasMore)
		})
	}

	tests := []struct {
		name, query string
		want        []*paysaga.Refund
		hasMore     bool
	}{
		{name: "limit", query: "?limit=2", want: newest(4, 3), hasMore: true},
		{name: "limit of all", query: "?limit=5", want: newest(4, 3, 2, 1, 0)},
		{name: "limit 100", query: "?limit=100", want: newest(4, 3, 2, 1, 0)},
		{name: "starting_after", query: "?starting_after=" + all[3].ID, want: newest(2, 1, 0)},
		{name: "starting_after with limit", query: "?limit=1&starting_after=" + all[3].ID, want: newest(2), hasMore: true},
		{name: "starting_after the last", query: "?starting_after=" + all[0].ID, want: newest()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := list(t, m, p.ID, tt.query)
			require.Equal(t, refundIDs(tt.want), refundIDs(l.Data))
			require.Equal(t, tt.hasMore, l.HasMore)
		})
	}
	t.Run("a payment without refunds", func(t *testing.T) {
		l := list(t, c, empty.ID, "")
		require.Empty(t, l.Data)
		require.False(t, l.HasMore)
	})

	t.Run("pagination", func(t *testing.T) {
		for _, limit := range []int{1, 2, 4, 5} {
			t.Run(fmt.Sprint(limit), func(t *testing.T) {
				var got []*paysaga.Refund
				after := ""
				for pages := 1; ; pages++ {
					q := fmt.Sprintf("?limit=%d", limit)
					if after != "" {
						q += "&starting_after=" + after
					}
					l := list(t, c, p.ID, q)
					require.LessOrEqual(t, len(l.Data), limit)
					got = append(got, l.Data...)
					if !l.HasMore {
						require.Equal(t, (5+limit-1)/limit, pages)
						break
					}
					require.Len(t, l.Data, limit, "a page with more after it is full")
					require.Less(t, pages, 10, "pagination does not end")
					after = l.Data[len(l.Data)-1].ID
				}
				require.Equal(t, refundIDs(newest(4, 3, 2, 1, 0)), refundIDs(got))
			})
		}
	})

	t.Run("refused", func(t *testing.T) {
		refused := []struct {
			name, query, field string
		}{
			{name: "limit 0", query: "?limit=0", field: "limit"},
			{name: "limit 101", query: "?limit=101", field: "limit"},
			{name: "limit not a number", query: "?limit=ten", field: "limit"},
			{name: "cursor that does not exist", query: "?starting_after=ref_doesnotexist"},
			{name: "cursor of another payment", query: "?starting_after=" + theirs.ID},
		}
		for _, tt := range refused {
			t.Run(tt.name, func(t *testing.T) {
				pd := problem(t, env.get(t, c, "/v1/payments/"+p.ID+"/refunds"+tt.query), http.StatusUnprocessableEntity, paysaga.EINVALID)
				if tt.field != "" {
					require.Equal(t, []api.FieldError{{Field: tt.field, Message: "1 to 100"}}, pd.Errors)
				}
			})
		}
		// A refund the caller may not see is not told apart from one that does not exist.
		theirsPD := problem(t, env.get(t, c, "/v1/payments/"+p.ID+"/refunds?starting_after="+theirs.ID), http.StatusUnprocessableEntity, paysaga.EINVALID)
		missingPD := problem(t, env.get(t, c, "/v1/payments/"+p.ID+"/refunds?starting_after=ref_doesnotexist"), http.StatusUnprocessableEntity, paysaga.EINVALID)
		require.Equal(t, missingPD.Detail, theirsPD.Detail)
		require.Equal(t, missingPD.Errors, theirsPD.Errors)
	})
	require.Empty(t, env.refunds.RefundCalls())
}

// A server whose starter cannot start refunds answers 503 on the refund routes, and changes
// nothing; the payment routes go on working.
func TestRefundsUnavailableWithoutRefundStarter(t *testing.T) {
	env := newPayEnv(t, store.DriverSQLite) // its fakeStarter starts payments only
	m := env.merchant
	p := env.seedPayment(t, env.customer, m, 10000, paysaga.PaymentSucceeded, time.Time{})
	refund := paysaga.Refund{ID: paysaga.NewID(paysaga.PrefixRefund), PaymentID: p.ID, Amount: 1000, CreatedBy: m.ID()}
	_, err := env.db.ReserveRefund(context.Background(), store.RefundReservation{Refund: refund})
	require.NoError(t, err)

	for _, r := range []req{
		{method: http.MethodPost, path: "/v1/payments/" + p.ID + "/refunds", body: refundBody(t, 1000),
			header: map[string]string{"Idempotency-Key": "while-down"}},
		{method: http.MethodGet, path: "/v1/payments/" + p.ID + "/refunds"},
		{method: http.MethodGet, path: "/v1/refunds/" + refund.ID},
	} {
		t.Run(r.method+" "+r.path, func(t *testing.T) {
			if r.header == nil {
				r.header = map[string]string{}
			}
			r.header["Authorization"] = "Bearer " + m.token
			rec := env.do(t, r)
			problem(t, rec, http.StatusServiceUnavailable, paysaga.EUNAVAILABLE)
			require.NotContains(t, rec.Body.String(), `"amount"`)
		})
	}
	_, err = env.db.IdempotencyKey(context.Background(), refundKeyScope(m.ID()), "while-down")
	require.Equal(t, paysaga.ENOTFOUND, paysaga.ErrorCode(err))
	require.Equal(t, int64(1000), func() int64 {
		n, err := env.db.ReservedRefundAmount(context.Background(), p.ID)
		require.NoError(t, err)
		return n
	}(), "only the seeded refund is reserved")
	require.Empty(t, env.starter.Calls())
	require.Equal(t, http.StatusOK, env.get(t, m, "/v1/payments/"+p.ID).Code, "payments still work")
}

// The refund side of TestCreatePaymentWhenTemporalNeverAnswers: no 202 for a refund whose
// workflow the server does not confirm; 503 + Retry-After, nothing reserved, the key kept.
func TestCreateRefundWhenTemporalNeverAnswers(t *testing.T) {
	env := newRefundEnv(t)
	temporal := &deadTemporal{}
	env.srv = api.New(api.Deps{Auth: env.svc, Users: env.db, Logger: slog.New(slog.NewJSONHandler(env.logs, nil)),
		Payments: api.PaymentDeps{Store: env.db, Starter: saga.Payments{Client: temporal, Store: env.db},
			SyncWait: 200 * time.Millisecond, Keys: env.keys}})
	m := env.merchant
	p := env.seedPayment(t, env.customer, m, 10000, paysaga.PaymentSucceeded, time.Time{})

	rec := env.refund(t, m, p.ID, "server-killed", refundBody(t, 2500))
	problem(t, rec, http.StatusServiceUnavailable, paysaga.EUNAVAILABLE)
	require.Equal(t, "1", rec.Header().Get("Retry-After"))
	require.Empty(t, rec.Header().Get("Location"))
	k := env.refundKey(t, m.ID(), "server-killed")
	require.False(t, k.Completed())
	require.Equal(t, []string{workflows.RefundWorkflowID(k.ResourceID)}, temporal.Started())
	require.Zero(t, env.reserved(t, p.ID))
}

// A retry of a refund that has ended, whose answer was never stored (the client got 202), is
// answered from its row: the refund's workflow is not asked again.
func TestRetryOfAnEndedRefundIsAnsweredFromItsRow(t *testing.T) {
	ctx := context.Background()
	env := newRefundEnv(t)
	m := env.merchant
	p := env.seedPayment(t, env.customer, m, 10000, paysaga.PaymentSucceeded, time.Time{})
	env.refunds.respondRefund(refundSettles(env.db, paysaga.RefundPending, "", ""))
	rec := env.refund(t, m, p.ID, "slow-refund", refundBody(t, 4000))
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
	k := env.refundKey(t, m.ID(), "slow-refund")
	require.False(t, k.Completed())
	_, _, err := env.db.SettleRefund(ctx, store.RefundSettlement{RefundID: k.ResourceID, Status: paysaga.RefundSucceeded})
	require.NoError(t, err)

	env.refunds.respondRefund(func(context.Context, workflows.RefundInput) (*paysaga.Refund, error) {
		return nil, errors.New("an ended refund's workflow is not asked again")
	})
	r := decodeRefund(t, env.refund(t, m, p.ID, "slow-refund", refundBody(t, 4000)))
	require.Equal(t, k.ResourceID, r.ID)
	require.Equal(t, paysaga.RefundSucceeded, r.Status)
	require.Len(t, env.refunds.RefundCalls(), 1)
	require.True(t, env.refundKey(t, m.ID(), "slow-refund").Completed())

	// Refused while its answer was lost (the API went away): the retry is told so, 409, with
	// the refused refund's URL.
	env.refunds.respondRefund(func(ctx context.Context, in workflows.RefundInput) (*paysaga.Refund, error) {
		_, err := env.db.ReserveRefund(ctx, reservation(in))
		require.Equal(t, paysaga.ECONFLICT, paysaga.ErrorCode(err))
		return nil, paysaga.Errorf(paysaga.EUNAVAILABLE, "the API lost the answer")
	})
	problem(t, env.refund(t, m, p.ID, "too-much", refundBody(t, 9000)), http.StatusServiceUnavailable, paysaga.EUNAVAILABLE)
	env.refunds.respondRefund(func(context.Context, workflows.RefundInput) (*paysaga.Refund, error) {
		return nil, errors.New("an ended refund's workflow is not asked again")
	})
	refused := env.refund(t, m, p.ID, "too-much", refundBody(t, 9000))
	pd := problem(t, refused, http.StatusConflict, paysaga.ECONFLICT)
	require.Contains(t, pd.Detail, "6000 won")
	k = env.refundKey(t, m.ID(), "too-much")
	require.Equal(t, "/v1/refunds/"+k.ResourceID, refused.Header().Get("Location"))
	require.True(t, k.Completed())
	require.Len(t, env.refunds.RefundCalls(), 2)
}
