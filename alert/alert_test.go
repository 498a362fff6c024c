package alert_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paysaga/alert"
	"paysaga/events"
)

// A payment as some future publisher might put it, with everything an alert must never show.
const leakyPayment = `{
	"id": "pay_123", "customer_id": "usr_c", "merchant_id": "usr_m", "account_id": "acct_9",
	"amount": 1234567, "currency": "KRW", "status": "FAILED",
	"failure_code": "E1001", "failure_message": "잔액부족 <계좌 302-1234-5678-91>",
	"account_number": "3021234567891", "fin_account": "00820100012345678901234567",
	"access_token": "tok-very-secret", "birth_date": "19900101", "description": "생일 19900101"
}`

func TestMessageShowsTheFactsAndNoSecrets(t *testing.T) {
	ev := events.Event{ID: "evt_42", Type: events.PaymentFailed, OccurredAt: time.Date(2026, 11, 25, 1, 2, 3, 0, time.UTC),
		Data: json.RawMessage(leakyPayment)}
	raw, err := json.Marshal(alert.Message(ev))
	require.NoError(t, err)
	s := string(raw)
	for _, secret := range []string{"3021234567891", "302-1234-5678-91", "00820100012345678901234567", "tok-very-secret", "19900101"} {
		require.NotContains(t, s, secret)
	}
	for _, want := range []string{"Payment failed", "pay_123", "FAILED", "1,234,567 KRW", "usr_c", "usr_m", "acct_9",
		"E1001", "잔액부족", "****7891", "evt_42", "payment.failed", "2026-11-25T01:02:03Z"} {
		require.Contains(t, s, want)
	}
	require.Contains(t, s, `\u0026lt;계좌`, "mrkdwn control characters are escaped")
	require.NotContains(t, s, "*Id*", "a payment's id is shown once, as the payment")

	var p struct {
		Text   string           `json:"text"`
		Blocks []map[string]any `json:"blocks"`
	}
	require.NoError(t, json.Unmarshal(raw, &p))
	require.True(t, strings.HasPrefix(p.Text, "Payment failed: pay_123"), p.Text)
	require.NotEmpty(t, p.Blocks)
	for _, b := range p.Blocks {
		require.Contains(t, []string{"section", "context"}, b["type"])
	}
}

func TestMessageOfOtherEvents(t *testing.T) {
	refund := alert.Message(events.Event{ID: "evt_r", Type: events.RefundFailed,
		Data: json.RawMessage(`{"id":"ref_1","payment_id":"pay_1","amount":500,"status":"FAILED","reason":"account 3021234567891"}`)})
	require.Equal(t, "Refund failed: ref_1, 500 KRW", refund.Text)
	raw, _ := json.Marshal(refund)
	require.Contains(t, string(raw), "pay_1")
	require.NotContains(t, string(raw), "3021234567891", "free text other than the bank's is left out")

	unreadable := alert.Message(events.Event{ID: "evt_x", Type: "refund.compensation_failed", Data: json.RawMessage(`not json`)})
	require.Equal(t, "Compensation failed (refund.compensation_failed): evt_x", unreadable.Text)
}

func TestWanted(t *testing.T) {
	for typ, want := range map[string]bool{
		"payment.failed": true, "payment.unknown": true, "refund.failed": true, "refund.unknown": true,
		"payment.compensation_failed": true, "payment.succeeded": false, "refund.succeeded": false,
		"account.registered": false, "payment.canceled": false,
	} {
		require.Equal(t, want, alert.Wanted(typ), typ)
	}
}

type receiver struct {
	mu     sync.Mutex
	status int
	bodies []string
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.bodies = append(r.bodies, req.Header.Get("Content-Type")+" "+string(b))
	w.WriteHeader(r.status)
}

func TestHandleDelivers(t *testing.T) {
	rec := &receiver{status: http.StatusOK}
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	a, err := alert.New(alert.Config{WebhookURL: srv.URL + "/services/T000/B000/secret-token"})
	require.NoError(t, err)
	ctx := context.Background()
	ev := events.Event{ID: "evt_1", Type: events.PaymentUnknown, Data: json.RawMessage(leakyPayment)}

	require.NoError(t, a.Handle(ctx, events.Event{ID: "evt_0", Type: events.PaymentSucceeded, Data: json.RawMessage(leakyPayment)}))
	require.Empty(t, rec.bodies, "no alert for a success")

	require.NoError(t, a.Handle(ctx, ev))
	require.Len(t, rec.bodies, 1)
	require.True(t, strings.HasPrefix(rec.bodies[0], "application/json {"))
	require.Contains(t, rec.bodies[0], `"text":"Payment outcome UNKNOWN`)

	rec.status = http.StatusServiceUnavailable
	err = a.Handle(ctx, ev)
	require.Error(t, err)
	require.False(t, events.IsPermanent(err), "a 503 is worth retrying")
	rec.status = http.StatusTooManyRequests
	require.False(t, events.IsPermanent(a.Handle(ctx, ev)))
	rec.status = http.StatusBadRequest
	err = a.Handle(ctx, ev)
	require.True(t, events.IsPermanent(err), "a refused message is not retried")
	require.NotContains(t, err.Error(), "secret-token")
}

func TestHandleNeverLeaksTheWebhookURL(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL + "/services/T000/B000/secret-token"
	srv.Close() // the receiver is down
	a, err := alert.New(alert.Config{WebhookURL: url, Timeout: time.Second})
	require.NoError(t, err)
	err = a.Handle(context.Background(), events.Event{ID: "evt_1", Type: events.PaymentFailed, Data: json.RawMessage(`{}`)})
	require.Error(t, err)
	require.False(t, events.IsPermanent(err))
	require.NotContains(t, err.Error(), "secret-token")

	_, err = alert.New(alert.Config{WebhookURL: "not a url"})
	require.Error(t, err)
}
