package app_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	sdkworker "go.temporal.io/sdk/worker"

	"paysaga/config"
	"paysaga/internal/app"
	"paysaga/seal"
	"paysaga/store/storetest"
)

func testRedis(t *testing.T) redis.UniversalClient {
	t.Helper()
	addr := os.Getenv("PAYSAGA_TEST_REDIS_ADDR")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = rdb.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, rdb.Ping(ctx).Err(), "Redis at %s is unreachable; start it or set PAYSAGA_TEST_REDIS_ADDR", addr)
	return rdb
}

// randomAddr is a client address of this run only: the login counters live in the shared
// Redis for their window.
func randomAddr() string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("100.%d.%d.%d", 64+b[0]%64, b[1], b[2])
}

// loginServer is the API of a process configured by env, on a fresh database and the test
// Redis; post sends a request from peer (host:port) with X-Forwarded-For xff.
func loginServer(t *testing.T, env map[string]string) func(path, body, peer, xff string) *httptest.ResponseRecorder {
	t.Helper()
	cfg, err := config.Load(func(k string) string { return env[k] })
	require.NoError(t, err)
	parts := &app.Parts{Config: cfg, Logger: slog.New(slog.DiscardHandler), DB: storetest.Open(t, "sqlite"),
		Redis: testRedis(t), Dev: true, Keys: seal.NewDevKeyring(), Metrics: app.NewRegistry()}
	srv, err := parts.API()
	require.NoError(t, err)
	return func(path, body, peer, xff string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.RemoteAddr = peer
		req.Header.Set("X-Forwarded-For", xff)
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		return rec
	}
}

func newEmail(who string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return who + "-" + hex.EncodeToString(b[:]) + "@example.com"
}

const goodPassword = "correct horse battery staple"

// Issue 11, item 11: behind a reverse proxy every client arrives from the proxy's address.
// With the proxy named in PAYSAGA_TRUSTED_PROXIES, the API takes the client's address from
// X-Forwarded-For, so 20 failed logins from one client do not lock out the others.
func TestLoginBehindATrustedProxy(t *testing.T) {
	post := loginServer(t, map[string]string{"PAYSAGA_TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.10"})
	const proxy = "10.1.2.3:41000"
	victim := newEmail("victim")
	rec := post("/v1/auth/signup", `{"email":"`+victim+`","password":"`+goodPassword+`","name":"Kim"}`, proxy, randomAddr())
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())

	attacker := randomAddr()
	for i := range 25 {
		rec := post("/v1/auth/login", fmt.Sprintf(`{"email":"guess%d-%s","password":"wrong password!"}`, i, victim), proxy, attacker)
		require.Contains(t, []int{http.StatusUnauthorized, http.StatusTooManyRequests}, rec.Code, rec.Body.String())
	}
	rec = post("/v1/auth/login", `{"email":"`+newEmail("guess")+`","password":"wrong password!"}`, proxy, attacker)
	require.Equal(t, http.StatusTooManyRequests, rec.Code, "the guessing client is limited: %s", rec.Body.String())
	// The attacker moves to another address and guesses the victim's own password.
	attacker = randomAddr()
	for range 8 {
		rec := post("/v1/auth/login", `{"email":"`+victim+`","password":"wrong password!"}`, proxy, attacker)
		require.Contains(t, []int{http.StatusUnauthorized, http.StatusTooManyRequests}, rec.Code, rec.Body.String())
	}
	rec = post("/v1/auth/login", `{"email":"`+victim+`","password":"wrong password!"}`, proxy, attacker)
	require.Equal(t, http.StatusTooManyRequests, rec.Code, "slowed down on the victim's account: %s", rec.Body.String())

	rec = post("/v1/auth/login", `{"email":"`+victim+`","password":"`+goodPassword+`"}`, proxy, randomAddr())
	require.Equal(t, http.StatusOK, rec.Code, "another client behind the same proxy logs in: %s", rec.Body.String())
}

// By default no proxy is trusted: a client cannot escape the per-address limit by sending a
// new X-Forwarded-For with every guess.
func TestLoginIgnoresForwardedForByDefault(t *testing.T) {
	post := loginServer(t, nil)
	peer := randomAddr() + ":5000"
	limited := false
	for range 25 {
		rec := post("/v1/auth/login", `{"email":"`+newEmail("guess")+`","password":"wrong password!"}`, peer, randomAddr())
		limited = limited || rec.Code == http.StatusTooManyRequests
	}
	require.True(t, limited, "25 guesses from one address are limited, whatever X-Forwarded-For says")
}

func TestWorkerOptionsTurnEagerActivitiesOff(t *testing.T) {
	o := app.WorkerOptions(sdkworker.Options{MaxConcurrentActivityTaskPollers: 4})
	require.True(t, o.DisableEagerActivities, "eager dispatch stalled payments for a minute at saturation")
	require.Equal(t, 4, o.MaxConcurrentActivityTaskPollers, "the rest is kept")
	o = app.WorkerOptions(sdkworker.Options{MaxConcurrentEagerActivityExecutionSize: 4})
	require.False(t, o.DisableEagerActivities, "asked for, bounded: on")
}
