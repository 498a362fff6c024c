package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"paysaga/api"
	"paysaga/internal/app"
)

func TestWorkerHTTPProbesAndMetrics(t *testing.T) {
	state := &app.WorkerRunning{}
	failing := errors.New("redis: connection refused")
	redisErr := failing
	checks := []api.Check{
		{Name: "database", Func: func(context.Context) error { return nil }},
		{Name: "redis", Func: func(context.Context) error { return redisErr }},
		state.Check(),
	}
	srv := httptest.NewServer(app.WorkerHTTP(checks, slog.New(slog.DiscardHandler)))
	t.Cleanup(srv.Close)
	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}
	ready := func() (int, api.ReadyResponse) {
		code, body := get("/readyz")
		var r api.ReadyResponse
		require.NoError(t, json.Unmarshal([]byte(body), &r), body)
		return code, r
	}

	code, _ := get("/healthz")
	require.Equal(t, http.StatusOK, code, "alive whatever the dependencies")
	code, r := ready()
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Equal(t, map[string]string{"database": "ok", "redis": "fail", "worker": "fail"}, r.Checks)
	require.NotContains(t, r.Status, "connection refused", "why goes to the log, not to the probe")

	redisErr = nil
	state.Started()
	code, r = ready()
	require.Equal(t, http.StatusOK, code, r)
	require.Equal(t, "ok", r.Status)

	state.Fatal(errors.New("namespace not found"))
	code, r = ready()
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Equal(t, "fail", r.Checks["worker"])

	code, body := get("/metrics")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "go_goroutines", "the default registry")
	code, _ = get("/v1/payments")
	require.Equal(t, http.StatusNotFound, code, "the worker serves no API")
}
