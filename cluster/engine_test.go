//go:build cluster

package cluster_test

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/stretchr/testify/require"
	sdkclient "go.temporal.io/sdk/client"

	"paysaga/internal/temporalcluster"
	"paysaga/internal/temporaltest"
	"paysaga/nhsim"
)

type user struct{ ID, Email, Token, Account string }

// temporalServer is where the engine's Temporal is: the real server (temporalcluster) or, to
// compare, the dev server.
type temporalServer struct {
	HostPort, Namespace, Version string
	// Client talks to Namespace.
	Client sdkclient.Client
	// PProfAddr serves the server's Go profiles; empty where it has none (the dev server).
	PProfAddr string
}

func realServer(t testing.TB) temporalServer {
	c := temporalcluster.Start(t)
	return temporalServer{c.HostPort, c.Namespace, c.Version + " (4 history shards, PostgreSQL)", c.Client, c.PProfAddr}
}

func devServer(t testing.TB) temporalServer {
	s := temporaltest.Start(t)
	return temporalServer{s.HostPort, "default", "dev server (temporal server start-dev, in memory)", s.Client, ""}
}

// engine is paysaga as production runs it, on the test's Temporal cluster: the NH simulator,
// two API and two worker processes, a merchant and customers with registered accounts.
type engine struct {
	tc                  temporalServer
	c                   *client
	dir, runID          string
	paysagaBin          string
	env                 []string
	simURL              string
	apiURLs, workerURLs []string
	apis, workers       [2]*proc
	sim                 *proc
	redisAddr           string
	redisPrefix         string
	merchant            *user
	custs               []*user
	simAdmin            func(method, path string, body, into any)
	with                func(kv ...string) []string
}

// With tlsFront the engine's processes reach Temporal through an mTLS-terminating listener
// (PAYSAGA_TEMPORAL_TLS_CA, _CERT, _KEY, _SERVER_NAME), as they would a cluster with TLS or
// Temporal Cloud.
func startEngine(t testing.TB, ctx context.Context, customers int, server func(testing.TB) temporalServer, tlsFront bool) *engine {
	tc := server(t)
	temporalSettings := map[string]string{"PAYSAGA_TEMPORAL_ADDRESS": tc.HostPort}
	if tlsFront {
		pki := temporaltest.NewPKI(t)
		temporalSettings = map[string]string{
			"PAYSAGA_TEMPORAL_ADDRESS":         temporaltest.TLSProxy(t, pki, tc.HostPort, true),
			"PAYSAGA_TEMPORAL_TLS_CA":          pki.CAFile,
			"PAYSAGA_TEMPORAL_TLS_CERT":        pki.ClientCert,
			"PAYSAGA_TEMPORAL_TLS_KEY":         pki.ClientKey,
			"PAYSAGA_TEMPORAL_TLS_SERVER_NAME": "temporal.test",
		}
	}
	root, err := temporalcluster.Root()
	require.NoError(t, err)
	dir := t.TempDir()
	runID := hex.EncodeToString(randBytes(4))

	// The binaries, built as production builds them.
	for _, b := range []struct{ out, pkg string }{{"paysaga", "./cmd/paysaga"}, {"payctl", "./cmd/payctl"}} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, b.out), b.pkg)
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "go build %s: %s", b.pkg, out)
	}
	paysagaBin, payctlBin := filepath.Join(dir, "paysaga"), filepath.Join(dir, "payctl")

	// A fresh MariaDB database and RabbitMQ vhost, and a Redis key prefix of the run's own.
	mcfg, err := mysql.ParseDSN(envOr("PAYSAGA_TEST_MYSQL_DSN", "root@tcp(127.0.0.1:3306)/test?parseTime=true"))
	require.NoError(t, err)
	admin, err := sql.Open("mysql", mcfg.FormatDSN())
	require.NoError(t, err)
	defer admin.Close()
	dbName := "paysaga_cluster_" + runID
	_, err = admin.ExecContext(ctx, "CREATE DATABASE "+dbName)
	require.NoError(t, err, "MariaDB (PAYSAGA_TEST_MYSQL_DSN)")
	t.Cleanup(func() { _, _ = admin.Exec("DROP DATABASE " + dbName) })
	mcfg.DBName, mcfg.ParseTime = dbName, true

	vhost := "paysaga_cluster_" + runID
	rabbitmqctl := func(args ...string) {
		// The broker may be restarting (another run on the machine stops its app for a while).
		var out []byte
		var err error
		for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(2 * time.Second) {
			if out, err = exec.Command("rabbitmqctl", args...).CombinedOutput(); err == nil || time.Now().After(deadline) {
				break
			}
		}
		require.NoError(t, err, "rabbitmqctl %v: %s", args, out)
	}
	rabbitmqctl("add_vhost", vhost)
	t.Cleanup(func() { _ = exec.Command("rabbitmqctl", "delete_vhost", vhost).Run() })
	amqpURL, err := url.Parse(envOr("PAYSAGA_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"))
	require.NoError(t, err)
	rabbitmqctl("set_permissions", "-p", vhost, amqpURL.User.Username(), ".*", ".*", ".*")
	amqpURL.Path = "/" + vhost
	redisAddr := envOr("PAYSAGA_TEST_REDIS_ADDR", "127.0.0.1:6379")
	redisPrefix := "cluster-" + runID + ":"

	ports, err := temporalcluster.FreePorts(5)
	require.NoError(t, err)
	simURL := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	apiURLs := []string{fmt.Sprintf("http://127.0.0.1:%d", ports[1]), fmt.Sprintf("http://127.0.0.1:%d", ports[2])}
	workerURLs := []string{fmt.Sprintf("http://127.0.0.1:%d", ports[3]), fmt.Sprintf("http://127.0.0.1:%d", ports[4])}

	settings := map[string]string{
		"PAYSAGA_DB_DRIVER":          "mysql",
		"PAYSAGA_DB_DSN":             mcfg.FormatDSN(),
		"PAYSAGA_REDIS_ADDR":         redisAddr,
		"PAYSAGA_REDIS_KEY_PREFIX":   redisPrefix,
		"PAYSAGA_AMQP_URL":           amqpURL.String(),
		"PAYSAGA_TEMPORAL_NAMESPACE": tc.Namespace,
		"PAYSAGA_JWT_SECRET":         hex.EncodeToString(randBytes(32)),
		"PAYSAGA_NH_BASE_URL":        simURL,
		"PAYSAGA_NH_ISCD":            nhsim.DefaultIscd,
		"PAYSAGA_NH_ACCESS_TOKEN":    nhsim.DefaultAccessToken,
		"PAYSAGA_ACCOUNT_KEYS": "k1:" + base64.StdEncoding.EncodeToString(randBytes(32)) +
			",hmac:" + base64.StdEncoding.EncodeToString(randBytes(32)),
		"PAYSAGA_TEMPORAL_PAYLOAD_KEYS": "p1:" + base64.StdEncoding.EncodeToString(randBytes(32)),
		"PAYSAGA_LOG_FORMAT":            "json",
	}
	for k, v := range temporalSettings {
		settings[k] = v
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PAYSAGA_") {
			env = append(env, kv)
		}
	}
	for k, v := range settings {
		env = append(env, k+"="+v)
	}
	with := func(kv ...string) []string { return append(append([]string(nil), env...), kv...) }

	sim := startProc(t, dir, "nhsim", paysagaBin, env, "nhsim", "--addr", strings.TrimPrefix(simURL, "http://"))
	waitReady(t, sim, simURL+"/admin/ledger", time.Minute)
	cmdMigrate := exec.CommandContext(ctx, paysagaBin, "migrate")
	cmdMigrate.Env = env
	out, err := cmdMigrate.CombinedOutput()
	require.NoError(t, err, "paysaga migrate: %s", out)

	var workers [2]*proc
	for i := range workers {
		workers[i] = startProc(t, dir, fmt.Sprintf("worker-%d", i+1), paysagaBin,
			with("PAYSAGA_WORKER_HTTP_ADDR="+strings.TrimPrefix(workerURLs[i], "http://")), "worker")
	}
	var apis [2]*proc
	for i := range apis {
		apis[i] = startProc(t, dir, fmt.Sprintf("api-%d", i+1), paysagaBin,
			with("PAYSAGA_HTTP_ADDR="+strings.TrimPrefix(apiURLs[i], "http://")), "api")
	}
	for i := range 2 {
		waitReady(t, apis[i], apiURLs[i]+"/readyz", 2*time.Minute)
		waitReady(t, workers[i], workerURLs[i]+"/readyz", 2*time.Minute)
	}

	c := &client{bases: apiURLs, hc: &http.Client{Timeout: 30 * time.Second}}
	simAdmin := func(method, path string, body, into any) {
		t.Helper()
		var rd *strings.Reader
		b, _ := json.Marshal(body)
		rd = strings.NewReader(string(b))
		req, err := http.NewRequestWithContext(ctx, method, simURL+path, rd)
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Less(t, resp.StatusCode, 300, "nhsim %s %s", method, path)
		if into != nil {
			require.NoError(t, json.NewDecoder(resp.Body).Decode(into))
		}
	}
	signup := func(inst int, who string) *user {
		u := &user{Email: fmt.Sprintf("%s-%s@cluster.example", who, runID)}
		a := c.send(ctx, inst, http.MethodPost, "/v1/auth/signup", "", map[string]string{"email": u.Email, "password": "cluster-password-1", "name": "Cluster " + who})
		require.Equal(t, http.StatusCreated, a.Status, a.Raw)
		u.ID = a.str("id")
		return u
	}
	login := func(inst int, u *user) {
		a := c.send(ctx, inst, http.MethodPost, "/v1/auth/login", "", map[string]string{"email": u.Email, "password": "cluster-password-1"})
		require.Equal(t, http.StatusOK, a.Status, a.Raw)
		u.Token = a.str("access_token")
	}

	// A merchant, granted its role by an operator with payctl.
	merchant := signup(0, "merchant")
	grant := exec.CommandContext(ctx, payctlBin, "users", "grant", merchant.Email, "merchant")
	grant.Env = env
	out, err = grant.CombinedOutput()
	require.NoError(t, err, "payctl users grant: %s", out)
	login(1, merchant)

	// Customers, each with an account at the bank registered through the API.
	var custs []*user
	for i := range customers {
		inst := i % 2
		acno := fmt.Sprintf("39%05d%06d", time.Now().UnixNano()%100000, i)
		simAdmin(http.MethodPost, "/admin/accounts", nhsim.Account{Bncd: "011", Acno: acno, Holder: "김클러스터", Birth: "19900101", Balance: 1_000_000_000}, nil)
		u := signup(inst, fmt.Sprintf("customer%d", i))
		login(inst, u)
		a := c.send(ctx, inst, http.MethodPost, "/v1/accounts", u.Token,
			map[string]string{"bank_code": "011", "account_number": acno, "birth_date": "19900101", "nickname": "cluster"},
			"Idempotency-Key", "acct-"+runID+"-"+acno)
		require.Contains(t, []int{200, 201, 202}, a.Status, a.Raw)
		u.Account = a.str("id")
		require.Eventually(t, func() bool {
			g := c.send(ctx, 1-inst, http.MethodGet, "/v1/accounts/"+u.Account, u.Token, nil)
			return g.str("status") == "ACTIVE"
		}, 2*time.Minute, 300*time.Millisecond, "account of customer %d never became ACTIVE", i)
		custs = append(custs, u)
	}
	return &engine{tc: tc, c: c, dir: dir, runID: runID, paysagaBin: paysagaBin, env: env, simURL: simURL,
		apiURLs: apiURLs, workerURLs: workerURLs, apis: apis, workers: workers, sim: sim, redisAddr: redisAddr,
		redisPrefix: redisPrefix, merchant: merchant, custs: custs, simAdmin: simAdmin, with: with}
}
