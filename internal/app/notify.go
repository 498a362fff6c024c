package app

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/redis/go-redis/v9"

	"paysaga/alert"
	"paysaga/api"
	"paysaga/balance"
	"paysaga/config"
	"paysaga/events"
	"paysaga/notify"
	"paysaga/webhook"
)

// Default queue names of the notification and alert consumers.
const (
	NotificationsQueue = "paysaga.notifications"
	AlertsQueue        = "paysaga.alerts"
)

// NotifyConfig is the part of the configuration notify.Notifier and notify.Hub share.
func NotifyConfig(cfg config.Config) notify.Config {
	return notify.Config{Window: cfg.NotifyReplayWindow, Prefix: RedisKeyPrefix(cfg) + "notify:"}
}

// NewHub starts an API process's notification hub on its Redis. Close it when the process
// stops, before the HTTP server's Shutdown: that ends the open streams, which Shutdown would
// otherwise wait for.
func NewHub(ctx context.Context, cfg config.Config, rdb redis.UniversalClient, logger *slog.Logger) (*notify.Hub, error) {
	return notify.NewHub(ctx, rdb, notify.HubConfig{
		Config:     NotifyConfig(cfg),
		MaxStreams: cfg.NotifyMaxStreams,
		Logger:     logger.With("component", "notify"),
	})
}

// NotificationDeps configures api.Deps.Notifications with hub; a nil hub leaves the stream
// answering 503.
func NotificationDeps(cfg config.Config, hub *notify.Hub) api.NotificationDeps {
	d := api.NotificationDeps{Heartbeat: cfg.NotifyHeartbeat}
	if hub != nil {
		d.Hub = hub // a nil *Hub in the interface would not read as "no hub"
	}
	return d
}

// NotifyingPublisher is the worker's publisher when there is no broker to consume from: it
// marks moved balances outdated and notifies customers as it publishes, and alerts the team
// when a webhook is configured. With a broker, pub is returned as it is, and the consumers do
// that work (NotificationHandler).
func NotifyingPublisher(cfg config.Config, pub events.Publisher, rdb redis.UniversalClient, logger *slog.Logger) (events.Publisher, error) {
	if cfg.AMQPURL != "" {
		return pub, nil
	}
	pub = balancePublisher{Next: pub, Inv: balance.Invalidator{Redis: rdb, KeyPrefix: RedisKeyPrefix(cfg)}}
	pub = notify.Publisher{Next: pub, Notifier: notify.NewNotifier(rdb, NotifyConfig(cfg))}
	if cfg.AlertWebhookURL == "" {
		return pub, nil
	}
	// Without a broker there is no alert consumer either: alert as the event is published.
	a, err := alert.New(alert.Config{WebhookURL: cfg.AlertWebhookURL, Logger: logger})
	if err != nil {
		return nil, err
	}
	return alert.Publisher{Next: pub, Alerter: a, Logger: logger}, nil
}

// ConsumerOptions tune the consumers; zero values are the production defaults. Tests use
// queues of their own (with x-expires in QueueArgs) and short back-offs.
type ConsumerOptions struct {
	NotificationsQueue string
	AlertsQueue        string
	QueueArgs          amqp.Table
	// AlertWebhookURL overrides the configuration's.
	AlertWebhookURL string
	// Webhooks, when set, adds the consumer that dispatches merchants' webhooks (queue
	// WebhooksQueue, or WebhooksQueue here); see WebhookConsumer.
	Webhooks      *webhook.Dispatcher
	WebhooksQueue string
	// MaxAttempts, Backoff and MaxBackoff: see events.ConsumerConfig.
	MaxAttempts int
	Backoff     time.Duration
	MaxBackoff  time.Duration
}

// Consumers builds the event consumers of a process with a broker: the notification consumer,
// and the alert consumer when a webhook is configured. Run them with RunConsumers.
func Consumers(cfg config.Config, rdb redis.UniversalClient, logger *slog.Logger, o ConsumerOptions) ([]*events.Consumer, error) {
	if cfg.AMQPURL == "" {
		return nil, fmt.Errorf("event consumers need a broker (PAYSAGA_AMQP_URL)")
	}
	if o.NotificationsQueue == "" {
		o.NotificationsQueue = NotificationsQueue
	}
	if o.AlertsQueue == "" {
		o.AlertsQueue = AlertsQueue
	}
	if o.AlertWebhookURL == "" {
		o.AlertWebhookURL = cfg.AlertWebhookURL
	}
	broker := events.Config{URL: cfg.AMQPURL, Logger: logger}
	nc, err := events.NewConsumer(events.ConsumerConfig{
		Config: broker, Queue: o.NotificationsQueue, QueueArgs: o.QueueArgs,
		// webhook_endpoint.*: a merchant learns that an endpoint of theirs is failing.
		Patterns:    []string{"payment.*", "refund.*", "account.*", "webhook_endpoint.*"},
		Concurrency: 1, // customers see their events in the order they were published
		MaxAttempts: o.MaxAttempts, Backoff: o.Backoff, MaxBackoff: o.MaxBackoff,
		Dedupe: events.RedisDedupe{Client: rdb, Prefix: RedisKeyPrefix(cfg) + "dedupe:" + o.NotificationsQueue + ":"},
	}, NotificationHandler(cfg, rdb))
	if err != nil {
		return nil, err
	}
	consumers := []*events.Consumer{nc}
	if o.AlertWebhookURL != "" {
		a, err := alert.New(alert.Config{WebhookURL: o.AlertWebhookURL, Logger: logger.With("component", "alert")})
		if err != nil {
			return nil, err
		}
		ac, err := events.NewConsumer(events.ConsumerConfig{
			Config: broker, Queue: o.AlertsQueue, QueueArgs: o.QueueArgs, Patterns: alert.Patterns,
			// An alert being retried does not hold back the others.
			Concurrency: 4,
			MaxAttempts: o.MaxAttempts, Backoff: o.Backoff, MaxBackoff: o.MaxBackoff,
			Dedupe: events.RedisDedupe{Client: rdb, Prefix: RedisKeyPrefix(cfg) + "dedupe:" + o.AlertsQueue + ":"},
		}, a.Handle)
		if err != nil {
			return nil, err
		}
		consumers = append(consumers, ac)
	}
	if o.Webhooks != nil {
		wc, err := WebhookConsumer(cfg, o.Webhooks, logger, o)
		if err != nil {
			return nil, err
		}
		consumers = append(consumers, wc)
	}
	return consumers, nil
}

// RunConsumers runs the consumers until ctx ends, and returns when they all stopped.
func RunConsumers(ctx context.Context, consumers []*events.Consumer) {
	var wg sync.WaitGroup
	for _, c := range consumers {
		wg.Go(func() { _ = c.Run(ctx) })
	}
	wg.Wait()
}
