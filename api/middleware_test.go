package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/require"

	"paysaga"
	"paysaga/api"
)

func TestProblemMapsErrors(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		status     int
		code       string
		detail     string // "" = don't care
		retryAfter string
	}{
		{name: "invalid", err: paysaga.Errorf(paysaga.EINVALID, "amount must be positive"), status: 422, code: paysaga.EINVALID, detail: "amount must be positive"},
		{name: "idempotency", err: paysaga.Errorf(paysaga.EIDEMPOTENCY, "key reused"), status: 422, code: paysaga.EIDEMPOTENCY},
		{name: "unauthorized", err: paysaga.Errorf(paysaga.EUNAUTHORIZED, "no"), status: 401, code: paysaga.EUNAUTHORIZED},
		{name: "forbidden", err: paysaga.Errorf(paysaga.EFORBIDDEN, "no"), status: 403, code: paysaga.EFORBIDDEN},
		{name: "not found", err: paysaga.Errorf(paysaga.ENOTFOUND, "no payment"), status: 404, code: paysaga.ENOTFOUND},
		{name: "conflict", err: paysaga.Errorf(paysaga.ECONFLICT, "already refunded"), status: 409, code: paysaga.ECONFLICT},
		{name: "rate limited", err: paysaga.Errorf(paysaga.ERATELIMITED, "slow down"), status: 429, code: paysaga.ERATELIMITED},
		{name: "rate limited, wait known", err: api.WithRetryAfter(paysaga.Errorf(paysaga.ERATELIMITED, "slow down"), 30*time.Second),
			status: 429, code: paysaga.ERATELIMITED, retryAfter: "30"},
		{name: "declined", err: paysaga.Errorf(paysaga.EDECLINED, "insufficient funds"), status: 402, code: paysaga.EDECLINED, detail: "insufficient funds"},
		{name: "unavailable", err: paysaga.Errorf(paysaga.EUNAVAILABLE, "bank down"), status: 503, code: paysaga.EUNAVAILABLE, detail: "bank down"},
		{name: "wrapped domain error keeps its code", err: fmt.Errorf("refund pay_1: %w", paysaga.Errorf(paysaga.ECONFLICT, "over the captured amount")),
			status: 409, code: paysaga.ECONFLICT, detail: "over the captured amount"},
		{name: "timeout", err: fmt.Errorf("query: %w", context.DeadlineExceeded), status: 503, code: paysaga.EUNAVAILABLE},
		{name: "validation error names fields", err: &api.ValidationError{Fields: []api.FieldError{{Field: "amount", Message: "must be positive"}}},
			status: 422, code: paysaga.EINVALID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t)
			env.srv.Engine().GET("/test", func(c *gin.Context) { api.Problem(c, tt.err) })
			rec := env.do(t, req{method: http.MethodGet, path: "/test"})
			p := requireProblem(t, rec, tt.status, tt.code)
			if tt.detail != "" {
				require.Equal(t, tt.detail, p.Detail)
			}
			require.Equal(t, "/test", p.Instance)
			require.Equal(t, tt.retryAfter, rec.Header().Get("Retry-After"))
		})
	}
}

// TestProblemHidesInternalErrors: whatever an unexpected error says (SQL, hostnames, a domain
// message on an internal code), the client gets a generic 500; the log gets the cause.
func TestProblemHidesInternalErrors(t *testing.T) {
	tests := []struct {
		name string
		err  error
	}{
		{name: "plain error", err: errors.New("dial tcp 10.0.0.7:3306: SECRET-DETAIL")},
		{name: "internal domain error", err: paysaga.Errorf(paysaga.EINTERNAL, "SECRET-DETAIL")},
		{name: "unknown domain code", err: paysaga.Errorf("made_up", "SECRET-DETAIL")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t)
			env.srv.Engine().GET("/test", func(c *gin.Context) { api.Problem(c, tt.err) })
			rec := env.do(t, req{method: http.MethodGet, path: "/test"})
			p := requireProblem(t, rec, http.StatusInternalServerError, paysaga.EINTERNAL)
			require.NotContains(t, rec.Body.String(), "SECRET-DETAIL")
			line := findLog(t, env.logs.String(), "request failed")
			require.Contains(t, line["error"], "SECRET-DETAIL")
			require.Equal(t, p.RequestID, line["request_id"])
		})
	}
}

func TestPanicBecomesProblem(t *testing.T) {
	env := newTestEnv(t)
	env.srv.Engine().GET("/boom", func(*gin.Context) { panic("SECRET-PANIC") })

	rec := env.do(t, req{method: http.MethodGet, path: "/boom"})
	p := requireProblem(t, rec, http.StatusInternalServerError, paysaga.EINTERNAL)
	require.NotContains(t, rec.Body.String(), "SECRET-PANIC")

	line := findLog(t, env.logs.String(), "panic serving request")
	require.Equal(t, "SECRET-PANIC", line["panic"])
	require.Contains(t, line["stack"], "runtime/debug.Stack")
	require.Equal(t, p.RequestID, line["request_id"])
	access := findLog(t, env.logs.String(), "http request")
	require.EqualValues(t, 500, access["status"])

	// The server still serves.
	require.Equal(t, http.StatusOK, env.do(t, req{method: http.MethodGet, path: "/healthz"}).Code)
}

func TestUnknownRoutesAreProblems(t *testing.T) {
	env := newTestEnv(t)
	tests := []struct {
		name   string
		method string
		path   string
		status int
		code   string
		allow  string
	}{
		{name: "unknown path", method: http.MethodGet, path: "/v1/nope", status: 404, code: paysaga.ENOTFOUND},
		{name: "trailing slash is not redirected", method: http.MethodGet, path: "/v1/me/", status: 404, code: paysaga.ENOTFOUND},
		{name: "wrong method", method: http.MethodDelete, path: "/v1/me", status: 405, code: api.CodeMethodNotAllowed, allow: "GET"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := env.do(t, req{method: tt.method, path: tt.path})
			requireProblem(t, rec, tt.status, tt.code)
			require.Equal(t, tt.allow, rec.Header().Get("Allow"))
		})
	}
}

func TestRequestID(t *testing.T) {
	tests := []struct {
		name string
		sent string
		echo bool // the server must answer with the ID sent
	}{
		{name: "none sent", sent: ""},
		{name: "a UUID", sent: "3f2c1a9e-7b7d-4c55-9a0e-4b8f3d2a1c10", echo: true},
		{name: "too long", sent: strings.Repeat("a", 129)},
		{name: "markup", sent: "<script>alert(1)</script>"},
		{name: "spaces", sent: "a b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t)
			rec := env.do(t, req{method: http.MethodGet, path: "/v1/nope", header: map[string]string{api.RequestIDHeader: tt.sent}})
			got := rec.Header().Get(api.RequestIDHeader)
			if tt.echo {
				require.Equal(t, tt.sent, got)
			} else {
				require.True(t, strings.HasPrefix(got, "req_"), "generated ID, got %q", got)
			}
			p := requireProblem(t, rec, http.StatusNotFound, paysaga.ENOTFOUND)
			require.Equal(t, got, p.RequestID)
			require.Equal(t, got, findLog(t, env.logs.String(), "http request")["request_id"])
		})
	}
}

// TestAccessLog checks the one line per request has what an operator needs and nothing that
// could leak a credential.
func TestAccessLog(t *testing.T) {
	env := newTestEnv(t)
	_, token := env.auth.addUser("c@example.com", "hunter2-SECRET", paysaga.RoleCustomer)
	rec := env.do(t, req{method: http.MethodPost, path: "/v1/auth/login",
		body: `{"email":"c@example.com","password":"hunter2-SECRET"}`})
	require.Equal(t, http.StatusOK, rec.Code)
	rec = env.do(t, req{method: http.MethodGet, path: "/v1/me?x=1", header: bearer(token)})
	require.Equal(t, http.StatusOK, rec.Code)

	logs := env.logs.String()
	require.NotContains(t, logs, "hunter2-SECRET")
	require.NotContains(t, logs, token)
	require.NotContains(t, logs, "c@example.com")
	require.NotContains(t, logs, "x=1")

	var lines []map[string]any
	sc := bufio.NewScanner(strings.NewReader(logs))
	for sc.Scan() {
		var m map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &m))
		if m["msg"] == "http request" {
			lines = append(lines, m)
		}
	}
	require.Len(t, lines, 2)
	require.Equal(t, "/v1/auth/login", lines[0]["route"])
	require.Equal(t, "POST", lines[0]["method"])
	require.EqualValues(t, 200, lines[0]["status"])
	require.NotEmpty(t, lines[0]["request_id"])
	require.Contains(t, lines[0], "duration")
	require.Equal(t, "/v1/me", lines[1]["route"])
	require.NotEmpty(t, lines[1]["user_id"])
}

func TestMetrics(t *testing.T) {
	env := newTestEnv(t)
	require.Equal(t, http.StatusOK, env.do(t, req{method: http.MethodGet, path: "/healthz"}).Code)
	require.Equal(t, http.StatusNotFound, env.do(t, req{method: http.MethodGet, path: "/v1/payments/pay_123/nope"}).Code)
	require.Equal(t, http.StatusUnauthorized, env.do(t, req{method: http.MethodGet, path: "/v1/me"}).Code)

	rec := env.do(t, req{method: http.MethodGet, path: "/metrics"})
	require.Equal(t, http.StatusOK, rec.Code)
	body := rec.Body.String()
	for _, want := range []string{
		`paysaga_http_requests_total{method="GET",route="/healthz",status="200"} 1`,
		`paysaga_http_requests_total{method="GET",route="unmatched",status="404"} 1`,
		`paysaga_http_requests_total{method="GET",route="/v1/me",status="401"} 1`,
		`paysaga_http_request_duration_seconds_count{method="GET",route="/healthz",status="200"} 1`,
		`paysaga_http_request_duration_seconds_bucket{method="GET",route="/healthz",status="200",le="+Inf"} 1`,
	} {
		require.Contains(t, body, want)
	}
	require.NotContains(t, body, "pay_123", "raw paths must never become labels")
}

func TestHealthz(t *testing.T) {
	env := newTestEnv(t, func(d *api.Deps) {
		d.Readiness = []api.Check{{Name: "database", Func: func(context.Context) error { return errors.New("down") }}}
	})
	rec := env.do(t, req{method: http.MethodGet, path: "/healthz"})
	require.Equal(t, http.StatusOK, rec.Code, "liveness must not depend on dependencies")
	require.JSONEq(t, `{"status":"ok"}`, rec.Body.String())
}

func TestReadyz(t *testing.T) {
	ok := func(context.Context) error { return nil }
	fail := func(context.Context) error { return errors.New("connection refused") }
	hang := func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	deaf := func(context.Context) error { <-release; return nil } // ignores its context entirely
	boom := func(context.Context) error { panic("boom") }

	tests := []struct {
		name   string
		checks []api.Check
		status int
		want   string
	}{
		{name: "all ok", status: 200,
			checks: []api.Check{{"database", ok}, {"redis", ok}, {"temporal", ok}},
			want:   `{"status":"ok","checks":{"database":"ok","redis":"ok","temporal":"ok"}}`},
		{name: "no checks", status: 200, want: `{"status":"ok","checks":{}}`},
		{name: "one fails", status: 503,
			checks: []api.Check{{"database", ok}, {"redis", fail}, {"temporal", ok}},
			want:   `{"status":"unavailable","checks":{"database":"ok","redis":"fail","temporal":"ok"}}`},
		{name: "one hangs", status: 503,
			checks: []api.Check{{"database", ok}, {"temporal", hang}},
			want:   `{"status":"unavailable","checks":{"database":"ok","temporal":"timeout"}}`},
		{name: "one ignores its deadline", status: 503,
			checks: []api.Check{{"database", ok}, {"temporal", deaf}},
			want:   `{"status":"unavailable","checks":{"database":"ok","temporal":"timeout"}}`},
		{name: "one panics", status: 503,
			checks: []api.Check{{"database", boom}},
			want:   `{"status":"unavailable","checks":{"database":"fail"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t, func(d *api.Deps) {
				d.Readiness = tt.checks
				d.ReadyTimeout = 250 * time.Millisecond // generous: the machine is shared and "ok" must not time out
			})
			rec := env.do(t, req{method: http.MethodGet, path: "/readyz"})
			require.Equal(t, tt.status, rec.Code)
			require.JSONEq(t, tt.want, rec.Body.String())
			require.NotContains(t, rec.Body.String(), "connection refused", "causes go to the log only")
		})
	}
}

// findLog returns the first JSON log line with the given message.
func findLog(t *testing.T, logs, msg string) map[string]any {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &m))
		if m["msg"] == msg {
			return m
		}
	}
	require.Failf(t, "log line not found", "no %q in:\n%s", msg, logs)
	return nil
}
