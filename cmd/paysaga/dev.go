package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/gin-gonic/gin"
	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"

	"paysaga/config"
	"paysaga/events"
	"paysaga/internal/app"
	"paysaga/nhsim"
	"paysaga/workflows"
)

type devOptions struct {
	dir          string
	httpAddr     string
	nhsimAddr    string
	temporalPort int
	uiPort       int
	temporalBin  string
}

func devCmd() *cobra.Command {
	o := devOptions{}
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run the whole engine on this machine: Temporal + Web UI, NH simulator, API and worker",
		Long: `dev starts the Temporal dev server (state and Web UI included) as a child process, the NH
Open API simulator, the API and a worker, on embedded defaults: a SQLite database and the
Temporal state under --dir, an in-process Redis-protocol server, and events recorded in the
database only. Ctrl-C stops everything.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runDev(cmd.Context(), cmd.OutOrStdout(), o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.dir, "dir", "var", "where the database, the Temporal state and the logs live")
	f.StringVar(&o.httpAddr, "http", "127.0.0.1:8080", "API address")
	f.StringVar(&o.nhsimAddr, "nhsim", "127.0.0.1:8090", "NH simulator address")
	f.IntVar(&o.temporalPort, "temporal-port", 7233, "Temporal frontend port")
	f.IntVar(&o.uiPort, "ui-port", 8233, "Temporal Web UI port")
	f.StringVar(&o.temporalBin, "temporal-bin", envOr("PAYSAGA_TEMPORAL_BIN", filepath.Join("bin", "temporal")), "the Temporal CLI binary (`make temporal` builds it)")
	return cmd
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func runDev(ctx context.Context, out io.Writer, o devOptions) error {
	if _, err := os.Stat(o.temporalBin); err != nil {
		return fmt.Errorf("the Temporal CLI is not at %s: run `make temporal` (or `make run`) first", o.temporalBin)
	}
	if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return err
	}
	logFile, err := os.OpenFile(filepath.Join(o.dir, "paysaga.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close()
	logger := slog.New(slog.NewTextHandler(io.MultiWriter(os.Stderr, logFile), &slog.HandlerOptions{Level: slog.LevelInfo}))
	gin.SetMode(gin.ReleaseMode)

	secret, err := devSecret(filepath.Join(o.dir, "jwt.secret"))
	if err != nil {
		return err
	}
	cfg, err := config.Load(func(name string) string {
		switch name {
		case "PAYSAGA_DB_DRIVER":
			return "sqlite"
		case "PAYSAGA_DB_DSN":
			return filepath.Join(o.dir, "paysaga.db")
		}
		return os.Getenv(name)
	})
	if err != nil {
		return err
	}
	cfg.JWTSecret = secret

	// Temporal first: it takes the longest to come up.
	temporalLog, err := os.OpenFile(filepath.Join(o.dir, "temporal.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer temporalLog.Close()
	fmt.Fprintln(out, "starting the Temporal dev server…")
	temporal, err := testsuite.StartDevServer(ctx, testsuite.DevServerOptions{
		ExistingPath: o.temporalBin,
		DBFilename:   filepath.Join(o.dir, "temporal.db"),
		EnableUI:     true,
		UIPort:       fmt.Sprint(o.uiPort),
		LogLevel:     "warn",
		ClientOptions: &client.Options{
			HostPort:  fmt.Sprintf("127.0.0.1:%d", o.temporalPort),
			Namespace: "default",
			Logger:    tlog.NewStructuredLogger(logger.With("component", "temporal")),
		},
		ExtraArgs: append(searchAttributeArgs(),
			// On a file, the dev server is about three times faster with these.
			"--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal"),
		Stdout: temporalLog,
		Stderr: temporalLog,
	})
	if err != nil {
		return fmt.Errorf("start the Temporal dev server (its log: %s): %w", temporalLog.Name(), err)
	}
	defer func() {
		if err := temporal.Stop(); err != nil {
			logger.Warn("stop the Temporal dev server", "error", err.Error())
		}
	}()

	// The in-process Redis-protocol server: rate limits and caches die with the process.
	mini := miniredis.NewMiniRedis()
	if err := mini.StartAddr("127.0.0.1:0"); err != nil {
		return err
	}
	defer mini.Close()
	rdb := redis.NewClient(&redis.Options{Addr: mini.Addr()})
	defer rdb.Close()

	db, err := app.OpenDB(ctx, cfg, true)
	if err != nil {
		return err
	}
	defer db.Close()

	// The bank: the simulator, on its own port so that it can be poked with curl.
	sim := nhsim.New(nhsim.Config{IssueDelay: 3 * time.Second})
	defer sim.Close()
	simLn, err := net.Listen("tcp", o.nhsimAddr)
	if err != nil {
		return fmt.Errorf("NH simulator: %w", err)
	}
	simURL := "http://" + simLn.Addr().String()
	nhCfg := sim.ClientConfig(simURL)
	cfg.NHBaseURL, cfg.NHIscd, cfg.NHAccessToken = nhCfg.BaseURL, nhCfg.Iscd, nhCfg.AccessToken

	parts := &app.Parts{
		Config: cfg, Logger: logger, DB: db, Redis: rdb, Temporal: temporal.Client(),
		Metrics: app.NewRegistry(), Dev: true, Events: events.NoBroker{Logger: logger},
	}
	if parts.Bank, err = app.NewBank(cfg, db, logger); err != nil {
		return err
	}
	w, err := parts.Worker()
	if err != nil {
		return err
	}
	if err := w.Start(); err != nil {
		return err
	}
	defer w.Stop()
	srv, err := parts.API()
	if err != nil {
		return err
	}
	apiLn, err := net.Listen("tcp", o.httpAddr)
	if err != nil {
		return fmt.Errorf("API: %w", err)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 2)
	go func() { errc <- app.Serve(ctx, simLn, sim.Handler(), logger) }()
	go func() { errc <- app.Serve(ctx, apiLn, srv, logger) }()

	printBanner(out, apiLn.Addr().String(), o.uiPort, temporal.FrontendHostPort(), simURL)

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	fmt.Fprintln(out, "\nstopping…")
	cancel()
	return runErr
}

func searchAttributeArgs() []string {
	var args []string
	for _, f := range workflows.SearchAttributeFlags() {
		args = append(args, "--search-attribute", f)
	}
	return args
}

// devSecret keeps the dev JWT secret in a file, so that tokens survive a restart of `make run`.
func devSecret(path string) ([]byte, error) {
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) >= 64 {
		return []byte(strings.TrimSpace(string(b))), nil
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, err
	}
	secret := hex.EncodeToString(raw[:])
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		return nil, err
	}
	return []byte(secret), nil
}

func printBanner(out io.Writer, apiAddr string, uiPort int, temporalAddr, simURL string) {
	api := "http://" + apiAddr
	fmt.Fprintf(out, `
paysaga is running.

  API              %[1]s   (%[1]s/readyz, %[1]s/openapi.yaml)
  Temporal Web UI  http://localhost:%[2]d
  Temporal         %[3]s
  NH simulator     %[4]s   (admin API: %[4]s/admin/)

Try:
  curl -s %[1]s/v1/auth/signup -H 'Content-Type: application/json' \
    -d '{"email":"kim@example.com","password":"correct horse battery","name":"Kim"}'

Ctrl-C stops everything.
`, api, uiPort, temporalAddr, simURL)
}
