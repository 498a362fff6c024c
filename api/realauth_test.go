package api_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"paysaga"
	"paysaga/api"
	"paysaga/auth"
	"paysaga/store"
	"paysaga/store/storetest"
)

// These tests run the API against the real auth service, on a migrated SQLite database and the
// Redis at PAYSAGA_TEST_REDIS_ADDR: what they check (token forgery, rate limits, refresh reuse)
// is only meaningful against the real thing. An unreachable Redis fails them.

const testSecret = "api-test-secret-0123456789abcdef-0123456789"

type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type realEnv struct {
	*testEnv
	db    *store.DB
	svc   *auth.Service
	clock *testClock
}

func newRealEnv(t *testing.T, mutate ...func(*auth.Config)) *realEnv {
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

	// A key prefix of its own keeps this test's rate-limit counters away from every other run.
	prefix := "paysaga:test:api:" + strings.TrimPrefix(paysaga.NewID("t_"), "t_") + ":"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		keys, _ := rdb.Keys(ctx, prefix+"*").Result()
		if len(keys) > 0 {
			_ = rdb.Del(ctx, keys...).Err()
		}
	})

	clock := &testClock{now: time.Now().UTC().Truncate(time.Second)}
	cfg := auth.Config{
		Secret:    []byte(testSecret),
		KeyPrefix: prefix,
		Now:       clock.Now,
		Password:  auth.PasswordParams{Memory: 1024, Time: 1, Threads: 1}, // cheap: tests hash a lot
	}
	for _, m := range mutate {
		m(&cfg)
	}
	db := storetest.Open(t, store.DriverSQLite)
	svc, err := auth.NewService(cfg, db, rdb)
	require.NoError(t, err)

	env := &testEnv{logs: &syncBuffer{}, reg: prometheus.NewRegistry()}
	env.srv = api.New(api.Deps{
		Auth:         svc,
		Users:        db,
		Logger:       slog.New(slog.NewJSONHandler(env.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		MaxBodyBytes: 1024,
		Metrics:      env.reg,
	})
	return &realEnv{testEnv: env, db: db, svc: svc, clock: clock}
}

const testPassword = "correct horse battery staple"

func (e *realEnv) signup(t *testing.T, email string) *paysaga.User {
	t.Helper()
	rec := e.do(t, req{method: http.MethodPost, path: "/v1/auth/signup",
		body: `{"email":"` + email + `","password":"` + testPassword + `","name":"Kim"}`})
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	var u paysaga.User
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &u))
	return &u
}

func (e *realEnv) login(t *testing.T, email, password string) (*auth.TokenPair, *httptest.ResponseRecorder) {
	t.Helper()
	rec := e.do(t, req{method: http.MethodPost, path: "/v1/auth/login",
		body: `{"email":"` + email + `","password":"` + password + `"}`})
	if rec.Code != http.StatusOK {
		return nil, rec
	}
	var tp auth.TokenPair
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &tp))
	return &tp, rec
}

func (e *realEnv) mustLogin(t *testing.T, email string) *auth.TokenPair {
	t.Helper()
	tp, rec := e.login(t, email, testPassword)
	require.NotNil(t, tp, "login: %d %s", rec.Code, rec.Body.String())
	return tp
}

func (e *realEnv) roleOf(t *testing.T, email string) paysaga.Role {
	t.Helper()
	u, err := e.db.UserByEmail(context.Background(), email)
	require.NoError(t, err)
	return u.Role
}

func (e *realEnv) requireNoUser(t *testing.T, email string) {
	t.Helper()
	_, err := e.db.UserByEmail(context.Background(), email)
	require.Equal(t, paysaga.ENOTFOUND, paysaga.ErrorCode(err), "user %s must not exist", email)
}

func TestRealAuthFlow(t *testing.T) {
	env := newRealEnv(t)
	u := env.signup(t, "kim@example.com")
	require.Equal(t, paysaga.RoleCustomer, u.Role)

	tp := env.mustLogin(t, "kim@example.com")
	require.Equal(t, "Bearer", tp.TokenType)
	require.Positive(t, tp.ExpiresIn)

	rec := env.do(t, req{method: http.MethodGet, path: "/v1/me", header: bearer(tp.AccessToken)})
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var me paysaga.User
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &me))
	require.Equal(t, u.ID, me.ID)
	require.NotContains(t, rec.Body.String(), "argon2", "the password hash never leaves the server")

	rec = env.do(t, req{method: http.MethodPost, path: "/v1/auth/refresh", body: `{"refresh_token":"` + tp.RefreshToken + `"}`})
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Equal(t, "no-store", rec.Header().Get("Cache-Control"))
	var next auth.TokenPair
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &next))

	rec = env.do(t, req{method: http.MethodPost, path: "/v1/auth/logout", body: `{"refresh_token":"` + next.RefreshToken + `"}`})
	require.Equal(t, http.StatusNoContent, rec.Code, rec.Body.String())
	rec = env.do(t, req{method: http.MethodPost, path: "/v1/auth/refresh", body: `{"refresh_token":"` + next.RefreshToken + `"}`})
	requireProblem(t, rec, http.StatusUnauthorized, paysaga.EUNAUTHORIZED)
}

func TestRealSignupRefusalsCreateNoUser(t *testing.T) {
	env := newRealEnv(t)
	const email = "new@example.com"
	tests := []struct {
		name   string
		body   string
		status int
		code   string
	}{
		{name: "oversized body", status: http.StatusRequestEntityTooLarge, code: api.CodeTooLarge,
			body: `{"email":"` + email + `","password":"` + testPassword + `","name":"` + strings.Repeat("K", 2000) + `"}`},
		{name: "unknown field", status: http.StatusUnprocessableEntity, code: paysaga.EINVALID,
			body: `{"email":"` + email + `","password":"` + testPassword + `","name":"Kim","role":"operator"}`},
		{name: "malformed JSON", status: http.StatusUnprocessableEntity, code: paysaga.EINVALID,
			body: `{"email":"` + email + `","password":"` + testPassword + `","name":"Kim"`},
		{name: "password too short (service rule)", status: http.StatusUnprocessableEntity, code: paysaga.EINVALID,
			body: `{"email":"` + email + `","password":"short","name":"Kim"}`},
		{name: "not an email (service rule)", status: http.StatusUnprocessableEntity, code: paysaga.EINVALID,
			body: `{"email":"new-at-example.com","password":"` + testPassword + `","name":"Kim"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := env.do(t, req{method: http.MethodPost, path: "/v1/auth/signup", body: tt.body})
			requireProblem(t, rec, tt.status, tt.code)
			env.requireNoUser(t, email)
		})
	}

	t.Run("duplicate email", func(t *testing.T) {
		first := env.signup(t, "dup@example.com")
		rec := env.do(t, req{method: http.MethodPost, path: "/v1/auth/signup",
			body: `{"email":"DUP@example.com","password":"another password 123","name":"Lee"}`})
		requireProblem(t, rec, http.StatusConflict, paysaga.ECONFLICT)
		u, err := env.db.UserByEmail(context.Background(), "dup@example.com")
		require.NoError(t, err)
		require.Equal(t, first.ID, u.ID)
		require.Equal(t, "Kim", u.Name, "the first user is untouched")
	})
}

// TestRealLoginFailuresLookAlike: an unknown email and a wrong password must be
// indistinguishable to the client, or login becomes an oracle for who has an account.
func TestRealLoginFailuresLookAlike(t *testing.T) {
	env := newRealEnv(t)
	env.signup(t, "kim@example.com")

	_, wrongPw := env.login(t, "kim@example.com", "not the password")
	_, unknown := env.login(t, "nobody@example.com", testPassword)

	p1 := requireProblem(t, wrongPw, http.StatusUnauthorized, paysaga.EUNAUTHORIZED)
	p2 := requireProblem(t, unknown, http.StatusUnauthorized, paysaga.EUNAUTHORIZED)
	p1.RequestID, p2.RequestID = "", ""
	require.Equal(t, p1, p2)
	for _, h := range []string{"WWW-Authenticate", "Content-Type", "Cache-Control", "Retry-After"} {
		require.Equal(t, wrongPw.Header().Get(h), unknown.Header().Get(h), h)
	}
}

func TestRealLoginRateLimit(t *testing.T) {
	env := newRealEnv(t, func(c *auth.Config) { c.MaxFailuresPerAccount = 3 })
	env.signup(t, "kim@example.com")

	for i := range 3 {
		_, rec := env.login(t, "kim@example.com", "guess "+strconv.Itoa(i))
		requireProblem(t, rec, http.StatusUnauthorized, paysaga.EUNAUTHORIZED)
	}
	// Even the right password is refused now: the limit protects the account, not the guess.
	tp, rec := env.login(t, "kim@example.com", testPassword)
	require.Nil(t, tp)
	requireProblem(t, rec, http.StatusTooManyRequests, paysaga.ERATELIMITED)
	secs, err := strconv.Atoi(rec.Header().Get("Retry-After"))
	require.NoError(t, err, "Retry-After must be whole seconds")
	require.Positive(t, secs)
	require.LessOrEqual(t, secs, 15*60)
	require.NotContains(t, rec.Body.String(), "access_token")
}

func TestRealExpiredAccessToken(t *testing.T) {
	env := newRealEnv(t)
	env.signup(t, "kim@example.com")
	tp := env.mustLogin(t, "kim@example.com")
	require.Equal(t, http.StatusOK, env.do(t, req{method: http.MethodGet, path: "/v1/me", header: bearer(tp.AccessToken)}).Code)

	env.clock.Advance(time.Duration(tp.ExpiresIn)*time.Second + time.Second)
	rec := env.do(t, req{method: http.MethodGet, path: "/v1/me", header: bearer(tp.AccessToken)})
	requireProblem(t, rec, http.StatusUnauthorized, paysaga.EUNAUTHORIZED)
	require.Contains(t, rec.Header().Get("WWW-Authenticate"), `error="invalid_token"`)
}

func TestRealRefreshTokenReuse(t *testing.T) {
	env := newRealEnv(t)
	env.signup(t, "kim@example.com")
	first := env.mustLogin(t, "kim@example.com")

	refresh := func(token string) *httptest.ResponseRecorder {
		return env.do(t, req{method: http.MethodPost, path: "/v1/auth/refresh", body: `{"refresh_token":"` + token + `"}`})
	}
	rec := refresh(first.RefreshToken)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var second auth.TokenPair
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &second))

	// The old token again, as a thief holding a copy would present it.
	requireProblem(t, refresh(first.RefreshToken), http.StatusUnauthorized, paysaga.EUNAUTHORIZED)
	// The reuse revoked the whole family, so the legitimate newer token is dead too.
	requireProblem(t, refresh(second.RefreshToken), http.StatusUnauthorized, paysaga.EUNAUTHORIZED)
}

// TestRealForgedTokensCannotGrant tries to become an operator with tokens the service did not
// issue. Each must get 401 and leave the target's role alone; a correctly signed token proves the
// forging helper itself is right.
func TestRealForgedTokensCannotGrant(t *testing.T) {
	env := newRealEnv(t)
	attacker := env.signup(t, "attacker@example.com")
	env.signup(t, "target@example.com")

	now := env.clock.Now()
	claims := func(mutate func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{
			"iss": "paysaga", "aud": []string{"paysaga-api"}, "sub": attacker.ID, "role": "operator",
			"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "jti": "jti_forged",
		}
		if mutate != nil {
			mutate(c)
		}
		return c
	}
	sign := func(t *testing.T, m jwt.SigningMethod, key any, c jwt.MapClaims) string {
		s, err := jwt.NewWithClaims(m, c).SignedString(key)
		require.NoError(t, err)
		return s
	}
	ourKey := []byte(testSecret)

	tests := []struct {
		name  string
		token func(t *testing.T) string
	}{
		{name: "signed with another key", token: func(t *testing.T) string {
			return sign(t, jwt.SigningMethodHS256, []byte("some-other-secret-0123456789abcdef"), claims(nil))
		}},
		{name: "alg none", token: func(t *testing.T) string {
			return sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims(nil))
		}},
		{name: "another HMAC algorithm with our key", token: func(t *testing.T) string {
			return sign(t, jwt.SigningMethodHS512, ourKey, claims(nil))
		}},
		{name: "wrong audience", token: func(t *testing.T) string {
			return sign(t, jwt.SigningMethodHS256, ourKey, claims(func(c jwt.MapClaims) { c["aud"] = []string{"another-service"} }))
		}},
		{name: "wrong issuer", token: func(t *testing.T) string {
			return sign(t, jwt.SigningMethodHS256, ourKey, claims(func(c jwt.MapClaims) { c["iss"] = "someone-else" }))
		}},
		{name: "expired", token: func(t *testing.T) string {
			return sign(t, jwt.SigningMethodHS256, ourKey, claims(func(c jwt.MapClaims) { c["exp"] = now.Add(-time.Minute).Unix() }))
		}},
		{name: "no expiry", token: func(t *testing.T) string {
			return sign(t, jwt.SigningMethodHS256, ourKey, claims(func(c jwt.MapClaims) { delete(c, "exp") }))
		}},
		{name: "signature stripped from a real token", token: func(t *testing.T) string {
			real := sign(t, jwt.SigningMethodHS256, ourKey, claims(nil))
			return real[:strings.LastIndexByte(real, '.')+1]
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := env.do(t, req{method: http.MethodPost, path: "/v1/admin/users/grant",
				body: `{"email":"target@example.com","role":"operator"}`, header: bearer(tt.token(t))})
			requireProblem(t, rec, http.StatusUnauthorized, paysaga.EUNAUTHORIZED)
			require.Contains(t, rec.Header().Get("WWW-Authenticate"), `error="invalid_token"`)
			require.Equal(t, paysaga.RoleCustomer, env.roleOf(t, "target@example.com"))
		})
	}

	t.Run("control: correctly signed", func(t *testing.T) {
		rec := env.do(t, req{method: http.MethodPost, path: "/v1/admin/users/grant",
			body: `{"email":"target@example.com","role":"merchant"}`, header: bearer(sign(t, jwt.SigningMethodHS256, ourKey, claims(nil)))})
		require.Equal(t, http.StatusNoContent, rec.Code, rec.Body.String())
		require.Equal(t, paysaga.RoleMerchant, env.roleOf(t, "target@example.com"))
	})
}

func TestRealGrantIsOperatorOnly(t *testing.T) {
	env := newRealEnv(t)
	env.signup(t, "customer@example.com")
	env.signup(t, "merchant@example.com")
	env.signup(t, "operator@example.com")
	env.signup(t, "target@example.com")
	ctx := context.Background()
	require.NoError(t, env.svc.Grant(ctx, "merchant@example.com", paysaga.RoleMerchant))
	require.NoError(t, env.svc.Grant(ctx, "operator@example.com", paysaga.RoleOperator))

	const body = `{"email":"target@example.com","role":"operator"}`
	for _, caller := range []string{"customer@example.com", "merchant@example.com"} {
		t.Run(caller, func(t *testing.T) {
			tp := env.mustLogin(t, caller)
			rec := env.do(t, req{method: http.MethodPost, path: "/v1/admin/users/grant", body: body, header: bearer(tp.AccessToken)})
			requireProblem(t, rec, http.StatusForbidden, paysaga.EFORBIDDEN)
			require.Equal(t, paysaga.RoleCustomer, env.roleOf(t, "target@example.com"))
		})
	}
	t.Run("operator", func(t *testing.T) {
		tp := env.mustLogin(t, "operator@example.com")
		rec := env.do(t, req{method: http.MethodPost, path: "/v1/admin/users/grant", body: body, header: bearer(tp.AccessToken)})
		require.Equal(t, http.StatusNoContent, rec.Code, rec.Body.String())
		require.Equal(t, paysaga.RoleOperator, env.roleOf(t, "target@example.com"))
	})
}
