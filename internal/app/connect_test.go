package app_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
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
	"paysaga/internal/app"
	"paysaga/internal/temporaltest"
)

// pki is a test CA with a server certificate (for "temporal.test", "redis.test" and 127.0.0.1)
// and a client certificate, written as PEM files.
type pki struct {
	dir                                string
	caFile, serverCert, serverKey      string
	clientCert, clientKey, otherCAFile string
	serverPair                         tls.Certificate
	pool                               *x509.CertPool
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	dir := t.TempDir()
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
		return p
	}
	newCA := func(cn string) (*x509.Certificate, *ecdsa.PrivateKey, []byte) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		require.NoError(t, err)
		cert, err := x509.ParseCertificate(der)
		require.NoError(t, err)
		return cert, key, der
	}
	leaf := func(name string, serial int64, ca *x509.Certificate, caKey *ecdsa.PrivateKey, usage x509.ExtKeyUsage, dns []string) (string, string, tls.Certificate) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			DNSNames: dns, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		require.NoError(t, err)
		kder, err := x509.MarshalECPrivateKey(key)
		require.NoError(t, err)
		c := write(name+".pem", "CERTIFICATE", der)
		k := write(name+"-key.pem", "EC PRIVATE KEY", kder)
		pair, err := tls.LoadX509KeyPair(c, k)
		require.NoError(t, err)
		return c, k, pair
	}
	ca, caKey, caDER := newCA("paysaga test CA")
	_, _, otherDER := newCA("another CA")
	p := &pki{dir: dir, caFile: write("ca.pem", "CERTIFICATE", caDER), otherCAFile: write("other-ca.pem", "CERTIFICATE", otherDER)}
	p.serverCert, p.serverKey, p.serverPair = leaf("server", 2, ca, caKey, x509.ExtKeyUsageServerAuth, []string{"temporal.test", "redis.test"})
	p.clientCert, p.clientKey, _ = leaf("client", 3, ca, caKey, x509.ExtKeyUsageClientAuth, nil)
	p.pool = x509.NewCertPool()
	p.pool.AddCert(ca)
	return p
}

// tlsProxy terminates TLS (HTTP/2 by ALPN, as gRPC wants) in front of a plain-text address,
// as a load balancer in front of a Temporal frontend does. requireClientCert makes it mTLS.
func tlsProxy(t *testing.T, p *pki, backend string, requireClientCert bool) string {
	t.Helper()
	cfg := &tls.Config{Certificates: []tls.Certificate{p.serverPair}, NextProtos: []string{"h2"}, MinVersion: tls.VersionTLS12}
	if requireClientCert {
		cfg.ClientAuth, cfg.ClientCAs = tls.RequireAndVerifyClientCert, p.pool
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	require.NoError(t, err)
	var wg sync.WaitGroup
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				if err := c.(*tls.Conn).Handshake(); err != nil {
					return
				}
				b, err := net.Dial("tcp", backend)
				if err != nil {
					return
				}
				defer b.Close()
				done := make(chan struct{}, 2)
				go func() { _, _ = io.Copy(b, c); done <- struct{}{} }()
				go func() { _, _ = io.Copy(c, b); done <- struct{}{} }()
				<-done
			})
		}
	})
	return ln.Addr().String()
}

func loadConfig(t *testing.T, env map[string]string) config.Config {
	t.Helper()
	cfg, err := config.Load(func(k string) string { return env[k] })
	require.NoError(t, err)
	return cfg
}

// dial connects as the API, the worker and payctl do, and asks the cluster for its health.
func dial(cfg config.Config) error {
	opts, err := app.TemporalClientOptions(cfg, slog.New(slog.DiscardHandler))
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
	p := newPKI(t)
	mtls := tlsProxy(t, p, srv.HostPort, true)
	oneWay := tlsProxy(t, p, srv.HostPort, false)

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
			"PAYSAGA_TEMPORAL_TLS_CA", p.caFile, "PAYSAGA_TEMPORAL_TLS_CERT", p.clientCert,
			"PAYSAGA_TEMPORAL_TLS_KEY", p.clientKey, "PAYSAGA_TEMPORAL_TLS_SERVER_NAME", "temporal.test"), true, ""},
		{"mTLS with the PEM text in the variables", base(mtls,
			"PAYSAGA_TEMPORAL_TLS_CA", pemText(p.caFile), "PAYSAGA_TEMPORAL_TLS_CERT", pemText(p.clientCert),
			"PAYSAGA_TEMPORAL_TLS_KEY", pemText(p.clientKey), "PAYSAGA_TEMPORAL_TLS_SERVER_NAME", "temporal.test"), true, ""},
		{"TLS, the address's IP checked against the certificate", base(oneWay, "PAYSAGA_TEMPORAL_TLS_CA", p.caFile), true, ""},
		{"API key over TLS", base(oneWay, "PAYSAGA_TEMPORAL_TLS_CA", p.caFile, "PAYSAGA_TEMPORAL_API_KEY", "test-api-key"), true, ""},
		{"no client certificate where one is required", base(mtls,
			"PAYSAGA_TEMPORAL_TLS_CA", p.caFile, "PAYSAGA_TEMPORAL_TLS_SERVER_NAME", "temporal.test"), false, ""},
		{"a CA that did not sign the server's certificate", base(oneWay, "PAYSAGA_TEMPORAL_TLS_CA", p.otherCAFile), false, "certificate"},
		{"a server name the certificate does not name", base(oneWay,
			"PAYSAGA_TEMPORAL_TLS_CA", p.caFile, "PAYSAGA_TEMPORAL_TLS_SERVER_NAME", "elsewhere.test"), false, "elsewhere.test"},
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
	require.Error(t, dial(loadConfig(t, base(srv.HostPort, "PAYSAGA_TEMPORAL_TLS_CA", p.caFile))))
	require.NoError(t, dial(loadConfig(t, base(srv.HostPort))))
}

func TestTemporalClientOptionsRefuseUnusableTLSSettings(t *testing.T) {
	p := newPKI(t)
	logger := slog.New(slog.DiscardHandler)
	_, err := config.Load(func(k string) string {
		return map[string]string{"PAYSAGA_TEMPORAL_TLS_CERT": p.clientCert}[k]
	})
	require.ErrorContains(t, err, "PAYSAGA_TEMPORAL_TLS_KEY", "a certificate without its key")

	for setting, want := range map[string]string{
		"PAYSAGA_TEMPORAL_TLS_CA": "PAYSAGA_TEMPORAL_TLS_CA: read /nonexistent/ca.pem: no such file",
	} {
		_, err := app.TemporalClientOptions(loadConfig(t, map[string]string{setting: "/nonexistent/ca.pem"}), logger)
		require.ErrorContains(t, err, want)
	}
	_, err = app.TemporalClientOptions(loadConfig(t, map[string]string{"PAYSAGA_TEMPORAL_TLS_CA": p.clientKey}), logger)
	require.ErrorContains(t, err, "no PEM certificate")
	// A key that is not the certificate's: the message names the settings, not the key.
	_, err = app.TemporalClientOptions(loadConfig(t, map[string]string{
		"PAYSAGA_TEMPORAL_TLS_CERT": p.clientCert, "PAYSAGA_TEMPORAL_TLS_KEY": p.serverKey}), logger)
	require.ErrorContains(t, err, "PAYSAGA_TEMPORAL_TLS_CERT / PAYSAGA_TEMPORAL_TLS_KEY")
	keyPEM, _ := os.ReadFile(p.serverKey)
	require.NotContains(t, err.Error(), strings.TrimSpace(string(keyPEM))[30:60])

	// The API key: TLS on even without a CA, and the key is the client's credential.
	opts, err := app.TemporalClientOptions(loadConfig(t, map[string]string{"PAYSAGA_TEMPORAL_API_KEY": "k"}), logger)
	require.NoError(t, err)
	require.NotNil(t, opts.ConnectionOptions.TLS)
	require.NotNil(t, opts.Credentials)
	// Nothing set: plain text, as the dev server and the compose network want.
	opts, err = app.TemporalClientOptions(loadConfig(t, nil), logger)
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
	p := newPKI(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	cmd := exec.Command(bin, "--port", "0", "--tls-port", fmt.Sprint(port), "--bind", "127.0.0.1",
		"--tls-cert-file", p.serverCert, "--tls-key-file", p.serverKey, "--tls-ca-cert-file", p.caFile,
		"--tls-auth-clients", "no", "--save", "", "--appendonly", "no", "--dir", p.dir,
		"--user", "default", "off",
		"--user", "paysaga", "on", ">s3cret-pass", "~*", "&*", "+@all")
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := fmt.Sprintf("127.0.0.1:%d", port)

	ping := func(env map[string]string) error {
		env["PAYSAGA_REDIS_ADDR"] = addr
		rdb, err := app.OpenRedis(loadConfig(t, env))
		if err != nil {
			return err
		}
		defer rdb.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		return rdb.Ping(ctx).Err()
	}
	require.Eventually(t, func() bool {
		return ping(map[string]string{"PAYSAGA_REDIS_TLS_CA": p.caFile, "PAYSAGA_REDIS_USERNAME": "paysaga",
			"PAYSAGA_REDIS_PASSWORD": "s3cret-pass"}) == nil
	}, 10*time.Second, 100*time.Millisecond, "redis-server with TLS: %s", out)

	require.Error(t, ping(map[string]string{"PAYSAGA_REDIS_USERNAME": "paysaga", "PAYSAGA_REDIS_PASSWORD": "s3cret-pass"}),
		"plain text to a TLS port")
	require.ErrorContains(t, ping(map[string]string{"PAYSAGA_REDIS_TLS_CA": p.caFile, "PAYSAGA_REDIS_PASSWORD": "s3cret-pass"}),
		"WRONGPASS", "the default user is off: the ACL user is what got in")
	require.ErrorContains(t, ping(map[string]string{"PAYSAGA_REDIS_TLS_CA": p.otherCAFile, "PAYSAGA_REDIS_USERNAME": "paysaga",
		"PAYSAGA_REDIS_PASSWORD": "s3cret-pass"}), "certificate")
	_, err = app.OpenRedis(loadConfig(t, map[string]string{"PAYSAGA_REDIS_TLS_CA": "/nonexistent/ca.pem"}))
	require.ErrorContains(t, err, "PAYSAGA_REDIS_TLS_CA")
}

// TestTemporalAPIKeyIsSentOverTLS stands a gRPC server with TLS where the Temporal frontend
// would be, and checks what the engine's client sends it: the API key as a bearer token, on a
// TLS connection (the key alone turns TLS on).
func TestTemporalAPIKeyIsSentOverTLS(t *testing.T) {
	p := newPKI(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var mu sync.Mutex
	var auth []string
	var tlsSeen bool
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{p.serverPair}})),
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
		"PAYSAGA_TEMPORAL_TLS_CA": p.caFile, "PAYSAGA_TEMPORAL_API_KEY": "test-api-key-123"}))
	require.Error(t, err, "the stand-in answers no call")
	mu.Lock()
	defer mu.Unlock()
	require.NotEmpty(t, auth, "no call reached the server")
	require.Equal(t, "Bearer test-api-key-123", auth[0])
	require.True(t, tlsSeen, "the key went over TLS")
}
