package app_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/stretchr/testify/require"

	"paysaga/config"
	"paysaga/events"
	"paysaga/internal/app"
	"paysaga/seal"
	"paysaga/store/storetest"
)

// TestRedisKeyPrefixCoversEveryKey runs what writes to Redis — sign-up and logins (tokens,
// rate limits), a payment event through the notification handler (the customer's log, channel
// and de-duplication, the balance mark), an API instance's notification hub (its channel) —
// with PAYSAGA_REDIS_KEY_PREFIX set, on a Redis of its own, and checks that every key and
// channel starts with the prefix: two deployments can share one Redis.
func TestRedisKeyPrefixCoversEveryKey(t *testing.T) {
	const prefix = "tenant-a:"
	mini := miniredis.RunT(t)
	cfg, err := config.Load(func(k string) string {
		return map[string]string{"PAYSAGA_REDIS_ADDR": mini.Addr(), "PAYSAGA_REDIS_KEY_PREFIX": prefix}[k]
	})
	require.NoError(t, err)
	rdb := app.NewRedis(cfg)
	t.Cleanup(func() { _ = rdb.Close() })
	ctx := context.Background()

	parts := &app.Parts{Config: cfg, Logger: slog.New(slog.DiscardHandler), DB: storetest.Open(t, "sqlite"),
		Redis: rdb, Dev: true, Keys: seal.NewDevKeyring(), Metrics: app.NewRegistry()}
	srv, err := parts.API()
	require.NoError(t, err)
	post := func(path, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.RemoteAddr = "198.51.100.7:4000"
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		return rec
	}
	email := newEmail("prefix")
	require.Equal(t, http.StatusCreated, post("/v1/auth/signup", `{"email":"`+email+`","password":"`+goodPassword+`","name":"Kim"}`).Code)
	require.Equal(t, http.StatusUnauthorized, post("/v1/auth/login", `{"email":"`+email+`","password":"wrong password!"}`).Code)
	require.Equal(t, http.StatusOK, post("/v1/auth/login", `{"email":"`+email+`","password":"`+goodPassword+`"}`).Code)

	// A balance known to both deployments: only this one's is marked outdated by its events.
	ours, theirs := prefix+"paysaga:balance:acc_1", "paysaga:balance:acc_1"
	require.NoError(t, mini.Set(ours, `{"balance":1000}`))
	require.NoError(t, mini.Set(theirs, `{"balance":1000}`))

	ev := events.Event{ID: "evt_prefix1", Type: "payment.succeeded", OccurredAt: time.Now(),
		Data: []byte(`{"id":"pay_1","customer_id":"usr_c1","merchant_id":"usr_m1","account_id":"acc_1"}`)}
	require.NoError(t, app.NotificationHandler(cfg, rdb)(ctx, ev))
	pub, err := app.NotifyingPublisher(cfg, events.NoBroker{Logger: slog.New(slog.DiscardHandler)}, rdb, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	require.NoError(t, pub.Publish(ctx, ev))

	hub, err := app.NewHub(ctx, cfg, rdb, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(func() { _ = hub.Close() })

	got, _ := mini.Get(ours)
	require.Contains(t, got, `"dirty":true`, "the deployment's balance is marked outdated")
	got, _ = mini.Get(theirs)
	require.Equal(t, `{"balance":1000}`, got, "the other deployment's balance is untouched")
	mini.Del(theirs)

	keys := mini.Keys()
	kinds := map[string]bool{}
	for _, k := range keys {
		require.True(t, strings.HasPrefix(k, prefix), "key %q is outside the deployment's prefix %q", k, prefix)
		kind, _, _ := strings.Cut(strings.TrimPrefix(k, prefix+"paysaga:"), ":")
		kinds[kind] = true
	}
	for _, want := range []string{"auth", "notify", "balance"} {
		require.True(t, kinds[want], "no %s key was written (keys: %v)", want, keys)
	}
	require.Eventually(t, func() bool {
		chans, err := rdb.PubSubChannels(ctx, "*").Result()
		return err == nil && len(chans) > 0
	}, 5*time.Second, 20*time.Millisecond, "the hub subscribed to nothing")
	chans, err := rdb.PubSubChannels(ctx, "*").Result()
	require.NoError(t, err)
	for _, c := range chans {
		require.True(t, strings.HasPrefix(c, prefix), "channel %q is outside the prefix", c)
	}

	// Without a prefix the keys are where they always were.
	plain, err := config.Load(func(string) string { return "" })
	require.NoError(t, err)
	require.Equal(t, "paysaga:", app.RedisKeyPrefix(plain))
}
