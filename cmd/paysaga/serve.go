package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/spf13/cobra"

	"paysaga/config"
	"paysaga/events"
	"paysaga/internal/app"
	"paysaga/telemetry"
)

// loadProduction reads the configuration of a production process and refuses to go on when a
// setting it needs is missing.
func loadProduction(service string) (config.Config, *slog.Logger, error) {
	if err := config.Require(os.Getenv, service); err != nil {
		return config.Config{}, nil, err
	}
	cfg, err := config.Load(os.Getenv)
	if err != nil {
		return cfg, nil, err
	}
	logger := app.NewLogger(cfg).With("service", service)
	// Traces of the process (exported when OTEL_EXPORTER_OTLP_ENDPOINT is set), flushed by main.
	shutdown, err := telemetry.SetupTracing(context.Background(), "paysaga-"+service, logger)
	if err != nil {
		return cfg, nil, err
	}
	atExit = append(atExit, shutdown)
	return cfg, logger, nil
}

func migrateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Bring the database schema up to date (safe to run from several processes at once)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, logger, err := loadProduction("migrate")
			if err != nil {
				return err
			}
			db, err := app.OpenDB(cmd.Context(), cfg, true)
			if err != nil {
				return err
			}
			defer db.Close()
			v, err := db.SchemaVersion(cmd.Context())
			if err != nil {
				return err
			}
			logger.Info("database migrated", "schema_version", v)
			return nil
		},
	}
}

func apiCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "api",
		Short: "Serve the REST API (production; configured from PAYSAGA_… variables)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			cfg, logger, err := loadProduction("api")
			if err != nil {
				return err
			}
			parts, closeParts, err := openParts(ctx, cfg, logger)
			if err != nil {
				return err
			}
			defer closeParts()
			gin.SetMode(gin.ReleaseMode)
			if parts.Hub, err = app.NewHub(ctx, cfg, parts.Redis, logger); err != nil {
				return err
			}
			// Closing the hub ends the open notification streams, which Shutdown would
			// otherwise wait for.
			go func() { <-ctx.Done(); _ = parts.Hub.Close() }()
			srv, err := parts.API()
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", cfg.HTTPAddr)
			if err != nil {
				return err
			}
			logger.Info("api listening", "addr", ln.Addr().String())
			return app.ServeWith(ctx, ln, srv, logger, app.ServeOptionsFor(cfg))
		},
	}
}

func workerCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "worker",
		Short: "Run the Temporal worker (production; configured from PAYSAGA_… variables)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			cfg, logger, err := loadProduction("worker")
			if err != nil {
				return err
			}
			parts, closeParts, err := openParts(ctx, cfg, logger)
			if err != nil {
				return err
			}
			defer closeParts()
			if cfg.AMQPURL != "" {
				// A broker down at start-up is waited for, not a reason to exit: payments go on,
				// and their events are published (the activities retry) once it is reachable.
				rabbit, err := events.OpenRabbit(events.Config{URL: cfg.AMQPURL, Logger: logger})
				if err != nil {
					return err
				}
				defer rabbit.Close()
				go func() { _ = rabbit.Connect(ctx) }()
				parts.Events = rabbit
				// The worker process also runs the consumers: notifications, merchants' webhooks,
				// and alerts when an alert webhook is configured.
				consumers, err := app.Consumers(cfg, parts.Redis, logger, app.ConsumerOptions{
					Webhooks: app.WebhookDispatcher(parts.DB, parts.Temporal, logger),
				})
				if err != nil {
					return err
				}
				go app.RunConsumers(ctx, consumers)
			} else {
				parts.Events = events.NoBroker{Logger: logger}
			}
			if parts.Events, err = app.NotifyingPublisher(cfg, parts.Events, parts.Redis, logger); err != nil {
				return err
			}
			// A worker that stopped on a fatal error (namespace gone, credentials refused) ends
			// the process, so that its supervisor restarts it; /readyz says so meanwhile.
			state := &app.WorkerRunning{}
			fatal := make(chan error, 1)
			parts.WorkerOptions.OnFatalError = func(err error) {
				state.Fatal(err)
				select {
				case fatal <- err:
				default:
				}
			}
			if cfg.WorkerHTTPAddr != "" {
				ln, err := net.Listen("tcp", cfg.WorkerHTTPAddr)
				if err != nil {
					return err
				}
				checks := append(app.Readiness(parts.DB, parts.Redis, parts.Temporal), state.Check())
				go func() { _ = app.Serve(ctx, ln, app.WorkerHTTP(checks, logger), logger) }()
				logger.Info("worker probes listening", "addr", ln.Addr().String())
			}
			w, err := parts.Worker()
			if err != nil {
				return err
			}
			if err := w.Start(); err != nil {
				return err
			}
			state.Started()
			go app.Housekeeping(ctx, parts.DB, parts.Temporal, logger, time.Hour)
			logger.Info("worker started")
			select {
			case <-ctx.Done():
				w.Stop()
				return nil
			case err := <-fatal:
				w.Stop()
				return fmt.Errorf("worker stopped: %w", err)
			}
		},
	}
}

// openParts opens what both production processes need: database, Redis and Temporal.
func openParts(ctx context.Context, cfg config.Config, logger *slog.Logger) (*app.Parts, func(), error) {
	db, err := app.OpenDB(ctx, cfg, false)
	if err != nil {
		return nil, nil, err
	}
	rdb, err := app.OpenRedis(cfg)
	if err != nil {
		_ = db.Close()
		return nil, nil, err
	}
	tc, err := app.DialTemporal(ctx, cfg, logger)
	if err != nil {
		_ = db.Close()
		_ = rdb.Close()
		return nil, nil, err
	}
	parts := &app.Parts{Config: cfg, Logger: logger, DB: db, Redis: rdb, Temporal: tc, Metrics: app.NewRegistry()}
	closeAll := func() {
		tc.Close()
		_ = rdb.Close()
		_ = db.Close()
	}
	if parts.Bank, err = app.NewBank(cfg, db, logger); err != nil {
		closeAll()
		return nil, nil, err
	}
	if parts.Keys, err = app.OpenKeys(cfg); err != nil {
		closeAll()
		return nil, nil, err
	}
	return parts, func() {
		tc.Close()
		_ = rdb.Close()
		_ = db.Close()
	}, nil
}
