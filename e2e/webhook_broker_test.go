package e2e

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	"paysaga"
	"paysaga/config"
	"paysaga/internal/app"
	"paysaga/internal/stack"
	"paysaga/internal/temporaltest"
	"paysaga/workflows"
)

// TestWebhooksThroughTheBroker: with RabbitMQ, events reach merchants' endpoints through the
// worker's paysaga.webhooks consumer (here on a queue of the test's own), signed, once each.
func TestWebhooksThroughTheBroker(t *testing.T) {
	ctx := context.Background()
	bin, err := temporaltest.Binary()
	require.NoError(t, err)
	dir := t.TempDir()
	cfg, err := config.Load(func(name string) string {
		switch name {
		case "PAYSAGA_DB_DRIVER":
			return "sqlite"
		case "PAYSAGA_DB_DSN":
			return filepath.Join(dir, "paysaga.db")
		case "PAYSAGA_AMQP_URL":
			return env.amqp
		case "PAYSAGA_WEBHOOK_ALLOW_LOOPBACK":
			return "true"
		}
		return ""
	})
	require.NoError(t, err)
	cfg.RedisAddr = ""
	st, err := stack.Start(ctx, stack.Options{Config: cfg, Dev: true, TemporalBin: bin,
		Webhooks: workflows.WebhookConfig{InitialInterval: 200 * time.Millisecond, MaximumInterval: time.Second, GiveUpAfter: 5 * time.Minute}})
	require.NoError(t, err)
	t.Cleanup(st.Close)
	srv := httptest.NewServer(st.API)
	t.Cleanup(srv.Close)

	suffix := strings.ToLower(paysaga.NewID(".e2e-"))
	n, err := st.StartNotifications(ctx, app.ConsumerOptions{
		NotificationsQueue: app.NotificationsQueue + suffix,
		WebhooksQueue:      app.WebhooksQueue + suffix,
		Webhooks:           app.WebhookDispatcher(st.Parts.DB, st.Parts.Temporal, st.Parts.Logger),
		QueueArgs:          amqp.Table{"x-expires": int32(60_000)},
		Backoff:            50 * time.Millisecond,
		MaxBackoff:         200 * time.Millisecond,
	})
	require.NoError(t, err)
	t.Cleanup(n.Stop)

	c := newUserOn(t, st, srv.URL, paysaga.RoleCustomer)
	m := newUserOn(t, st, srv.URL, paysaga.RoleMerchant)
	acct := seedAccountOn(t, st, srv.URL, c, 100_000)
	recv := &merchantReceiver{accepted: map[string][]byte{}, repeats: map[string]int{}}
	hook := httptest.NewServer(recv)
	t.Cleanup(hook.Close)
	created := callAt(t, srv.URL, "POST", "/v1/webhook-endpoints", m.Token, map[string]any{
		"url": hook.URL, "event_types": []string{"payment.succeeded"},
	}, "Idempotency-Key", "broker-endpoint")
	require.Equal(t, http.StatusCreated, created.Status, "%s", created.Raw)
	recv.mu.Lock()
	recv.secret = created.str("secret")
	recv.mu.Unlock()

	paid := callAt(t, srv.URL, "POST", "/v1/payments", c.Token, map[string]any{
		"account_id": acct.ID, "amount": 3_000, "merchant_id": m.ID}, "Idempotency-Key", "broker-pay-1")
	require.Equal(t, http.StatusOK, paid.Status, "%s", paid.Raw)
	require.Eventually(t, func() bool {
		accepted, _, _, _ := recv.snapshot()
		for _, b := range accepted {
			if strings.Contains(string(b), paid.str("id")) {
				return true
			}
		}
		return false
	}, 60*time.Second, 100*time.Millisecond, "the payment's event reaches the endpoint through the broker")
	accepted, repeats, _, bad := recv.snapshot()
	require.Empty(t, bad)
	require.Len(t, accepted, 1, "only the subscribed type")
	require.Empty(t, repeats)
}
