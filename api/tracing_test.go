package api_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"paysaga"
)

// A request is a span named after its route, in the caller's trace when it sends a
// traceparent; its problem answer and its log lines carry the trace id; the probes are not
// traced.
func TestRequestsAreTracedAndProblemsNameTheirTrace(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
	otel.SetTextMapPropagator(propagation.TraceContext{})
	env := newTestEnv(t)

	const traceID, caller = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	res := env.do(t, req{method: http.MethodGet, path: "/v1/me",
		header: map[string]string{"traceparent": "00-" + traceID + "-" + caller + "-01"}})
	p := requireProblem(t, res, http.StatusUnauthorized, paysaga.EUNAUTHORIZED)
	require.Equal(t, traceID, p.TraceID)
	require.Equal(t, traceID, findLog(t, env.logs.String(), "http request")["trace_id"])

	env.do(t, req{method: http.MethodGet, path: "/healthz"})
	spans := rec.Ended()
	require.Len(t, spans, 1, "one span for the request, none for the probe")
	require.Equal(t, "GET /v1/me", spans[0].Name())
	require.Equal(t, traceID, spans[0].SpanContext().TraceID().String())
	require.Equal(t, caller, spans[0].Parent().SpanID().String())

	// Without a caller's trace, the request starts one and still names it.
	res = env.do(t, req{method: http.MethodGet, path: "/v1/me"})
	p = requireProblem(t, res, http.StatusUnauthorized, paysaga.EUNAUTHORIZED)
	require.Len(t, p.TraceID, 32)
	require.NotEqual(t, traceID, p.TraceID)
}
