package api

import (
	"context"
	"log/slog"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"

	"paysaga"
	"paysaga/auth"
)

// Authenticator is what the API needs from the auth service; *auth.Service satisfies it, and
// tests may pass a fake.
type Authenticator interface {
	Signup(ctx context.Context, email, password, name string) (*paysaga.User, error)
	Login(ctx context.Context, email, password, clientAddr string) (*auth.TokenPair, error)
	Refresh(ctx context.Context, refreshToken string) (*auth.TokenPair, error)
	Logout(ctx context.Context, refreshToken string) error
	Verify(accessToken string) (*auth.Claims, error)
	Grant(ctx context.Context, email string, role paysaga.Role) error
}

// UserReader looks users up by ID; *store.DB satisfies it.
type UserReader interface {
	UserByID(ctx context.Context, id string) (*paysaga.User, error)
}

// UserFrom returns the verified claims of the caller. It is nil only on routes outside the
// authenticated group (see Server.V1), where there is no caller to speak of.
func UserFrom(c *gin.Context) *auth.Claims { return claimsFrom(c) }

func claimsFrom(c *gin.Context) *auth.Claims {
	v, ok := c.Get(ctxClaims)
	if !ok {
		return nil
	}
	cl, _ := v.(*auth.Claims)
	return cl
}

// authenticate admits requests with a valid Bearer access token and answers every other one
// 401 with a WWW-Authenticate challenge (RFC 6750 §3). Why a token was refused (expired, wrong
// key, wrong audience) is logged, not told: the client's remedy is the same in every case.
func (s *Server) authenticate(c *gin.Context) {
	header := c.GetHeader("Authorization")
	if header == "" {
		c.Header("WWW-Authenticate", `Bearer realm="paysaga"`)
		Problem(c, paysaga.Errorf(paysaga.EUNAUTHORIZED, "this endpoint needs an access token: Authorization: Bearer <token>"))
		return
	}
	scheme, token, _ := strings.Cut(header, " ")
	token = strings.TrimSpace(token)
	if !strings.EqualFold(scheme, "Bearer") || token == "" {
		c.Header("WWW-Authenticate", `Bearer realm="paysaga", error="invalid_request"`)
		Problem(c, paysaga.Errorf(paysaga.EUNAUTHORIZED, "the Authorization header must be: Bearer <token>"))
		return
	}
	claims, err := s.auth.Verify(token)
	if err != nil || claims == nil || claims.UserID == "" {
		if err != nil {
			Logger(c).DebugContext(c.Request.Context(), "access token refused", slog.String("error", err.Error()))
		}
		c.Header("WWW-Authenticate", `Bearer realm="paysaga", error="invalid_token"`)
		Problem(c, paysaga.Errorf(paysaga.EUNAUTHORIZED, "the access token is invalid or has expired"))
		return
	}
	c.Set(ctxClaims, claims)
	c.Next()
}

// RequireRole lets through only callers with one of roles. Use it after authentication, i.e. on
// Server.V1() or a group below it:
//
//	admin := s.V1().Group("/admin", api.RequireRole(paysaga.RoleOperator))
func RequireRole(roles ...paysaga.Role) gin.HandlerFunc {
	return func(c *gin.Context) {
		cl := claimsFrom(c)
		if cl == nil {
			// A wiring mistake (RequireRole outside the authenticated group); fail closed.
			c.Header("WWW-Authenticate", `Bearer realm="paysaga"`)
			Problem(c, paysaga.Errorf(paysaga.EUNAUTHORIZED, "this endpoint needs an access token"))
			return
		}
		if !slices.Contains(roles, cl.Role) {
			Problem(c, paysaga.Errorf(paysaga.EFORBIDDEN, "your role may not do this"))
			return
		}
		c.Next()
	}
}

// noStore marks answers that carry credentials: no cache anywhere may keep them (RFC 6749 §5.1).
func noStore(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	c.Header("Pragma", "no-cache")
}
