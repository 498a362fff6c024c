package events_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"paysaga"
	"paysaga/events"
)

// A published event carries its trace to the consumer: the handling is a span of the trace of
// the payment that published it, beneath the publish span; publishes and dead letters are
// counted.
func TestEventsCarryTheirTraceToConsumersAndAreCounted(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	reg := prometheus.NewRegistry()
	reg.MustRegister(events.Collectors()...)

	ctx := context.Background()
	cfg := testConfig(t, amqpURL())
	rabbit, err := events.NewRabbit(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = rabbit.Close() })
	var mu sync.Mutex
	seen := map[string]trace.SpanContext{}
	handler := func(ctx context.Context, ev events.Event) error {
		mu.Lock()
		seen[ev.ID] = trace.SpanContextFromContext(ctx)
		mu.Unlock()
		if ev.Type == events.PaymentFailed {
			return events.Permanent(context.Canceled) // dead-lettered at once
		}
		return nil
	}
	queue := startConsumerWith(t, cfg, handler)

	pctx, parent := tp.Tracer("test").Start(ctx, "payment")
	pub := events.Instrumented(rabbit)
	okID, badID := paysaga.NewID("evt_"), paysaga.NewID("evt_")
	require.NoError(t, pub.Publish(pctx, events.Event{ID: okID, Type: events.PaymentSucceeded, OccurredAt: time.Now()}))
	require.NoError(t, pub.Publish(pctx, events.Event{ID: badID, Type: events.PaymentFailed, OccurredAt: time.Now()}))
	parent.End()

	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) == 2
	}, 10*time.Second, 10*time.Millisecond)
	mu.Lock()
	got := seen[okID]
	mu.Unlock()
	require.Equal(t, parent.SpanContext().TraceID(), got.TraceID(), "the consumer is not in the publisher's trace")

	var publishSpan sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.Name() == "publish payment.succeeded" {
			publishSpan = s
		}
	}
	require.NotNil(t, publishSpan)
	require.Equal(t, parent.SpanContext().SpanID(), publishSpan.Parent().SpanID())
	require.Eventually(t, func() bool {
		for _, s := range rec.Ended() {
			if s.Name() == "process payment.succeeded" && s.Parent().SpanID() == publishSpan.SpanContext().SpanID() {
				return true
			}
		}
		return false
	}, 10*time.Second, 10*time.Millisecond, "the handling is not beneath the publish")

	count := func(name, label, value string) float64 {
		mfs, err := reg.Gather()
		require.NoError(t, err)
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == label && l.GetValue() == value {
						return m.GetCounter().GetValue()
					}
				}
			}
		}
		return 0
	}
	require.Equal(t, 1.0, count("paysaga_events_published_total", "type", events.PaymentSucceeded))
	require.Eventually(t, func() bool { return count("paysaga_events_dead_lettered_total", "queue", queue) == 1 },
		10*time.Second, 10*time.Millisecond)
}

// startConsumerWith runs a consumer of a fresh queue with handler h until the test ends.
func startConsumerWith(t *testing.T, cfg events.Config, h events.Handler) string {
	t.Helper()
	queue := cfg.Exchange + ".traced"
	c, err := events.NewConsumer(events.ConsumerConfig{
		Config: cfg, Queue: queue, Patterns: []string{"payment.*"},
		MaxAttempts: 2, Backoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond,
	}, h)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		ch := consumerChannel(t)
		_, _ = ch.QueueDelete(queue, false, false, false)
	})
	select {
	case <-c.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("consumer never became ready")
	}
	return queue
}
