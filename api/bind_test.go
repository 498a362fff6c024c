package api_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"paysaga"
	"paysaga/api"
)

// TestSignupRefusesBadBodies sends broken bodies to a real endpoint and checks each gets a clear
// problem and never reaches the auth service (no user is created).
func TestSignupRefusesBadBodies(t *testing.T) {
	const valid = `{"email":"a@example.com","password":"correct horse battery","name":"A"}`
	tests := []struct {
		name   string
		req    req
		status int
		code   string
		fields []string // fields the problem must name, in order
	}{
		{name: "oversized with Content-Length",
			req:    req{body: `{"email":"a@example.com","password":"` + strings.Repeat("x", 2000) + `","name":"A"}`},
			status: http.StatusRequestEntityTooLarge, code: api.CodeTooLarge},
		{name: "oversized streamed without Content-Length",
			req:    req{body: `{"email":"a@example.com","password":"` + strings.Repeat("x", 2000) + `","name":"A"}`, chunked: true},
			status: http.StatusRequestEntityTooLarge, code: api.CodeTooLarge},
		{name: "unknown field (a client trying to pick its own role)",
			req:    req{body: `{"email":"a@example.com","password":"pw","name":"A","role":"operator"}`},
			status: http.StatusUnprocessableEntity, code: paysaga.EINVALID, fields: []string{"role"}},
		{name: "malformed JSON, cut short",
			req:    req{body: `{"email":"a@example.com",`},
			status: http.StatusUnprocessableEntity, code: paysaga.EINVALID},
		{name: "malformed JSON, syntax",
			req:    req{body: `{"email" "a@example.com"}`},
			status: http.StatusUnprocessableEntity, code: paysaga.EINVALID},
		{name: "trailing data after the object",
			req:    req{body: valid + `{"email":"b@example.com"}`},
			status: http.StatusUnprocessableEntity, code: paysaga.EINVALID},
		{name: "trailing garbage after the object",
			req:    req{body: valid + ` x`},
			status: http.StatusUnprocessableEntity, code: paysaga.EINVALID},
		{name: "empty body",
			req:    req{header: map[string]string{"Content-Type": "application/json"}},
			status: http.StatusUnprocessableEntity, code: paysaga.EINVALID},
		{name: "array instead of object",
			req:    req{body: `[]`},
			status: http.StatusUnprocessableEntity, code: paysaga.EINVALID},
		{name: "wrong type",
			req:    req{body: `{"email":5,"password":"pw","name":"A"}`},
			status: http.StatusUnprocessableEntity, code: paysaga.EINVALID, fields: []string{"email"}},
		{name: "missing fields",
			req:    req{body: `{"email":"a@example.com"}`},
			status: http.StatusUnprocessableEntity, code: paysaga.EINVALID, fields: []string{"password", "name"}},
		{name: "not JSON",
			req:    req{body: valid, header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}},
			status: http.StatusUnsupportedMediaType, code: api.CodeUnsupportedMedia},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t)
			tt.req.method, tt.req.path = http.MethodPost, "/v1/auth/signup"
			p := requireProblem(t, env.do(t, tt.req), tt.status, tt.code)
			var got []string
			for _, f := range p.Errors {
				got = append(got, f.Field)
				require.NotEmpty(t, f.Message)
			}
			require.Equal(t, tt.fields, got)
			require.Zero(t, env.auth.called("Signup"), "a refused body must not reach the service")
			require.Empty(t, env.auth.users, "no user may be created")
		})
	}
}

func TestSignup(t *testing.T) {
	env := newTestEnv(t)
	body := `{"email":"a@example.com","password":"correct horse battery","name":"A"}`
	rec := env.do(t, req{method: http.MethodPost, path: "/v1/auth/signup", body: body})
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	var u map[string]any
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &u))
	require.Equal(t, "a@example.com", u["email"])
	require.Equal(t, "customer", u["role"])
	require.NotContains(t, u, "password_hash")
	require.NotContains(t, rec.Body.String(), "correct horse")

	// A second signup with the same email is a conflict, and the first user is untouched.
	rec = env.do(t, req{method: http.MethodPost, path: "/v1/auth/signup", body: body})
	requireProblem(t, rec, http.StatusConflict, paysaga.ECONFLICT)
	require.Len(t, env.auth.users, 1)
}

func TestBindJSONWithoutContentTypeIsAccepted(t *testing.T) {
	// curl -d without -H sends form-encoded, which is refused; but a client that sends no
	// Content-Type at all (many minimal HTTP libraries) gets its JSON read.
	env := newTestEnv(t)
	rec := env.do(t, req{method: http.MethodPost, path: "/v1/auth/signup",
		body:   `{"email":"a@example.com","password":"pw","name":"A"}`,
		header: map[string]string{"Content-Type": ""}})
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
}
