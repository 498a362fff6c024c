package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paysaga"
	"paysaga/api"
	"paysaga/store"
)

// Issue 15: past the instance's bounds a payment is turned away at once — 429 problem+json
// with Retry-After, nothing started, its Idempotency-Key left free for the retry — while the
// payments already admitted go on; one customer cannot take every slot.
func TestPaymentsPastTheBoundsAreTurnedAwayAtOnce(t *testing.T) {
	adm := &api.Admission{MaxInFlight: 3, PerCustomer: 2}
	env := newPayEnv(t, store.DriverSQLite, func(d *api.Deps) { d.Payments.Admission = adm })
	kim, lee := env.customer, env.customer2
	release := env.starter.hold(t)

	answers := make(chan *httptest.ResponseRecorder, 8)
	start := func(who *party, key string) {
		t.Helper()
		go func() { answers <- env.pay(t, who, key, payBody(t, who.account.ID, 1000, env.merchant.ID())) }()
		select {
		case <-env.starter.entered:
		case rec := <-answers:
			t.Fatalf("%s answered before it reached the workflow: %d %s", key, rec.Code, rec.Body.String())
		case <-time.After(10 * time.Second):
			t.Fatalf("%s never reached the workflow", key)
		}
	}
	turnedAway := func(who *party, key, why string) {
		t.Helper()
		begin := time.Now()
		rec := env.pay(t, who, key, payBody(t, who.account.ID, 1000, env.merchant.ID()))
		require.Equal(t, http.StatusTooManyRequests, rec.Code, rec.Body.String())
		require.Less(t, time.Since(begin), time.Second, "told at once")
		require.Equal(t, "application/problem+json", rec.Header().Get("Content-Type"))
		require.Equal(t, "1", rec.Header().Get("Retry-After"))
		require.Contains(t, rec.Body.String(), why)
		require.Contains(t, rec.Body.String(), `"code":"rate_limited"`)
	}
	start(kim, "k1")
	start(kim, "k2")
	turnedAway(kim, "k3", "your payments") // Kim has two payments in progress
	start(lee, "l1")
	require.Equal(t, 3, adm.InFlight())
	turnedAway(lee, "l2", "at capacity") // three are in progress on the instance
	require.Len(t, env.starter.Calls(), 3, "nothing started for the turned-away ones")

	release()
	for range 3 {
		rec := <-answers
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	}
	require.Equal(t, 0, adm.InFlight(), "slots are given back")
	// A client's retries of one payment share its slot: k4 twice and k5 at once fit Kim's two.
	release = env.starter.hold(t)
	for _, k := range []string{"k4", "k4", "k5"} {
		start(kim, k)
	}
	release()
	for range 3 {
		rec := <-answers
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	}
	// The key of a turned-away payment was left free: its retry is a payment like any other.
	rec := env.pay(t, kim, "k3", payBody(t, kim.account.ID, 1000, env.merchant.ID()))
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Equal(t, paysaga.PaymentSucceeded, decodePayment(t, rec).Status)
}

// A payment that answered 202 is still worked on by the engine: it keeps its slot until it is
// final (or waits for a person), so that the bound counts what the engine holds, not only the
// requests waiting for an answer.
func TestPaymentAnswered202KeepsItsSlotUntilSettled(t *testing.T) {
	adm := &api.Admission{MaxInFlight: 1}
	env := newPayEnv(t, store.DriverSQLite, func(d *api.Deps) { d.Payments.Admission = adm })
	kim, lee := env.customer, env.customer2
	env.starter.respond(stillRunning)

	rec := env.pay(t, kim, "k1", payBody(t, kim.account.ID, 1000, env.merchant.ID()))
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
	id := decodeProcessing(t, rec).Payment.ID
	require.Equal(t, 1, adm.InFlight(), "the running payment holds its slot after the 202")
	require.Equal(t, 1, adm.Holding())

	rec = env.pay(t, lee, "l1", payBody(t, lee.account.ID, 1000, env.merchant.ID()))
	require.Equal(t, http.StatusTooManyRequests, rec.Code, "nothing is admitted past the bound: %s", rec.Body.String())
	require.Len(t, env.starter.Calls(), 1)

	// Still PROCESSING in the store: the slot stays taken.
	ctx := context.Background()
	err := env.db.RecordPaymentChange(ctx, store.PaymentChange{PaymentID: id, Status: paysaga.PaymentProcessing})
	require.NoError(t, err)
	require.Never(t, func() bool { return adm.InFlight() == 0 }, 300*time.Millisecond, 20*time.Millisecond)

	// Final: the slot is given back and the next payment is admitted.
	err = env.db.RecordPaymentChange(ctx, store.PaymentChange{PaymentID: id, Status: paysaga.PaymentSucceeded})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return adm.InFlight() == 0 && adm.Holding() == 0 }, 5*time.Second, 10*time.Millisecond)
	env.starter.respond(succeed)
	rec = env.pay(t, lee, "l1", payBody(t, lee.account.ID, 1000, env.merchant.ID()))
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
}

// A payment left waiting for a person (UNKNOWN) does not hold a slot, and no payment holds
// one past HoldAtMost.
func TestHeldSlotsAreGivenBackForPaymentsWaitingForAPersonOrTooLong(t *testing.T) {
	adm := &api.Admission{MaxInFlight: 2, HoldAtMost: 200 * time.Millisecond}
	env := newPayEnv(t, store.DriverSQLite, func(d *api.Deps) { d.Payments.Admission = adm })
	env.starter.respond(stillRunning)
	kim := env.customer

	rec := env.pay(t, kim, "k1", payBody(t, kim.account.ID, 1000, env.merchant.ID()))
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
	// Never settles (PENDING forever in the store): given back after HoldAtMost.
	require.Eventually(t, func() bool { return adm.InFlight() == 0 }, 5*time.Second, 10*time.Millisecond)

	adm.HoldAtMost = time.Hour
	rec = env.pay(t, kim, "k2", payBody(t, kim.account.ID, 1000, env.merchant.ID()))
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
	id := decodeProcessing(t, rec).Payment.ID
	require.Equal(t, 1, adm.InFlight())
	ctx := context.Background()
	for _, s := range []paysaga.PaymentStatus{paysaga.PaymentProcessing, paysaga.PaymentUnknown} {
		err := env.db.RecordPaymentChange(ctx, store.PaymentChange{PaymentID: id, Status: s})
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool { return adm.InFlight() == 0 }, 5*time.Second, 10*time.Millisecond)
}

func decodeProcessing(t *testing.T, rec *httptest.ResponseRecorder) processingAnswer {
	t.Helper()
	var a processingAnswer
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &a))
	require.NotNil(t, a.Payment, rec.Body.String())
	return a
}

// Retries of one payment share its slot also against the instance's bound: twenty copies of a
// request sent at once (a client retrying hard) are one payment in progress, not twenty.
func TestRetriesOfOnePaymentShareItsSlot(t *testing.T) {
	adm := &api.Admission{MaxInFlight: 1, PerCustomer: 1}
	env := newPayEnv(t, store.DriverSQLite, func(d *api.Deps) { d.Payments.Admission = adm })
	kim, lee := env.customer, env.customer2
	release := env.starter.hold(t)
	const n = 5
	answers := make(chan *httptest.ResponseRecorder, n)
	for range n {
		go func() { answers <- env.pay(t, kim, "k1", payBody(t, kim.account.ID, 1000, env.merchant.ID())) }()
	}
	require.Eventually(t, func() bool { return len(env.starter.Calls()) >= 1 }, 10*time.Second, 10*time.Millisecond)
	require.Equal(t, 1, adm.InFlight(), "one payment, however many requests")
	rec := env.pay(t, lee, "l1", payBody(t, lee.account.ID, 1000, env.merchant.ID()))
	require.Equal(t, http.StatusTooManyRequests, rec.Code, "another payment is turned away: %s", rec.Body.String())
	release()
	for range n {
		rec := <-answers
		require.NotEqual(t, http.StatusTooManyRequests, rec.Code, rec.Body.String())
	}
	require.Equal(t, 0, adm.InFlight())
}
