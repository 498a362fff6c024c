package connect_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"paysaga/config"
	"paysaga/internal/connect"
	"paysaga/internal/temporaltest"
)

func loadConfig(t *testing.T, env map[string]string) config.Config {
	t.Helper()
	cfg, err := config.Load(func(k string) string { return env[k] })
	require.NoError(t, err)
	return cfg
}

// dial connects as the API, the worker and payctl do, and asks the cluster for its health.
func dial(cfg config.Config) error {
	opts, err := connect.TemporalClientOptions(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := client.DialContext(ctx, opts)
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.CheckHealth(ctx, &client.CheckHealthRequest{})
	return err
}

// TestTemporalClientOverTLS connects the engine's Temporal client to a real Temporal server
// through a TLS-terminating listener with PAYSAGA_TEMPORAL_TLS_* — with a client certificate
// where the listener demands one (mTLS), with an API key — and checks that a wrong CA, a wrong
// server name, a missing client certificate or plain text are refused.
func TestTemporalClientOverTLS(t *testing.T) {
	srv := temporaltest.Start(t)
	p := temporaltest.NewPKI(t)
	mtls := temporaltest.TLSProxy(t, p, srv.HostPort, true)
	oneWay := temporaltest.TLSProxy(t, p, srv.HostPort, false)

	base := func(addr string, kv ...string) map[string]string {
		env := map[string]string{"PAYSAGA_TEMPORAL_ADDRESS": addr}
		for i := 0; i+1 < len(kv); i += 2 {
			env[kv[i]] = kv[i+1]
		}
		return env
	}
	pemText := func(path string) string { b, err := os.ReadFile(path); require.NoError(t, err); return string(b) }

	for _, tc := range []struct {
		name string
		env  map[string]string
		ok   bool
		why  string
	}{
		{"mTLS: CA, client certificate and key, server name", base(mtls,
			"PAYSAGA_TEMPORAL_TLS_CA", p.CAFile, "PAYSAGA_TEMPORAL_TLS_CERT", p.ClientCert,
			"PAYSAGA_TEMPORAL_TLS_KEY", p.ClientKey, "PAYSAGA_TEMPORAL_TLS_SERVER_NAME", "temporal.test"), true, ""},
		{"mTLS with the PEM text in the variables", base(mtls,
			"PAYSAGA_TEMPORAL_TLS_CA", pemText(p.CAFile), "PAYSAGA_TEMPORAL_TLS_CERT", pemText(p.ClientCert),
			"PAYSAGA_TEMPORAL_TLS_KEY", pemText(p.ClientKey), "PAYSAGA_TEMPORAL_TLS_SERVER_NAME", "temporal.test"), true, ""},
		{"TLS, the address's IP checked against the certificate", base(oneWay, "PAYSAGA_TEMPORAL_TLS_CA", p.CAFile), true, ""},
		{"API key over TLS", base(oneWay, "PAYSAGA_TEMPORAL_TLS_CA", p.CAFile, "PAYSAGA_TEMPORAL_API_KEY", "test-api-key"), true, ""},
		{"no client certificate where one is required", base(mtls,
			"PAYSAGA_TEMPORAL_TLS_CA", p.CAFile, "PAYSAGA_TEMPORAL_TLS_SERVER_NAME", "temporal.test"), false, ""},
		{"a CA that did not sign the server's certificate", base(oneWay, "PAYSAGA_TEMPORAL_TLS_CA", p.OtherCAFile), false, "certificate"},
		{"a server name the certificate does not name", base(oneWay,
			"PAYSAGA_TEMPORAL_TLS_CA", p.CAFile, "PAYSAGA_TEMPORAL_TLS_SERVER_NAME", "elsewhere.test"), false, "elsewhere.test"},
		{"system roots only (the test CA is not one)", base(oneWay, "PAYSAGA_TEMPORAL_TLS", "true"), false, "certificate"},
		{"plain text to a TLS listener", base(oneWay), false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := dial(loadConfig(t, tc.env))
			if tc.ok {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.why)
		})
	}
	// And the server itself is plain text: TLS settings against it fail, so the cases above
	// went through the listener's TLS.
	require.Error(t, dial(loadConfig(t, base(srv.HostPort, "PAYSAGA_TEMPORAL_TLS_CA", p.CAFile))))
	require.NoError(t, dial(loadConfig(t, base(srv.HostPort))))
}

func TestTemporalClientOptionsRefuseUnusableTLSSettings(t *testing.T) {
	p := temporaltest.NewPKI(t)
	logger := slog.New(slog.DiscardHandler)
	_, err := config.Load(func(k string) string {
		return map[string]string{"PAYSAGA_TEMPORAL_TLS_CERT": p.ClientCert}[k]
	})
	require.ErrorContains(t, err, "PAYSAGA_TEMPORAL_TLS_KEY", "a certificate without its key")

	for setting, want := range map[string]string{
		"PAYSAGA_TEMPORAL_TLS_CA": "PAYSAGA_TEMPORAL_TLS_CA: read /nonexistent/ca.pem: no such file",
	} {
		_, err := connect.TemporalClientOptions(loadConfig(t, map[string]string{setting: "/nonexistent/ca.pem"}), logger)
		require.ErrorContains(t, err, want)
	}
	_, err = connect.TemporalClientOptions(loadConfig(t, map[string]string{"PAYSAGA_TEMPORAL_TLS_CA": p.ClientKey}), logger)
	require.ErrorContains(t, err, "no PEM certificate")
	// A key that is not the certificate's: the message names the settings, not the key.
	_, err = connect.TemporalClientOptions(loadConfig(t, map[string]string{
		"PAYSAGA_TEMPORAL_TLS_CERT": p.ClientCert, "PAYSAGA_TEMPORAL_TLS_KEY": p.ServerKey}), logger)
	require.ErrorContains(t, err, "PAYSAGA_TEMPORAL_TLS_CERT / PAYSAGA_TEMPORAL_TLS_KEY")
	keyPEM, _ := os.ReadFile(p.ServerKey)
	require.NotContains(t, err.Error(), strings.TrimSpace(string(keyPEM))[30:60])

	// The API key: TLS on even without a CA, and the key is the client's credential.
	opts, err := connect.TemporalClientOptions(loadConfig(t, map[string]string{"PAYSAGA_TEMPORAL_API_KEY": "k"}), logger)
	require.NoError(t, err)
	require.NotNil(t, opts.ConnectionOptions.TLS)
	require.NotNil(t, opts.Credentials)
	// Nothing set: plain text, as the dev server and the compose network want.
	opts, err = connect.TemporalClientOptions(loadConfig(t, nil), logger)
	require.NoError(t, err)
	require.Nil(t, opts.ConnectionOptions.TLS)
	require.Nil(t, opts.Credentials)
}

// TestRedisOverTLSWithAnACLUser starts a Redis of its own that listens on TLS only, with an ACL
// user, and connects with PAYSAGA_REDIS_TLS_CA, PAYSAGA_REDIS_USERNAME and
// PAYSAGA_REDIS_PASSWORD.
func TestRedisOverTLSWithAnACLUser(t *testing.T) {
	bin, err := exec.LookPath("redis-server")
	require.NoError(t, err, "redis-server is needed (it runs on every machine of the project)")
	p := temporaltest.NewPKI(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	cmd := exec.Command(bin, "--port", "0", "--tls-port", fmt.Sprint(port), "--bind", "127.0.0.1",
		"--tls-cert-file", p.ServerCert, "--tls-key-file", p.ServerKey, "--tls-ca-cert-file", p.CAFile,
		"--tls-auth-clients", "no", "--save", "", "--appendonly", "no", "--dir", p.Dir,
		"--user", "default", "off",
		"--user", "paysaga", "on", ">s3cret-pass", "~*", "&*", "+@all")
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := fmt.Sprintf("127.0.0.1:%d", port)

	ping := func(env map[string]string) error {
		env["PAYSAGA_REDIS_ADDR"] = addr
		rdb, err := connect.OpenRedis(loadConfig(t, env))
		if err != nil {
			return err
		}
		defer rdb.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		return rdb.Ping(ctx).Err()
	}
	require.Eventually(t, func() bool {
		return ping(map[string]string{"PAYSAGA_REDIS_TLS_CA": p.CAFile, "PAYSAGA_REDIS_USERNAME": "paysaga",
			"PAYSAGA_REDIS_PASSWORD": "s3cret-pass"}) == nil
	}, 10*time.Second, 100*time.Millisecond, "redis-server with TLS: %s", out)

	require.Error(t, ping(map[string]string{"PAYSAGA_REDIS_USERNAME": "paysaga", "PAYSAGA_REDIS_PASSWORD": "s3cret-pass"}),
		"plain text to a TLS port")
	require.ErrorContains(t, ping(map[string]string{"PAYSAGA_REDIS_TLS_CA": p.CAFile, "PAYSAGA_REDIS_PASSWORD": "s3cret-pass"}),
		"WRONGPASS", "the default user is off: the ACL user is what got in")
	require.ErrorContains(t, ping(map[string]string{"PAYSAGA_REDIS_TLS_CA": p.OtherCAFile, "PAYSAGA_REDIS_USERNAME": "paysaga",
		"PAYSAGA_REDIS_PASSWORD": "s3cret-pass"}), "certificate")
	_, err = connect.OpenRedis(loadConfig(t, map[string]string{"PAYSAGA_REDIS_TLS_CA": "/nonexistent/ca.pem"}))
	require.ErrorContains(t, err, "PAYSAGA_REDIS_TLS_CA")
}

// TestTemporalAPIKeyIsSentOverTLS stands a gRPC server with TLS where the Temporal frontend
// would be, and checks what the engine's client sends it: the API key as a bearer token, on a
// TLS connection (the key alone turns TLS on).
func TestTemporalAPIKeyIsSentOverTLS(t *testing.T) {
	p := temporaltest.NewPKI(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var mu sync.Mutex
	var auth []string
	var tlsSeen bool
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{p.ServerPair}})),
		grpc.UnknownServiceHandler(func(_ any, stream grpc.ServerStream) error {
			md, _ := metadata.FromIncomingContext(stream.Context())
			pr, _ := peer.FromContext(stream.Context())
			mu.Lock()
			auth = append(auth, md.Get("authorization")...)
			if pr != nil {
				_, tlsSeen = pr.AuthInfo.(credentials.TLSInfo)
			}
			mu.Unlock()
			return status.Error(codes.Unavailable, "not a Temporal server")
		}))
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)

	err = dial(loadConfig(t, map[string]string{"PAYSAGA_TEMPORAL_ADDRESS": ln.Addr().String(),
		"PAYSAGA_TEMPORAL_TLS_CA": p.CAFile, "PAYSAGA_TEMPORAL_API_KEY": "test-api-key-123"}))
	require.Error(t, err, "the stand-in answers no call")
	mu.Lock()
	defer mu.Unlock()
	require.NotEmpty(t, auth, "no call reached the server")
	require.Equal(t, "Bearer test-api-key-123", auth[0])
	require.True(t, tlsSeen, "the key went over TLS")
}
