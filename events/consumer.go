package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/redis/go-redis/v9"
)

// Handler handles one event. An error means "not handled": the consumer tries again with
// back-off and dead-letters the event after the last attempt; wrap the error with Permanent to
// dead-letter it at once (retrying cannot help, e.g. a webhook answering 400).
type Handler func(ctx context.Context, ev Event) error

// Permanent marks err as one that retrying cannot cure.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

// IsPermanent reports whether err (or an error it wraps) was marked with Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// ConsumerConfig describes a consumer: its queue, the routing keys bound to it, and how hard it
// tries before dead-lettering. Zero values take the defaults.
type ConsumerConfig struct {
	// Config is the broker and its topology (exchange and dead-letter names).
	Config
	// Queue is the consumer's durable queue; Patterns the routing keys bound to it
	// ("payment.*"); QueueArgs extra queue arguments (x-expires for a throw-away queue).
	Queue     string
	Patterns  []string
	QueueArgs amqp.Table
	// Prefetch is how many unacknowledged messages the broker hands over at once (default
	// Concurrency×4). Concurrency is how many are handled at the same time (default 1, which
	// keeps the queue's order).
	Prefetch    int
	Concurrency int
	// MaxAttempts is how many times an event is tried before it is dead-lettered (default 5).
	// Backoff is the wait after the first failure, doubled after each one up to MaxBackoff
	// (defaults 500ms and 30s).
	MaxAttempts int
	Backoff     time.Duration
	MaxBackoff  time.Duration
	// Dedupe drops events handled already (by event id). Nil: every delivery is handled.
	Dedupe Deduper
}

func (c ConsumerConfig) withDefaults() ConsumerConfig {
	c.Config = c.Config.withDefaults()
	if c.Concurrency <= 0 {
		c.Concurrency = 1
	}
	if c.Prefetch < c.Concurrency {
		c.Prefetch = c.Concurrency * 4
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 5
	}
	if c.Backoff <= 0 {
		c.Backoff = 500 * time.Millisecond
	}
	if c.MaxBackoff < c.Backoff {
		c.MaxBackoff = max(30*time.Second, c.Backoff)
	}
	return c
}

// Consumer consumes one queue with manual acknowledgements: a message is acknowledged only once
// its handler succeeded (or it was a duplicate), and rejected without requeue — so that the
// broker dead-letters it — after MaxAttempts failures. It reconnects when the broker goes away.
type Consumer struct {
	cfg     ConsumerConfig
	handle  Handler
	log     *slog.Logger
	ready   chan struct{}
	readyMu sync.Once
}

// NewConsumer returns a consumer of cfg.Queue that passes each event to h. Run starts it.
func NewConsumer(cfg ConsumerConfig, h Handler) (*Consumer, error) {
	if cfg.URL == "" || cfg.Queue == "" || len(cfg.Patterns) == 0 || h == nil {
		return nil, fmt.Errorf("events: a consumer needs a broker URL, a queue, routing-key patterns and a handler")
	}
	cfg = cfg.withDefaults()
	return &Consumer{cfg: cfg, handle: h, log: cfg.Logger.With("queue", cfg.Queue), ready: make(chan struct{})}, nil
}

// Ready is closed once the queue is declared and bound and the consumer receives messages:
// events published after that reach it.
func (c *Consumer) Ready() <-chan struct{} { return c.ready }

// Run consumes until ctx is done, reconnecting (with back-off) whenever the connection is lost.
// Messages being handled when ctx ends are not acknowledged: the broker delivers them again.
func (c *Consumer) Run(ctx context.Context) error {
	wait := time.Second
	for {
		err := c.consume(ctx)
		if ctx.Err() != nil {
			return nil
		}
		c.log.Warn("event consumer disconnected; reconnecting", "error", err, "in", wait)
		if !sleep(ctx, wait) {
			return nil
		}
		wait = min(2*wait, 30*time.Second)
	}
}

// consume runs one connection's worth of consuming.
func (c *Consumer) consume(ctx context.Context) error {
	conn, err := amqp.DialConfig(c.cfg.URL, amqp.Config{
		Dial:       amqp.DefaultDial(c.cfg.DialTimeout),
		Properties: amqp.Table{"connection_name": "paysaga-consumer-" + c.cfg.Queue},
	})
	if err != nil {
		return fmt.Errorf("events: connect to broker: %w", err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("events: open channel: %w", err)
	}
	if err := ch.Qos(c.cfg.Prefetch, 0, false); err != nil {
		return fmt.Errorf("events: prefetch: %w", err)
	}
	if err := DeclareTopology(ch, c.cfg.Config); err != nil {
		return err
	}
	if err := DeclareQueue(ch, c.cfg.Config, c.cfg.Queue, c.cfg.Patterns, c.cfg.QueueArgs); err != nil {
		return err
	}
	deliveries, err := ch.ConsumeWithContext(ctx, c.cfg.Queue, "", false, false, false, false, nil)
	if err != nil {
		return fmt.Errorf("events: consume %s: %w", c.cfg.Queue, err)
	}
	c.readyMu.Do(func() { close(c.ready) })
	c.log.Info("consuming events")

	var wg sync.WaitGroup
	for range c.cfg.Concurrency {
		wg.Go(func() {
			for d := range deliveries {
				c.deliver(ctx, d)
			}
		})
	}
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	select {
	case <-ctx.Done():
	case e := <-closed:
		if e != nil {
			err = e
		} else {
			err = errors.New("connection closed")
		}
	}
	// Closing the connection ends the deliveries channel; the workers then return, and what
	// they had not acknowledged goes back to the queue.
	_ = conn.Close()
	wg.Wait()
	return err
}

// deliver handles one delivery and settles it: ack, or reject towards the dead letters.
func (c *Consumer) deliver(ctx context.Context, d amqp.Delivery) {
	var ev Event
	if err := json.Unmarshal(d.Body, &ev); err != nil || ev.Type == "" {
		c.log.Error("undecodable event dead-lettered", "message_id", d.MessageId, "routing_key", d.RoutingKey)
		deadLettered.WithLabelValues(c.cfg.Queue).Inc()
		_ = d.Reject(false)
		return
	}
	if ev.ID == "" {
		ev.ID = d.MessageId
	}
	// The handling joins the trace of the payment that published the event (traceparent in
	// the message headers).
	ctx, span := consumeSpan(ctx, d.Headers, c.cfg.Queue, ev)
	defer span.End()
	log := c.log.With("event_id", ev.ID, "event_type", ev.Type)

	if c.cfg.Dedupe != nil && ev.ID != "" {
		state, err := c.cfg.Dedupe.Claim(ctx, ev.ID)
		switch {
		case err == nil && state == ClaimBusy && d.Redelivered:
			// The broker never hands one message to two consumers at once: this message's
			// previous holder is gone (its channel closed), and so is whoever left the claim.
			log.Info("taking over the claim of a consumer that went away")
		case err != nil || state == ClaimBusy:
			// Our own store is down, or another consumer is on it right now: neither is the
			// event's fault, so it goes back to the queue (after a pause), never to the dead
			// letters.
			if err != nil {
				log.Warn("duplicate check failed; event requeued", "error", err)
			}
			if sleep(ctx, c.cfg.Backoff) {
				_ = d.Nack(false, true)
			}
			return
		case state == ClaimDone:
			log.Debug("duplicate event dropped")
			_ = d.Ack(false)
			return
		}
	}

	wait := c.cfg.Backoff
	var err error
	for attempt := 1; ; attempt++ {
		if err = c.handle(ctx, ev); err == nil {
			if c.cfg.Dedupe != nil && ev.ID != "" {
				if derr := c.cfg.Dedupe.Done(ctx, ev.ID); derr != nil {
					log.Warn("event handled but not remembered as handled", "error", derr)
				}
			}
			if aerr := d.Ack(false); aerr != nil {
				log.Warn("ack failed; the event will be delivered again", "error", aerr)
			}
			return
		}
		if ctx.Err() != nil {
			break
		}
		if IsPermanent(err) || attempt >= c.cfg.MaxAttempts {
			c.release(log, ev.ID)
			log.Error("event dead-lettered", "attempts", attempt, "error", err)
			deadLettered.WithLabelValues(c.cfg.Queue).Inc()
			_ = d.Reject(false)
			return
		}
		log.Warn("event handler failed; retrying", "attempt", attempt, "in", wait, "error", err)
		if !sleep(ctx, wait) {
			break
		}
		wait = min(2*wait, c.cfg.MaxBackoff)
	}
	// Shutting down: leave the message unacknowledged, the broker hands it out again.
	c.release(log, ev.ID)
}

func (c *Consumer) release(log *slog.Logger, id string) {
	if c.cfg.Dedupe == nil || id == "" {
		return
	}
	// A fresh context: this runs on shutdown too, and a claim left behind would make the
	// redelivery wait for the claim's lease.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.cfg.Dedupe.Release(ctx, id); err != nil {
		log.Warn("claim on event not released", "error", err)
	}
}

// sleep waits d, or less if ctx ends first; it reports whether the full wait happened.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// ClaimState is what Deduper.Claim found.
type ClaimState int

const (
	// ClaimNew: nobody handled the event; the caller now holds it and must call Done or Release.
	ClaimNew ClaimState = iota
	// ClaimDone: the event was handled already; drop it.
	ClaimDone
	// ClaimBusy: someone else holds it right now; try again later.
	ClaimBusy
)

// Deduper remembers which events were handled, so that a redelivered or republished event
// (at-least-once delivery) is handled once.
type Deduper interface {
	Claim(ctx context.Context, eventID string) (ClaimState, error)
	// Done records the event as handled.
	Done(ctx context.Context, eventID string) error
	// Release gives up a claim without handling, so that the next delivery is handled.
	Release(ctx context.Context, eventID string) error
}

// RedisDedupe is a Deduper on Redis: a claim is SET NX with a lease; a handled event is
// remembered for TTL.
type RedisDedupe struct {
	Client redis.UniversalClient
	// Prefix names the consumer, so that two consumers of the same event each handle it once
	// (e.g. "paysaga:dedupe:alerts:").
	Prefix string
	// TTL is how long a handled event is remembered (default 24h): longer than any redelivery
	// or republishing can come late. Lease bounds a claim whose holder died (default 5m).
	TTL   time.Duration
	Lease time.Duration
}

const (
	dedupeBusy = "busy"
	dedupeDone = "done"
)

// releaseScript deletes a claim only while it is still a claim, never a "done".
var releaseScript = redis.NewScript(`if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`)

// Claim implements Deduper.
func (r RedisDedupe) Claim(ctx context.Context, id string) (ClaimState, error) {
	lease := r.Lease
	if lease <= 0 {
		lease = 5 * time.Minute
	}
	key := r.Prefix + id
	ok, err := r.Client.SetNX(ctx, key, dedupeBusy, lease).Result()
	if err != nil {
		return 0, fmt.Errorf("events: claim %s: %w", id, err)
	}
	if ok {
		return ClaimNew, nil
	}
	v, err := r.Client.Get(ctx, key).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return ClaimBusy, nil // the claim just ended; the retry will find out
	case err != nil:
		return 0, fmt.Errorf("events: claim %s: %w", id, err)
	case v == dedupeDone:
		return ClaimDone, nil
	}
	return ClaimBusy, nil
}

// Done implements Deduper.
func (r RedisDedupe) Done(ctx context.Context, id string) error {
	ttl := r.TTL
	if ttl <= 0 {
		ttl = 24 * time.Hour
	}
	return r.Client.Set(ctx, r.Prefix+id, dedupeDone, ttl).Err()
}

// Release implements Deduper.
func (r RedisDedupe) Release(ctx context.Context, id string) error {
	return releaseScript.Run(ctx, r.Client, []string{r.Prefix + id}, dedupeBusy).Err()
}
