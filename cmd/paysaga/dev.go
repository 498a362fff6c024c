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
	"paysaga/payloadcodec"
	"paysaga/seal"
	"paysaga/telemetry"
)

type devOptions struct {
	dir          string
	httpAddr     string
	nhsimAddr    string
	temporalPort int
	uiPort       int
	codecAddr    string
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
	f.StringVar(&o.codecAddr, "codec", "127.0.0.1:8234", "address of the codec server the Web UI decrypts payloads through (loopback only: in dev it asks for no token)")
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
	logger := slog.New(telemetry.LogHandler(slog.NewTextHandler(io.MultiWriter(os.Stderr, logFile), &slog.HandlerOptions{Level: slog.LevelInfo})))
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
	// Webhook endpoints on this machine (a receiver on localhost) are what a developer tries.
	cfg.WebhookAllowLoopback = true
	// Account numbers registered in dev are sealed with keys kept beside the database, so that
	// they can still be opened after a restart.
	if cfg.AccountKeys, err = devAccountKeys(filepath.Join(o.dir, "account.keys")); err != nil {
		return err
	}
	// Temporal payloads are encrypted in dev too, with a key kept beside Temporal's state; the
	// Web UI reads them through the codec server below.
	if cfg.TemporalPayloadKeys, err = devKeyFile(filepath.Join(o.dir, "temporal-payload.keys"),
		func() string { return payloadcodec.GenerateSpec("dev1") }); err != nil {
		return err
	}
	codecLn, err := net.Listen("tcp", o.codecAddr)
	if err != nil {
		return fmt.Errorf("codec server: %w", err)
	}
	defer codecLn.Close()
	shutdownTracing, err := telemetry.SetupTracing(ctx, "paysaga-dev", logger)
	if err != nil {
		return err
	}
	defer func() { _ = shutdownTracing(context.Background()) }()

	fmt.Fprintln(out, "starting the Temporal dev server, the NH simulator, a worker and the API…")
	temporalLog, err := os.OpenFile(filepath.Join(o.dir, "temporal.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer temporalLog.Close()
	cfg.RedisAddr = "" // the in-process Redis-protocol server
	st, err := stack.Start(ctx, stack.Options{
		Config:          cfg,
		Logger:          logger,
		Dev:             true,
		TemporalBin:     o.temporalBin,
		TemporalDBFile:  filepath.Join(o.dir, "temporal.db"),
		TemporalPort:    o.temporalPort,
		UIPort:          o.uiPort,
		UICodecEndpoint: "http://" + codecLn.Addr().String(),
		TemporalLog:     temporalLog,
		Sim:             nhsim.Config{IssueDelay: 3 * time.Second},
		SimAddr:         o.nhsimAddr,
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
	go app.Housekeeping(ctx, st.Parts.DB, st.Parts.Temporal, logger, time.Hour)
	codec, err := app.PayloadCodec(st.Parts.Config)
	if err != nil {
		return err
	}
	go func() {
		_ = app.Serve(ctx, codecLn, payloadcodec.Handler(codec, payloadcodec.ServerOptions{
			AllowedOrigins: []string{fmt.Sprintf("http://localhost:%d", o.uiPort), fmt.Sprintf("http://127.0.0.1:%d", o.uiPort)},
			Logger:         logger,
		}), logger)
	}()
	errc := make(chan error, 1)
	go func() { errc <- app.ServeWith(ctx, apiLn, st.API, logger, app.ServeOptionsFor(st.Parts.Config)) }()

	printBanner(out, apiLn.Addr().String(), o.uiPort, st.Temporal.FrontendHostPort(), st.SimURL(), codecLn.Addr().String())

	select {
	case <-ctx.Done():
		fmt.Fprintln(out, "\nstopping…")
		return <-errc // the API drains its requests before the rest stops
	case err := <-errc:
		return err
	}
}

// devAccountKeys keeps the dev account-sealing keys in a file.
func devAccountKeys(path string) (string, error) { return devKeyFile(path, seal.GenerateSpec) }

// devKeyFile keeps a dev key specification in a file, generating it the first time, so that what
// was encrypted before a restart of `make run` still opens.
func devKeyFile(path string, generate func() string) (string, error) {
	if b, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(b)), nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	spec := generate()
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

func printBanner(out io.Writer, apiAddr string, uiPort int, temporalAddr, simURL, codecAddr string) {
	api := "http://" + apiAddr
	fmt.Fprintf(out, `
paysaga is running.

  API              %[1]s   (%[1]s/readyz, %[1]s/openapi.yaml)
  Temporal Web UI  http://localhost:%[2]d
  Temporal         %[3]s
  NH simulator     %[4]s   (admin API: %[4]s/admin/)
  Codec server     http://%[5]s   (payloads are encrypted; the Web UI decrypts through it,
                   and so does: bin/temporal workflow show -w payment:pay_… --codec-endpoint http://%[5]s)

Try:
  curl -s %[1]s/v1/auth/signup -H 'Content-Type: application/json' \
    -d '{"email":"kim@example.com","password":"correct horse battery","name":"Kim"}'

Ctrl-C stops everything.
`, api, uiPort, temporalAddr, simURL, codecAddr)
}
