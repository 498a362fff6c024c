package connect

import (
	"crypto/tls"
	"fmt"
	"log/slog"

	"go.temporal.io/sdk/client"
	temporalotel "go.temporal.io/sdk/contrib/opentelemetry"
	"go.temporal.io/sdk/interceptor"
	tlog "go.temporal.io/sdk/log"
	sdkworker "go.temporal.io/sdk/worker"

	"paysaga/config"
	"paysaga/payloadcodec"
	"paysaga/telemetry"
)

// TemporalClientOptions are the options of every Temporal client of the engine — the API's,
// the worker's and payctl's — so that they connect, encode and observe alike. The SDK logs on
// logger (app.TemporalClientOptions lowers the lines of bank answers an activity logged).
func TemporalClientOptions(cfg config.Config, logger *slog.Logger) (client.Options, error) {
	opts := client.Options{
		HostPort:  cfg.TemporalAddress,
		Namespace: cfg.TemporalNamespace,
		Logger:    tlog.NewStructuredLogger(logger.With("component", "temporal")),
	}
	// TLS, mTLS and Temporal Cloud API keys (PAYSAGA_TEMPORAL_TLS_*, PAYSAGA_TEMPORAL_API_KEY).
	if err := temporalConnection(cfg, &opts); err != nil {
		return client.Options{}, err
	}
	// Encrypted payloads, the tracing interceptor, the SDK's metrics (issue 14).
	if err := EncodeAndObserve(cfg, &opts, logger); err != nil {
		return client.Options{}, err
	}
	return opts, nil
}

// temporalConnection sets the TLS and credential options of a Temporal client: a CA of the
// cluster's own (self-hosted with internode/frontend TLS), a client certificate (mTLS, as
// Temporal Cloud or a cluster with requireClientAuth wants), or a Temporal Cloud API key.
func temporalConnection(cfg config.Config, opts *client.Options) error {
	if !cfg.TemporalTLS {
		return nil
	}
	tc, err := tlsConfig(cfg.TemporalTLSCA, cfg.TemporalTLSServerName, "PAYSAGA_TEMPORAL_TLS_CA")
	if err != nil {
		return err
	}
	if cfg.TemporalTLSCert != "" || cfg.TemporalTLSKey != "" {
		cert, err := pemBytes(cfg.TemporalTLSCert, "PAYSAGA_TEMPORAL_TLS_CERT")
		if err != nil {
			return err
		}
		key, err := pemBytes(cfg.TemporalTLSKey, "PAYSAGA_TEMPORAL_TLS_KEY")
		if err != nil {
			return err
		}
		pair, err := tls.X509KeyPair(cert, key)
		if err != nil {
			// The error of X509KeyPair names no key material.
			return fmt.Errorf("PAYSAGA_TEMPORAL_TLS_CERT / PAYSAGA_TEMPORAL_TLS_KEY: %w", err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	opts.ConnectionOptions.TLS = tc
	if cfg.TemporalAPIKey != "" {
		// Sent as "authorization: Bearer <key>" on every call; never over plain text, since TLS
		// is on whenever a key is set.
		opts.Credentials = client.NewAPIKeyStaticCredentials(cfg.TemporalAPIKey)
	}
	return nil
}

// EncodeAndObserve sets what every Temporal client of the engine — the API's, the worker's,
// payctl's, the dev and test stacks' — encodes and reports with:
//   - the payload codec of PAYSAGA_TEMPORAL_PAYLOAD_KEYS in the data converter (inputs, results,
//     updates, queries, memos) and the failure converter (failure messages and stacks), so the
//     Temporal server and its Web UI hold only ciphertext;
//   - the OpenTelemetry tracing interceptor, which carries the caller's trace into the workflow
//     and its activities (the payment's one trace);
//   - the SDK's metrics handler, whose metrics every process serves on /metrics;
//   - no gRPC compression: the SDK gzips every request by default, but what it carries is
//     mostly ciphertext, which does not compress, around small protobuf envelopes — at
//     saturation gzip took 7 % of the engine's CPU (docs/benchmarks.md) and the server's
//     to decompress, for nothing.
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
	opts.ConnectionOptions.GrpcCompression = &client.GrpcCompressionNone{}
	return nil
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
