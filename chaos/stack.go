package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"paysaga/config"
	"paysaga/internal/devserver"
	"paysaga/nhsim"
	"paysaga/workflows"
)

// stack is the engine as production runs it, each part a process of its own.
type stack struct {
	o    options
	root string // module root
	sup  *supervisor
	say  func(format string, args ...any)

	dbName, dsn, adminDSN string
	vhost, amqpURL        string
	temporalAddr          string
	temporalArgs          []string
	simURL                string
	apiURLs               [2]string
	env                   []string

	temporal *proc
	nhsim    *proc
	apis     [2]*proc
	workers  [2]*proc

	tc client.Client // the run's own Temporal client: health checks and the judge's visibility queries

	brokerStopped bool // the broker's app is stopped by the chaos and must be started again
}

func (s *stack) bin(name string) string { return filepath.Join(s.root, "bin", name) }

// build builds the two binaries the way production builds them.
func (s *stack) build(ctx context.Context) error {
	for _, b := range []struct{ out, pkg string }{{"paysaga", "./cmd/paysaga"}, {"payctl", "./cmd/payctl"}} {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", s.bin(b.out), b.pkg)
		cmd.Dir = s.root
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %v\n%s", b.pkg, err, out)
		}
	}
	if _, err := os.Stat(s.bin("temporal")); err != nil {
		return fmt.Errorf("the Temporal CLI is missing at %s: run `make temporal`", s.bin("temporal"))
	}
	return nil
}

// prepare creates the run's own database and RabbitMQ vhost, and chooses the ports.
func (s *stack) prepare(ctx context.Context, runID string) error {
	cfg, err := mysql.ParseDSN(s.o.mysqlDSN)
	if err != nil {
		return fmt.Errorf("-mysql: %w", err)
	}
	s.adminDSN = cfg.FormatDSN()
	s.dbName = "paysaga_chaos_" + runID
	admin, err := sql.Open("mysql", s.adminDSN)
	if err != nil {
		return err
	}
	defer admin.Close()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+s.dbName); err != nil {
		return fmt.Errorf("MariaDB: create database %s: %w", s.dbName, err)
	}
	cfg.DBName = s.dbName
	cfg.ParseTime = true
	s.dsn = cfg.FormatDSN()

	s.vhost = "paysaga_chaos_" + runID
	if out, err := s.rabbitmqctl("add_vhost", s.vhost); err != nil {
		return fmt.Errorf("rabbitmqctl add_vhost: %v: %s", err, out)
	}
	u, err := url.Parse(s.o.amqpURL)
	if err != nil {
		return fmt.Errorf("-amqp: %w", err)
	}
	if out, err := s.rabbitmqctl("set_permissions", "-p", s.vhost, u.User.Username(), ".*", ".*", ".*"); err != nil {
		return fmt.Errorf("rabbitmqctl set_permissions: %v: %s", err, out)
	}
	u.Path, u.RawPath = "/"+s.vhost, ""
	s.amqpURL = u.String()

	ports, err := freePorts(7)
	if err != nil {
		return err
	}
	s.temporalAddr = fmt.Sprintf("127.0.0.1:%d", ports[0])
	s.temporalArgs = []string{"server", "start-dev",
		"--db-filename", filepath.Join(s.sup.dir, "temporal.db"),
		"--ip", "127.0.0.1", "--port", fmt.Sprint(ports[0]),
		"--http-port", fmt.Sprint(ports[1]), "--metrics-port", fmt.Sprint(ports[2]),
		"--ui-port", fmt.Sprint(ports[3]),
		"--log-level", "warn",
		// As internal/stack runs it on a file: about three times faster.
		"--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal",
	}
	for _, sa := range workflows.SearchAttributeFlags() {
		s.temporalArgs = append(s.temporalArgs, "--search-attribute", sa)
	}
	s.temporalArgs = append(s.temporalArgs, devserver.Args()...)
	s.simURL = fmt.Sprintf("http://127.0.0.1:%d", ports[4])
	s.apiURLs = [2]string{fmt.Sprintf("http://127.0.0.1:%d", ports[5]), fmt.Sprintf("http://127.0.0.1:%d", ports[6])}

	keys := func() string { b := make([]byte, 32); _, _ = rand.Read(b); return base64.StdEncoding.EncodeToString(b) }
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	env := map[string]string{
		"PAYSAGA_DB_DRIVER":             "mysql",
		"PAYSAGA_DB_DSN":                s.dsn,
		"PAYSAGA_REDIS_ADDR":            s.o.redisAddr,
		"PAYSAGA_AMQP_URL":              s.amqpURL,
		"PAYSAGA_TEMPORAL_ADDRESS":      s.temporalAddr,
		"PAYSAGA_TEMPORAL_NAMESPACE":    "default",
		"PAYSAGA_JWT_SECRET":            hex.EncodeToString(secret),
		"PAYSAGA_ACCESS_TOKEN_TTL":      "3h", // tokens are made once, before the run
		"PAYSAGA_NH_BASE_URL":           s.simURL,
		"PAYSAGA_NH_ISCD":               nhsim.DefaultIscd,
		"PAYSAGA_NH_ACCESS_TOKEN":       nhsim.DefaultAccessToken,
		"PAYSAGA_ACCOUNT_KEYS":          "k1:" + keys() + ",hmac:" + keys(),
		"PAYSAGA_TEMPORAL_PAYLOAD_KEYS": "p1:" + keys(),
		// The run's Redis keys apart from anyone else's (ignored by a binary without it).
		"PAYSAGA_REDIS_KEY_PREFIX":         "chaos_" + runID + ":",
		"PAYSAGA_PAYMENT_UNKNOWN_DEADLINE": s.o.unknownDeadline.String(),
		"PAYSAGA_LOG_FORMAT":               "json",
		"PAYSAGA_LOG_LEVEL":                "info",
	}
	// The run's settings only: none of the caller's PAYSAGA_… variables leak in.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PAYSAGA_") {
			s.env = append(s.env, kv)
		}
	}
	for k, v := range env {
		s.env = append(s.env, k+"="+v)
	}
	// A setting the processes now require and the run does not give is named here, before
	// anything starts.
	for _, service := range []string{"migrate", "api", "worker"} {
		if err := config.Require(func(name string) string { return env[name] }, service); err != nil {
			return fmt.Errorf("chaos does not set it yet (chaos/stack.go): %w", err)
		}
	}
	return nil
}

func (s *stack) envWith(kv ...string) []string {
	return append(append([]string(nil), s.env...), kv...)
}

// start starts every process and waits until each is ready.
func (s *stack) start(ctx context.Context) error {
	var err error
	s.say("starting the Temporal dev server (on %s), the NH simulator", filepath.Join(s.sup.dir, "temporal.db"))
	if s.temporal, err = s.sup.start("temporal", s.bin("temporal"), s.temporalArgs, s.env); err != nil {
		return err
	}
	if s.nhsim, err = s.sup.start("nhsim", s.bin("paysaga"), []string{"nhsim", "--addr", strings.TrimPrefix(s.simURL, "http://"),
		"--seed", fmt.Sprint(s.o.seed)}, s.env); err != nil {
		return err
	}
	if err := s.waitTemporal(ctx, 2*time.Minute); err != nil {
		return err
	}
	if err := waitHTTP(ctx, s.simURL+"/admin/ledger", time.Minute); err != nil {
		return fmt.Errorf("nhsim: %w\n%s", err, s.nhsim.tail(2000))
	}
	s.say("paysaga migrate")
	if out, err := s.sup.run("migrate", s.bin("paysaga"), []string{"migrate"}, s.env, 2*time.Minute); err != nil {
		return fmt.Errorf("paysaga migrate: %v\n%s", err, out)
	}
	s.say("starting 2 workers and 2 API instances")
	for i := range s.workers {
		if s.workers[i], err = s.sup.start(fmt.Sprintf("worker-%d", i+1), s.bin("paysaga"), []string{"worker"}, s.env); err != nil {
			return err
		}
	}
	for i := range s.apis {
		addr := strings.TrimPrefix(s.apiURLs[i], "http://")
		if s.apis[i], err = s.sup.start(fmt.Sprintf("api-%d", i+1), s.bin("paysaga"), []string{"api"},
			s.envWith("PAYSAGA_HTTP_ADDR="+addr)); err != nil {
			return err
		}
	}
	for i := range s.apis {
		if err := s.waitAPI(ctx, i, 2*time.Minute); err != nil {
			return err
		}
	}
	for i := range s.workers {
		if err := s.waitWorker(ctx, i, 2*time.Minute); err != nil {
			return err
		}
	}
	return nil
}

func (s *stack) waitTemporal(ctx context.Context, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		if s.tc == nil {
			c, err := client.DialContext(ctx, client.Options{HostPort: s.temporalAddr, Namespace: "default", Logger: tlog.NewStructuredLogger(discardLogger())})
			if err == nil {
				s.tc = c
			}
		}
		if s.tc != nil {
			hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err := s.tc.CheckHealth(hctx, &client.CheckHealthRequest{})
			cancel()
			if err == nil {
				// The frontend answers before the namespace is usable; ask for it.
				if _, err := s.tc.WorkflowService().GetSystemInfo(ctx, nil); err == nil {
					return nil
				}
			}
		}
		if !s.temporal.running() {
			return fmt.Errorf("the Temporal dev server exited:\n%s", s.temporal.tail(3000))
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("the Temporal dev server at %s is not ready after %s", s.temporalAddr, d)
		}
		sleep(ctx, 300*time.Millisecond)
	}
}

func (s *stack) waitAPI(ctx context.Context, i int, d time.Duration) error {
	if err := waitHTTP(ctx, s.apiURLs[i]+"/readyz", d); err != nil {
		return fmt.Errorf("api-%d: %w\n%s", i+1, err, s.apis[i].tail(3000))
	}
	return nil
}

// waitWorker waits for the worker's "worker started" line in the log of its current life.
func (s *stack) waitWorker(ctx context.Context, i int, d time.Duration) error {
	p := s.workers[i]
	deadline := time.Now().Add(d)
	for {
		t := p.tail(64 << 10)
		if j := strings.LastIndex(t, "==== chaos: start"); j >= 0 && strings.Contains(t[j:], `"worker started"`) {
			return nil
		}
		if !p.running() {
			return fmt.Errorf("%s exited:\n%s", p.name, p.tail(3000))
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s did not start within %s:\n%s", p.name, d, p.tail(3000))
		}
		sleep(ctx, 200*time.Millisecond)
	}
}

// startWorker starts worker i again, as a process supervisor would (systemd, Kubernetes): a
// worker that exits at once — it refuses to start while the broker is down — is started again
// every two seconds, for up to two minutes.
func (s *stack) startWorker(ctx context.Context, i int) error {
	p := s.workers[i]
	deadline := time.Now().Add(2 * time.Minute)
	for {
		err := p.start()
		if err == nil {
			if err = s.waitWorker(ctx, i, 2*time.Minute); err == nil {
				return nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		s.say("  %s did not start (%s); starting it again in 2s", p.name, firstLine(err.Error()))
		sleep(ctx, 2*time.Second)
	}
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// restartTemporal starts the dev server again on the same database file and port.
func (s *stack) restartTemporal(ctx context.Context) error {
	if err := s.temporal.start(); err != nil {
		return err
	}
	return s.waitTemporal(ctx, 2*time.Minute)
}

// rabbitmqctl runs rabbitmqctl (the broker runs on this machine).
func (s *stack) rabbitmqctl(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "rabbitmqctl", args...).CombinedOutput()
	return string(out), err
}

// stopBroker stops the RabbitMQ application (every connection drops; the node stays up, so it
// can be started again quickly).
func (s *stack) stopBroker() error {
	s.brokerStopped = true
	if out, err := s.rabbitmqctl("stop_app"); err != nil {
		return fmt.Errorf("rabbitmqctl stop_app: %v: %s", err, out)
	}
	return nil
}

func (s *stack) startBroker() error {
	if out, err := s.rabbitmqctl("start_app"); err != nil {
		return fmt.Errorf("rabbitmqctl start_app: %v: %s", err, out)
	}
	s.brokerStopped = false
	if out, err := s.rabbitmqctl("await_startup"); err != nil {
		return fmt.Errorf("rabbitmqctl await_startup: %v: %s", err, out)
	}
	return nil
}

// cleanup stops every process, brings the broker back if the chaos left it stopped, and drops
// the run's database and vhost unless they are kept.
func (s *stack) cleanup(keep bool) {
	if s.tc != nil {
		s.tc.Close()
	}
	s.sup.stopAll()
	if s.brokerStopped {
		if err := s.startBroker(); err != nil {
			s.say("could not start the broker again: %v", err)
		}
	}
	if keep {
		if s.dbName != "" {
			s.say("kept: MariaDB database %s, RabbitMQ vhost %s (drop them by hand)", s.dbName, s.vhost)
		}
		return
	}
	if s.vhost != "" {
		if out, err := s.rabbitmqctl("delete_vhost", s.vhost); err != nil {
			s.say("rabbitmqctl delete_vhost %s: %v: %s", s.vhost, err, out)
		}
	}
	if s.dbName != "" {
		if admin, err := sql.Open("mysql", s.adminDSN); err == nil {
			if _, err := admin.Exec("DROP DATABASE IF EXISTS " + s.dbName); err != nil {
				s.say("drop database %s: %v", s.dbName, err)
			}
			_ = admin.Close()
		}
	}
}

// freePorts returns n ports free now, drawn below Linux's ephemeral range (32768–60999): the
// processes are started with them a moment later, and a port from the ephemeral range may be
// taken meanwhile by any outgoing connection on a busy machine.
func freePorts(n int) ([]int, error) {
	var out []int
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			_ = ln.Close()
		}
	}()
	for tries := 0; len(out) < n; tries++ {
		if tries > 1000 {
			return nil, errors.New("no free port between 20000 and 32000")
		}
		port := 20000 + mrand.IntN(12000)
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		lns = append(lns, ln)
		out = append(out, port)
	}
	return out, nil
}

func waitHTTP(ctx context.Context, u string, d time.Duration) error {
	deadline := time.Now().Add(d)
	var last error
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("%s answers %d", u, resp.StatusCode)
		}
		last = err
		if time.Now().After(deadline) || ctx.Err() != nil {
			return errors.Join(fmt.Errorf("%s not ready after %s", u, d), last)
		}
		sleep(ctx, 300*time.Millisecond)
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
