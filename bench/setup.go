package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/go-sql-driver/mysql"
	sdkworker "go.temporal.io/sdk/worker"

	"paysaga/config"
	"paysaga/internal/app"
	"paysaga/internal/stack"
	"paysaga/internal/temporaltest"
)

// env is the engine under test: the whole stack in this process, its API on a real loopback
// listener so that requests pay for TCP, HTTP parsing and JSON like a client's would.
type env struct {
	*stack.Stack
	APIURL string
	HTTP   *http.Client
	dbName string
	admin  *sql.DB
	// stopAPI stops serving; set once the listener is up.
	stopAPI func()
}

func getenv(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// start creates a database of its own on the MariaDB server and starts the stack on it, real
// Redis and RabbitMQ. Any service that cannot be reached fails the run: a benchmark that
// quietly fell back to an embedded stand-in would measure something else.
func start(ctx context.Context, o options, logger *slog.Logger) (_ *env, err error) {
	e := &env{}
	defer func() {
		if err != nil {
			e.Close()
		}
	}()
	bin, err := temporaltest.Binary()
	if err != nil {
		return nil, err
	}

	dsn := getenv("PAYSAGA_TEST_MYSQL_DSN", "root@tcp(127.0.0.1:3306)/test?parseTime=true")
	mcfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("PAYSAGA_TEST_MYSQL_DSN: %w", err)
	}
	if e.admin, err = sql.Open("mysql", dsn); err != nil {
		return nil, err
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := e.admin.PingContext(pingCtx); err != nil {
		return nil, fmt.Errorf("MariaDB at %s (PAYSAGA_TEST_MYSQL_DSN): %w", mcfg.Addr, err)
	}
	name := fmt.Sprintf("paysaga_bench_%d", time.Now().UnixNano())
	if _, err := e.admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		return nil, fmt.Errorf("MariaDB at %s: create the benchmark database: %w", mcfg.Addr, err)
	}
	e.dbName = name
	mcfg.DBName = name

	secret := make([]byte, 32)
	_, _ = rand.Read(secret) // a fresh signing key per run: nothing to keep, nothing to print
	redisAddr := getenv("PAYSAGA_TEST_REDIS_ADDR", "127.0.0.1:6379")
	amqpURL := getenv("PAYSAGA_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
	cfg, err := config.Load(func(name string) string {
		switch name {
		case "PAYSAGA_DB_DRIVER":
			return "mysql"
		case "PAYSAGA_DB_DSN":
			return mcfg.FormatDSN()
		case "PAYSAGA_REDIS_ADDR":
			return redisAddr
		case "PAYSAGA_AMQP_URL":
			return amqpURL
		case "PAYSAGA_JWT_SECRET":
			return hex.EncodeToString(secret)
		case "PAYSAGA_LOG_LEVEL":
			return "warn"
		case "PAYSAGA_PAYMENT_MAX_IN_FLIGHT", "PAYSAGA_PAYMENT_MAX_IN_FLIGHT_PER_CUSTOMER":
			return os.Getenv(name) // admission bounds, to study overload; the defaults otherwise
		}
		return ""
	})
	if err != nil {
		return nil, err
	}

	so := stack.Options{
		Config:         cfg,
		Logger:         logger,
		TemporalBin:    bin,
		TemporalDBFile: o.temporalDB,
		WorkerOptions:  o.workerOptions(),
	}
	if o.verbose {
		so.TemporalLog = os.Stderr
	}
	if e.Stack, err = stack.Start(ctx, so); err != nil {
		return nil, fmt.Errorf("start the stack (Redis %s, RabbitMQ from PAYSAGA_TEST_AMQP_URL): %w", redisAddr, err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	serveCtx, stopServe := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() {
		defer close(served)
		if err := app.Serve(serveCtx, ln, e.API, logger); err != nil {
			logger.Error("API server", "error", err.Error())
		}
	}()
	e.stopAPI = func() { stopServe(); <-served }
	e.APIURL = "http://" + ln.Addr().String()
	e.HTTP = newHTTPClient(o.rate)
	return e, nil
}

// workerOptions are the engine worker's (and the baseline worker's) concurrency. The SDK's
// defaults already allow 1000 concurrent tasks of each kind; its 2 pollers per kind hand tasks
// out two at a time, so a burst waits in the server's queue. 4 of each keep up with a burst
// without many idle long-polls on a 2-core machine; -wf-pollers and -act-pollers change them.
func (o options) workerOptions() sdkworker.Options {
	return sdkworker.Options{
		MaxConcurrentWorkflowTaskPollers:        o.wfPollers,
		MaxConcurrentActivityTaskPollers:        o.actPollers,
		MaxConcurrentEagerActivityExecutionSize: o.eager,
	}
}

// newHTTPClient returns a client for an open-model load: every request may need a connection
// of its own while earlier ones wait for their outcome (the API holds a POST up to the sync
// wait), so the idle pool is sized for the number in flight, not for Go's default of 2 per
// host, which would open and close a connection for most requests.
func newHTTPClient(rate float64) *http.Client {
	idle := max(64, int(rate*10))
	return &http.Client{
		Timeout: 30 * time.Second, // well above the API's sync wait (5s): a timeout here is an error
		Transport: &http.Transport{
			Proxy:               nil, // loopback: never through a proxy from the environment
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        idle,
			MaxIdleConnsPerHost: idle,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true, // small JSON bodies on loopback: gzip would only cost CPU
			ForceAttemptHTTP2:   false,
		},
	}
}

// Close stops the API and the stack, then drops the database — also after an interrupted run:
// the benchmark leaves nothing behind on the shared server.
func (e *env) Close() {
	if e.stopAPI != nil {
		e.stopAPI()
	}
	if e.Stack != nil {
		e.Stack.Close() // before the drop: its pool must let go of the database
	}
	if e.admin == nil {
		return
	}
	if e.dbName != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := e.admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+e.dbName); err != nil {
			fmt.Fprintf(os.Stderr, "bench: drop database %s: %v\n", e.dbName, err)
		}
	}
	_ = e.admin.Close()
}
