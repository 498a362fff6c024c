package app

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/redis/go-redis/v9"
	"go.temporal.io/sdk/client"

	"paysaga/config"
)

// temporalConnection sets the TLS and credential options of a Temporal client: a CA of the
// cluster's own (self-hosted with internode/frontend TLS), a client certificate (mTLS, as
// Temporal Cloud or a cluster with requireClientAuth wants), or a Temporal Cloud API key.
func temporalConnection(cfg config.Config, opts *client.Options) error {
	if !cfg.TemporalTLS {
		return nil
	}
	tc, err := tlsConfig(cfg.TemporalTLSCA, cfg.TemporalTLSServerName, "PAYSAGA_TEMPORAL_TLS_CA")
	if err != nil {
		return err
	}
	if cfg.TemporalTLSCert != "" || cfg.TemporalTLSKey != "" {
		cert, err := pemBytes(cfg.TemporalTLSCert, "PAYSAGA_TEMPORAL_TLS_CERT")
		if err != nil {
			return err
		}
		key, err := pemBytes(cfg.TemporalTLSKey, "PAYSAGA_TEMPORAL_TLS_KEY")
		if err != nil {
			return err
		}
		pair, err := tls.X509KeyPair(cert, key)
		if err != nil {
			// The error of X509KeyPair names no key material.
			return fmt.Errorf("PAYSAGA_TEMPORAL_TLS_CERT / PAYSAGA_TEMPORAL_TLS_KEY: %w", err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	opts.ConnectionOptions.TLS = tc
	if cfg.TemporalAPIKey != "" {
		// Sent as "authorization: Bearer <key>" on every call; never over plain text, since TLS
		// is on whenever a key is set.
		opts.Credentials = client.NewAPIKeyStaticCredentials(cfg.TemporalAPIKey)
	}
	return nil
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

// RedisKeyPrefix is the deployment's prefix of every Redis key and channel
// (PAYSAGA_REDIS_KEY_PREFIX) followed by the engine's own "paysaga:": two deployments with
// different prefixes share one Redis without seeing each other's keys.
func RedisKeyPrefix(cfg config.Config) string { return cfg.RedisKeyPrefix + "paysaga:" }

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
