// Package stack starts the whole engine in one process: a Temporal dev server (the Temporal
// CLI binary as a child process), the database, Redis (or an in-process Redis-protocol server),
// RabbitMQ (or no broker), the NH simulator, a worker and the API. `paysaga dev`, the end-to-end
// tests and the benchmark all run on it, so they exercise the same assembly as each other and,
// through internal/app, as the production processes.
package stack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/gin-gonic/gin"
	"github.com/redis/go-redis/v9"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"
	sdkworker "go.temporal.io/sdk/worker"

	"paysaga/api"
	"paysaga/config"
	"paysaga/events"
	"paysaga/internal/app"
	"paysaga/internal/devserver"
	"paysaga/nhsim"
	"paysaga/payloadcodec"
	"paysaga/seal"
	"paysaga/workflows"
)

// Options say what to run on. Zero values are the embedded defaults.
type Options struct {
	// Config is the engine's configuration; its database, Redis, broker and bank settings are
	// used as given (empty RedisAddr: in-process server; empty AMQPURL: no broker). The NH
	// settings are replaced by the simulator's.
	Config config.Config
	Logger *slog.Logger
	// Dev relaxes what only a developer's machine may relax (see app.Parts.Dev).
	Dev bool

	// TemporalBin is the Temporal CLI binary. TemporalDBFile keeps the server's state in a
	// SQLite file (in memory when empty); TemporalPort is its frontend (a free port when 0);
	// UIPort serves the Web UI (headless when 0).
	TemporalBin    string
	TemporalDBFile string
	TemporalPort   int
	UIPort         int
	// UICodecEndpoint is the codec server the Web UI decodes payloads through (none when empty).
	UICodecEndpoint string
	// TemporalLog receives the server's output (discarded when nil).
	TemporalLog io.Writer

	// Sim configures the NH simulator; SimAddr is where it listens (a free port when empty).
	Sim     nhsim.Config
	SimAddr string
	// Payments and Refunds override the payment and refund sagas' deadlines.
	Payments workflows.PaymentConfig
	Refunds  workflows.RefundConfig
	// Webhooks overrides the retry schedule of webhook deliveries.
	Webhooks workflows.WebhookConfig
	// WorkerOptions tunes the worker.
	WorkerOptions sdkworker.Options
}

// Stack is a running engine.
type Stack struct {
	Parts    *app.Parts
	Sim      *nhsim.Sim
	API      *api.Server
	Temporal *testsuite.DevServer

	simServer *httptest.Server
	mini      *miniredis.Miniredis
	closers   []func()

	mu     sync.Mutex
	worker sdkworker.Worker
}

// Start starts everything and the worker. Close stops it all.
func Start(ctx context.Context, o Options) (_ *Stack, err error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if _, serr := os.Stat(o.TemporalBin); serr != nil {
		return nil, fmt.Errorf("the Temporal CLI is not at %q: run `make temporal`", o.TemporalBin)
	}
	gin.SetMode(gin.ReleaseMode)
	s := &Stack{}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	cfg := o.Config
	// Without configured payload keys (tests, the benchmark), Temporal payloads are encrypted
	// with a key that lives as long as the stack: what runs is what production runs.
	if cfg.TemporalPayloadKeys == "" {
		cfg.TemporalPayloadKeys = payloadcodec.GenerateSpec("stack")
	}
	clientOpts := &client.Options{
		Namespace: "default",
		Logger:    app.TemporalLogger(o.Logger.With("component", "temporal")),
	}
	if err := app.EncodeAndObserve(cfg, clientOpts, o.Logger); err != nil {
		return nil, err
	}

	devOpts := testsuite.DevServerOptions{
		ExistingPath:  o.TemporalBin,
		DBFilename:    o.TemporalDBFile,
		LogLevel:      "warn",
		ClientOptions: clientOpts,
		ExtraArgs:     append(searchAttributeArgs(), devserver.Args()...),
		Stdout:        o.TemporalLog,
		Stderr:        o.TemporalLog,
	}
	if o.TemporalLog == nil {
		devOpts.Stdout, devOpts.Stderr = io.Discard, io.Discard
	}
	if o.TemporalPort != 0 {
		devOpts.ClientOptions.HostPort = fmt.Sprintf("127.0.0.1:%d", o.TemporalPort)
	}
	if o.UIPort != 0 {
		devOpts.EnableUI, devOpts.UIPort = true, fmt.Sprint(o.UIPort)
		if o.UICodecEndpoint != "" {
			devOpts.ExtraArgs = append(devOpts.ExtraArgs, "--ui-codec-endpoint", o.UICodecEndpoint)
		}
	}
	if o.TemporalDBFile != "" {
		// On a file, the dev server is about three times faster with these.
		devOpts.ExtraArgs = append(devOpts.ExtraArgs,
			"--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal")
	}
	startCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if s.Temporal, err = testsuite.StartDevServer(startCtx, devOpts); err != nil {
		return nil, fmt.Errorf("start the Temporal dev server: %w", err)
	}
	s.closers = append(s.closers, func() {
		if err := s.Temporal.Stop(); err != nil {
			o.Logger.Warn("stop the Temporal dev server", "error", err.Error())
		}
	})

	var rdb *redis.Client
	if cfg.RedisAddr == "" {
		s.mini = miniredis.NewMiniRedis()
		if err := s.mini.StartAddr("127.0.0.1:0"); err != nil {
			return nil, err
		}
		s.closers = append(s.closers, s.mini.Close)
		cfg.RedisAddr = s.mini.Addr()
	}
	rdb = app.NewRedis(cfg)
	s.closers = append(s.closers, func() { _ = rdb.Close() })
	if err := rdb.Ping(ctx).Err(); err != nil {
		return nil, fmt.Errorf("ping Redis at %s: %w", cfg.RedisAddr, err)
	}

	db, err := app.OpenDB(ctx, cfg, true)
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, func() { _ = db.Close() })

	var publisher events.Publisher = events.NoBroker{Logger: o.Logger}
	if cfg.AMQPURL != "" {
		rabbit, err := events.NewRabbit(ctx, events.Config{URL: cfg.AMQPURL, Logger: o.Logger})
		if err != nil {
			return nil, fmt.Errorf("RabbitMQ: %w", err)
		}
		s.closers = append(s.closers, func() { _ = rabbit.Close() })
		publisher = rabbit
	}

	// Without a broker to consume from, customers are notified as events are published.
	if publisher, err = app.NotifyingPublisher(cfg, publisher, rdb, o.Logger); err != nil {
		return nil, err
	}

	s.Sim = nhsim.New(o.Sim)
	s.closers = append(s.closers, s.Sim.Close)
	s.simServer = httptest.NewUnstartedServer(s.Sim.Handler())
	if o.SimAddr != "" {
		ln, err := net.Listen("tcp", o.SimAddr)
		if err != nil {
			return nil, fmt.Errorf("NH simulator: %w", err)
		}
		_ = s.simServer.Listener.Close()
		s.simServer.Listener = ln
	}
	s.simServer.Start()
	s.closers = append(s.closers, s.simServer.Close)
	nhCfg := s.Sim.ClientConfig(s.simServer.URL)
	cfg.NHBaseURL, cfg.NHIscd, cfg.NHAccessToken = nhCfg.BaseURL, nhCfg.Iscd, nhCfg.AccessToken

	s.Parts = &app.Parts{
		Config: cfg, Logger: o.Logger, DB: db, Redis: rdb, Temporal: s.Temporal.Client(),
		Metrics: app.NewRegistry(), Dev: o.Dev, Events: publisher, Payments: o.Payments, Refunds: o.Refunds, Webhooks: o.Webhooks,
		WorkerOptions: o.WorkerOptions,
	}
	if s.Parts.Bank, err = app.NewBank(cfg, db, o.Logger); err != nil {
		return nil, err
	}
	// Without configured keys (tests, the benchmark), account numbers are sealed with keys
	// that live as long as the stack.
	if cfg.AccountKeys == "" {
		s.Parts.Keys = seal.NewDevKeyring()
	} else if s.Parts.Keys, err = app.OpenKeys(cfg); err != nil {
		return nil, err
	}
	if s.Parts.Hub, err = app.NewHub(ctx, cfg, rdb, o.Logger); err != nil {
		return nil, err
	}
	s.closers = append(s.closers, func() { _ = s.Parts.Hub.Close() })
	if s.API, err = s.Parts.API(); err != nil {
		return nil, err
	}
	if err := s.StartWorker(); err != nil {
		return nil, err
	}
	if o.UIPort != 0 {
		if err := waitForUI(startCtx, o.UIPort); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// waitForUI waits until the Web UI answers through to the server: it starts before the
// frontend listens, and its first connection attempt backs off for several seconds.
func waitForUI(ctx context.Context, port int) error {
	url := fmt.Sprintf("http://127.0.0.1:%d/api/v1/namespaces/default", port)
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if resp, err := http.DefaultClient.Do(req); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the Temporal Web UI on port %d did not reach the server: %w", port, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// SimURL is the simulator's base URL.
func (s *Stack) SimURL() string { return s.simServer.URL }

// StartWorker starts a worker (again, after StopWorker).
func (s *Stack) StartWorker() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.worker != nil {
		return errors.New("stack: the worker is running")
	}
	w, err := s.Parts.Worker()
	if err != nil {
		return err
	}
	if err := w.Start(); err != nil {
		return err
	}
	s.worker = w
	return nil
}

// StopWorker stops the worker, as a crash or a deploy would.
func (s *Stack) StopWorker() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.worker != nil {
		s.worker.Stop()
		s.worker = nil
	}
}

// Close stops everything, the worker first and the Temporal server last.
func (s *Stack) Close() {
	s.StopWorker()
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
	s.closers = nil
}

func searchAttributeArgs() []string {
	var args []string
	for _, f := range workflows.SearchAttributeFlags() {
		args = append(args, "--search-attribute", f)
	}
	return args
}
