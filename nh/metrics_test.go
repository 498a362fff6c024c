package nh_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"paysaga/nh"
)

// series gathers reg as "name{labels} value" → value, labels in Prometheus' order.
func series(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+`="`+l.GetValue()+`"`)
			}
			key := mf.GetName() + "{" + strings.Join(labels, ",") + "}"
			switch {
			case m.GetCounter() != nil:
				out[key] = m.GetCounter().GetValue()
			case m.GetHistogram() != nil:
				out[key+"_count"] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

// Every call is counted by API, outcome and the bank's code, timed, and is a span of the
// caller's trace with the HTTP exchange beneath it; a decline is an answer, not an error span.
func TestCallsAreCountedAndTraced(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
	reg := prometheus.NewRegistry()
	reg.MustRegister(nh.Collectors()...)

	status, body := 200, `{"Header":{"Rpcd":"E1001","Rsms":"잔액이 부족합니다."}}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	defer srv.Close()
	c := newClient(t, srv.URL, func(cfg *nh.Config) {
		cfg.HTTPClient = &http.Client{Transport: otelhttp.NewTransport(http.DefaultTransport)}
	})
	draw := func() error {
		_, err := c.DrawingTransfer(context.Background(), nh.Ref{Tsymd: "20261125", IsTuno: "20261125000000000001"},
			nh.DrawingTransferRequest{FinAcno: "00820100000000000000000012345", Tram: 100})
		return err
	}
	before := series(t, reg)
	require.Equal(t, nh.OutcomeDeclined, nh.Classify(draw()))
	status, body = 502, ""
	require.Equal(t, nh.OutcomeUnknown, nh.Classify(draw()))

	after := series(t, reg)
	delta := func(k string) float64 { return after[k] - before[k] }
	require.Equal(t, 1.0, delta(`paysaga_bank_calls_total{api="DrawingTransfer",outcome="declined",rpcd="E1001"}`))
	require.Equal(t, 1.0, delta(`paysaga_bank_calls_total{api="DrawingTransfer",outcome="unknown",rpcd="none"}`))
	require.Equal(t, 1.0, delta(`paysaga_bank_call_duration_seconds{api="DrawingTransfer",outcome="declined"}_count`))
	require.Equal(t, 1.0, delta(`paysaga_bank_unknown_outcomes_total{api="DrawingTransfer"}`))

	var calls []sdktrace.ReadOnlySpan
	children := map[string]int{}
	for _, s := range rec.Ended() {
		if s.Name() == "nh DrawingTransfer" {
			calls = append(calls, s)
		} else {
			children[s.Parent().SpanID().String()]++
		}
		for _, kv := range s.Attributes() {
			require.NotContains(t, kv.Value.String(), "12345", "span %q carries the fin account", s.Name())
		}
	}
	require.Len(t, calls, 2)
	require.Equal(t, codes.Unset, calls[0].Status().Code, "a decline is an answer")
	require.Equal(t, codes.Error, calls[1].Status().Code, "an unknown outcome is an error")
	for _, s := range calls {
		require.Equal(t, 1, children[s.SpanContext().SpanID().String()], "the HTTP exchange is not beneath the bank call")
	}
}
