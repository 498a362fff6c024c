package telemetry

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"paysaga/events"
)

// Outcome metrics are counted where every final outcome passes exactly once in the normal case:
// the publishing of its event (at least once — a publish retried after the broker confirmed but
// before the activity completed counts twice; rare, and visible as events_publish_failures).
var (
	paymentOutcomes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "paysaga_payments_total",
		Help: "Payments that reached an outcome, by outcome (succeeded, failed, unknown, canceled, cancel_failed) and failure code (the bank's response code or the engine's; none on success).",
	}, []string{"outcome", "failure_code"})
	paymentDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "paysaga_payment_duration_seconds",
		Help: "Time from a payment's request (its creation) to its outcome, by outcome.",
		// A payment normally ends within a second; an unknown bank outcome is inquired for
		// minutes (PAYSAGA_PAYMENT_UNKNOWN_DEADLINE).
		Buckets: []float64{.1, .25, .5, 1, 2, 5, 10, 30, 60, 300, 900, 3600},
	}, []string{"outcome"})
	refundOutcomes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "paysaga_refunds_total",
		Help: "Refunds that reached an outcome, by outcome (succeeded, failed, unknown) and failure code.",
	}, []string{"outcome", "failure_code"})
)

var outcomeCollectors = []prometheus.Collector{paymentOutcomes, paymentDuration, refundOutcomes}

var paymentFinal = map[string]string{
	events.PaymentSucceeded:    "succeeded",
	events.PaymentFailed:       "failed",
	events.PaymentUnknown:      "unknown",
	events.PaymentCanceled:     "canceled",
	events.PaymentCancelFailed: "cancel_failed",
}

var refundFinal = map[string]string{
	events.RefundSucceeded: "succeeded",
	events.RefundFailed:    "failed",
	events.RefundUnknown:   "unknown",
}

// Publisher wraps the worker's event publisher: a span and the published/failed counters for
// every event (events.Instrumented), and the outcome metrics of payments and refunds for the
// events that announce one, counted once the event is published.
func Publisher(next events.Publisher) events.Publisher {
	return outcomePublisher{events.Instrumented(next)}
}

type outcomePublisher struct{ next events.Publisher }

func (p outcomePublisher) Publish(ctx context.Context, ev events.Event) error {
	if err := p.next.Publish(ctx, ev); err != nil {
		return err
	}
	var body struct {
		FailureCode string    `json:"failure_code"`
		CreatedAt   time.Time `json:"created_at"`
	}
	if outcome, ok := paymentFinal[ev.Type]; ok {
		_ = json.Unmarshal(ev.Data, &body)
		paymentOutcomes.WithLabelValues(outcome, codeLabel(body.FailureCode)).Inc()
		if !body.CreatedAt.IsZero() && !ev.OccurredAt.IsZero() && ev.OccurredAt.After(body.CreatedAt) {
			paymentDuration.WithLabelValues(outcome).Observe(ev.OccurredAt.Sub(body.CreatedAt).Seconds())
		}
	} else if outcome, ok := refundFinal[ev.Type]; ok {
		_ = json.Unmarshal(ev.Data, &body)
		refundOutcomes.WithLabelValues(outcome, codeLabel(body.FailureCode)).Inc()
	}
	return nil
}

// codeLabel bounds a failure code label: the bank's codes and the engine's snake_case codes
// are short words; anything else is "other".
func codeLabel(code string) string {
	if code == "" {
		return "none"
	}
	if len(code) > 32 || strings.IndexFunc(code, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_')
	}) >= 0 {
		return "other"
	}
	return code
}
