package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Default names of the topology.
const (
	DefaultExchange           = "paysaga.events"
	DefaultDeadLetterExchange = "paysaga.dlx"
	DefaultDeadLetterQueue    = "paysaga.dead-letters"
)

// ErrNacked is returned when the broker refused to take responsibility for a message (a
// publisher-confirm nack); publish it again later.
var ErrNacked = errors.New("events: broker refused the message (nack)")

// Config says where the broker is and how the topology is named. Zero names take the defaults;
// tests use unique names.
type Config struct {
	// URL is the AMQP URL, e.g. amqp://guest:guest@127.0.0.1:5672/. It may hold a password:
	// it is never logged.
	URL                string
	Exchange           string
	DeadLetterExchange string
	DeadLetterQueue    string
	// ConfirmTimeout bounds the wait for the broker's confirm of one message (default 10s).
	ConfirmTimeout time.Duration
	// DialTimeout bounds one connection attempt (default 5s).
	DialTimeout time.Duration
	Logger      *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.Exchange == "" {
		c.Exchange = DefaultExchange
	}
	if c.DeadLetterExchange == "" {
		c.DeadLetterExchange = DefaultDeadLetterExchange
	}
	if c.DeadLetterQueue == "" {
		c.DeadLetterQueue = DefaultDeadLetterQueue
	}
	if c.ConfirmTimeout <= 0 {
		c.ConfirmTimeout = 10 * time.Second
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Rabbit publishes events to RabbitMQ with publisher confirms. It is safe for concurrent use.
// When the broker goes away, Publish fails until it is back, and the next Publish after that
// connects again (the callers — activities — retry with backoff).
type Rabbit struct {
	cfg    Config
	mu     sync.Mutex
	conn   *amqp.Connection
	ch     *amqp.Channel
	closed bool
}

// NewRabbit connects to the broker and declares the topology (events exchange, dead-letter
// exchange and queue). An unreachable broker is an error: a service configured with one should
// not start without it.
func NewRabbit(ctx context.Context, cfg Config) (*Rabbit, error) {
	if _, err := url.Parse(cfg.URL); err != nil || cfg.URL == "" {
		return nil, fmt.Errorf("events: a valid AMQP URL is required")
	}
	r := &Rabbit{cfg: cfg.withDefaults()}
	if _, err := r.channel(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// OpenRabbit returns a publisher for cfg without connecting: the first Publish (or Connect)
// does. A worker starts with it, so that a broker down at start-up delays events — the
// publishing activities retry until it is back — rather than stopping payments.
func OpenRabbit(cfg Config) (*Rabbit, error) {
	if _, err := url.Parse(cfg.URL); err != nil || cfg.URL == "" {
		return nil, fmt.Errorf("events: a valid AMQP URL is required")
	}
	return &Rabbit{cfg: cfg.withDefaults()}, nil
}

// Connect connects to the broker and declares the topology, trying again with growing pauses
// (up to 15 s, each failure logged as a warning) until it succeeds or ctx ends.
func (r *Rabbit) Connect(ctx context.Context) error {
	wait := 500 * time.Millisecond
	for {
		_, err := r.channel(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.cfg.Logger.Warn("event broker unreachable; trying again", "error", err.Error(), "in", wait.String())
		if !sleep(ctx, wait) {
			return ctx.Err()
		}
		wait = min(2*wait, 15*time.Second)
	}
}

// Publish sends ev to the events exchange with ev.Type as the routing key, as a persistent
// message whose message_id is ev.ID, and waits for the broker's confirm.
func (r *Rabbit) Publish(ctx context.Context, ev Event) error {
	if ev.ID == "" || ev.Type == "" {
		return fmt.Errorf("events: an event needs an id and a type")
	}
	if len(ev.Data) == 0 {
		ev.Data = json.RawMessage("{}")
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("events: encode %s: %w", ev.ID, err)
	}
	ch, err := r.channel(ctx)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.ConfirmTimeout)
	defer cancel()
	dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, r.cfg.Exchange, ev.Type, false, false, amqp.Publishing{
		ContentType:  "application/json",
		DeliveryMode: amqp.Persistent,
		MessageId:    ev.ID,
		Type:         ev.Type,
		Timestamp:    ev.OccurredAt.UTC(),
		AppId:        "paysaga",
		Headers:      traceHeaders(ctx),
		Body:         body,
	})
	if err != nil {
		r.drop(ch)
		return fmt.Errorf("events: publish %s: %w", ev.ID, err)
	}
	acked, err := dc.WaitContext(ctx)
	if err != nil {
		// No confirm in time: the channel may be stuck; start afresh next time.
		r.drop(ch)
		return fmt.Errorf("events: confirm of %s: %w", ev.ID, err)
	}
	if !acked {
		if ch.IsClosed() {
			r.drop(ch)
		}
		return fmt.Errorf("events: publish %s: %w", ev.ID, ErrNacked)
	}
	return nil
}

// DeclareQueue declares a durable consumer queue bound to the events exchange with the given
// routing-key patterns ("payment.*", "#"), dead-lettering to the dead-letter exchange: a message
// a consumer rejects without requeue (or that expires) lands in the dead-letter queue instead
// of vanishing. args are extra queue arguments (x-max-length, …).
func (r *Rabbit) DeclareQueue(ctx context.Context, name string, patterns []string, args amqp.Table) error {
	ch, err := r.channel(ctx)
	if err != nil {
		return err
	}
	if err := DeclareQueue(ch, r.cfg, name, patterns, args); err != nil {
		r.drop(ch)
		return err
	}
	return nil
}

// DeclareQueue is Rabbit.DeclareQueue on a channel of the caller's (consumers have their own
// connections).
func DeclareQueue(ch *amqp.Channel, cfg Config, name string, patterns []string, args amqp.Table) error {
	cfg = cfg.withDefaults()
	qargs := amqp.Table{"x-dead-letter-exchange": cfg.DeadLetterExchange}
	for k, v := range args {
		qargs[k] = v
	}
	if _, err := ch.QueueDeclare(name, true, false, false, false, qargs); err != nil {
		return fmt.Errorf("events: declare queue %s: %w", name, err)
	}
	for _, p := range patterns {
		if err := ch.QueueBind(name, p, cfg.Exchange, false, nil); err != nil {
			return fmt.Errorf("events: bind queue %s to %s: %w", name, p, err)
		}
	}
	return nil
}

// DeclareTopology declares the events exchange (topic, durable), the dead-letter exchange
// (topic, durable) and the dead-letter queue bound to it for every routing key. Declaring is
// idempotent.
func DeclareTopology(ch *amqp.Channel, cfg Config) error {
	cfg = cfg.withDefaults()
	for _, ex := range []string{cfg.Exchange, cfg.DeadLetterExchange} {
		if err := ch.ExchangeDeclare(ex, amqp.ExchangeTopic, true, false, false, false, nil); err != nil {
			return fmt.Errorf("events: declare exchange %s: %w", ex, err)
		}
	}
	if _, err := ch.QueueDeclare(cfg.DeadLetterQueue, true, false, false, false, nil); err != nil {
		return fmt.Errorf("events: declare queue %s: %w", cfg.DeadLetterQueue, err)
	}
	if err := ch.QueueBind(cfg.DeadLetterQueue, "#", cfg.DeadLetterExchange, false, nil); err != nil {
		return fmt.Errorf("events: bind %s: %w", cfg.DeadLetterQueue, err)
	}
	return nil
}

// Close closes the connection; Publish fails afterwards.
func (r *Rabbit) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	if r.conn != nil {
		err := r.conn.Close()
		r.conn, r.ch = nil, nil
		if err != nil && !errors.Is(err, amqp.ErrClosed) {
			return err
		}
	}
	return nil
}

// channel returns the open confirm-mode channel, connecting (again) when there is none.
func (r *Rabbit) channel(ctx context.Context) (*amqp.Channel, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, fmt.Errorf("events: publisher closed")
	}
	if r.ch != nil && !r.ch.IsClosed() && !r.conn.IsClosed() {
		return r.ch, nil
	}
	if r.conn != nil {
		_ = r.conn.Close()
		r.conn, r.ch = nil, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	conn, err := amqp.DialConfig(r.cfg.URL, amqp.Config{
		Dial:       amqp.DefaultDial(r.cfg.DialTimeout),
		Properties: amqp.Table{"connection_name": "paysaga-events"},
	})
	if err != nil {
		// The error of the client library does not include the URL (nor its password).
		return nil, fmt.Errorf("events: connect to broker: %w", err)
	}
	ch, err := conn.Channel()
	if err == nil {
		err = ch.Confirm(false)
	}
	if err == nil {
		err = DeclareTopology(ch, r.cfg)
	}
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("events: set up channel: %w", err)
	}
	lost := conn.NotifyClose(make(chan *amqp.Error, 1))
	go func() {
		if e := <-lost; e != nil {
			r.cfg.Logger.Warn("event broker connection lost; reconnecting on the next publish", "error", e.Reason)
		}
	}()
	r.conn, r.ch = conn, ch
	r.cfg.Logger.Info("connected to the event broker", "exchange", r.cfg.Exchange)
	return ch, nil
}

// drop forgets ch if it is the current channel, so that the next Publish opens a new one.
func (r *Rabbit) drop(ch *amqp.Channel) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ch == ch && r.conn != nil {
		_ = r.conn.Close()
		r.conn, r.ch = nil, nil
	}
}
