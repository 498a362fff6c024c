package app

import (
	"errors"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"

	"paysaga/api"
	"paysaga/balance"
	"paysaga/config"
	"paysaga/events"
	"paysaga/nh"
	"paysaga/notify"
	"paysaga/saga"
	"paysaga/seal"
	"paysaga/store"
	"paysaga/telemetry"
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

	// Bank is the NH client: the worker moves money with it, the API asks balances.
	Bank *nh.Client
	// Keys seal account numbers and birth dates at rest (see OpenKeys).
	Keys *seal.Keyring
	// Events publishes the workers' events (the worker only).
	Events events.Publisher
	// Hub serves the customers' notification streams (the API only; nil answers 503).
	Hub *notify.Hub
	// Payments overrides the payment saga's deadlines (zero fields: from Config, then the
	// defaults). Tests shorten them.
	Payments workflows.PaymentConfig
	// Refunds overrides the refund saga's deadlines (zero fields: from Config, then the
	// defaults).
	Refunds workflows.RefundConfig
	// WorkerOptions tunes the worker (zero: the SDK's defaults).
	WorkerOptions sdkworker.Options
	// Webhooks is the retry schedule of webhook deliveries (zero fields: 30s doubling to 1h,
	// for 24h). Tests shorten it.
	Webhooks workflows.WebhookConfig
}

// API returns the HTTP API.
func (p *Parts) API() (*api.Server, error) {
	authSvc, err := NewAuth(p.Config, p.DB, p.Redis, p.Dev)
	if err != nil {
		return nil, err
	}
	balances, err := balance.New(balance.Config{Redis: p.Redis, KeyPrefix: RedisKeyPrefix(p.Config), Bank: p.Bank, Accounts: p.DB})
	if err != nil {
		return nil, err
	}
	if p.Metrics != nil {
		registerBreakerGauge(p.Metrics, balances)
		telemetry.RegisterVisibility(p.Metrics, p.Temporal, p.Config.TemporalNamespace)
	}
	return api.New(api.Deps{
		Auth:      authSvc,
		Users:     p.DB,
		Logger:    p.Logger,
		Readiness: Readiness(p.DB, p.Redis, p.Temporal),
		Metrics:   p.Metrics,
		// Without trusted proxies X-Forwarded-For is ignored: the client's address is the peer's.
		TrustedProxies: p.Config.TrustedProxies,
		Payments: api.PaymentDeps{
			Store:    p.DB,
			Starter:  saga.Payments{Client: p.Temporal, Store: p.DB},
			Keys:     p.Keys,
			SyncWait: p.Config.PaymentSyncWait,
			Admission: &api.Admission{
				MaxInFlight: p.Config.PaymentMaxInFlight, PerCustomer: p.Config.PaymentMaxPerCustomer,
			},
		},
		Notifications: NotificationDeps(p.Config, p.Hub),
		Accounts: api.AccountDeps{
			Store:    p.DB,
			Starter:  saga.Accounts{Client: p.Temporal, Store: p.DB},
			Keys:     p.Keys,
			Balances: balances,
			SyncWait: p.Config.PaymentSyncWait,
		},
		Webhooks: api.WebhookDeps{
			Store: p.DB, Keys: p.Keys, Starter: saga.WebhookDeliveries{Client: p.Temporal}, Policy: WebhookPolicy(p.Config),
		},
		Settlements: api.SettlementDeps{Store: p.DB, Keys: p.Keys},
	}), nil
}

// Worker returns a Temporal worker running the engine's workflows and activities.
func (p *Parts) Worker() (sdkworker.Worker, error) {
	payments := p.Payments
	if payments.UnknownDeadline == 0 {
		payments.UnknownDeadline = p.Config.PaymentUnknownDeadline
	}
	if payments.CaptureDeadline == 0 {
		payments.CaptureDeadline = p.Config.CaptureDeadline
	}
	refunds := p.Refunds
	if refunds.UnknownDeadline == 0 {
		refunds.UnknownDeadline = p.Config.RefundUnknownDeadline
	}
	if p.Keys == nil {
		return nil, errors.New("worker: account keys are required (PAYSAGA_ACCOUNT_KEYS)")
	}
	publisher := p.Events
	if p.Config.AMQPURL == "" {
		// Without a broker there is no webhook consumer: merchants' webhooks are started as
		// each event is published.
		if publisher == nil {
			publisher = events.NoBroker{Logger: p.Logger}
		}
		publisher = WebhookPublisher{Next: publisher, Dispatcher: WebhookDispatcher(p.DB, p.Temporal, p.Logger)}
	}
	if publisher != nil {
		// A span per publish, the events and outcome metrics (issue 14).
		publisher = telemetry.Publisher(publisher)
	}
	w, err := worker.New(p.Temporal, worker.Deps{
		Store:    p.DB,
		Bank:     p.Bank,
		Events:   publisher,
		Logger:   p.Logger,
		Payments: payments,
		Refunds:  refunds,
		Keys:     p.Keys,
		Options:  WorkerOptions(p.WorkerOptions),
		Webhooks: p.Webhooks,

		SettlementFeeBPS: p.Config.SettlementFeeBPS,
	})
	if err != nil {
		return nil, err
	}
	// The daily settlement Schedule, ensured by every worker (internal/app/settlement.go).
	if err := p.ensureSettlementSchedule(); err != nil {
		return nil, err
	}
	WebhookWorker(w, p.Config, p.DB, p.Keys, publisher, p.Logger)
	return w, nil
}

// WorkerOptions are o with the engine's defaults: no eager activity execution unless o bounds
// it (MaxConcurrentEagerActivityExecutionSize > 0). Eager dispatch — the server handing the
// bank call back in the answer to the workflow task that scheduled it — halved a payment's
// latency below saturation, but at saturation some payments stalled for a minute, even with
// eager dispatch bounded to 4: an activity handed out with a workflow task's answer that does
// not reach the worker (the answer is late or retried) waits for its start-to-close timeout
// (30 s) before it is tried again. A payment engine takes the steady tail over the faster
// median (docs/benchmarks.md, "Eager activities"); `go run ./bench -eager 4` measures it.
func WorkerOptions(o sdkworker.Options) sdkworker.Options {
	if o.MaxConcurrentEagerActivityExecutionSize <= 0 {
		o.DisableEagerActivities = true
	}
	return o
}
