package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"paysaga"
	"paysaga/api"
	"paysaga/auth"
)

func init() { gin.SetMode(gin.TestMode) }

// fakeAuth is a small in-memory stand-in for *auth.Service: it knows the users the test put in
// it and the access tokens the test minted, and records every call so that tests can prove a
// refused request changed nothing.
type fakeAuth struct {
	mu       sync.Mutex
	users    map[string]*paysaga.User // by email
	password map[string]string        // by email
	tokens   map[string]*auth.Claims  // access token -> claims
	calls    map[string]int
	loginErr error // when set, Login fails with it
}

func newFakeAuth() *fakeAuth {
	return &fakeAuth{
		users:    map[string]*paysaga.User{},
		password: map[string]string{},
		tokens:   map[string]*auth.Claims{},
		calls:    map[string]int{},
	}
}

func (f *fakeAuth) called(m string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[m]
}

func (f *fakeAuth) count(m string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[m]++
}

// addUser registers a user and returns an access token for it.
func (f *fakeAuth) addUser(email, password string, role paysaga.Role) (*paysaga.User, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	u := &paysaga.User{ID: paysaga.NewID(paysaga.PrefixUser), Email: email, Name: "Test", Role: role,
		CreatedAt: time.Now().UTC().Truncate(time.Second)}
	f.users[email] = u
	f.password[email] = password
	token := "tok-" + u.ID
	f.tokens[token] = &auth.Claims{UserID: u.ID, Role: role}
	return u, token
}

func (f *fakeAuth) Signup(_ context.Context, email, password, name string) (*paysaga.User, error) {
	f.count("Signup")
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.users[email]; ok {
		return nil, paysaga.Errorf(paysaga.ECONFLICT, "email already registered")
	}
	u := &paysaga.User{ID: paysaga.NewID(paysaga.PrefixUser), Email: email, Name: name, Role: paysaga.RoleCustomer}
	f.users[email], f.password[email] = u, password
	return u, nil
}

func (f *fakeAuth) Login(_ context.Context, email, password, _ string) (*auth.TokenPair, error) {
	f.count("Login")
	if f.loginErr != nil {
		return nil, f.loginErr
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if p, ok := f.password[email]; !ok || p != password {
		return nil, paysaga.Errorf(paysaga.EUNAUTHORIZED, "wrong email or password")
	}
	return &auth.TokenPair{AccessToken: "tok-" + f.users[email].ID, TokenType: "Bearer", ExpiresIn: 900, RefreshToken: "rt"}, nil
}

func (f *fakeAuth) Refresh(context.Context, string) (*auth.TokenPair, error) {
	f.count("Refresh")
	return nil, paysaga.Errorf(paysaga.EUNAUTHORIZED, "invalid refresh token")
}

func (f *fakeAuth) Logout(context.Context, string) error { f.count("Logout"); return nil }

func (f *fakeAuth) Verify(token string) (*auth.Claims, error) {
	f.count("Verify")
	f.mu.Lock()
	defer f.mu.Unlock()
	if cl, ok := f.tokens[token]; ok {
		return cl, nil
	}
	return nil, paysaga.Errorf(paysaga.EUNAUTHORIZED, "invalid token")
}

func (f *fakeAuth) Grant(_ context.Context, email string, role paysaga.Role) error {
	f.count("Grant")
	f.mu.Lock()
	defer f.mu.Unlock()
	u, ok := f.users[email]
	if !ok {
		return paysaga.Errorf(paysaga.ENOTFOUND, "no such user")
	}
	u.Role = role
	return nil
}

// UserByID makes fakeAuth its own UserReader.
func (f *fakeAuth) UserByID(_ context.Context, id string) (*paysaga.User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, u := range f.users {
		if u.ID == id {
			return u, nil
		}
	}
	return nil, paysaga.Errorf(paysaga.ENOTFOUND, "no such user")
}

// syncBuffer is a log sink tests can read while the server writes to it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type testEnv struct {
	srv  *api.Server
	auth *fakeAuth
	logs *syncBuffer
	reg  *prometheus.Registry
}

func newTestEnv(t *testing.T, mutate ...func(*api.Deps)) *testEnv {
	t.Helper()
	env := &testEnv{auth: newFakeAuth(), logs: &syncBuffer{}, reg: prometheus.NewRegistry()}
	deps := api.Deps{
		Auth:         env.auth,
		Users:        env.auth,
		Logger:       slog.New(slog.NewJSONHandler(env.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		MaxBodyBytes: 1024,
		Metrics:      env.reg,
	}
	for _, m := range mutate {
		m(&deps)
	}
	env.srv = api.New(deps)
	return env
}

type req struct {
	method, path string
	body         string
	header       map[string]string
	chunked      bool // send without Content-Length, as a streaming client would
}

// do sends r to the server; a body gets Content-Type: application/json unless r says otherwise.
func (e *testEnv) do(t *testing.T, r req) *httptest.ResponseRecorder {
	t.Helper()
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	hr := httptest.NewRequest(r.method, r.path, body)
	if r.body != "" {
		hr.Header.Set("Content-Type", "application/json")
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	if r.chunked {
		hr.ContentLength = -1
		hr.Body = io.NopCloser(hr.Body) // hides the length httptest would otherwise know
	}
	rec := httptest.NewRecorder()
	e.srv.ServeHTTP(rec, hr)
	return rec
}

func bearer(token string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + token}
}

// requireProblem checks that rec is a well-formed problem+json answer with status and code, and
// returns it for further checks.
func requireProblem(t *testing.T, rec *httptest.ResponseRecorder, status int, code string) api.ProblemDetails {
	t.Helper()
	require.Equal(t, status, rec.Code, "body: %s", rec.Body.String())
	require.Equal(t, api.ProblemContentType, rec.Header().Get("Content-Type"))
	var p api.ProblemDetails
	dec := json.NewDecoder(rec.Body)
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&p))
	require.Equal(t, status, p.Status)
	require.Equal(t, code, p.Code)
	require.Equal(t, api.ProblemType(code), p.Type)
	require.NotEmpty(t, p.Title)
	require.NotEmpty(t, p.Detail)
	require.NotEmpty(t, p.RequestID)
	require.Equal(t, rec.Header().Get(api.RequestIDHeader), p.RequestID)
	if status == http.StatusUnauthorized {
		require.Contains(t, rec.Header().Get("WWW-Authenticate"), "Bearer")
	}
	return p
}
