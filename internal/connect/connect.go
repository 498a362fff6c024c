// Package connect opens the engine's outside systems from its configuration: the database, the
// Temporal client's options (TLS, payload encryption, tracing, metrics), Redis and the bank's
// client. The engine's processes (internal/app) and payctl open them alike; payctl does so
// without the HTTP API that app assembles.
package connect

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"

	"paysaga/config"
	"paysaga/nh"
	"paysaga/store"
	"paysaga/telemetry"
)

// OpenDB opens the database; migrate also brings its schema up to date.
func OpenDB(ctx context.Context, cfg config.Config, migrate bool) (*store.DB, error) {
	// Each query is a span of the trace it runs in (operation and table, never the statement).
	db, err := store.Open(ctx, store.Config{Driver: cfg.DBDriver, DSN: cfg.DBDSN,
		QueryHook: telemetry.QueryHook{System: cfg.DBDriver}})
	if err != nil {
		return nil, err
	}
	if migrate {
		if err := db.Migrate(ctx); err != nil {
			_ = db.Close()
			return nil, err
		}
	}
	return db, nil
}

// NewRedis returns a Redis client for cfg (address, ACL user, password, TLS: see redisOptions).
// A TLS setting that cannot be read (a missing CA file) is reported by OpenRedis; NewRedis
// panics on it, for callers that have checked the configuration before.
func NewRedis(cfg config.Config) *redis.Client {
	rdb, err := OpenRedis(cfg)
	if err != nil {
		panic(err)
	}
	return rdb
}

// OpenRedis returns a Redis client for cfg, or why its TLS settings cannot be used.
func OpenRedis(cfg config.Config) (*redis.Client, error) {
	o, err := redisOptions(cfg)
	if err != nil {
		return nil, err
	}
	return redis.NewClient(o), nil
}

// NewBank returns the NH client; IsTuno numbers come from the database, so a number is never
// handed out twice, even across processes and restarts.
func NewBank(cfg config.Config, db *store.DB, logger *slog.Logger) (*nh.Client, error) {
	return nh.New(nh.Config{
		BaseURL:      cfg.NHBaseURL,
		Iscd:         cfg.NHIscd,
		FintechApsno: cfg.NHFintechApsno,
		AccessToken:  cfg.NHAccessToken,
		HTTPClient:   bankHTTPClient(),
		Logger:       logger.With("component", "nh"),
	}, db)
}

// bankHTTPClient is the NH client's HTTP client: each request is a span of the bank call's
// trace (its timings: connect, TLS, first byte).
func bankHTTPClient() *http.Client {
	return &http.Client{Transport: otelhttp.NewTransport(bankTransport(),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return "HTTP " + r.Method }))}
}

// bankConnsIdle is how many kept-alive connections to the bank a process keeps: every call
// goes to one host, and Go's default keeps 2 per host — under load every other call would open
// (and TLS-handshake) a new connection and close it again.
const bankConnsIdle = 64

// bankTransport is http.DefaultTransport's settings (proxy from the environment, dial and TLS
// timeouts, HTTP/2 when the bank offers it) with a pool sized for one busy host.
func bankTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = bankConnsIdle
	t.MaxIdleConnsPerHost = bankConnsIdle
	return t
}

// redisOptions are the options of the engine's Redis client: address, ACL user and password,
// and TLS when Redis (a managed one, typically) asks for it.
func redisOptions(cfg config.Config) (*redis.Options, error) {
	o := &redis.Options{Addr: cfg.RedisAddr, Username: cfg.RedisUsername, Password: cfg.RedisPassword}
	if cfg.RedisTLS {
		host := cfg.RedisAddr
		if i := strings.LastIndex(host, ":"); i >= 0 {
			host = host[:i]
		}
		tc, err := tlsConfig(cfg.RedisTLSCA, strings.Trim(host, "[]"), "PAYSAGA_REDIS_TLS_CA")
		if err != nil {
			return nil, err
		}
		o.TLSConfig = tc
	}
	return o, nil
}

// tlsConfig returns a TLS 1.2+ client configuration trusting the CA of caSetting (the system's
// roots when empty) and checking the server's certificate against serverName (the dialled host
// when empty).
func tlsConfig(ca, serverName, caSetting string) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: serverName}
	if ca != "" {
		b, err := pemBytes(ca, caSetting)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("%s: no PEM certificate in it", caSetting)
		}
		tc.RootCAs = pool
	}
	return tc, nil
}

// pemBytes reads a PEM setting: the PEM text itself (a secret injected as a variable), or the
// path of a file holding it (a mounted secret).
func pemBytes(v, setting string) ([]byte, error) {
	if strings.HasPrefix(strings.TrimSpace(v), "-----BEGIN ") {
		return []byte(v), nil
	}
	b, err := os.ReadFile(v)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("%s: read %s: %w", setting, v, err)
	}
	return b, nil
}
