package config_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paysaga/config"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestLoadDefaults(t *testing.T) {
	c, err := config.Load(env(nil))
	require.NoError(t, err)
	require.Equal(t, ":8080", c.HTTPAddr)
	require.Equal(t, "mysql", c.DBDriver)
	require.Equal(t, 15*time.Minute, c.AccessTokenTTL)
	require.Equal(t, "127.0.0.1:7233", c.TemporalAddress)
}

func TestLoadRejectsBadValues(t *testing.T) {
	for name, m := range map[string]map[string]string{
		"driver":   {"PAYSAGA_DB_DRIVER": "oracle"},
		"duration": {"PAYSAGA_ACCESS_TOKEN_TTL": "soon"},
		"negative": {"PAYSAGA_PAYMENT_SYNC_WAIT": "-1s"},
		"level":    {"PAYSAGA_LOG_LEVEL": "loud"},
	} {
		_, err := config.Load(env(m))
		require.Error(t, err, name)
	}
}

func TestRequireNamesMissingSettings(t *testing.T) {
	err := config.Require(env(nil), "api")
	require.Error(t, err)
	require.Contains(t, err.Error(), "PAYSAGA_JWT_SECRET")
	require.Contains(t, err.Error(), "PAYSAGA_DB_DSN")
	require.NoError(t, config.Require(env(map[string]string{
		"PAYSAGA_JWT_SECRET":            strings.Repeat("x", 32),
		"PAYSAGA_DB_DSN":                "x",
		"PAYSAGA_ACCOUNT_KEYS":          "x",
		"PAYSAGA_TEMPORAL_PAYLOAD_KEYS": "x",
		"PAYSAGA_NH_BASE_URL":           "x",
		"PAYSAGA_NH_ISCD":               "x",
		"PAYSAGA_NH_ACCESS_TOKEN":       "x",
	}), "api"))
}

// The README's configuration table is generated from Vars; this keeps the two in step.
func TestREADMEDocumentsEveryVariable(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	require.Contains(t, string(readme), config.MarkdownTable(),
		"README.md's configuration table is out of date: paste the output of `go run ./cmd/paysaga config`")
}

func TestTrustedProxies(t *testing.T) {
	c, err := config.Load(env(nil))
	require.NoError(t, err)
	require.Empty(t, c.TrustedProxies, "none trusted unless configured")
	c, err = config.Load(env(map[string]string{"PAYSAGA_TRUSTED_PROXIES": " 10.0.0.0/8, 192.168.1.10 ,fd00::/8"}))
	require.NoError(t, err)
	require.Equal(t, []string{"10.0.0.0/8", "192.168.1.10", "fd00::/8"}, c.TrustedProxies)
	_, err = config.Load(env(map[string]string{"PAYSAGA_TRUSTED_PROXIES": "10.0.0.0/8,proxy.internal"}))
	require.ErrorContains(t, err, "PAYSAGA_TRUSTED_PROXIES")
}

// Issue 11, Low: the broker is optional, as documented ("empty = events recorded in the
// database only"): a worker configured without one starts.
func TestWorkerStartsWithoutABroker(t *testing.T) {
	require.NoError(t, config.Require(env(map[string]string{
		"PAYSAGA_DB_DSN":                "x",
		"PAYSAGA_ACCOUNT_KEYS":          "x",
		"PAYSAGA_TEMPORAL_PAYLOAD_KEYS": "x",
		"PAYSAGA_NH_BASE_URL":           "x",
		"PAYSAGA_NH_ISCD":               "x",
		"PAYSAGA_NH_ACCESS_TOKEN":       "x",
	}), "worker"))
	require.NotContains(t, config.Needed("worker"), "PAYSAGA_AMQP_URL")
}

// Refunds have their own unknown-outcome deadline; unset, it is the payments' (as it was before
// refunds had their own configuration).
func TestRefundUnknownDeadline(t *testing.T) {
	c, err := config.Load(env(map[string]string{"PAYSAGA_PAYMENT_UNKNOWN_DEADLINE": "20s"}))
	require.NoError(t, err)
	require.Equal(t, 20*time.Second, c.RefundUnknownDeadline)
	c, err = config.Load(env(map[string]string{"PAYSAGA_PAYMENT_UNKNOWN_DEADLINE": "20s", "PAYSAGA_REFUND_UNKNOWN_DEADLINE": "3m"}))
	require.NoError(t, err)
	require.Equal(t, 20*time.Second, c.PaymentUnknownDeadline)
	require.Equal(t, 3*time.Minute, c.RefundUnknownDeadline)
	_, err = config.Load(env(map[string]string{"PAYSAGA_REFUND_UNKNOWN_DEADLINE": "soon"}))
	require.ErrorContains(t, err, "PAYSAGA_REFUND_UNKNOWN_DEADLINE")
}
