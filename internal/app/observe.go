package app

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/client"

	"paysaga"
	"paysaga/auth"
	"paysaga/config"
	"paysaga/internal/connect"
	"paysaga/payloadcodec"
	"paysaga/telemetry"
)

// EncodeAndObserve sets the payload codec, the tracing interceptor and the SDK's metrics of a
// Temporal client (connect.EncodeAndObserve).
func EncodeAndObserve(cfg config.Config, opts *client.Options, logger *slog.Logger) error {
	return connect.EncodeAndObserve(cfg, opts, logger)
}

// PayloadCodec returns the codec of PAYSAGA_TEMPORAL_PAYLOAD_KEYS (the codec server's).
func PayloadCodec(cfg config.Config) (*payloadcodec.Codec, error) {
	return payloadcodec.Parse(cfg.TemporalPayloadKeys)
}

// RegisterMetrics adds the engine's business metrics and the Temporal SDK's to reg.
func RegisterMetrics(reg prometheus.Registerer) { telemetry.Register(reg) }

// registerBreakerGauge exports the state of the balance inquiries' circuit breaker (the one
// place the API calls the bank): 1 while it is open and balances are served stale.
func registerBreakerGauge(reg prometheus.Registerer, b interface{ BreakerState() string }) {
	g := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "paysaga_balance_circuit_open",
		Help: "1 while the circuit breaker of the bank's balance inquiries is open (balances served from the cache, marked stale), 0.5 half-open, 0 closed.",
	}, func() float64 {
		switch b.BreakerState() {
		case "open":
			return 1
		case "half-open":
			return 0.5
		}
		return 0
	})
	_ = reg.Register(g) // a second API on the same registry keeps the first one's gauge
}

// OperatorOnly is the codec server's authorization: a request must carry an operator's valid
// access token (Authorization: Bearer …), the token payctl's operators and the API accept.
func OperatorOnly(a *auth.Service) func(*http.Request) error {
	return func(r *http.Request) error {
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || strings.TrimSpace(token) == "" {
			return errors.New("no bearer token")
		}
		claims, err := a.Verify(strings.TrimSpace(token))
		if err != nil {
			return err
		}
		if claims.Role != paysaga.RoleOperator {
			return fmt.Errorf("user %s is not an operator", claims.UserID)
		}
		return nil
	}
}
