package e2e

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paysaga"
	"paysaga/cmd/payctl/ctl"
	"paysaga/config"
	"paysaga/internal/stack"
	"paysaga/internal/temporaltest"
	"paysaga/workflows"
)

// merchantReceiver is a merchant's webhook endpoint written the way a merchant would, from the
// README alone: it checks Paysaga-Signature with its own HMAC code (not the webhook package's
// Verify), refuses a stale timestamp, answers 500 to the first `failFirst` deliveries, and
// keeps each event id once.
type merchantReceiver struct {
	secret    string
	failFirst int

	mu       sync.Mutex
	arrivals []arrival         // every POST, in order
	accepted map[string][]byte // event id → body, the first time it was answered 2xx
	repeats  map[string]int    // event id → POSTs after it was accepted (dropped as duplicates)
	bad      []string          // why a POST was refused (bad signature, stale, no id)
}

type arrival struct {
	eventID, eventType string
	body               []byte
	status             int
}

// verify is the receiver's own implementation of the documented scheme: the header is
// "t=<unix>,v1=<hex>[,v1=<hex>]"; the HMAC-SHA256 of "<t>.<body>" under the secret must equal
// one v1, and t must be within five minutes.
func (r *merchantReceiver) verify(header string, body []byte) string {
	var ts string
	var sigs []string
	for _, kv := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sigs = append(sigs, v)
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return "no timestamp"
	}
	if age := time.Since(time.Unix(sec, 0)); age > 5*time.Minute || age < -5*time.Minute {
		return "stale timestamp"
	}
	mac := hmac.New(sha256.New, []byte(r.secret))
	mac.Write([]byte(ts + "."))
	mac.Write(body)
	want := hex.EncodeToString(mac.Sum(nil))
	for _, s := range sigs {
		if hmac.Equal([]byte(s), []byte(want)) {
			return ""
		}
	}
	return "no signature matches"
}

func (r *merchantReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	var ev struct {
		ID   string `json:"id"`
		Type string `json:"type"`
	}
	_ = json.Unmarshal(body, &ev)
	a := arrival{eventID: ev.ID, eventType: ev.Type, body: body}
	defer func() { r.arrivals = append(r.arrivals, a) }()
	if why := r.verify(req.Header.Get("Paysaga-Signature"), body); why != "" || ev.ID == "" || req.Header.Get("Paysaga-Event-Id") != ev.ID {
		r.bad = append(r.bad, why)
		a.status = http.StatusBadRequest
		w.WriteHeader(a.status)
		return
	}
	if len(r.arrivals) < r.failFirst {
		a.status = http.StatusInternalServerError
		w.WriteHeader(a.status)
		return
	}
	if _, seen := r.accepted[ev.ID]; seen {
		r.repeats[ev.ID]++
	} else {
		r.accepted[ev.ID] = body
	}
	a.status = http.StatusNoContent
	w.WriteHeader(a.status)
}

func (r *merchantReceiver) snapshot() (accepted map[string][]byte, repeats map[string]int, arrivals []arrival, bad []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	accepted = map[string][]byte{}
	for k, v := range r.accepted {
		accepted[k] = v
	}
	repeats = map[string]int{}
	for k, v := range r.repeats {
		repeats[k] = v
	}
	return accepted, repeats, append([]arrival(nil), r.arrivals...), append([]string(nil), r.bad...)
}

// TestWebhooksSignedRetriedAndRedelivered: a merchant registers an endpoint; its payments'
// and refunds' outcomes reach it signed (checked by the receiver's own code), through two
// refused deliveries, each event accepted once; the delivery log shows the attempts; payctl
// redelivers an event with the same id and body. On the embedded stack (SQLite, no broker:
// events are dispatched as they are published), loopback endpoints allowed, retries fast.
func TestWebhooksSignedRetriedAndRedelivered(t *testing.T) {
	ctx := context.Background()
	bin, err := temporaltest.Binary()
	require.NoError(t, err)
	dbPath := filepath.Join(t.TempDir(), "paysaga.db")
	cfg, err := config.Load(func(name string) string {
		switch name {
		case "PAYSAGA_DB_DRIVER":
			return "sqlite"
		case "PAYSAGA_DB_DSN":
			return dbPath
		case "PAYSAGA_WEBHOOK_ALLOW_LOOPBACK":
			return "true"
		}
		return ""
	})
	require.NoError(t, err)
	cfg.RedisAddr, cfg.AMQPURL = "", ""
	st, err := stack.Start(ctx, stack.Options{Config: cfg, Dev: true, TemporalBin: bin,
		Webhooks: workflows.WebhookConfig{InitialInterval: 200 * time.Millisecond, MaximumInterval: time.Second, GiveUpAfter: 5 * time.Minute}})
	require.NoError(t, err)
	t.Cleanup(st.Close)
	srv := httptest.NewServer(st.API)
	t.Cleanup(srv.Close)

	c := newUserOn(t, st, srv.URL, paysaga.RoleCustomer)
	m := newUserOn(t, st, srv.URL, paysaga.RoleMerchant)
	rich := seedAccountOn(t, st, srv.URL, c, 100_000)
	poor := seedAccountOn(t, st, srv.URL, c, 100)

	recv := &merchantReceiver{failFirst: 2, accepted: map[string][]byte{}, repeats: map[string]int{}}
	hook := httptest.NewServer(recv)
	t.Cleanup(hook.Close)
	created := callAt(t, srv.URL, "POST", "/v1/webhook-endpoints", m.Token, map[string]any{
		"url": hook.URL + "/paysaga", "event_types": []string{"payment.*", "refund.*"},
	}, "Idempotency-Key", "endpoint-1")
	require.Equal(t, http.StatusCreated, created.Status, "%s", created.Raw)
	endpointID := created.str("id")
	recv.mu.Lock()
	recv.secret = created.str("secret")
	recv.mu.Unlock()
	require.True(t, strings.HasPrefix(recv.secret, "whsec_"))

	// Another merchant cannot see it.
	other := newUserOn(t, st, srv.URL, paysaga.RoleMerchant)
	require.Equal(t, http.StatusNotFound, callAt(t, srv.URL, "GET", "/v1/webhook-endpoints/"+endpointID, other.Token, nil).Status)

	// Three outcomes: a payment, a declined payment, a partial refund of the first.
	paid := callAt(t, srv.URL, "POST", "/v1/payments", c.Token, map[string]any{
		"account_id": rich.ID, "amount": 5_000, "merchant_id": m.ID}, "Idempotency-Key", "wh-pay-1")
	require.Equal(t, http.StatusOK, paid.Status, "%s", paid.Raw)
	declined := callAt(t, srv.URL, "POST", "/v1/payments", c.Token, map[string]any{
		"account_id": poor.ID, "amount": 5_000, "merchant_id": m.ID}, "Idempotency-Key", "wh-pay-2")
	require.Equal(t, http.StatusPaymentRequired, declined.Status, "%s", declined.Raw)
	refund := callAt(t, srv.URL, "POST", "/v1/payments/"+paid.str("id")+"/refunds", m.Token, map[string]any{
		"amount": 1_000, "reason": "e2e"}, "Idempotency-Key", "wh-refund-1")
	require.Contains(t, []int{http.StatusOK, http.StatusCreated, http.StatusAccepted}, refund.Status, "%s", refund.Raw)

	wantTypes := map[string]bool{"payment.succeeded": true, "payment.failed": true, "refund.succeeded": true}
	require.Eventually(t, func() bool {
		accepted, _, _, _ := recv.snapshot()
		types := map[string]bool{}
		for _, b := range accepted {
			var ev struct{ Type string }
			_ = json.Unmarshal(b, &ev)
			types[ev.Type] = true
		}
		return len(types) == len(wantTypes)
	}, 90*time.Second, 100*time.Millisecond, "each outcome reaches the merchant's endpoint")

	accepted, repeats, arrivals, bad := recv.snapshot()
	require.Empty(t, bad, "every delivery verified with the receiver's own implementation")
	require.Len(t, accepted, 3, "three events, each accepted once")
	require.Empty(t, repeats, "no event accepted twice without a redelivery")
	require.GreaterOrEqual(t, len(arrivals), 5, "two refused deliveries, then the three events")
	require.Equal(t, http.StatusInternalServerError, arrivals[0].status)
	require.Equal(t, http.StatusInternalServerError, arrivals[1].status)
	var paymentEventID string
	for id, b := range accepted {
		var ev struct {
			Type string
			Data struct {
				ID         string `json:"id"`
				MerchantID string `json:"merchant_id"`
			}
		}
		require.NoError(t, json.Unmarshal(b, &ev))
		if ev.Type == "payment.succeeded" {
			paymentEventID = id
			require.Equal(t, paid.str("id"), ev.Data.ID)
			require.Equal(t, m.ID, ev.Data.MerchantID)
		}
	}
	require.NotEmpty(t, paymentEventID)

	// The delivery log through the API: every delivery succeeded, the refused attempts are in it.
	var deliveryID string
	require.Eventually(t, func() bool {
		log := callAt(t, srv.URL, "GET", "/v1/webhook-endpoints/"+endpointID+"/deliveries", m.Token, nil)
		data, _ := log.Body["data"].([]any)
		if len(data) != 3 {
			return false
		}
		codes := 0
		for _, d := range data {
			d := d.(map[string]any)
			if d["status"] != "succeeded" {
				return false
			}
			if d["event_id"] == paymentEventID {
				deliveryID = d["id"].(string)
			}
			for _, a := range d["attempts"].([]any) {
				if a.(map[string]any)["status_code"] == float64(500) {
					codes++
				}
			}
		}
		return codes == 2
	}, 30*time.Second, 100*time.Millisecond)
	require.Equal(t, http.StatusNotFound, callAt(t, srv.URL, "GET", "/v1/webhook-endpoints/"+endpointID+"/deliveries", other.Token, nil).Status)

	// payctl redelivers: the same event id and the same bytes arrive again.
	vars := map[string]string{"PAYSAGA_DB_DRIVER": "sqlite", "PAYSAGA_DB_DSN": dbPath, "PAYSAGA_TEMPORAL_NAMESPACE": "default"}
	var out, errOut bytes.Buffer
	code := ctl.Execute(ctx, []string{"-o", "json", "webhooks", "redeliver", deliveryID}, ctl.Env{
		Getenv: func(k string) string { return vars[k] }, Stdout: &out, Stderr: &errOut, Temporal: st.Temporal.Client(),
	})
	require.Equal(t, 0, code, "%s%s", out.String(), errOut.String())
	require.Contains(t, out.String(), workflows.WebhookDeliveryWorkflowID(endpointID, paymentEventID, 1))
	require.Eventually(t, func() bool {
		_, repeats, _, _ := recv.snapshot()
		return repeats[paymentEventID] == 1
	}, 30*time.Second, 100*time.Millisecond, "the redelivery arrives")
	_, _, arrivals, bad = recv.snapshot()
	require.Empty(t, bad)
	last := arrivals[len(arrivals)-1]
	require.Equal(t, paymentEventID, last.eventID)
	require.Equal(t, string(accepted[paymentEventID]), string(last.body), "a redelivery sends the same bytes")

	// payctl's delivery log shows the redelivery's attempt.
	out.Reset()
	code = ctl.Execute(ctx, []string{"-o", "json", "webhooks", "deliveries", "--event", paymentEventID}, ctl.Env{
		Getenv: func(k string) string { return vars[k] }, Stdout: &out, Stderr: &errOut, Temporal: st.Temporal.Client(),
	})
	require.Equal(t, 0, code, "%s", errOut.String())
	var logged []struct {
		Status       string `json:"status"`
		Redeliveries int    `json:"redeliveries"`
		Attempts     []struct {
			Redelivery int `json:"redelivery"`
			StatusCode int `json:"status_code"`
		} `json:"attempts"`
	}
	require.NoError(t, json.Unmarshal(out.Bytes(), &logged))
	require.Len(t, logged, 1)
	require.Eventually(t, func() bool {
		out.Reset()
		_ = ctl.Execute(ctx, []string{"-o", "json", "webhooks", "deliveries", "--event", paymentEventID}, ctl.Env{
			Getenv: func(k string) string { return vars[k] }, Stdout: &out, Stderr: &errOut, Temporal: st.Temporal.Client(),
		})
		_ = json.Unmarshal(out.Bytes(), &logged)
		return len(logged) == 1 && logged[0].Status == "succeeded" && logged[0].Redeliveries == 1
	}, 10*time.Second, 100*time.Millisecond)
	lastAttempt := logged[0].Attempts[len(logged[0].Attempts)-1]
	require.Equal(t, 1, lastAttempt.Redelivery)
	require.Equal(t, http.StatusNoContent, lastAttempt.StatusCode)
}
