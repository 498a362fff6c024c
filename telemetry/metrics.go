package telemetry

import (
	"errors"
	"log/slog"
	"regexp"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.temporal.io/sdk/client"
	temporalotel "go.temporal.io/sdk/contrib/opentelemetry"

	"paysaga/events"
	"paysaga/nh"
)

// durationBuckets (seconds) of the Temporal SDK's latencies: schedule-to-start and task
// latencies live between milliseconds and, when workers are short, minutes. OpenTelemetry's
// default buckets assume milliseconds.
var durationBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300}

// sdkMetrics bridges the Temporal SDK's metrics (reported through OpenTelemetry) to
// Prometheus. One per process: the SDK's counters are process totals, whichever client or
// worker reports them.
var sdkMetrics struct {
	once      sync.Once
	handler   client.MetricsHandler
	collector prometheus.Collector
}

// captureRegisterer receives the exporter's collector instead of registering it, so that the
// one collector can be registered into every registry a process serves.
type captureRegisterer struct{ c prometheus.Collector }

func (r *captureRegisterer) Register(c prometheus.Collector) error { r.c = c; return nil }
func (r *captureRegisterer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		r.c = c
	}
}
func (r *captureRegisterer) Unregister(prometheus.Collector) bool { return true }

func initSDKMetrics() {
	sdkMetrics.once.Do(func() {
		capture := &captureRegisterer{}
		exp, err := otelprom.New(otelprom.WithRegisterer(capture), otelprom.WithoutScopeInfo(), otelprom.WithoutTargetInfo())
		if err != nil {
			// Only a registration error, which the capturing registerer cannot return.
			panic("telemetry: prometheus exporter: " + err.Error())
		}
		provider := sdkmetric.NewMeterProvider(
			sdkmetric.WithReader(exp),
			sdkmetric.WithView(sdkmetric.NewView(
				sdkmetric.Instrument{Name: "temporal_*", Unit: "s"},
				sdkmetric.Stream{Aggregation: sdkmetric.AggregationExplicitBucketHistogram{Boundaries: durationBuckets}},
			)),
		)
		sdkMetrics.handler = temporalotel.NewMetricsHandler(temporalotel.MetricsHandlerOptions{
			Meter:                provider.Meter("temporal-sdk-go"),
			UseMonotonicCounters: true, // counters, not gauges, for rate()
			OnError: func(err error) {
				slog.Default().Warn("temporal sdk metric", "error", err.Error())
			},
		})
		sdkMetrics.collector = capture.c
		_ = register(prometheus.DefaultRegisterer, sdkMetrics.collector)
		for _, c := range collectors() {
			_ = register(prometheus.DefaultRegisterer, c)
		}
	})
}

// TemporalMetricsHandler is the Temporal SDK's metrics handler of every client of the process
// (client.Options.MetricsHandler): schedule-to-start latencies, task slots, poller counts,
// workflow and activity failures, sticky cache hits.
func TemporalMetricsHandler() client.MetricsHandler {
	initSDKMetrics()
	return sdkMetrics.handler
}

// collectors are the engine's business metrics, defined beside what they measure.
func collectors() []prometheus.Collector {
	out := append(nh.Collectors(), events.Collectors()...)
	return append(out, outcomeCollectors...)
}

// Register adds the Temporal SDK's metrics and the engine's business metrics to reg (they are
// also in Prometheus' default registry). Registering twice is harmless.
func Register(reg prometheus.Registerer) {
	initSDKMetrics()
	for _, c := range append(collectors(), sdkMetrics.collector) {
		if err := register(reg, c); err != nil {
			panic("telemetry: register metrics: " + err.Error())
		}
	}
}

func register(reg prometheus.Registerer, c prometheus.Collector) error {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			return nil
		}
		return err
	}
	return nil
}

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

// MetricNames are the names of the business metrics defined outside the API (bank calls,
// events, outcomes), whether or not they have been observed yet: a dashboard or an alert may
// query any of them.
func MetricNames() []string {
	var names []string
	for _, c := range collectors() {
		ch := make(chan *prometheus.Desc, 16)
		go func() { c.Describe(ch); close(ch) }()
		for d := range ch {
			if m := fqName.FindStringSubmatch(d.String()); m != nil {
				names = append(names, m[1])
			}
		}
	}
	return names
}
