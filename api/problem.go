package api

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"paysaga"
	"paysaga/auth"
)

// ProblemContentType is the media type of every error answer (RFC 9457).
const ProblemContentType = "application/problem+json"

// Codes the HTTP layer adds to the domain's codes. They only describe what went wrong with the
// HTTP exchange itself, never the business, so they live here rather than in package paysaga.
const (
	CodeTooLarge         = "request_too_large"      // body over the limit (413)
	CodeUnsupportedMedia = "unsupported_media_type" // body is not JSON (415)
	CodeMethodNotAllowed = "method_not_allowed"     // route exists, method does not (405)
)

// ProblemDetails is the body of an application/problem+json answer. `code` is the stable,
// machine-readable part; clients should switch on it rather than on `title` or `detail`.
type ProblemDetails struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail,omitempty"`
	Code      string `json:"code"`
	Instance  string `json:"instance,omitempty"`
	RequestID string `json:"request_id,omitempty"`
	// TraceID finds the request's trace (and its log lines) when it was traced.
	TraceID string       `json:"trace_id,omitempty"`
	Errors  []FieldError `json:"errors,omitempty"`
}

// FieldError names one invalid field of a request body, by its JSON name.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// ValidationError is an EINVALID error that says which fields are wrong. Handlers may return it
// (or wrap it) to Problem; BindJSON returns it for type mismatches and failed `binding` rules.
type ValidationError struct {
	Message string
	Fields  []FieldError
	// Status is the HTTP status when not 422: a missing or malformed header is 400 (the
	// request itself is malformed, the body was never looked at). The code stays "invalid".
	Status int
}

func (e *ValidationError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = "the request is invalid"
	}
	for _, f := range e.Fields {
		msg += "; " + f.Field + ": " + f.Message
	}
	return paysaga.EINVALID + ": " + msg
}

// RetryAfterer is implemented by errors that know when the client may try again. Problem sets
// Retry-After from the first one found in the error chain (rate limits, maintenance); it also
// knows *auth.RateLimitError.
type RetryAfterer interface {
	RetryAfter() time.Duration
}

// WithRetryAfter wraps err so that Problem answers it with a Retry-After header.
func WithRetryAfter(err error, d time.Duration) error {
	return &retryAfterError{err: err, after: d}
}

type retryAfterError struct {
	err   error
	after time.Duration
}

func (e *retryAfterError) Error() string             { return e.err.Error() }
func (e *retryAfterError) Unwrap() error             { return e.err }
func (e *retryAfterError) RetryAfter() time.Duration { return e.after }

// httpError carries a status and code the HTTP layer decided itself (413, 415, 404 on an
// unknown route, …); it never comes from the domain.
type httpError struct {
	status int
	code   string
	detail string
}

func (e *httpError) Error() string { return e.code + ": " + e.detail }

// codeStatus maps each stable domain code to its HTTP status. A code missing here is a bug in
// this table, answered as 500 so that it is noticed.
var codeStatus = map[string]int{
	paysaga.EINVALID:      http.StatusUnprocessableEntity,
	paysaga.EIDEMPOTENCY:  http.StatusUnprocessableEntity,
	paysaga.EUNAUTHORIZED: http.StatusUnauthorized,
	paysaga.EFORBIDDEN:    http.StatusForbidden,
	paysaga.ENOTFOUND:     http.StatusNotFound,
	paysaga.ECONFLICT:     http.StatusConflict,
	paysaga.ERATELIMITED:  http.StatusTooManyRequests,
	paysaga.EDECLINED:     http.StatusPaymentRequired,
	paysaga.EUNAVAILABLE:  http.StatusServiceUnavailable,
	paysaga.EINTERNAL:     http.StatusInternalServerError,
}

// codeTitle is the short, fixed summary of each problem type (RFC 9457 §3.1.3: the title does
// not change from occurrence to occurrence; the detail does).
var codeTitle = map[string]string{
	paysaga.EINVALID:      "Invalid request",
	paysaga.EIDEMPOTENCY:  "Idempotency key reused",
	paysaga.EUNAUTHORIZED: "Unauthorized",
	paysaga.EFORBIDDEN:    "Forbidden",
	paysaga.ENOTFOUND:     "Not found",
	paysaga.ECONFLICT:     "Conflict",
	paysaga.ERATELIMITED:  "Too many requests",
	paysaga.EDECLINED:     "Declined by the bank",
	paysaga.EUNAVAILABLE:  "Service unavailable",
	paysaga.EINTERNAL:     "Internal server error",
	CodeTooLarge:          "Request body too large",
	CodeUnsupportedMedia:  "Unsupported media type",
	CodeMethodNotAllowed:  "Method not allowed",
}

// ProblemType is the `type` URI of a problem with the given code. A URN rather than a URL: it
// identifies the problem without promising a page that nobody publishes.
func ProblemType(code string) string { return "urn:paysaga:problem:" + code }

// Problem answers err as application/problem+json and aborts the handler chain. Domain errors
// (paysaga.Error) keep their code and message; anything else is an internal error whose text is
// logged with the request ID but never shown to the client.
func Problem(c *gin.Context, err error) {
	p, retryAfter := problemFor(c, err)
	if p.Status >= http.StatusInternalServerError {
		// The client only sees a generic detail, so the log is where the cause goes.
		Logger(c).ErrorContext(c.Request.Context(), "request failed",
			slog.Int("status", p.Status), slog.String("code", p.Code), slog.String("error", err.Error()))
	}
	_ = c.Error(err) // keeps the cause on the context for middleware that wants it
	if retryAfter > 0 {
		// Whole seconds, rounded up: "Retry-After: 0" would invite an immediate retry.
		c.Header("Retry-After", strconv.FormatInt(int64((retryAfter+time.Second-1)/time.Second), 10))
	}
	writeProblem(c, p)
}

func problemFor(c *gin.Context, err error) (ProblemDetails, time.Duration) {
	var (
		status     int
		code       string
		detail     string
		fields     []FieldError
		retryAfter time.Duration
		he         *httpError
		ve         *ValidationError
		de         *paysaga.Error
		mbe        *http.MaxBytesError
		ra         RetryAfterer
	)
	switch {
	case errors.As(err, &he):
		status, code, detail = he.status, he.code, he.detail
	case errors.As(err, &ve):
		status, code, fields = http.StatusUnprocessableEntity, paysaga.EINVALID, ve.Fields
		if ve.Status != 0 {
			status = ve.Status
		}
		detail = ve.Message
		if detail == "" {
			detail = "the request is invalid"
		}
	case errors.As(err, &mbe):
		status, code = http.StatusRequestEntityTooLarge, CodeTooLarge
		detail = "the request body is larger than " + strconv.FormatInt(mbe.Limit, 10) + " bytes"
	case errors.As(err, &de):
		code, detail = de.Code, de.Message
		var ok bool
		if status, ok = codeStatus[code]; !ok {
			status = http.StatusInternalServerError
		}
	case errors.Is(err, context.DeadlineExceeded):
		status, code, detail = http.StatusServiceUnavailable, paysaga.EUNAVAILABLE, "the request timed out; try again"
	default:
		status, code = http.StatusInternalServerError, paysaga.EINTERNAL
	}
	if status >= http.StatusInternalServerError && code != paysaga.EUNAVAILABLE {
		// Whatever the message says, a 500 is our bug and its text is not for clients.
		code, detail = paysaga.EINTERNAL, "an internal error occurred; quote the request_id when reporting it"
	}
	var rle *auth.RateLimitError
	switch {
	case errors.As(err, &ra):
		retryAfter = ra.RetryAfter()
	case errors.As(err, &rle):
		retryAfter = rle.RetryAfter
	}
	title, ok := codeTitle[code]
	if !ok {
		title = http.StatusText(status)
	}
	return ProblemDetails{
		Type:      ProblemType(code),
		Title:     title,
		Status:    status,
		Detail:    detail,
		Code:      code,
		Instance:  c.Request.URL.Path,
		RequestID: RequestID(c),
		TraceID:   traceID(c),
		Errors:    fields,
	}, retryAfter
}

func writeProblem(c *gin.Context, p ProblemDetails) {
	if c.Writer.Written() {
		// Too late for a body: the status line is gone. Abort so nothing else is appended.
		c.Abort()
		return
	}
	body, err := json.Marshal(p)
	if err != nil { // cannot happen with these field types; keep the answer well-formed anyway
		body = []byte(`{"type":"urn:paysaga:problem:internal","title":"Internal server error","status":500,"code":"internal"}`)
		p.Status = http.StatusInternalServerError
	}
	if p.Status == http.StatusUnauthorized && c.Writer.Header().Get("WWW-Authenticate") == "" {
		// RFC 9110 §15.5.2: a 401 must say which scheme would work.
		c.Header("WWW-Authenticate", `Bearer realm="paysaga"`)
	}
	c.Header("Cache-Control", "no-store")
	c.Data(p.Status, ProblemContentType, body)
	c.Abort()
}
