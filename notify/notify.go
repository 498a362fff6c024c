// Package notify tells customers (and merchants) what happens to their payments while it
// happens. An event (from the RabbitMQ consumer, or straight from the publisher when there is
// no broker) becomes one notification per user concerned; the Notifier appends it to that
// user's short log in Redis (a stream, trimmed to a replay window) and publishes it on the
// user's Redis pub/sub channel. Every API instance runs a Hub, which subscribes to the channels
// of the users whose streams it holds, so a notification reaches the user whichever instance
// they are connected to; a reconnecting client names the last id it saw and the Hub replays the
// rest from the log.
//
// Redis layout, for a user U (prefix "paysaga:notify:"):
//
//	paysaga:notify:U          pub/sub channel: "<log id>\n<notification JSON>"
//	paysaga:notify:U:log      stream of the last Window of notifications (field "n")
//	paysaga:notify:U:seen:E   the user was notified of event E (drops duplicates)
//	paysaga:notify:U:conns    sorted set of the user's open streams (the connection limit)
package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"paysaga/events"
)

// Defaults of Config.
const (
	DefaultPrefix = "paysaga:notify:"
	DefaultWindow = 5 * time.Minute
	DefaultMaxLen = 1000
)

// Config is shared by the Notifier and the Hubs: they must agree on it.
type Config struct {
	// Prefix of every Redis key and channel (DefaultPrefix); tests use their own.
	Prefix string
	// Window is how long a notification can be replayed to a reconnecting client
	// (DefaultWindow). MaxLen caps a user's log within it (DefaultMaxLen).
	Window time.Duration
	MaxLen int64
	// DedupeTTL is how long an event is remembered as notified (24h): a republished event
	// arriving within it is dropped.
	DedupeTTL time.Duration
}

func (c Config) withDefaults() Config {
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if c.Window <= 0 {
		c.Window = DefaultWindow
	}
	if c.MaxLen <= 0 {
		c.MaxLen = DefaultMaxLen
	}
	if c.DedupeTTL < c.Window {
		c.DedupeTTL = max(24*time.Hour, c.Window)
	}
	return c
}

func (c Config) channel(user string) string { return c.Prefix + user }
func (c Config) log(user string) string     { return c.Prefix + user + ":log" }
func (c Config) seen(user, eventID string) string {
	return c.Prefix + user + ":seen:" + eventID
}
func (c Config) conns(user string) string { return c.Prefix + user + ":conns" }

// Notification is what a user's stream carries: one event, as that user is told of it.
type Notification struct {
	// ID is the notification's place in the user's log (a Redis stream id, "1732500000000-0"):
	// the SSE id a client sends back as Last-Event-ID. It is not part of the JSON body.
	ID         string          `json:"-"`
	EventID    string          `json:"event_id"`
	Type       string          `json:"type"`
	OccurredAt time.Time       `json:"occurred_at"`
	Data       json.RawMessage `json:"data"`
}

// Recipients are the users an event concerns, from its body: the customer and the merchant of
// a payment (or of the payment a refund belongs to, when the refund event carries it), the
// owner of an account. An event naming nobody notifies nobody.
func Recipients(ev events.Event) []string {
	type parties struct {
		CustomerID string `json:"customer_id"`
		MerchantID string `json:"merchant_id"`
		OwnerID    string `json:"owner_id"`
	}
	var body struct {
		parties
		Payment *parties `json:"payment"`
	}
	if len(ev.Data) == 0 || json.Unmarshal(ev.Data, &body) != nil {
		return nil
	}
	var out []string
	add := func(ids ...string) {
		for _, id := range ids {
			if id == "" {
				continue
			}
			dup := false
			for _, o := range out {
				dup = dup || o == id
			}
			if !dup {
				out = append(out, id)
			}
		}
	}
	add(body.CustomerID, body.OwnerID, body.MerchantID)
	if body.Payment != nil {
		add(body.Payment.CustomerID, body.Payment.MerchantID)
	}
	return out
}

// Notifier writes notifications: to each user's log and channel. It is safe for concurrent
// use, and Notify is idempotent: the same event twice notifies each user once.
type Notifier struct {
	rdb redis.UniversalClient
	cfg Config
	now func() time.Time
}

// NewNotifier returns a Notifier writing to rdb.
func NewNotifier(rdb redis.UniversalClient, cfg Config) *Notifier {
	return &Notifier{rdb: rdb, cfg: cfg.withDefaults(), now: time.Now}
}

// notifyScript appends one notification to a user's log and publishes it, once per event: the
// "seen" marker, the append, the trim and the publish happen together or not at all, so a
// retried Notify can neither lose nor repeat a notification.
//
// KEYS: log, seen. ARGV: channel, payload, window ms, oldest id to keep, max length, dedupe ms.
var notifyScript = redis.NewScript(`
if not redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[6]) then return false end
local id = redis.call('XADD', KEYS[1], 'MINID', '~', ARGV[4], '*', 'n', ARGV[2])
redis.call('XTRIM', KEYS[1], 'MAXLEN', '~', ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PUBLISH', ARGV[1], id .. '\n' .. ARGV[2])
return id`)

// Notify notifies every recipient of ev. An error means some may not have been notified;
// calling again with the same event notifies only those.
func (n *Notifier) Notify(ctx context.Context, ev events.Event) error {
	users := Recipients(ev)
	if len(users) == 0 || ev.ID == "" {
		return nil
	}
	payload, err := json.Marshal(Notification{EventID: ev.ID, Type: ev.Type, OccurredAt: ev.OccurredAt, Data: ev.Data})
	if err != nil {
		return fmt.Errorf("notify: encode %s: %w", ev.ID, err)
	}
	window := n.cfg.Window.Milliseconds()
	oldest := strconv.FormatInt(n.now().Add(-n.cfg.Window).UnixMilli(), 10) + "-0"
	for _, u := range users {
		err := notifyScript.Run(ctx, n.rdb, []string{n.cfg.log(u), n.cfg.seen(u, ev.ID)},
			n.cfg.channel(u), payload, window, oldest, n.cfg.MaxLen, n.cfg.DedupeTTL.Milliseconds()).Err()
		if err != nil && err != redis.Nil {
			return fmt.Errorf("notify: event %s: %w", ev.ID, err)
		}
	}
	return nil
}

// Handle is Notify as an events.Handler, for an events.Consumer.
func (n *Notifier) Handle(ctx context.Context, ev events.Event) error { return n.Notify(ctx, ev) }

// Publisher passes each event to Next and then to the Notifier. It stands in front of the
// engine's publisher when there is no broker to consume from (events.NoBroker), so that
// customers are notified all the same. Publish fails if either step fails; the caller (an
// activity, retried) publishes again with the same event id, and Notify drops what it already
// did.
type Publisher struct {
	Next     events.Publisher
	Notifier *Notifier
}

// Publish implements events.Publisher.
func (p Publisher) Publish(ctx context.Context, ev events.Event) error {
	if err := p.Next.Publish(ctx, ev); err != nil {
		return err
	}
	return p.Notifier.Notify(ctx, ev)
}
