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

	"github.com/gin-gonic/gin"
	"github.com/spf13/cobra"

	"paysaga/config"
	"paysaga/internal/app"
	"paysaga/internal/stack"
	"paysaga/nhsim"
	"paysaga/seal"
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
	// Account numbers registered in dev are sealed with keys kept beside the database, so that
	// they can still be opened after a restart.
	if cfg.AccountKeys, err = devAccountKeys(filepath.Join(o.dir, "account.keys")); err != nil {
		return err
	}

	fmt.Fprintln(out, "starting the Temporal dev server, the NH simulator, a worker and the API…")
	temporalLog, err := os.OpenFile(filepath.Join(o.dir, "temporal.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer temporalLog.Close()
	cfg.RedisAddr = "" // the in-process Redis-protocol server
	st, err := stack.Start(ctx, stack.Options{
		Config:         cfg,
		Logger:         logger,
		Dev:            true,
		TemporalBin:    o.temporalBin,
		TemporalDBFile: filepath.Join(o.dir, "temporal.db"),
		TemporalPort:   o.temporalPort,
		UIPort:         o.uiPort,
		TemporalLog:    temporalLog,
		Sim:            nhsim.Config{IssueDelay: 3 * time.Second},
		SimAddr:        o.nhsimAddr,
	})
	if err != nil {
		return fmt.Errorf("%w (Temporal's log: %s)", err, temporalLog.Name())
	}
	defer st.Close()
	if err := seedDev(ctx, st, out); err != nil {
		return err
	}
	apiLn, err := net.Listen("tcp", o.httpAddr)
	if err != nil {
		return fmt.Errorf("API: %w", err)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go app.Housekeeping(ctx, st.Parts.DB, logger, time.Hour)
	errc := make(chan error, 1)
	go func() { errc <- app.ServeWith(ctx, apiLn, st.API, logger, app.ServeOptionsFor(st.Parts.Config)) }()

	printBanner(out, apiLn.Addr().String(), o.uiPort, st.Temporal.FrontendHostPort(), st.SimURL())

	select {
	case <-ctx.Done():
		fmt.Fprintln(out, "\nstopping…")
		return <-errc // the API drains its requests before the rest stops
	case err := <-errc:
		return err
	}
}

// devAccountKeys keeps the dev account-sealing keys in a file.
func devAccountKeys(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(b)), nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	spec := seal.GenerateSpec()
	return spec, os.WriteFile(path, []byte(spec+"\n"), 0o600)
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
