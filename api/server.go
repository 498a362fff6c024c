// Package api is paysaga's HTTP interface for clients: the Gin router, its middleware (request
// IDs, access logs, metrics, panic recovery, body limits, authentication and roles), the error
// format (RFC 9457 problem+json with the domain's stable codes), the health probes, the OpenAPI
// document, and the handlers. It is the only package that speaks HTTP to clients; what the
// handlers do is decided by the services it is given (auth, store, Temporal), never here.
//
// Adding an endpoint: register it in New (routes are registered unconditionally, so the OpenAPI
// test sees every one), decode with BindJSON, answer errors with Problem, and document the path
// in openapi.yaml; TestOpenAPIMatchesRoutes fails until router and document agree.
package api

import (
	_ "embed"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"

	"paysaga"
)

// Defaults for the zero values of Deps.
const (
	DefaultMaxBodyBytes = 64 << 10
	DefaultReadyTimeout = 2 * time.Second
)

// Deps is everything the API is built from. Auth and Users are required; the rest have
// defaults.
type Deps struct {
	Auth  Authenticator // signup, login, tokens, roles (*auth.Service)
	Users UserReader    // /v1/me (*store.DB)

	Logger *slog.Logger // access log and error log; slog.Default() if nil

	// Readiness lists what /readyz checks (database, Redis, Temporal). Each runs concurrently
	// under ReadyTimeout.
	Readiness    []Check
	ReadyTimeout time.Duration

	// MaxBodyBytes caps every request body (DefaultMaxBodyBytes if 0).
	MaxBodyBytes int64

	// Metrics is where the HTTP metrics are registered and what /metrics serves. If nil, the
	// server makes its own registry with the Go runtime and process collectors.
	Metrics *prometheus.Registry

	// Payments serves /v1/payments. Its routes exist even when it is not set (so the OpenAPI
	// document and the router always agree); they answer 503 until it is.
	Payments PaymentDeps

	// Notifications serves /v1/notifications/stream (503 until it has a Hub).
	Notifications NotificationDeps

	// Accounts serves /v1/accounts, on the same terms as Payments (503 until set).
	Accounts AccountDeps

	// Settlements serves /v1/settlements and /v1/settlement-account (503 until set).
	Settlements SettlementDeps

	// Webhooks serves /v1/webhook-endpoints (503 until set).
	Webhooks WebhookDeps

	// TrustedProxies are the addresses or CIDRs whose X-Forwarded-For is believed when taking
	// the client's address (login rate limits). Empty: trust none, use the peer address.
	TrustedProxies []string
}

// Server is the HTTP API. It is an http.Handler.
type Server struct {
	engine       *gin.Engine
	handler      http.Handler     // engine inside the tracing handler
	v1           *gin.RouterGroup // /v1, authenticated
	public       *gin.RouterGroup // /v1, no authentication
	auth         Authenticator
	users        UserReader
	checks       []Check
	readyTimeout time.Duration
}

//go:embed openapi.yaml
var openAPIDocument []byte

// OpenAPI returns the OpenAPI 3.1 document the server publishes at /openapi.yaml.
func OpenAPI() []byte { return openAPIDocument }

// New builds the router with every route and middleware. It panics on Deps that cannot work
// (no Auth or Users, a malformed TrustedProxies entry): those are wiring bugs to catch at start.
func New(deps Deps) *Server {
	if deps.Auth == nil || deps.Users == nil {
		panic("api.New: Deps.Auth and Deps.Users are required")
	}
	log := deps.Logger
	if log == nil {
		log = slog.Default()
	}
	maxBody := deps.MaxBodyBytes
	if maxBody <= 0 {
		maxBody = DefaultMaxBodyBytes
	}
	readyTimeout := deps.ReadyTimeout
	if readyTimeout <= 0 {
		readyTimeout = DefaultReadyTimeout
	}
	reg := deps.Metrics
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}

	e := gin.New()
	// Redirects would answer outside the middleware (no request ID, no metrics, no problem
	// body), and an API client should learn the right path rather than be bounced to it.
	e.RedirectTrailingSlash = false
	e.RedirectFixedPath = false
	e.HandleMethodNotAllowed = true
	e.ContextWithFallback = true // c.Done()/c.Err() follow the request's context
	if err := e.SetTrustedProxies(deps.TrustedProxies); err != nil {
		panic("api.New: TrustedProxies: " + err.Error())
	}

	// Order matters: the request ID is set first so every later line carries it; logging and
	// metrics wrap recovery so that a panic is counted and logged as the 500 it becomes.
	e.Use(traceRoute(), requestID(log), accessLog(), newHTTPMetrics(reg).middleware(), recovery(), limitBody(maxBody))
	e.NoRoute(notFound)
	e.NoMethod(methodNotAllowed)

	s := &Server{
		engine:       e,
		auth:         deps.Auth,
		users:        deps.Users,
		checks:       deps.Readiness,
		readyTimeout: readyTimeout,
	}

	// Every request but the probes is the root (or, with a caller's traceparent, a child) of a
	// trace; traceRoute names its span after the route.
	s.handler = otelhttp.NewHandler(e, "http.request",
		otelhttp.WithFilter(func(r *http.Request) bool { return !probeRoutes[r.URL.Path] }))

	e.GET("/healthz", healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/metrics", gin.WrapH(promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})))
	e.GET("/openapi.yaml", func(c *gin.Context) {
		c.Data(http.StatusOK, "application/yaml", openAPIDocument)
	})

	s.public = e.Group("/v1")
	s.v1 = s.public.Group("", s.authenticate)

	a := s.public.Group("/auth")
	a.POST("/signup", s.signup)
	a.POST("/login", s.login)
	a.POST("/refresh", s.refresh)
	a.POST("/logout", s.logout)

	s.v1.GET("/me", s.me)

	admin := s.v1.Group("/admin", RequireRole(paysaga.RoleOperator))
	admin.POST("/users/grant", s.grant)

	s.registerPayments(deps.Payments)
	s.registerNotifications(deps.Notifications)
	s.registerAccounts(deps.Accounts)
	s.registerSettlements(deps.Settlements)
	s.registerWebhooks(deps.Webhooks)

	return s
}

// ServeHTTP serves the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Engine is the underlying Gin engine, e.g. to list its Routes().
func (s *Server) Engine() *gin.Engine { return s.engine }

// V1 is the authenticated /v1 group: every route added to it (or to a group below it) gets only
// callers with a valid access token, whose claims UserFrom returns. Add role checks with
// RequireRole.
func (s *Server) V1() *gin.RouterGroup { return s.v1 }

// PublicV1 is the /v1 group without authentication, for the few routes that must work without
// a token (the auth endpoints themselves, webhooks that authenticate otherwise).
func (s *Server) PublicV1() *gin.RouterGroup { return s.public }
