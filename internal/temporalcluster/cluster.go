// Package temporalcluster runs a real Temporal server — the production server binary, not the
// dev server — for tests: its schema set up on PostgreSQL with the server's own SQL tool, 4
// history shards, SQL visibility, the repository's dynamic config (temporal-config/), a
// namespace of the test's own and paysaga's search attributes registered by the repository's
// script. `make test-cluster` builds the binaries (bin/temporal-server, bin/temporal-sql-tool,
// from the version the Makefile pins) and runs the tests that use it. Nothing is skipped: a
// missing binary, schema or PostgreSQL fails the test.
package temporalcluster

import (
	"context"
	"debug/buildinfo"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Cluster is a running Temporal server.
type Cluster struct {
	// HostPort is the frontend's gRPC address; Namespace the test's namespace, with paysaga's
	// search attributes.
	HostPort  string
	Namespace string
	// Client talks to Namespace.
	Client client.Client
	// Dir holds the server's config and log (server.log).
	Dir string
	// Version is the server's module version, e.g. v1.29.1.
	Version string
	// PProfAddr serves the server's Go profiles (/debug/pprof/), for the cluster benchmark.
	PProfAddr string
}

// Root is the module root (the directory holding go.mod) above the working directory.
func Root() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("temporalcluster: no go.mod above the working directory")
		}
		dir = parent
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// FreePorts returns n TCP ports free on 127.0.0.1 now, below 32768: the server records its
// membership ports in a PostgreSQL smallint column, and the kernel's ephemeral ports (what
// port 0 gives) are above that.
func FreePorts(n int) ([]int, error) {
	var out []int
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			_ = l.Close()
		}
	}()
	for tries := 0; len(out) < n; tries++ {
		if tries > 10_000 {
			return nil, fmt.Errorf("no %d free ports between 20000 and 32000", n)
		}
		port := 20000 + rand.IntN(12000)
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		lns = append(lns, l)
		out = append(out, port)
	}
	return out, nil
}

func serverVersion(serverBin string) (string, error) {
	bi, err := buildinfo.ReadFile(serverBin)
	if err != nil {
		return "", fmt.Errorf("read the build info of %s: %w", serverBin, err)
	}
	return bi.Main.Version, nil
}

// SchemaDir is the directory of the server's SQL schema for a database ("postgresql", "v12"),
// in the module go.temporal.io/server at the version bin/temporal-server was built from
// (PAYSAGA_TEMPORAL_SERVER_MODULE names the module directory instead).
func SchemaDir(db, version string) (string, error) {
	root, err := Root()
	if err != nil {
		return "", err
	}
	serverBin := envOr("PAYSAGA_TEMPORAL_SERVER_BIN", filepath.Join(root, "bin", "temporal-server"))
	v, err := serverVersion(serverBin)
	if err != nil {
		return "", err
	}
	modDir := os.Getenv("PAYSAGA_TEMPORAL_SERVER_MODULE")
	if modDir == "" {
		out, err := exec.Command("go", "env", "GOMODCACHE").Output()
		if err != nil {
			return "", fmt.Errorf("go env GOMODCACHE: %w", err)
		}
		modDir = filepath.Join(strings.TrimSpace(string(out)), "go.temporal.io", "server@"+v)
	}
	schema := filepath.Join(modDir, "schema", db, version)
	if _, err := os.Stat(schema); err != nil {
		return "", fmt.Errorf("the server's schema is not at %s (the module go.temporal.io/server@%s; `make temporal-server` downloads it): %w", schema, v, err)
	}
	return schema, nil
}

// Start sets up two fresh PostgreSQL databases, starts the server on free ports and waits
// until the namespace has the search attributes. Everything is stopped and dropped when the
// test ends; the server's log is printed if the test failed.
//
// Settings (the Makefile's test-cluster target sets the first two):
//
//	PAYSAGA_TEMPORAL_SERVER_BIN   default <root>/bin/temporal-server
//	PAYSAGA_TEMPORAL_SQL_TOOL     default <root>/bin/temporal-sql-tool
//	PAYSAGA_TEMPORAL_BIN          the CLI, for the search-attribute script (default <root>/bin/temporal)
//	PAYSAGA_TEST_POSTGRES_ADDR    default 127.0.0.1:5432
//	PAYSAGA_TEST_POSTGRES_USER    default postgres (needs LOGIN and CREATEDB; trust or PGPASSWORD)
func Start(t testing.TB) *Cluster {
	t.Helper()
	c, err := start(t)
	if err != nil {
		t.Fatalf("temporalcluster: %v", err)
	}
	return c
}

func start(t testing.TB) (*Cluster, error) {
	root, err := Root()
	if err != nil {
		return nil, err
	}
	serverBin := envOr("PAYSAGA_TEMPORAL_SERVER_BIN", filepath.Join(root, "bin", "temporal-server"))
	sqlTool := envOr("PAYSAGA_TEMPORAL_SQL_TOOL", filepath.Join(root, "bin", "temporal-sql-tool"))
	cli := envOr("PAYSAGA_TEMPORAL_BIN", filepath.Join(root, "bin", "temporal"))
	for _, b := range []string{serverBin, sqlTool, cli} {
		if _, err := os.Stat(b); err != nil {
			return nil, fmt.Errorf("%s is missing: run `make temporal-server temporal` (or `make test-cluster`): %w", b, err)
		}
	}
	version, err := serverVersion(serverBin)
	if err != nil {
		return nil, err
	}
	schema, err := SchemaDir("postgresql", "v12")
	if err != nil {
		return nil, err
	}

	pgHost, pgPort, err := net.SplitHostPort(envOr("PAYSAGA_TEST_POSTGRES_ADDR", "127.0.0.1:5432"))
	if err != nil {
		return nil, fmt.Errorf("PAYSAGA_TEST_POSTGRES_ADDR: %w", err)
	}
	pgUser := envOr("PAYSAGA_TEST_POSTGRES_USER", "postgres")
	suffix := fmt.Sprintf("%d_%d", time.Now().Unix()%1_000_000, os.Getpid())
	mainDB, visDB := "temporal_t"+suffix, "temporal_vis_t"+suffix

	dir, err := os.MkdirTemp("", "paysaga-temporal-cluster-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{Dir: dir, Version: version, Namespace: "paysaga"}
	sql := func(db string, args ...string) error {
		cmd := exec.Command(sqlTool, append([]string{"--plugin", "postgres12", "--ep", pgHost, "-p", pgPort,
			"-u", pgUser, "--db", db}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("temporal-sql-tool --db %s %s: %v\n%s", db, strings.Join(args, " "), err, out)
		}
		return nil
	}
	t.Cleanup(func() {
		for _, db := range []string{mainDB, visDB} {
			_ = sql(db, "drop-database", "--force")
		}
		if !t.Failed() {
			_ = os.RemoveAll(dir)
		}
	})
	for db, sub := range map[string]string{mainDB: "temporal", visDB: "visibility"} {
		if err := sql(db, "create-database"); err != nil {
			return nil, fmt.Errorf("%w(is PostgreSQL running on %s:%s, and may %s create databases?)", err, pgHost, pgPort, pgUser)
		}
		if err := sql(db, "setup-schema", "-v", "0.0"); err != nil {
			return nil, err
		}
		if err := sql(db, "update-schema", "-d", filepath.Join(schema, sub, "versioned")); err != nil {
			return nil, err
		}
	}

	ports, err := FreePorts(11)
	if err != nil {
		return nil, err
	}
	c.HostPort = fmt.Sprintf("127.0.0.1:%d", ports[0])
	c.PProfAddr = fmt.Sprintf("127.0.0.1:%d", ports[10])
	dc, err := filepath.Abs(filepath.Join(root, "temporal-config", "dynamicconfig.yaml"))
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "config"), 0o755); err != nil {
		return nil, err
	}
	cfg := serverConfig(pgHost+":"+pgPort, pgUser, os.Getenv("PGPASSWORD"), mainDB, visDB, ports, dc)
	if err := os.WriteFile(filepath.Join(dir, "config", "development.yaml"), []byte(cfg), 0o644); err != nil {
		return nil, err
	}

	logf, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(serverBin, "--root", dir, "--config", "config", "--env", "development", "--allow-no-auth", "start")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", serverBin, err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		_ = logf.Close()
		if t.Failed() {
			t.Logf("Temporal server log: %s\n%s", logf.Name(), tail(logf.Name(), 4000))
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	logger := tlog.NewStructuredLogger(slog.New(slog.DiscardHandler))
	var sys client.Client
	for {
		sys, err = client.DialContext(ctx, client.Options{HostPort: c.HostPort, Namespace: "temporal-system", Logger: logger})
		if err == nil {
			if _, err = sys.CheckHealth(ctx, &client.CheckHealthRequest{}); err == nil {
				break
			}
			sys.Close()
		}
		select {
		case <-exited:
			return nil, fmt.Errorf("the Temporal server exited: %v\n%s", waitErr, tail(logf.Name(), 4000))
		case <-ctx.Done():
			return nil, fmt.Errorf("the Temporal server did not serve on %s within 3 minutes: %v\n%s", c.HostPort, err, tail(logf.Name(), 4000))
		case <-time.After(500 * time.Millisecond):
		}
	}
	defer sys.Close()
	// Closed payments are kept a week, as in production: `payctl history replay` reads them.
	if _, err := sys.WorkflowService().RegisterNamespace(ctx, &workflowservice.RegisterNamespaceRequest{
		Namespace: c.Namespace, WorkflowExecutionRetentionPeriod: durationpb.New(7 * 24 * time.Hour),
	}); err != nil {
		return nil, fmt.Errorf("register namespace %s: %w", c.Namespace, err)
	}
	// The repository's registration script, as compose and the Helm docs run it.
	reg := exec.CommandContext(ctx, "sh", filepath.Join(root, "temporal-config", "register-search-attributes.sh"))
	reg.Env = append(os.Environ(), "TEMPORAL_CLI="+cli, "TEMPORAL_ADDRESS="+c.HostPort, "TEMPORAL_NAMESPACE="+c.Namespace, "WAIT_SECONDS=90")
	if out, err := reg.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("temporal-config/register-search-attributes.sh: %v\n%s", err, out)
	}
	if c.Client, err = client.DialContext(ctx, client.Options{HostPort: c.HostPort, Namespace: c.Namespace, Logger: logger}); err != nil {
		return nil, err
	}
	t.Cleanup(c.Client.Close)
	return c, nil
}

// serverConfig is a trimmed copy of the module's config/development-postgres12.yaml: every
// service in one process on ports of its own, 4 history shards, SQL visibility.
func serverConfig(pgAddr, user, password, mainDB, visDB string, p []int, dynamicConfig string) string {
	store := func(db string, conns int) string {
		return fmt.Sprintf(`      sql:
        pluginName: "postgres12"
        databaseName: %q
        connectAddr: %q
        connectProtocol: "tcp"
        user: %q
        password: %q
        maxConns: %d
        maxIdleConns: %d
        maxConnLifetime: "1h"
`, db, pgAddr, user, password, conns, conns)
	}
	return fmt.Sprintf(`log:
  stdout: true
  level: warn

persistence:
  defaultStore: postgres-default
  visibilityStore: postgres-visibility
  numHistoryShards: 4
  datastores:
    postgres-default:
%s    postgres-visibility:
%s
global:
  pprof:
    port: %d
    host: "127.0.0.1"
  membership:
    maxJoinDuration: 30s
    broadcastAddress: "127.0.0.1"
  metrics:
    prometheus:
      framework: "tally"
      timerType: "histogram"
      listenAddress: "127.0.0.1:%d"

services:
  frontend:
    rpc:
      grpcPort: %d
      membershipPort: %d
      bindOnLocalHost: true
      httpPort: %d
  history:
    rpc:
      grpcPort: %d
      membershipPort: %d
      bindOnLocalHost: true
  matching:
    rpc:
      grpcPort: %d
      membershipPort: %d
      bindOnLocalHost: true
  worker:
    rpc:
      grpcPort: %d
      membershipPort: %d
      bindOnLocalHost: true

clusterMetadata:
  enableGlobalNamespace: false
  failoverVersionIncrement: 10
  masterClusterName: "active"
  currentClusterName: "active"
  clusterInformation:
    active:
      enabled: true
      initialFailoverVersion: 1
      rpcName: "frontend"
      rpcAddress: "127.0.0.1:%d"

dcRedirectionPolicy:
  policy: "noop"

dynamicConfigClient:
  filepath: %q
  pollInterval: "10s"
`, store(mainDB, 20), store(visDB, 4), p[10], p[9], p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[0], dynamicConfig)
}

func tail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > n {
		_, _ = f.Seek(st.Size()-n, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	return string(b)
}
