package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"paysaga"
	"paysaga/cmd/payctl/ctl"
	"paysaga/nh"
	"paysaga/nhsim"
)

// credits counts the simulator's executed deposits into the account.
func credits(acct bankAccount) (n int, total int64) {
	for _, tr := range env.Sim.Transfers() {
		if tr.API != nh.APIDrawingTransfer && tr.To == acct.Acn {
			n++
			total += tr.Amount
		}
	}
	return n, total
}

func refund(t *testing.T, m user, paymentID string, amount int64, key string) answer {
	t.Helper()
	return call(t, "POST", "/v1/payments/"+paymentID+"/refunds", m.Token,
		map[string]any{"amount": amount, "reason": "e2e"}, "Idempotency-Key", key)
}

// refundID is the id of the refund an answer is about (200, 202 or 402).
func refundID(a answer) string {
	if id := a.str("id"); id != "" {
		return id
	}
	if r, ok := a.Body["refund"].(map[string]any); ok {
		id, _ := r["id"].(string)
		return id
	}
	return ""
}

// waitRefund polls the refund until it is settled, and returns its status.
func waitRefund(t *testing.T, u user, id string) answer {
	t.Helper()
	var last answer
	settled := assert.Eventually(t, func() bool {
		last = call(t, "GET", "/v1/refunds/"+id, u.Token, nil)
		return last.Status == http.StatusOK && paysaga.RefundStatus(last.str("status")).Final()
	}, 2*time.Minute, 100*time.Millisecond)
	require.True(t, settled, "refund %s never settled; last answer %d %s", id, last.Status, last.Raw)
	return last
}

// paid is a customer who paid a merchant amount from a fresh account holding balance.
func paid(t *testing.T, balance, amount int64, extra map[string]any) (c, m user, acct bankAccount, payment answer) {
	t.Helper()
	c, m = newUser(t, paysaga.RoleCustomer), newUser(t, paysaga.RoleMerchant)
	acct = seedAccount(t, c, balance)
	body := map[string]any{"account_id": acct.ID, "amount": amount, "merchant_id": m.ID, "description": "e2e"}
	for k, v := range extra {
		body[k] = v
	}
	payment = call(t, "POST", "/v1/payments", c.Token, body, "Idempotency-Key", paysaga.NewID("k"))
	require.Equal(t, http.StatusOK, payment.Status, "%s", payment.Raw)
	return c, m, acct, payment
}

// replayRefunds runs `payctl -o json refund replay args…` in-process, through its cobra root.
func replayRefunds(t *testing.T, args ...string) (int, []map[string]any, string) {
	t.Helper()
	cfg := env.Parts.Config
	vars := map[string]string{
		"PAYSAGA_DB_DRIVER": cfg.DBDriver, "PAYSAGA_DB_DSN": cfg.DBDSN,
		"PAYSAGA_TEMPORAL_NAMESPACE": cfg.TemporalNamespace,
	}
	var out, errOut bytes.Buffer
	code := ctl.Execute(context.Background(), append([]string{"-o", "json", "refund", "replay"}, args...), ctl.Env{
		Getenv: func(k string) string { return vars[k] }, Stdout: &out, Stderr: &errOut,
		Temporal: env.Temporal.Client(),
	})
	var rows []map[string]any
	if out.Len() > 0 {
		require.NoError(t, json.Unmarshal(out.Bytes(), &rows), "%s", out.String())
	}
	return code, rows, out.String() + errOut.String()
}

// Fifty refunds of 30% each, at once, on one payment: three succeed in money terms, the
// others are refused — with a clear 409, or, for one the API answered 202 while it ran, FAILED
// "refused" once it ends — and the bank's ledger agrees.
func TestRefundsConcurrentNeverExceedThePayment(t *testing.T) {
	c, m, acct, p := paid(t, 200_000, 100_000, nil)
	id := p.str("id")

	const n = 50
	answers := make([]answer, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			// A 503 (the start could not be confirmed in time under this load) says "retry with
			// the same Idempotency-Key": a client does, and so does this one.
			key := fmt.Sprintf("concurrent-%d", i)
			for try := 0; ; try++ {
				answers[i] = refund(t, m, id, 30_000, key)
				if answers[i].Status != http.StatusServiceUnavailable || try == 20 {
					return
				}
				time.Sleep(time.Second)
			}
		})
	}
	wg.Wait()
	var succeeded, refused int
	for _, a := range answers {
		switch a.Status {
		case http.StatusOK:
			r := waitRefund(t, m, refundID(a))
			require.Equal(t, "SUCCEEDED", r.str("status"), "%s", r.Raw)
			succeeded++
		case http.StatusAccepted:
			// Still running when the API stopped waiting (under this load a refund may wait
			// seconds for the payment's row): it ends either way, refused like a 409 if the
			// others took what was left by the time it reserved.
			r := waitRefund(t, m, refundID(a))
			switch r.str("status") {
			case "SUCCEEDED":
				succeeded++
			case "FAILED":
				require.Equal(t, "refused", r.str("failure_code"), "%s", r.Raw)
				require.Contains(t, r.str("failure_message"), "exceeds what is left to refund")
				refused++
			default:
				t.Fatalf("a refund answered 202 ended %s", r.Raw)
			}
		case http.StatusConflict:
			require.Equal(t, "conflict", a.str("code"))
			require.Contains(t, a.str("detail"), "exceeds what is left to refund")
			// Issue 11, item 6: the refused refund is readable where the answer points.
			loc := a.Header.Get("Location")
			require.NotEmpty(t, loc, "%s", a.Raw)
			r := call(t, "GET", loc, m.Token, nil)
			require.Equal(t, http.StatusOK, r.Status, "%s", r.Raw)
			require.Equal(t, "FAILED", r.str("status"))
			require.Equal(t, "refused", r.str("failure_code"))
			require.Contains(t, r.str("failure_message"), "exceeds what is left to refund")
			refused++
		default:
			t.Fatalf("unexpected answer %d %s", a.Status, a.Raw)
		}
	}
	require.Equal(t, 3, succeeded)
	require.Equal(t, n-3, refused)

	got := waitStatus(t, c, id, paysaga.PaymentPartiallyRefunded)
	require.EqualValues(t, 90_000, got.Body["refunded_amount"])
	k, total := credits(acct)
	require.Equal(t, 3, k, "three credits at the bank")
	require.EqualValues(t, 90_000, total)
	require.EqualValues(t, 200_000-100_000+90_000, env.Sim.Balance("011", acct.Acn.Acno))
	list := call(t, "GET", "/v1/payments/"+id+"/refunds?limit=100", c.Token, nil)
	require.Equal(t, http.StatusOK, list.Status)
	require.Len(t, list.Body["data"], n, "every answered refund is readable, the refused ones FAILED")
	var listed int
	for _, r := range list.Body["data"].([]any) {
		if r.(map[string]any)["status"] == "SUCCEEDED" {
			listed++
		}
	}
	require.Equal(t, 3, listed)

	// The rest, exactly, still fits; then nothing does.
	last := refund(t, m, id, 10_000, "concurrent-rest")
	require.Equal(t, http.StatusOK, last.Status, "%s", last.Raw)
	waitStatus(t, c, id, paysaga.PaymentRefunded)
	require.Equal(t, http.StatusConflict, refund(t, m, id, 1, "concurrent-more").Status)
}

func TestRefundOnlyByTheMerchantOrAnOperator(t *testing.T) {
	c, _, _, p := paid(t, 100_000, 10_000, nil)
	id := p.str("id")
	other := newUser(t, paysaga.RoleMerchant)
	require.Equal(t, http.StatusNotFound, refund(t, other, id, 1_000, "not-mine").Status)
	require.Equal(t, http.StatusForbidden, refund(t, c, id, 1_000, "customer").Status)

	op := newUser(t, paysaga.RoleOperator)
	a := refund(t, op, id, 1_000, "operator")
	require.Equal(t, http.StatusOK, a.Status, "%s", a.Raw)
	require.Equal(t, http.StatusOK, call(t, "GET", "/v1/refunds/"+a.str("id"), c.Token, nil).Status, "the customer sees their refund")
	require.Equal(t, http.StatusNotFound, call(t, "GET", "/v1/refunds/"+a.str("id"), other.Token, nil).Status)
	again := refund(t, op, id, 1_000, "operator")
	require.Equal(t, a.str("id"), again.str("id"), "the same key is the same refund")
	require.Equal(t, "true", again.Header.Get("Idempotent-Replayed"))
}

// A refund the bank refuses ends FAILED with its reservation released; once the fault is
// cleared, `payctl refund replay` makes it succeed with exactly one credit, even when two
// operators replay it at the same time.
func TestRefundDeclinedThenReplayedByPayctl(t *testing.T) {
	c, m, acct, p := paid(t, 100_000, 40_000, nil)
	id := p.str("id")
	withFault(t, nh.APIReceivedTransferFinAccount, nhsim.Fault{Kind: nhsim.FaultDecline, Probability: 1, Rpcd: "E9999"})

	a := refund(t, m, id, 40_000, "declined-1")
	require.Equal(t, http.StatusPaymentRequired, a.Status, "%s", a.Raw)
	require.Equal(t, "declined", a.str("code"))
	rid := refundID(a)
	r := waitRefund(t, m, rid)
	require.Equal(t, "FAILED", r.str("status"))
	require.Equal(t, "E9999", r.str("failure_code"))
	reserved, err := env.Parts.DB.ReservedRefundAmount(context.Background(), id)
	require.NoError(t, err)
	require.Zero(t, reserved, "the reservation was given back")
	k, _ := credits(acct)
	require.Zero(t, k)

	// Dry run first: nothing happens.
	code, rows, out := replayRefunds(t, "--dry-run", rid)
	require.Equal(t, ctl.ExitOK, code, out)
	require.Equal(t, "would_replay", rows[0]["result"])
	require.Equal(t, "FAILED", waitRefund(t, m, rid).str("status"))

	env.Sim.ClearFault(nh.APIReceivedTransferFinAccount)
	var wg sync.WaitGroup
	results := make([][]map[string]any, 2)
	for i := range results {
		wg.Go(func() { _, results[i], _ = replayRefunds(t, rid) })
	}
	wg.Wait()
	var ok int
	for _, rs := range results {
		require.Len(t, rs, 1)
		if rs[0]["result"] == "succeeded" {
			ok++
		} else {
			require.Equal(t, "refused", rs[0]["result"], "%v", results)
		}
	}
	require.GreaterOrEqual(t, ok, 1)
	require.Equal(t, "SUCCEEDED", waitRefund(t, m, rid).str("status"))
	k, total := credits(acct)
	require.Equal(t, 1, k, "exactly one credit")
	require.EqualValues(t, 40_000, total)
	waitStatus(t, c, id, paysaga.PaymentRefunded)

	// A refund that succeeded is never replayed.
	code, rows, out = replayRefunds(t, rid)
	require.Equal(t, ctl.ExitRefused, code, out)
	require.Equal(t, "refused", rows[0]["result"])
	k, _ = credits(acct)
	require.Equal(t, 1, k)
}

func TestManualCaptureCancelRefundsOnce(t *testing.T) {
	c, m, acct, p := paid(t, 100_000, 25_000, map[string]any{"capture": "manual"})
	id := p.str("id")
	require.Equal(t, "AUTHORIZED", p.str("status"))
	n, _ := debits(acct)
	require.Equal(t, 1, n)
	require.Equal(t, http.StatusConflict, refund(t, m, id, 1_000, "authorized").Status, "an AUTHORIZED payment is canceled, not refunded")

	a := call(t, "POST", "/v1/payments/"+id+"/cancel", m.Token, map[string]any{"reason": "out of stock"})
	require.Contains(t, []int{http.StatusOK, http.StatusAccepted}, a.Status, "%s", a.Raw)
	waitStatus(t, c, id, paysaga.PaymentCanceled)
	again := call(t, "POST", "/v1/payments/"+id+"/cancel", m.Token, nil)
	require.Equal(t, http.StatusOK, again.Status, "%s", again.Raw)
	require.Equal(t, "CANCELED", again.str("status"))
	require.Equal(t, http.StatusConflict, call(t, "POST", "/v1/payments/"+id+"/capture", m.Token, nil).Status)

	k, total := credits(acct)
	require.Equal(t, 1, k, "refunded exactly once")
	require.EqualValues(t, 25_000, total)
	require.EqualValues(t, 100_000, env.Sim.Balance("011", acct.Acn.Acno))
}

func TestManualCaptureDeadlineRefundsOnce(t *testing.T) {
	c, _, acct, p := paid(t, 100_000, 12_000, map[string]any{"capture": "manual", "capture_within": 2})
	id := p.str("id")
	require.Equal(t, "AUTHORIZED", p.str("status"))
	waitStatus(t, c, id, paysaga.PaymentCanceled)
	k, total := credits(acct)
	require.Equal(t, 1, k, "refunded exactly once")
	require.EqualValues(t, 12_000, total)
	require.EqualValues(t, 100_000, env.Sim.Balance("011", acct.Acn.Acno))
}

func TestManualCaptureCaptured(t *testing.T) {
	c, m, acct, p := paid(t, 100_000, 9_000, map[string]any{"capture": "manual"})
	id := p.str("id")
	other := newUser(t, paysaga.RoleMerchant)
	require.Equal(t, http.StatusNotFound, call(t, "POST", "/v1/payments/"+id+"/capture", other.Token, nil).Status)
	a := call(t, "POST", "/v1/payments/"+id+"/capture", m.Token, nil)
	require.Equal(t, http.StatusOK, a.Status, "%s", a.Raw)
	require.Equal(t, "SUCCEEDED", a.str("status"))
	waitStatus(t, c, id, paysaga.PaymentSucceeded)
	k, _ := credits(acct)
	require.Zero(t, k)
}

// Issue 11, item 1: a refund goes back to the account that paid — a merchant cannot type in
// another (403, nothing written). An operator can, for support, and the bank is asked whose
// account it is: a stranger's is not paid, the paying customer's account at another bank is;
// the history says which account (masked) and which operator.
func TestRefundToATypedInAccount(t *testing.T) {
	c, m, _, p := paid(t, 100_000, 30_000, nil)
	id := p.str("id")
	typedIn := func(who user, key string, amount int64, acct nhsim.Account) answer {
		t.Helper()
		return call(t, "POST", "/v1/payments/"+id+"/refunds", who.Token, map[string]any{
			"amount": amount, "reason": "계좌 해지", "destination": map[string]any{"bank_code": acct.Bncd, "account_number": acct.Acno},
		}, "Idempotency-Key", key)
	}
	open := func(holder string) nhsim.Account {
		t.Helper()
		a, err := env.Sim.CreateAccount(nhsim.Account{Bncd: "004", Holder: holder, Birth: "19800101"})
		require.NoError(t, err)
		return a
	}
	merchantsOwn, strangers, customersOther := open("카페 주인"), open("박지훈"), open("김고객")

	a := typedIn(m, "to-the-shop", 30_000, merchantsOwn)
	require.Equal(t, http.StatusForbidden, a.Status, "%s", a.Raw)
	require.Equal(t, "forbidden", a.str("code"))
	list := call(t, "GET", "/v1/payments/"+id+"/refunds", m.Token, nil)
	require.Empty(t, list.Body["data"], "nothing was written")

	// A holder name in the request is not taken: the field does not exist.
	withName := call(t, "POST", "/v1/payments/"+id+"/refunds", m.Token, map[string]any{"amount": 1_000,
		"destination": map[string]any{"bank_code": "004", "account_number": strangers.Acno, "holder_name": "김고객"}}, "Idempotency-Key", "named")
	require.Contains(t, []int{http.StatusForbidden, http.StatusUnprocessableEntity}, withName.Status, "%s", withName.Raw)

	op := newUser(t, paysaga.RoleOperator)
	a = typedIn(op, "to-a-stranger", 10_000, strangers)
	require.Contains(t, []int{http.StatusPaymentRequired, http.StatusAccepted}, a.Status, "%s", a.Raw)
	r := waitRefund(t, op, refundID(a))
	require.Equal(t, "FAILED", r.str("status"), "%s", r.Raw)
	require.Zero(t, env.Sim.Balance("004", strangers.Acno), "nothing for the stranger")

	a = typedIn(op, "to-the-customers-other-bank", 10_000, customersOther)
	require.Contains(t, []int{http.StatusOK, http.StatusAccepted}, a.Status, "%s", a.Raw)
	r = waitRefund(t, op, refundID(a))
	require.Equal(t, "SUCCEEDED", r.str("status"), "%s", r.Raw)
	require.EqualValues(t, 10_000, env.Sim.Balance("004", customersOther.Acno))
	require.Zero(t, env.Sim.Balance("004", merchantsOwn.Acno))

	masked := paysaga.MaskAccountNumber(customersOther.Acno)
	h := call(t, "GET", "/v1/payments/"+id+"/events", m.Token, nil)
	require.Equal(t, http.StatusOK, h.Status)
	require.Contains(t, string(h.Raw), "typed-in account "+masked)
	require.Contains(t, string(h.Raw), op.ID, "the operator who chose it")
	require.NotContains(t, string(h.Raw), customersOther.Acno)
	mine := call(t, "GET", "/v1/payments/"+id+"/events", c.Token, nil)
	require.Equal(t, http.StatusOK, mine.Status)
	require.NotContains(t, string(mine.Raw), op.ID, "the customer does not see operator ids")
}
