package events

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// Event metrics, labelled by event type (one of the routing keys above, "other" otherwise) or
// by queue (the consumers' queues, a handful).
var (
	published = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "paysaga_events_published_total",
		Help: "Events handed to the broker and confirmed (or, without a broker, recorded in the database only), by event type.",
	}, []string{"type"})
	publishFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "paysaga_events_publish_failures_total",
		Help: "Failed attempts to publish an event (the activity retries them), by event type.",
	}, []string{"type"})
	deadLettered = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "paysaga_events_dead_lettered_total",
		Help: "Events a consumer gave up on and sent to the dead letters, by queue.",
	}, []string{"queue"})
)

// Collectors are the package's metrics, for the process's registry.
func Collectors() []prometheus.Collector {
	return []prometheus.Collector{published, publishFailures, deadLettered}
}

// typeLabel keeps the label bounded: event types are the engine's own constants
// ("payment.succeeded"); anything else is "other".
func typeLabel(t string) string {
	if len(t) > 40 {
		return "other"
	}
	dot := false
	for i := 0; i < len(t); i++ {
		switch c := t[i]; {
		case c >= 'a' && c <= 'z', c == '_':
		case c == '.' && !dot && i > 0 && i < len(t)-1:
			dot = true
		default:
			return "other"
		}
	}
	if !dot {
		return "other"
	}
	return t
}

// Instrumented wraps a Publisher with a span per publish and the published/failed counters.
func Instrumented(next Publisher) Publisher { return instrumented{next} }

type instrumented struct{ next Publisher }

func (p instrumented) Publish(ctx context.Context, ev Event) error {
	ctx, span := otel.Tracer("paysaga/events").Start(ctx, "publish "+ev.Type,
		trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(attribute.String("messaging.system", "rabbitmq"),
			attribute.String("messaging.destination.name", ev.Type),
			attribute.String("messaging.message.id", ev.ID)))
	defer span.End()
	err := p.next.Publish(ctx, ev)
	if err != nil {
		publishFailures.WithLabelValues(typeLabel(ev.Type)).Inc()
		span.SetStatus(codes.Error, "publish failed")
		return err
	}
	published.WithLabelValues(typeLabel(ev.Type)).Inc()
	return nil
}
