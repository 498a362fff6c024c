package app

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"

	"paysaga/api"
	"paysaga/config"
	"paysaga/events"
	"paysaga/nh"
	"paysaga/store"
	"paysaga/worker"
	"paysaga/workflows"
)

// Parts are the opened dependencies of a process. API and Worker assemble the two halves of
// the engine from them; a process may run either or both.
type Parts struct {
	Config   config.Config
	Logger   *slog.Logger
	DB       *store.DB
	Redis    redis.UniversalClient
	Temporal client.Client
	Metrics  *prometheus.Registry
	// Dev relaxes what only a developer's machine may relax (a generated JWT secret).
	Dev bool

	// Bank and Events are needed by the worker only.
	Bank   *nh.Client
	Events events.Publisher
	// Payments overrides the payment saga's deadlines (zero fields: from Config, then the
	// defaults). Tests shorten them.
	Payments workflows.PaymentConfig
	// WorkerOptions tunes the worker (zero: the SDK's defaults).
	WorkerOptions sdkworker.Options
}

// API returns the HTTP API.
func (p *Parts) API() (*api.Server, error) {
	authSvc, err := NewAuth(p.Config, p.DB, p.Redis, p.Dev)
	if err != nil {
		return nil, err
	}
	return api.New(api.Deps{
		Auth:      authSvc,
		Users:     p.DB,
		Logger:    p.Logger,
		Readiness: Readiness(p.DB, p.Redis, p.Temporal),
		Metrics:   p.Metrics,
		Payments: api.PaymentDeps{
			Store:    p.DB,
			Starter:  api.TemporalPayments{Client: p.Temporal, Payments: p.DB},
			SyncWait: p.Config.PaymentSyncWait,
		},
	}), nil
}

// Worker returns a Temporal worker running the engine's workflows and activities.
func (p *Parts) Worker() (sdkworker.Worker, error) {
	payments := p.Payments
	if payments.UnknownDeadline == 0 {
		payments.UnknownDeadline = p.Config.PaymentUnknownDeadline
	}
	return worker.New(p.Temporal, worker.Deps{
		Store:    p.DB,
		Bank:     p.Bank,
		Events:   p.Events,
		Logger:   p.Logger,
		Payments: payments,
		Options:  p.WorkerOptions,
	})
}
