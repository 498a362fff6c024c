package app

import (
	"context"
	"log/slog"
	"time"

	"go.temporal.io/sdk/client"

	"paysaga/activities"
	"paysaga/config"
	"paysaga/events"
	"paysaga/saga"
	"paysaga/seal"
	"paysaga/store"
	"paysaga/webhook"
	"paysaga/workflows"
)

// WebhooksQueue is the queue of the webhook dispatcher (with a broker).
const WebhooksQueue = "paysaga.webhooks"

// WebhookPolicy is the SSRF policy of the configuration: production's unless
// PAYSAGA_WEBHOOK_ALLOW_LOOPBACK is set (dev, tests).
func WebhookPolicy(cfg config.Config) webhook.Policy {
	return webhook.Policy{AllowLoopback: cfg.WebhookAllowLoopback}
}

// WebhookDispatcher returns the dispatcher that turns events into deliveries.
func WebhookDispatcher(db *store.DB, tc client.Client, logger *slog.Logger) *webhook.Dispatcher {
	return &webhook.Dispatcher{Store: db, Starter: saga.WebhookDeliveries{Client: tc}, Logger: logger.With("component", "webhook")}
}

// webhookEvent is ev as merchants receive it.
func webhookEvent(ev events.Event) webhook.Event {
	return webhook.Event{ID: ev.ID, Type: ev.Type, OccurredAt: ev.OccurredAt, Data: ev.Data}
}

// WebhookHandler is the dispatcher as an events.Handler, for the broker's consumer.
func WebhookHandler(d *webhook.Dispatcher) events.Handler {
	return func(ctx context.Context, ev events.Event) error { return d.Dispatch(ctx, webhookEvent(ev)) }
}

// WebhookPublisher passes each event to Next and then to the dispatcher: without a broker to
// consume from, merchants' webhooks are started as the event is published. An error (Temporal
// unreachable) fails the publish; the publishing activity tries again with the same event id,
// and the dispatcher starts only what it had not.
type WebhookPublisher struct {
	Next       events.Publisher
	Dispatcher *webhook.Dispatcher
}

// Publish implements events.Publisher.
func (p WebhookPublisher) Publish(ctx context.Context, ev events.Event) error {
	if err := p.Next.Publish(ctx, ev); err != nil {
		return err
	}
	return p.Dispatcher.Dispatch(ctx, webhookEvent(ev))
}

// WebhookConsumer is the broker's consumer of the events merchants may receive (payment.*,
// refund.*, settlement.*), which dispatches them. An event is acknowledged only once every
// delivery is started; while Temporal is down it is retried (with back-off up to
// o.MaxBackoff, default 30s) for days rather than dead-lettered.
func WebhookConsumer(cfg config.Config, d *webhook.Dispatcher, logger *slog.Logger, o ConsumerOptions) (*events.Consumer, error) {
	queue := o.WebhooksQueue
	if queue == "" {
		queue = WebhooksQueue
	}
	attempts := o.MaxAttempts
	if attempts <= 0 {
		attempts = 10_000 // ≈ 3.5 days at the 30 s ceiling
	}
	return events.NewConsumer(events.ConsumerConfig{
		Config: events.Config{URL: cfg.AMQPURL, Logger: logger},
		Queue:  queue, QueueArgs: o.QueueArgs, Patterns: webhook.Families,
		// Deliveries are workflows of their own: a dispatch is a few inserts and starts.
		Concurrency: 4,
		MaxAttempts: attempts, Backoff: o.Backoff, MaxBackoff: o.MaxBackoff,
	}, WebhookHandler(d))
}

// WebhookWorker registers the delivery activities on w (worker.New registers the workflow):
// the endpoints' secrets opened with keys, sent through the configuration's SSRF policy, the
// failing alert published with pub.
func WebhookWorker(w workflows.WebhookRegistry, cfg config.Config, db *store.DB, keys *seal.Keyring, pub events.Publisher, logger *slog.Logger) {
	if pub == nil {
		pub = events.NoBroker{Logger: logger}
	}
	workflows.RegisterWebhookActivities(w, &activities.WebhookActivities{
		Store: db, Keys: keys, Client: WebhookPolicy(cfg).Client(), Events: pub,
		Logger: logger.With("component", "webhook"), Now: time.Now,
	})
}
