// Package app builds the engine's parts from a configuration: the database, Redis, the Temporal
// client, the bank client, the event publisher, the API and the worker. `paysaga dev`, the
// production processes, the end-to-end tests and the benchmark all assemble the engine through
// it, so what is tested is what runs.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"
	"go.temporal.io/sdk/client"

	"paysaga/api"
	"paysaga/auth"
	"paysaga/config"
	"paysaga/internal/connect"
	"paysaga/nh"
	"paysaga/seal"
	"paysaga/store"
	"paysaga/telemetry"
)

// NewLogger returns the process logger configured by PAYSAGA_LOG_LEVEL and PAYSAGA_LOG_FORMAT.
func NewLogger(cfg config.Config) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	// Lines logged with a context carry its trace_id and span_id.
	if cfg.LogFormat == "text" {
		return slog.New(telemetry.LogHandler(slog.NewTextHandler(os.Stderr, opts)))
	}
	return slog.New(telemetry.LogHandler(slog.NewJSONHandler(os.Stderr, opts)))
}

// OpenDB opens the database; migrate also brings its schema up to date (connect.OpenDB).
func OpenDB(ctx context.Context, cfg config.Config, migrate bool) (*store.DB, error) {
	return connect.OpenDB(ctx, cfg, migrate)
}

// NewRedis returns a Redis client for cfg; it panics on TLS settings that cannot be read
// (connect.NewRedis).
func NewRedis(cfg config.Config) *redis.Client { return connect.NewRedis(cfg) }

// OpenRedis returns a Redis client for cfg, or why its TLS settings cannot be used
// (connect.OpenRedis).
func OpenRedis(cfg config.Config) (*redis.Client, error) { return connect.OpenRedis(cfg) }

// RedisKeyPrefix is the deployment's prefix of every Redis key and channel
// (PAYSAGA_REDIS_KEY_PREFIX) followed by the engine's own "paysaga:": two deployments with
// different prefixes share one Redis without seeing each other's keys.
func RedisKeyPrefix(cfg config.Config) string { return cfg.RedisKeyPrefix + "paysaga:" }

// DialTemporal connects to the Temporal frontend, retrying for a while: in compose the worker
// may start before the cluster is ready.
func DialTemporal(ctx context.Context, cfg config.Config, logger *slog.Logger) (client.Client, error) {
	opts, err := TemporalClientOptions(cfg, logger)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(time.Minute)
	for {
		c, err := client.DialContext(ctx, opts)
		if err == nil {
			return c, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("connect to Temporal at %s: %w", cfg.TemporalAddress, err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
}

// TemporalClientOptions are connect.TemporalClientOptions with the engine's SDK logger: the
// SDK's line about a failed activity attempt that was a bank answer, which the activity logged
// already, is lowered (TemporalLogger).
func TemporalClientOptions(cfg config.Config, logger *slog.Logger) (client.Options, error) {
	opts, err := connect.TemporalClientOptions(cfg, logger)
	if err != nil {
		return client.Options{}, err
	}
	opts.Logger = TemporalLogger(logger.With("component", "temporal"))
	return opts, nil
}

// NewBank returns the NH client, its IsTuno numbers from the database (connect.NewBank).
func NewBank(cfg config.Config, db *store.DB, logger *slog.Logger) (*nh.Client, error) {
	return connect.NewBank(cfg, db, logger)
}

// OpenKeys reads the account-sealing keys of PAYSAGA_ACCOUNT_KEYS.
func OpenKeys(cfg config.Config) (*seal.Keyring, error) {
	if cfg.AccountKeys == "" {
		return nil, errors.New("PAYSAGA_ACCOUNT_KEYS is not set")
	}
	return seal.Parse(cfg.AccountKeys)
}

// NewAuth returns the authentication service.
func NewAuth(cfg config.Config, db *store.DB, rdb redis.UniversalClient, dev bool) (*auth.Service, error) {
	return auth.NewService(auth.Config{
		Secret:     cfg.JWTSecret,
		Issuer:     cfg.JWTIssuer,
		Audience:   cfg.JWTAudience,
		AccessTTL:  cfg.AccessTokenTTL,
		RefreshTTL: cfg.RefreshTokenTTL,
		DevMode:    dev,
		KeyPrefix:  RedisKeyPrefix(cfg) + "auth:",
	}, db, rdb)
}

// NewRegistry returns a Prometheus registry with the Go runtime and process collectors and the
// engine's metrics (see RegisterMetrics).
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	RegisterMetrics(reg) // the bank calls, events, outcomes and the Temporal SDK's metrics
	return reg
}

// Readiness returns the /readyz checks for the database, Redis and Temporal.
func Readiness(db *store.DB, rdb redis.UniversalClient, tc client.Client) []api.Check {
	return []api.Check{
		{Name: "database", Func: db.Ping},
		{Name: "redis", Func: func(ctx context.Context) error { return rdb.Ping(ctx).Err() }},
		{Name: "temporal", Func: func(ctx context.Context) error {
			_, err := tc.CheckHealth(ctx, &client.CheckHealthRequest{})
			return err
		}},
	}
}

// ServeOptions bound how long a client may hold a connection: to send its request headers,
// its whole request, to read the answer, and idle between two requests. The notification
// stream lifts the read and write deadlines for itself (it bounds each of its writes instead).
type ServeOptions struct {
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
}

// DefaultServeOptions: a request is read within 30 s and answered within 2 minutes (well
// above the longest wait of a synchronous answer, PAYSAGA_PAYMENT_SYNC_WAIT).
var DefaultServeOptions = ServeOptions{
	ReadHeaderTimeout: 10 * time.Second,
	ReadTimeout:       30 * time.Second,
	WriteTimeout:      2 * time.Minute,
	IdleTimeout:       2 * time.Minute,
}

// ServeOptionsFor returns DefaultServeOptions with a write timeout that leaves a synchronous
// answer its configured wait.
func ServeOptionsFor(cfg config.Config) ServeOptions {
	o := DefaultServeOptions
	if need := cfg.PaymentSyncWait + time.Minute; o.WriteTimeout < need {
		o.WriteTimeout = need
	}
	return o
}

// Serve serves h on ln with DefaultServeOptions (see ServeWith).
func Serve(ctx context.Context, ln net.Listener, h http.Handler, logger *slog.Logger) error {
	return ServeWith(ctx, ln, h, logger, DefaultServeOptions)
}

// ServeWith serves h on ln until ctx is done, then drains in-flight requests for up to 10
// seconds.
func ServeWith(ctx context.Context, ln net.Listener, h http.Handler, logger *slog.Logger, o ServeOptions) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: o.ReadHeaderTimeout,
		ReadTimeout:       o.ReadTimeout,
		WriteTimeout:      o.WriteTimeout,
		IdleTimeout:       o.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return err
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
