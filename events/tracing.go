package events

import (
	"context"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.opentelemetry.io/otel"
)

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
