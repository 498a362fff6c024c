package telemetry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"paysaga/events"
	"paysaga/telemetry"
)

func TestLogLinesCarryTheTrace(t *testing.T) {
	tp := sdktrace.NewTracerProvider()
	ctx, span := tp.Tracer("t").Start(context.Background(), "op")
	defer span.End()
	var buf bytes.Buffer
	log := slog.New(telemetry.LogHandler(slog.NewJSONHandler(&buf, nil)))

	log.InfoContext(ctx, "with context")
	log.Info("without context")
	log.With("trace_id", "already-there").InfoContext(ctx, "request logger")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	require.Len(t, lines, 3)
	var l [3]map[string]any
	for i := range lines {
		require.NoError(t, json.Unmarshal([]byte(lines[i]), &l[i]))
	}
	require.Equal(t, span.SpanContext().TraceID().String(), l[0]["trace_id"])
	require.Equal(t, span.SpanContext().SpanID().String(), l[0]["span_id"])
	require.NotContains(t, l[1], "trace_id")
	require.Equal(t, 1, strings.Count(lines[2], `"trace_id"`), "the trace id twice on one line: %s", lines[2])
}

// Outcomes are counted once their event is published, by outcome and failure code, with the
// time from the payment's creation; an event that could not be published counts nothing.
func TestOutcomesAreCountedWhenPublished(t *testing.T) {
	reg := prometheus.NewRegistry()
	telemetry.Register(reg)
	const failed = `paysaga_payments_total{failure_code="E1001",outcome="failed"}`
	const took = `paysaga_payment_duration_seconds{outcome="failed"}_count`
	before := gather(t, reg)
	data, _ := json.Marshal(map[string]any{"status": "FAILED", "failure_code": "E1001",
		"created_at": time.Now().Add(-1500 * time.Millisecond), "amount": 5})
	ev := events.Event{ID: "evt_1", Type: events.PaymentFailed, OccurredAt: time.Now(), Data: data}
	require.NoError(t, telemetry.Publisher(events.NoBroker{}).Publish(context.Background(), ev))
	after := gather(t, reg)
	require.Equal(t, before[failed]+1, after[failed])
	require.Equal(t, before[took]+1, after[took])
	require.Equal(t, before[`paysaga_events_published_total{type="payment.failed"}`]+1, after[`paysaga_events_published_total{type="payment.failed"}`])

	require.Error(t, telemetry.Publisher(failPublisher{}).Publish(context.Background(), ev))
	last := gather(t, reg)
	require.Equal(t, after[failed], last[failed], "an unpublished outcome was counted")
	require.Equal(t, after[`paysaga_events_publish_failures_total{type="payment.failed"}`]+1, last[`paysaga_events_publish_failures_total{type="payment.failed"}`])
}

type failPublisher struct{}

func (failPublisher) Publish(context.Context, events.Event) error { return context.DeadlineExceeded }

func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
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

// The worker's /metrics serves Prometheus' default registry: the Temporal SDK's metrics and
// the engine's are there as well as in the registries the API serves.
func TestSDKMetricsReachTheDefaultRegistryAndTheAPIs(t *testing.T) {
	telemetry.TemporalMetricsHandler().WithTags(map[string]string{"task_queue": "probe"}).
		Timer("temporal_activity_schedule_to_start_latency").Record(40 * time.Millisecond)
	api := prometheus.NewRegistry()
	telemetry.Register(api)
	for name, reg := range map[string]prometheus.Gatherer{"default": prometheus.DefaultGatherer, "api": api} {
		got := map[string]bool{}
		mfs, err := reg.Gather()
		require.NoError(t, err)
		for _, mf := range mfs {
			got[mf.GetName()] = true
		}
		require.True(t, got["temporal_activity_schedule_to_start_latency_seconds"], "%s registry: no SDK metrics", name)
	}
}
