package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"runtime/debug"
	"time"

	"github.com/gin-gonic/gin"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"paysaga"
)

// RequestIDHeader carries the request ID in both directions.
const RequestIDHeader = "X-Request-Id"

// Keys of the values the middleware leaves on the gin context.
const (
	ctxRequestID = "paysaga.request_id"
	ctxLogger    = "paysaga.logger"
	ctxClaims    = "paysaga.claims"
)

type requestIDKey struct{}

// saneRequestID accepts the IDs proxies and clients usually send (UUIDs, hex, base32/64-ish
// tokens) and nothing that could smuggle a newline or markup into a log line or a header.
var saneRequestID = regexp.MustCompile(`^[A-Za-z0-9._:+=/-]{1,128}$`)

// RequestID returns the ID of the request being served ("" outside the middleware).
func RequestID(c *gin.Context) string { return c.GetString(ctxRequestID) }

// RequestIDFromContext returns the request ID carried by ctx, so that code below the handlers
// (which sees a context.Context, not a gin.Context) can log or forward it.
func RequestIDFromContext(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// Logger returns the server's logger with the request ID attached; handlers log through it so
// that every line of one request can be found together.
func Logger(c *gin.Context) *slog.Logger {
	if l, ok := c.Get(ctxLogger); ok {
		return l.(*slog.Logger)
	}
	return slog.Default()
}

// requestID takes the caller's X-Request-Id when it is sane (so a trace can cross services) and
// makes one up otherwise, then echoes it on the response.
func requestID(base *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		id := c.GetHeader(RequestIDHeader)
		if !saneRequestID.MatchString(id) {
			id = paysaga.NewID("req_")
		}
		c.Set(ctxRequestID, id)
		attrs := []any{slog.String("request_id", id)}
		if tid := traceID(c); tid != "" {
			attrs = append(attrs, slog.String("trace_id", tid))
		}
		c.Set(ctxLogger, base.With(attrs...))
		c.Request = c.Request.WithContext(context.WithValue(c.Request.Context(), requestIDKey{}, id))
		c.Header(RequestIDHeader, id)
		c.Next()
	}
}

// traceID is the id of the request's trace ("" when it is not traced).
func traceID(c *gin.Context) string {
	sc := trace.SpanContextFromContext(c.Request.Context())
	if !sc.HasTraceID() {
		return ""
	}
	return sc.TraceID().String()
}

// traceRoute names the request's span after its route template ("POST /v1/payments"), never
// the raw path, which carries ids.
func traceRoute() gin.HandlerFunc {
	return func(c *gin.Context) {
		if span := trace.SpanFromContext(c.Request.Context()); span.IsRecording() {
			span.SetName(c.Request.Method + " " + routeLabel(c))
			span.SetAttributes(attribute.String("http.route", routeLabel(c)))
		}
		c.Next()
	}
}

// routeLabel is the route template of the request, or a fixed label for requests that matched
// no route: using the raw path would let any client mint new metric series at will.
func routeLabel(c *gin.Context) string {
	if r := c.FullPath(); r != "" {
		return r
	}
	return "unmatched"
}

// probeRoutes are polled every few seconds by orchestrators; logging them at Info would bury
// the requests people look for.
var probeRoutes = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true}

// accessLog writes one structured line per request. It logs the route template, never the raw
// path, query, headers or body: those can carry tokens and personal data.
func accessLog() gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		status := c.Writer.Status()
		level := slog.LevelInfo
		switch {
		case status >= http.StatusInternalServerError:
			level = slog.LevelError
		case probeRoutes[c.FullPath()]:
			level = slog.LevelDebug
		}
		attrs := []slog.Attr{
			slog.String("method", c.Request.Method),
			slog.String("route", routeLabel(c)),
			slog.Int("status", status),
			slog.Duration("duration", time.Since(start)),
			slog.Int("bytes", max(c.Writer.Size(), 0)),
		}
		if cl := claimsFrom(c); cl != nil {
			attrs = append(attrs, slog.String("user_id", cl.UserID))
		}
		Logger(c).LogAttrs(c.Request.Context(), level, "http request", attrs...)
	}
}

// recovery turns a panic in a handler into a 500 problem instead of a dropped connection, and
// logs the stack with the request ID.
func recovery() gin.HandlerFunc {
	return func(c *gin.Context) {
		defer func() {
			r := recover()
			if r == nil {
				return
			}
			if err, ok := r.(error); ok && errors.Is(err, http.ErrAbortHandler) {
				panic(r) // net/http's way of aborting a response on purpose; let it through
			}
			Logger(c).ErrorContext(c.Request.Context(), "panic serving request",
				slog.String("panic", fmt.Sprint(r)), slog.String("stack", string(debug.Stack())))
			p, _ := problemFor(c, errors.New("panic"))
			writeProblem(c, p)
		}()
		c.Next()
	}
}

// limitBody caps how much of a request body any handler can read. A declared length over the
// limit is refused at once; an undeclared one (chunked) fails while being read, which BindJSON
// reports as 413.
func limitBody(limit int64) gin.HandlerFunc {
	return func(c *gin.Context) {
		if c.Request.ContentLength > limit {
			Problem(c, &http.MaxBytesError{Limit: limit})
			return
		}
		if c.Request.Body != nil && c.Request.Body != http.NoBody {
			c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, limit)
		}
		c.Next()
	}
}

func notFound(c *gin.Context) {
	Problem(c, &httpError{status: http.StatusNotFound, code: paysaga.ENOTFOUND,
		detail: "no route for " + c.Request.Method + " " + c.Request.URL.Path})
}

func methodNotAllowed(c *gin.Context) {
	// gin has already set Allow with the methods the path does answer.
	Problem(c, &httpError{status: http.StatusMethodNotAllowed, code: CodeMethodNotAllowed,
		detail: c.Request.Method + " is not allowed here; see the Allow header"})
}
