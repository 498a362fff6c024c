package api_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paysaga"
	"paysaga/api"
)

func TestAuthenticationRequired(t *testing.T) {
	env := newTestEnv(t)
	_, token := env.auth.addUser("c@example.com", "pw", paysaga.RoleCustomer)

	tests := []struct {
		name      string
		header    map[string]string
		challenge string // the WWW-Authenticate the client must get
	}{
		{name: "no Authorization header", challenge: `Bearer realm="paysaga"`},
		{name: "another scheme", header: map[string]string{"Authorization": "Basic YTpi"},
			challenge: `Bearer realm="paysaga", error="invalid_request"`},
		{name: "Bearer without a token", header: map[string]string{"Authorization": "Bearer "},
			challenge: `Bearer realm="paysaga", error="invalid_request"`},
		{name: "a token the service refuses", header: bearer("not-a-token"),
			challenge: `Bearer realm="paysaga", error="invalid_token"`},
		{name: "a refresh token in place of an access token", header: bearer("rt"),
			challenge: `Bearer realm="paysaga", error="invalid_token"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := env.do(t, req{method: http.MethodGet, path: "/v1/me", header: tt.header})
			requireProblem(t, rec, http.StatusUnauthorized, paysaga.EUNAUTHORIZED)
			require.Equal(t, tt.challenge, rec.Header().Get("WWW-Authenticate"))
		})
	}

	t.Run("a valid token", func(t *testing.T) {
		rec := env.do(t, req{method: http.MethodGet, path: "/v1/me", header: bearer(token)})
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		var u paysaga.User
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &u))
		require.Equal(t, "c@example.com", u.Email)
	})
	t.Run("scheme is case-insensitive", func(t *testing.T) {
		rec := env.do(t, req{method: http.MethodGet, path: "/v1/me", header: map[string]string{"Authorization": "bearer " + token}})
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	})
}

func TestGrantIsOperatorOnly(t *testing.T) {
	const body = `{"email":"target@example.com","role":"operator"}`
	tests := []struct {
		name   string
		caller paysaga.Role // "" = no token
		body   string
		status int
		code   string
	}{
		{name: "no token", body: body, status: http.StatusUnauthorized, code: paysaga.EUNAUTHORIZED},
		{name: "customer", caller: paysaga.RoleCustomer, body: body, status: http.StatusForbidden, code: paysaga.EFORBIDDEN},
		{name: "merchant", caller: paysaga.RoleMerchant, body: body, status: http.StatusForbidden, code: paysaga.EFORBIDDEN},
		{name: "operator granting customer (not a grantable role)", caller: paysaga.RoleOperator,
			body: `{"email":"target@example.com","role":"customer"}`, status: http.StatusUnprocessableEntity, code: paysaga.EINVALID},
		{name: "operator, unknown user", caller: paysaga.RoleOperator,
			body: `{"email":"nobody@example.com","role":"merchant"}`, status: http.StatusNotFound, code: paysaga.ENOTFOUND},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t)
			target, _ := env.auth.addUser("target@example.com", "pw", paysaga.RoleCustomer)
			var header map[string]string
			if tt.caller != "" {
				_, token := env.auth.addUser("caller@example.com", "pw", tt.caller)
				header = bearer(token)
			}
			rec := env.do(t, req{method: http.MethodPost, path: "/v1/admin/users/grant", body: tt.body, header: header})
			requireProblem(t, rec, tt.status, tt.code)
			require.Equal(t, paysaga.RoleCustomer, target.Role, "the target's role must not change")
			if tt.status == http.StatusUnauthorized || tt.status == http.StatusForbidden {
				require.Zero(t, env.auth.called("Grant"), "a refused caller must not reach the service")
			}
		})
	}

	t.Run("operator", func(t *testing.T) {
		env := newTestEnv(t)
		target, _ := env.auth.addUser("target@example.com", "pw", paysaga.RoleCustomer)
		_, token := env.auth.addUser("op@example.com", "pw", paysaga.RoleOperator)
		rec := env.do(t, req{method: http.MethodPost, path: "/v1/admin/users/grant", body: body, header: bearer(token)})
		require.Equal(t, http.StatusNoContent, rec.Code, rec.Body.String())
		require.Equal(t, paysaga.RoleOperator, target.Role)
	})
}

func TestLogin(t *testing.T) {
	t.Run("success answers an OAuth 2.0 token response that is never cached", func(t *testing.T) {
		env := newTestEnv(t)
		env.auth.addUser("c@example.com", "pw", paysaga.RoleCustomer)
		rec := env.do(t, req{method: http.MethodPost, path: "/v1/auth/login", body: `{"email":"c@example.com","password":"pw"}`})
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		require.Equal(t, "no-store", rec.Header().Get("Cache-Control"))
		require.Equal(t, "no-cache", rec.Header().Get("Pragma"))
		var tok map[string]any
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &tok))
		require.Equal(t, "Bearer", tok["token_type"])
		for _, k := range []string{"access_token", "expires_in", "refresh_token"} {
			require.Contains(t, tok, k)
		}
	})

	tests := []struct {
		name       string
		loginErr   error
		status     int
		code       string
		retryAfter string
	}{
		{name: "wrong credentials", status: http.StatusUnauthorized, code: paysaga.EUNAUTHORIZED},
		{name: "rate limited with a known wait", loginErr: api.WithRetryAfter(paysaga.Errorf(paysaga.ERATELIMITED, "too many attempts"), 1500*time.Millisecond),
			status: http.StatusTooManyRequests, code: paysaga.ERATELIMITED, retryAfter: "2"},
		{name: "rate limited, wait unknown", loginErr: paysaga.Errorf(paysaga.ERATELIMITED, "too many attempts"),
			status: http.StatusTooManyRequests, code: paysaga.ERATELIMITED},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t)
			env.auth.addUser("c@example.com", "pw", paysaga.RoleCustomer)
			env.auth.loginErr = tt.loginErr
			rec := env.do(t, req{method: http.MethodPost, path: "/v1/auth/login", body: `{"email":"c@example.com","password":"wrong"}`})
			requireProblem(t, rec, tt.status, tt.code)
			require.Equal(t, tt.retryAfter, rec.Header().Get("Retry-After"))
			require.Equal(t, "no-store", rec.Header().Get("Cache-Control"))
		})
	}
}

func TestRefreshAndLogout(t *testing.T) {
	env := newTestEnv(t)
	rec := env.do(t, req{method: http.MethodPost, path: "/v1/auth/refresh", body: `{"refresh_token":"old"}`})
	requireProblem(t, rec, http.StatusUnauthorized, paysaga.EUNAUTHORIZED)

	rec = env.do(t, req{method: http.MethodPost, path: "/v1/auth/logout", body: `{"refresh_token":"rt"}`})
	require.Equal(t, http.StatusNoContent, rec.Code, rec.Body.String())
	require.Empty(t, rec.Body.String())
	require.Equal(t, 1, env.auth.called("Logout"))
}
