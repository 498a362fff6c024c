package e2e

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paysaga"
	"paysaga/config"
	"paysaga/internal/stack"
	"paysaga/internal/temporaltest"
)

// The embedded default — what `make run` starts: SQLite, the in-process Redis-protocol server,
// no broker — still tells customers and the team what happened: notifications flow to the
// stream and alerts to the webhook without RabbitMQ.
func TestEmbeddedDefaultNotifiesAndAlertsWithoutABroker(t *testing.T) {
	ctx := context.Background()
	hook, hookURL := newWebhook(t)
	bin, err := temporaltest.Binary()
	require.NoError(t, err)
	dir := t.TempDir()
	cfg, err := config.Load(func(name string) string {
		switch name {
		case "PAYSAGA_DB_DRIVER":
			return "sqlite"
		case "PAYSAGA_DB_DSN":
			return filepath.Join(dir, "paysaga.db")
		case "PAYSAGA_ALERT_WEBHOOK_URL":
			return hookURL
		}
		return ""
	})
	require.NoError(t, err)
	cfg.RedisAddr, cfg.AMQPURL = "", "" // the in-process Redis-protocol server; no broker
	st, err := stack.Start(ctx, stack.Options{Config: cfg, Dev: true, TemporalBin: bin})
	require.NoError(t, err)
	t.Cleanup(st.Close)
	srv := httptest.NewServer(st.API)
	t.Cleanup(srv.Close)

	c := newUserOn(t, st, srv.URL, paysaga.RoleCustomer)
	m := newUserOn(t, st, srv.URL, paysaga.RoleMerchant)
	rich := seedAccountOn(t, st, srv.URL, c, 100_000)
	poor := seedAccountOn(t, st, srv.URL, c, 100)
	s := openStream(t, srv.URL, c, "")

	paid := callAt(t, srv.URL, "POST", "/v1/payments", c.Token, map[string]any{
		"account_id": rich.ID, "amount": 2_000, "merchant_id": m.ID}, "Idempotency-Key", "embedded-1")
	require.Equal(t, http.StatusOK, paid.Status, "%s", paid.Raw)
	declined := callAt(t, srv.URL, "POST", "/v1/payments", c.Token, map[string]any{
		"account_id": poor.ID, "amount": 2_000, "merchant_id": m.ID}, "Idempotency-Key", "embedded-2")
	require.Equal(t, http.StatusPaymentRequired, declined.Status, "%s", declined.Raw)
	declinedID := declined.Body["payment"].(map[string]any)["id"].(string)

	// Each outcome reaches the customer's stream, in order.
	seen := map[string]string{}
	for len(seen) < 2 {
		n := s.next(t)
		if n.Type == "payment.succeeded" || n.Type == "payment.failed" {
			seen[n.Payment.ID] = n.Type
		}
	}
	require.Equal(t, "payment.succeeded", seen[paid.str("id")])
	require.Equal(t, "payment.failed", seen[declinedID])

	// The declined one raised an alert, the successful one none.
	require.Eventually(t, func() bool { n, _ := hook.seen(declinedID); return n == 1 },
		30*time.Second, 20*time.Millisecond, "the alert reaches the webhook without a broker")
	n, _ := hook.seen(paid.str("id"))
	require.Zero(t, n)
}
