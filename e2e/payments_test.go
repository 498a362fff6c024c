package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	"paysaga"
	"paysaga/internal/stack"
	"paysaga/nhsim"
)

// bankAccount is a customer's account at the simulated bank, registered with paysaga.
type bankAccount struct {
	ID  string // acct_…
	Acn nhsim.AccountID
}

// seedAccount opens an account at the simulated bank with balance, and registers it as the
// customer's through the API, as a customer would.
func seedAccount(t *testing.T, owner user, balance int64) bankAccount {
	t.Helper()
	return seedAccountOn(t, env.Stack, env.api.URL, owner, balance)
}

// seedAccountOn does what seedAccount does on the stack st, whose API is at base.
func seedAccountOn(t *testing.T, st *stack.Stack, base string, owner user, balance int64) bankAccount {
	t.Helper()
	acno := fmt.Sprintf("3%012d", rand.Int64N(1e12))
	_, err := st.Sim.CreateAccount(nhsim.Account{Bncd: "011", Acno: acno, Holder: "김고객", Birth: "19900101", Balance: balance})
	require.NoError(t, err)
	a := callAt(t, base, "POST", "/v1/accounts", owner.Token, map[string]string{
		"bank_code": "011", "account_number": acno, "birth_date": "19900101", "nickname": "e2e",
	}, "Idempotency-Key", "register-"+acno)
	require.Equal(t, http.StatusCreated, a.Status, "%s", a.Raw)
	require.Equal(t, "ACTIVE", a.str("status"))
	require.NotContains(t, string(a.Raw), acno, "the number is shown masked")
	return bankAccount{ID: a.str("id"), Acn: nhsim.AccountID{Bncd: "011", Acno: acno}}
}

// debits counts the simulator's executed withdrawals from the account.
func debits(acct bankAccount) (n int, total int64) {
	for _, tr := range env.Sim.Transfers() {
		if tr.API == "DrawingTransfer" && tr.From == acct.Acn {
			n++
			total += tr.Amount
		}
	}
	return n, total
}

func pay(t *testing.T, c user, acct bankAccount, merchant user, amount int64, key string) answer {
	t.Helper()
	return call(t, "POST", "/v1/payments", c.Token, map[string]any{
		"account_id": acct.ID, "amount": amount, "merchant_id": merchant.ID, "description": "e2e",
	}, "Idempotency-Key", key)
}

// waitStatus polls the payment until it reaches want.
func waitStatus(t *testing.T, c user, id string, want paysaga.PaymentStatus) answer {
	t.Helper()
	var last answer
	require.Eventually(t, func() bool {
		last = call(t, "GET", "/v1/payments/"+id, c.Token, nil)
		return last.Status == http.StatusOK && last.str("status") == string(want)
	}, 2*time.Minute, 100*time.Millisecond, "payment %s never became %s", id, want)
	return last
}

func withFault(t *testing.T, api string, f nhsim.Fault) {
	t.Helper()
	require.NoError(t, env.Sim.SetFault(api, f))
	t.Cleanup(func() { env.Sim.ClearFault(api) })
}

// Tests that set simulator faults share the one simulator, so they do not run in parallel.

func TestPaymentHappyPathPublishesEvent(t *testing.T) {
	events := consume(t, "payment.*")
	c, m := newUser(t, paysaga.RoleCustomer), newUser(t, paysaga.RoleMerchant)
	acct := seedAccount(t, c, 100_000)

	a := pay(t, c, acct, m, 15_000, "happy-1")
	require.Equal(t, http.StatusOK, a.Status, "%s", a.Raw)
	require.Equal(t, "SUCCEEDED", a.str("status"))
	id := a.str("id")
	require.Equal(t, "/v1/payments/"+id, a.Header.Get("Location"))
	require.EqualValues(t, 15_000, a.Body["amount"])

	n, total := debits(acct)
	require.Equal(t, 1, n)
	require.EqualValues(t, 15_000, total)
	require.EqualValues(t, 85_000, env.Sim.Balance("011", acct.Acn.Acno))

	// The merchant sees it, the history says what happened, and other services heard of it.
	require.Equal(t, http.StatusOK, call(t, "GET", "/v1/payments/"+id, m.Token, nil).Status)
	h := call(t, "GET", "/v1/payments/"+id+"/events", c.Token, nil)
	require.Equal(t, http.StatusOK, h.Status)
	require.Contains(t, string(h.Raw), "payment.succeeded")

	msg := events.await(t, func(d amqp.Delivery) bool { return d.RoutingKey == "payment.succeeded" && containsID(d.Body, id) })
	require.NotEmpty(t, msg.MessageId, "a stable message id lets consumers drop duplicates")
	require.Equal(t, amqp.Persistent, msg.DeliveryMode)
}

func TestPaymentDeclinedSaysWhy(t *testing.T) {
	c, m := newUser(t, paysaga.RoleCustomer), newUser(t, paysaga.RoleMerchant)
	acct := seedAccount(t, c, 1_000) // less than the payment: the bank refuses

	a := pay(t, c, acct, m, 5_000, "decline-1")
	require.Equal(t, http.StatusPaymentRequired, a.Status, "%s", a.Raw)
	require.Equal(t, "declined", a.str("code"))
	require.Equal(t, "E1001", a.str("bank_code"))
	require.NotEmpty(t, a.str("bank_message"))
	payment, _ := a.Body["payment"].(map[string]any)
	require.Equal(t, "FAILED", payment["status"])

	n, _ := debits(acct)
	require.Zero(t, n)
	require.EqualValues(t, 1_000, env.Sim.Balance("011", acct.Acn.Acno))

	// The same request again is the same answer, and still no debit.
	again := pay(t, c, acct, m, 5_000, "decline-1")
	require.Equal(t, a.Status, again.Status)
	require.Equal(t, "true", again.Header.Get("Idempotent-Replayed"))
	n, _ = debits(acct)
	require.Zero(t, n)
}

func TestPaymentLostResponseIsResolvedByAskingTheBank(t *testing.T) {
	c, m := newUser(t, paysaga.RoleCustomer), newUser(t, paysaga.RoleMerchant)
	acct := seedAccount(t, c, 100_000)
	// The bank executes the debit and the answer never arrives.
	withFault(t, "DrawingTransfer", nhsim.Fault{Kind: nhsim.FaultLostResponse, Probability: 1})

	a := pay(t, c, acct, m, 20_000, "lost-1")
	require.Contains(t, []int{http.StatusOK, http.StatusAccepted}, a.Status, "%s", a.Raw)
	id := a.str("id")
	if id == "" {
		id = a.Body["payment"].(map[string]any)["id"].(string)
	}
	waitStatus(t, c, id, paysaga.PaymentSucceeded)

	n, total := debits(acct)
	require.Equal(t, 1, n, "the lost answer must be resolved by CheckOnDrawingTransfer, never by sending again")
	require.EqualValues(t, 20_000, total)
	require.GreaterOrEqual(t, env.Sim.Stats()["CheckOnDrawingTransfer"].Requests, 1)
}

func TestPaymentRetriedConcurrentlyDebitsOnce(t *testing.T) {
	c, m := newUser(t, paysaga.RoleCustomer), newUser(t, paysaga.RoleMerchant)
	acct := seedAccount(t, c, 100_000)

	const n = 20
	answers := make([]answer, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { answers[i] = pay(t, c, acct, m, 7_000, "same-key") })
	}
	wg.Wait()
	ids := map[string]bool{}
	for _, a := range answers {
		switch a.Status {
		case http.StatusOK:
			require.Equal(t, "SUCCEEDED", a.str("status"))
			ids[a.str("id")] = true
		case http.StatusConflict, http.StatusAccepted:
			// Documented: a duplicate arriving while the first is running may be told so.
		default:
			t.Fatalf("unexpected answer %d %s", a.Status, a.Raw)
		}
	}
	require.Len(t, ids, 1, "one key, one payment")
	got, total := debits(acct)
	require.Equal(t, 1, got)
	require.EqualValues(t, 7_000, total)

	// A later retry replays the answer.
	again := pay(t, c, acct, m, 7_000, "same-key")
	require.Equal(t, http.StatusOK, again.Status)
	require.True(t, ids[again.str("id")])
	// The same key with another body is refused and changes nothing.
	other := pay(t, c, acct, m, 8_000, "same-key")
	require.Equal(t, http.StatusUnprocessableEntity, other.Status)
	require.Equal(t, "idempotency_key_reused", other.str("code"))
	got, _ = debits(acct)
	require.Equal(t, 1, got)
}

func TestPaymentSurvivesWorkerRestart(t *testing.T) {
	c, m := newUser(t, paysaga.RoleCustomer), newUser(t, paysaga.RoleMerchant)
	acct := seedAccount(t, c, 100_000)
	// The bank is slow: the worker is stopped while the debit is at the bank.
	withFault(t, "DrawingTransfer", nhsim.Fault{Kind: nhsim.FaultLatency, Probability: 1, Latency: 1500 * time.Millisecond})
	before := env.Sim.Stats()["DrawingTransfer"].Requests

	done := make(chan answer, 1)
	go func() { done <- pay(t, c, acct, m, 30_000, "restart-1") }()
	require.Eventually(t, func() bool { return env.Sim.Stats()["DrawingTransfer"].Requests > before },
		30*time.Second, 20*time.Millisecond, "the debit never reached the bank")
	env.StopWorker()
	env.Sim.ClearFault("DrawingTransfer")
	require.NoError(t, env.StartWorker())

	a := <-done
	id := a.str("id")
	if id == "" {
		payment, _ := a.Body["payment"].(map[string]any)
		require.NotNil(t, payment, "%d %s", a.Status, a.Raw)
		id, _ = payment["id"].(string)
	}
	waitStatus(t, c, id, paysaga.PaymentSucceeded)
	n, total := debits(acct)
	require.Equal(t, 1, n)
	require.EqualValues(t, 30_000, total)
}

func TestPaymentsAreInvisibleToOtherCustomers(t *testing.T) {
	c, other, m := newUser(t, paysaga.RoleCustomer), newUser(t, paysaga.RoleCustomer), newUser(t, paysaga.RoleMerchant)
	acct := seedAccount(t, c, 50_000)
	a := pay(t, c, acct, m, 1_000, "private-1")
	require.Equal(t, http.StatusOK, a.Status, "%s", a.Raw)
	id := a.str("id")

	for _, path := range []string{"/v1/payments/" + id, "/v1/payments/" + id + "/events"} {
		got := call(t, "GET", path, other.Token, nil)
		require.Equal(t, http.StatusNotFound, got.Status)
		missing := call(t, "GET", "/v1/payments/pay_doesnotexist", other.Token, nil)
		require.Equal(t, missing.str("code"), got.str("code"), "same answer as a payment that does not exist")
	}
	list := call(t, "GET", "/v1/payments", other.Token, nil)
	require.Equal(t, http.StatusOK, list.Status)
	require.Empty(t, list.Body["data"])

	// Nor can another customer pay from this account.
	steal := pay(t, other, acct, m, 1_000, "steal-1")
	require.Equal(t, http.StatusUnprocessableEntity, steal.Status)
	n, _ := debits(acct)
	require.Equal(t, 1, n)
}

// Issue 11, item 6: a 202 names a payment that is readable at its URL at once — recorded by the
// API before its workflow started, even while no worker runs it yet.
func TestPaymentAcceptedIsReadableAtOnce(t *testing.T) {
	c, m := newUser(t, paysaga.RoleCustomer), newUser(t, paysaga.RoleMerchant)
	acct := seedAccount(t, c, 100_000)
	env.StopWorker()
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			require.NoError(t, env.StartWorker())
		}
	})

	a := pay(t, c, acct, m, 12_000, "accepted-1")
	require.Equal(t, http.StatusAccepted, a.Status, "%s", a.Raw)
	poll := a.str("poll_url")
	require.NotEmpty(t, poll)
	got := call(t, "GET", poll, c.Token, nil)
	require.Equal(t, http.StatusOK, got.Status, "the poll URL answers right after the 202: %s", got.Raw)
	require.Equal(t, "PENDING", got.str("status"))
	require.EqualValues(t, 12_000, got.Body["amount"])

	restarted = true
	require.NoError(t, env.StartWorker())
	waitStatus(t, c, got.str("id"), paysaga.PaymentSucceeded)
	n, total := debits(acct)
	require.Equal(t, 1, n)
	require.EqualValues(t, 12_000, total)
}

// Issue 11, item 5: one Idempotency-Key, one payment, forever. A retry after the key's time is
// up (and the hourly purge) answers with the original payment — whether its answer was stored
// or the client never heard the outcome — and the customer is debited once.
func TestPaymentRetryAfterTheKeyExpiredIsTheSamePayment(t *testing.T) {
	ctx := context.Background()
	c, m := newUser(t, paysaga.RoleCustomer), newUser(t, paysaga.RoleMerchant)
	acct := seedAccount(t, c, 100_000)
	a := pay(t, c, acct, m, 8_000, "expires-1")
	require.Equal(t, http.StatusOK, a.Status, "%s", a.Raw)
	id := a.str("id")

	for _, state := range []string{"completed", "pending"} {
		// A day and more later: the key's time is up, and the housekeeping ran. "pending" is a
		// key whose answer was never stored (the client got 202, or the payment was UNKNOWN).
		q := env.Parts.DB.Bun().NewUpdate().Table("idempotency_keys").
			Set("expires_at = ?", time.Now().Add(-time.Hour).UTC()).
			Where("scope = ? AND idem_key = ?", "payments:"+c.ID, "expires-1")
		if state == "pending" {
			q = q.Set("state = ?", state)
		}
		_, err := q.Exec(ctx)
		require.NoError(t, err)
		_, err = env.Parts.DB.PurgeExpiredIdempotencyKeys(ctx)
		require.NoError(t, err)

		again := pay(t, c, acct, m, 8_000, "expires-1")
		require.Equal(t, http.StatusOK, again.Status, "%s: %s", state, again.Raw)
		require.Equal(t, id, again.str("id"), "%s: the original payment, not a new one", state)
	}
	n, total := debits(acct)
	require.Equal(t, 1, n, "one debit")
	require.EqualValues(t, 8_000, total)
	list := call(t, "GET", "/v1/payments", c.Token, nil)
	require.Len(t, list.Body["data"], 1)
}
