package app

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.temporal.io/sdk/client"
	temporalotel "go.temporal.io/sdk/contrib/opentelemetry"
	"go.temporal.io/sdk/interceptor"
	sdkworker "go.temporal.io/sdk/worker"

	"paysaga"
	"paysaga/auth"
	"paysaga/config"
	"paysaga/payloadcodec"
	"paysaga/telemetry"
)

// EncodeAndObserve sets what every Temporal client of the engine — the API's, the worker's,
// payctl's, the dev and test stacks' — encodes and reports with:
//   - the payload codec of PAYSAGA_TEMPORAL_PAYLOAD_KEYS in the data converter (inputs, results,
//     updates, queries, memos) and the failure converter (failure messages and stacks), so the
//     Temporal server and its Web UI hold only ciphertext;
//   - the OpenTelemetry tracing interceptor, which carries the caller's trace into the workflow
//     and its activities (the payment's one trace);
//   - the SDK's metrics handler, whose metrics every process serves on /metrics.
//
// Without keys, payloads stay in plaintext (with a warning): the production processes refuse
// to start without them (config.Require), `paysaga dev` and the stacks generate them.
func EncodeAndObserve(cfg config.Config, opts *client.Options, logger *slog.Logger) error {
	if cfg.TemporalPayloadKeys != "" {
		codec, err := payloadcodec.Parse(cfg.TemporalPayloadKeys)
		if err != nil {
			return err
		}
		opts.DataConverter = payloadcodec.DataConverter(codec)
		opts.FailureConverter = payloadcodec.FailureConverter(opts.DataConverter)
	} else if logger != nil {
		logger.Warn("Temporal payloads are not encrypted: PAYSAGA_TEMPORAL_PAYLOAD_KEYS is not set")
	}
	tracing, err := temporalotel.NewTracingInterceptor(temporalotel.TracerOptions{
		TextMapPropagator: telemetry.Propagator(),
		// Workflows started before tracing was turned on carry no span header.
		AllowInvalidParentSpans: true,
	})
	if err != nil {
		return err
	}
	opts.Interceptors = append([]interceptor.ClientInterceptor{tracing}, opts.Interceptors...)
	opts.MetricsHandler = telemetry.TemporalMetricsHandler()
	return nil
}

// PayloadCodec returns the codec of PAYSAGA_TEMPORAL_PAYLOAD_KEYS (the codec server's).
func PayloadCodec(cfg config.Config) (*payloadcodec.Codec, error) {
	return payloadcodec.Parse(cfg.TemporalPayloadKeys)
}

// RegisterMetrics adds the engine's business metrics and the Temporal SDK's to reg.
func RegisterMetrics(reg prometheus.Registerer) { telemetry.Register(reg) }

// bankHTTPClient is the NH client's HTTP client: each request is a span of the bank call's
// trace (its timings: connect, TLS, first byte).
func bankHTTPClient() *http.Client {
	return &http.Client{Transport: otelhttp.NewTransport(http.DefaultTransport,
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return "HTTP " + r.Method }))}
}

// registerBreakerGauge exports the state of the balance inquiries' circuit breaker (the one
// place the API calls the bank): 1 while it is open and balances are served stale.
func registerBreakerGauge(reg prometheus.Registerer, b interface{ BreakerState() string }) {
	g := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "paysaga_balance_circuit_open",
		Help: "1 while the circuit breaker of the bank's balance inquiries is open (balances served from the cache, marked stale), 0.5 half-open, 0 closed.",
	}, func() float64 {
		switch b.BreakerState() {
		case "open":
			return 1
		case "half-open":
			return 0.5
		}
		return 0
	})
	_ = reg.Register(g) // a second API on the same registry keeps the first one's gauge
}

// ReplayerOptions are the options of a workflow replayer (`payctl history replay`): histories
// written by the engine hold encrypted payloads, which it decodes with the same codec.
func ReplayerOptions(cfg config.Config) (sdkworker.WorkflowReplayerOptions, error) {
	var opts client.Options
	if err := EncodeAndObserve(cfg, &opts, nil); err != nil {
		return sdkworker.WorkflowReplayerOptions{}, err
	}
	return sdkworker.WorkflowReplayerOptions{DataConverter: opts.DataConverter, FailureConverter: opts.FailureConverter}, nil
}

// OperatorOnly is the codec server's authorization: a request must carry an operator's valid
// access token (Authorization: Bearer …), the token payctl's operators and the API accept.
func OperatorOnly(a *auth.Service) func(*http.Request) error {
	return func(r *http.Request) error {
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || strings.TrimSpace(token) == "" {
			return errors.New("no bearer token")
		}
		claims, err := a.Verify(strings.TrimSpace(token))
		if err != nil {
			return err
		}
		if claims.Role != paysaga.RoleOperator {
			return fmt.Errorf("user %s is not an operator", claims.UserID)
		}
		return nil
	}
}
