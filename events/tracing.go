package events

import (
	"context"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// consumeSpan starts the span of a consumer handling ev, a child of the publisher's span when
// the message carries its trace context.
func consumeSpan(ctx context.Context, headers amqp.Table, queue string, ev Event) (context.Context, trace.Span) {
	if headers != nil {
		ctx = otel.GetTextMapPropagator().Extract(ctx, tableCarrier(headers))
	}
	return otel.Tracer("paysaga/events").Start(ctx, "process "+ev.Type, trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(attribute.String("messaging.system", "rabbitmq"),
			attribute.String("messaging.destination.subscription.name", queue),
			attribute.String("messaging.message.id", ev.ID)))
}

// traceHeaders carries the publisher's trace context (W3C traceparent) in the message headers,
// so that a consumer's work can join the payment's trace.
func traceHeaders(ctx context.Context) amqp.Table {
	h := amqp.Table{}
	otel.GetTextMapPropagator().Inject(ctx, tableCarrier(h))
	if len(h) == 0 {
		return nil
	}
	return h
}

// tableCarrier adapts AMQP headers to OpenTelemetry's TextMapCarrier.
type tableCarrier amqp.Table

func (c tableCarrier) Get(key string) string {
	s, _ := c[key].(string)
	return s
}

func (c tableCarrier) Set(key, value string) { c[key] = value }

func (c tableCarrier) Keys() []string {
	out := make([]string, 0, len(c))
	for k := range c {
		out = append(out, k)
	}
	return out
}
