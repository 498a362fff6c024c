// Package temporaltest starts a real Temporal dev server for tests, from the Temporal CLI
// binary the Makefile builds (env PAYSAGA_TEMPORAL_BIN, default <repo root>/bin/temporal), with
// the search attributes of the payment workflows declared. A missing binary fails the test:
// it is never skipped, and never downloaded.
package temporaltest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"

	"paysaga/workflows"
)

// Binary returns the path of the Temporal CLI: PAYSAGA_TEMPORAL_BIN, or bin/temporal at the
// root of the module.
func Binary() (string, error) {
	if p := os.Getenv("PAYSAGA_TEMPORAL_BIN"); p != "" {
		return p, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "bin", "temporal"), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("temporaltest: no go.mod above the working directory")
		}
		dir = parent
	}
}

// Server is a running dev server.
type Server struct {
	// Client talks to the server's default namespace.
	Client client.Client
	// HostPort is the frontend's address.
	HostPort string
}

// Start starts an in-memory dev server for the test and stops it when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("temporaltest: the Temporal CLI is missing at %s (run `make temporal` or set PAYSAGA_TEMPORAL_BIN): %v", bin, err)
	}
	args := []string{}
	for _, sa := range workflows.SearchAttributeFlags() {
		args = append(args, "--search-attribute", sa)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := testsuite.StartDevServer(ctx, testsuite.DevServerOptions{
		ExistingPath:  bin,
		ClientOptions: &client.Options{Logger: log.NewStructuredLogger(logger)},
		LogLevel:      "error",
		ExtraArgs:     args,
		Stdout:        io.Discard,
		Stderr:        io.Discard,
	})
	if err != nil {
		t.Fatalf("temporaltest: start dev server: %v", err)
	}
	t.Cleanup(func() {
		srv.Client().Close()
		_ = srv.Stop()
	})
	return &Server{Client: srv.Client(), HostPort: srv.FrontendHostPort()}
}
