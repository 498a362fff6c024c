// Package telemetry wires the engine's observability: OpenTelemetry traces (one trace per
// payment, from the HTTP request through the Temporal client, the workflow, its activities and
// the bank call, down to the store's queries and the broker's publishes), the trace id in log
// lines, and the Prometheus registry every process serves on /metrics — the engine's business
// metrics (defined beside what they measure: nh, events, api) and the Temporal SDK's own
// metrics, bridged from OpenTelemetry.
//
// Traces are always recorded in-process (so that log lines and problem answers carry a trace
// id) and exported only when the standard OTEL_EXPORTER_OTLP_ENDPOINT (or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) variable is set; OTEL_TRACES_EXPORTER=none turns the
// exporter off, OTEL_SERVICE_NAME names the process.
package telemetry

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// TracerName is the instrumentation scope of the engine's own spans.
const TracerName = "paysaga"

// Tracer returns the engine's tracer from the global provider (set by SetupTracing, or a test).
func Tracer() trace.Tracer { return otel.Tracer(TracerName) }

// ExporterConfigured reports whether the OTEL_… environment asks for spans to be exported.
func ExporterConfigured(getenv func(string) string) bool {
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")), "none") {
		return false
	}
	return getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// SetupTracing installs the process's tracer provider and the W3C trace-context propagator.
// Spans are sampled by their parent (a caller's traceparent decides), every root is sampled;
// they are exported over OTLP/HTTP only when ExporterConfigured. The returned function flushes
// and stops the provider.
func SetupTracing(ctx context.Context, service string, logger *slog.Logger, extra ...sdktrace.TracerProviderOption) (func(context.Context) error, error) {
	if name := os.Getenv("OTEL_SERVICE_NAME"); name != "" {
		service = name
	}
	res, err := resource.Merge(resource.Default(), resource.NewWithAttributes(semconv.SchemaURL, semconv.ServiceName(service)))
	if err != nil {
		// Only a schema clash between the two; the default resource is still usable.
		res = resource.Default()
	}
	opts := []sdktrace.TracerProviderOption{
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample())),
	}
	if ExporterConfigured(os.Getenv) {
		exp, err := otlptracehttp.New(ctx) // endpoint, headers, TLS from OTEL_EXPORTER_OTLP_…
		if err != nil {
			return nil, err
		}
		opts = append(opts, sdktrace.WithBatcher(exp))
		if logger != nil {
			logger.Info("exporting traces over OTLP", "service", service)
		}
	}
	tp := sdktrace.NewTracerProvider(append(opts, extra...)...)
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(Propagator())
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		if logger != nil && !errors.Is(err, context.Canceled) {
			logger.Warn("opentelemetry", "error", err.Error())
		}
	}))
	return tp.Shutdown, nil
}

// Propagator is W3C trace context and baggage, what otelhttp and the Temporal interceptor use.
func Propagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}

// TraceID returns the id of the trace ctx belongs to ("" outside any recorded trace).
func TraceID(ctx context.Context) string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.HasTraceID() {
		return ""
	}
	return sc.TraceID().String()
}
