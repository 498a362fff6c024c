package app_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paysaga/config"
	"paysaga/internal/app"
	"paysaga/seal"
	"paysaga/store/storetest"
)

// Issue 11, Low: the HTTP server bounds how long a client may take to send its request and to
// read the answer — except the notification stream, which lasts as long as the client listens
// (net/http lifts the read deadline once the request is read; the stream sets a deadline on
// each of its writes, which replaces the server's).
func TestServeTimeoutsSpareTheNotificationStream(t *testing.T) {
	for _, o := range []app.ServeOptions{app.DefaultServeOptions, app.ServeOptionsFor(config.Config{PaymentSyncWait: 5 * time.Minute})} {
		require.Positive(t, o.ReadHeaderTimeout)
		require.Positive(t, o.ReadTimeout)
		require.Positive(t, o.IdleTimeout)
		require.Greater(t, o.WriteTimeout, time.Minute)
	}
	require.Greater(t, app.ServeOptionsFor(config.Config{PaymentSyncWait: 5 * time.Minute}).WriteTimeout, 5*time.Minute,
		"a synchronous answer gets its configured wait")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg, err := config.Load(func(k string) string {
		return map[string]string{"PAYSAGA_NOTIFY_HEARTBEAT": "100ms"}[k]
	})
	require.NoError(t, err)
	logger := slog.New(slog.DiscardHandler)
	rdb := testRedis(t)
	parts := &app.Parts{Config: cfg, Logger: logger, DB: storetest.Open(t, "sqlite"), Redis: rdb,
		Dev: true, Keys: seal.NewDevKeyring(), Metrics: app.NewRegistry()}
	parts.Hub, err = app.NewHub(ctx, cfg, rdb, logger)
	require.NoError(t, err)
	srv, err := parts.API()
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan error, 1)
	// The write timeout leaves a login (a password hash, slow under -race) time to answer.
	opts := app.ServeOptions{ReadHeaderTimeout: 300 * time.Millisecond, ReadTimeout: 300 * time.Millisecond,
		WriteTimeout: 3 * time.Second, IdleTimeout: 5 * time.Second}
	go func() { done <- app.ServeWith(ctx, ln, srv, logger, opts) }()
	t.Cleanup(func() { _ = parts.Hub.Close(); cancel(); <-done })
	base := "http://" + ln.Addr().String()

	// A client that announces a body and never sends it is cut off.
	conn, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer conn.Close()
	_, err = io.WriteString(conn, "POST /v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
	require.NoError(t, err)
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(5*time.Second)))
	start := time.Now()
	_, err = io.ReadAll(conn) // whatever the server answers, it closes the connection
	var ne net.Error
	require.False(t, errors.As(err, &ne) && ne.Timeout(), "the server kept a stalled request open for 5 s")
	require.Less(t, time.Since(start), 4*time.Second)

	// The stream outlives every timeout, with its heartbeats.
	email := newEmail("stream")
	resp, err := http.Post(base+"/v1/auth/signup", "application/json",
		strings.NewReader(`{"email":"`+email+`","password":"`+goodPassword+`","name":"Kim"}`))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	resp, err = http.Post(base+"/v1/auth/login", "application/json", strings.NewReader(`{"email":"`+email+`","password":"`+goodPassword+`"}`))
	require.NoError(t, err)
	var tp struct {
		AccessToken string `json:"access_token"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&tp))
	resp.Body.Close()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/notifications/stream", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+tp.AccessToken)
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	sc := bufio.NewScanner(resp.Body)
	start = time.Now()
	beats := 0
	for time.Since(start) < opts.WriteTimeout+time.Second {
		require.True(t, sc.Scan(), "the stream was cut after %v (%d heartbeats): %v", time.Since(start), beats, sc.Err())
		if sc.Text() == ": heartbeat" {
			beats++
		}
	}
	require.Greater(t, beats, 20)
}
