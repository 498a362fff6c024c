package events_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	"paysaga/events"
)

// amqpURL is the broker of the tests. An unreachable broker fails the tests: never skipped.
func amqpURL() string {
	if u := os.Getenv("PAYSAGA_TEST_AMQP_URL"); u != "" {
		return u
	}
	return "amqp://guest:guest@127.0.0.1:5672/"
}

// testConfig returns a topology with names of its own, deleted when the test ends.
func testConfig(t *testing.T, brokerURL string) events.Config {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	suffix := hex.EncodeToString(b[:])
	cfg := events.Config{
		URL:                brokerURL,
		Exchange:           "paysaga.events.test-" + suffix,
		DeadLetterExchange: "paysaga.dlx.test-" + suffix,
		DeadLetterQueue:    "paysaga.dead-letters.test-" + suffix,
		ConfirmTimeout:     5 * time.Second,
		DialTimeout:        2 * time.Second,
	}
	t.Cleanup(func() {
		conn, err := amqp.Dial(amqpURL())
		if err != nil {
			return
		}
		defer conn.Close()
		ch, err := conn.Channel()
		if err != nil {
			return
		}
		_, _ = ch.QueueDelete(cfg.DeadLetterQueue, false, false, false)
		_ = ch.ExchangeDelete(cfg.Exchange, false, false)
		_ = ch.ExchangeDelete(cfg.DeadLetterExchange, false, false)
	})
	return cfg
}

// consumerChannel opens a channel of the test's own, as a consumer would.
func consumerChannel(t *testing.T) *amqp.Channel {
	t.Helper()
	conn, err := amqp.Dial(amqpURL())
	require.NoError(t, err, "RabbitMQ must be reachable at PAYSAGA_TEST_AMQP_URL")
	t.Cleanup(func() { _ = conn.Close() })
	ch, err := conn.Channel()
	require.NoError(t, err)
	return ch
}

func declareTestQueue(t *testing.T, ch *amqp.Channel, cfg events.Config, patterns []string, args amqp.Table) string {
	t.Helper()
	name := cfg.Exchange + ".q"
	require.NoError(t, events.DeclareQueue(ch, cfg, name, patterns, args))
	t.Cleanup(func() { _, _ = ch.QueueDelete(name, false, false, false) })
	return name
}

func getOne(t *testing.T, ch *amqp.Channel, queue string) amqp.Delivery {
	t.Helper()
	var d amqp.Delivery
	require.Eventually(t, func() bool {
		msg, ok, err := ch.Get(queue, false)
		require.NoError(t, err)
		d = msg
		return ok
	}, 5*time.Second, 20*time.Millisecond, "no message in %s", queue)
	return d
}

func TestPublishDeliversAndDeadLetters(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t, amqpURL())
	pub, err := events.NewRabbit(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = pub.Close() })
	ch := consumerChannel(t)
	queue := declareTestQueue(t, ch, cfg, []string{"payment.*"}, nil)

	ev := events.Event{
		ID: "evt_abc_003", Type: events.PaymentSucceeded,
		OccurredAt: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC),
		Data:       json.RawMessage(`{"payment_id":"pay_abc","status":"SUCCEEDED"}`),
	}
	require.NoError(t, pub.Publish(ctx, ev))
	require.NoError(t, pub.Publish(ctx, events.Event{ID: "evt_r_1", Type: events.RefundFailed}),
		"an event nobody subscribed to is confirmed too")

	d := getOne(t, ch, queue)
	require.Equal(t, "evt_abc_003", d.MessageId, "message_id is the stable event id")
	require.Equal(t, events.PaymentSucceeded, d.RoutingKey)
	require.Equal(t, uint8(amqp.Persistent), d.DeliveryMode)
	require.Equal(t, "application/json", d.ContentType)
	var got events.Event
	require.NoError(t, json.Unmarshal(d.Body, &got))
	require.Equal(t, ev.ID, got.ID)
	require.Equal(t, ev.Type, got.Type)
	require.JSONEq(t, string(ev.Data), string(got.Data))
	require.True(t, ev.OccurredAt.Equal(got.OccurredAt))

	// A consumer gives up on the message: it must land in the dead-letter queue.
	require.NoError(t, d.Reject(false))
	dead := getOne(t, ch, cfg.DeadLetterQueue)
	require.Equal(t, "evt_abc_003", dead.MessageId)
	require.Equal(t, events.PaymentSucceeded, dead.RoutingKey)
	require.Contains(t, dead.Headers, "x-death")
	require.NoError(t, dead.Ack(false))

	_, ok, err := ch.Get(queue, false)
	require.NoError(t, err)
	require.False(t, ok, "the refund event was not routed to the payment queue")
}

func TestPublishNackIsAnError(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t, amqpURL())
	pub, err := events.NewRabbit(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = pub.Close() })
	ch := consumerChannel(t)
	// A full queue that refuses new messages makes the broker nack them.
	declareTestQueue(t, ch, cfg, []string{"#"}, amqp.Table{"x-max-length": int32(1), "x-overflow": "reject-publish"})

	require.NoError(t, pub.Publish(ctx, events.Event{ID: "evt_1", Type: events.PaymentFailed}))
	err = pub.Publish(ctx, events.Event{ID: "evt_2", Type: events.PaymentFailed})
	require.ErrorIs(t, err, events.ErrNacked)
}

func TestUnreachableBrokerFails(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	_, err = events.NewRabbit(context.Background(), events.Config{URL: "amqp://guest:guest@" + addr + "/", DialTimeout: time.Second})
	require.Error(t, err)
	require.NotContains(t, err.Error(), "guest:guest", "the URL's password is never echoed")
}

// proxy forwards TCP connections to the broker; cut breaks them all (the broker "goes away"),
// and while down it refuses new ones.
type proxy struct {
	ln       net.Listener
	target   string
	down     atomic.Bool
	accepted atomic.Int32
	mu       sync.Mutex
	conns    []net.Conn
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &proxy{ln: ln, target: target}
	t.Cleanup(func() { _ = ln.Close(); p.cut() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if p.down.Load() {
				_ = c.Close()
				continue
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				_ = c.Close()
				continue
			}
			p.accepted.Add(1)
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); _ = up.Close() }()
			go func() { _, _ = io.Copy(c, up); _ = c.Close() }()
		}
	}()
	return p
}

func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}

func TestReconnectsAfterBrokerLoss(t *testing.T) {
	ctx := context.Background()
	u, err := url.Parse(amqpURL())
	require.NoError(t, err)
	px := startProxy(t, u.Host)
	viaProxy := *u
	viaProxy.Host = px.ln.Addr().String()
	cfg := testConfig(t, viaProxy.String())
	pub, err := events.NewRabbit(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = pub.Close() })
	ch := consumerChannel(t)
	queue := declareTestQueue(t, ch, cfg, []string{"#"}, nil)

	require.NoError(t, pub.Publish(ctx, events.Event{ID: "evt_before", Type: events.PaymentSucceeded}))

	// The broker goes away and stays away for a while: publishing fails, promptly.
	px.down.Store(true)
	px.cut()
	require.Eventually(t, func() bool {
		return pub.Publish(ctx, events.Event{ID: "evt_during", Type: events.PaymentSucceeded}) != nil
	}, 10*time.Second, 50*time.Millisecond)

	// It comes back: the publisher connects again by itself.
	px.down.Store(false)
	require.Eventually(t, func() bool {
		return pub.Publish(ctx, events.Event{ID: "evt_after", Type: events.PaymentSucceeded}) == nil
	}, 10*time.Second, 50*time.Millisecond)
	require.GreaterOrEqual(t, px.accepted.Load(), int32(2), "a new connection was made")

	seen := map[string]bool{}
	for !seen["evt_after"] {
		d := getOne(t, ch, queue)
		seen[d.MessageId] = true
		require.NoError(t, d.Ack(false))
	}
	require.True(t, seen["evt_before"])
}

func TestNoBroker(t *testing.T) {
	require.NoError(t, events.NoBroker{}.Publish(context.Background(), events.Event{ID: "evt_1", Type: events.PaymentFailed}))
	var _ events.Publisher = events.NoBroker{}
	var _ events.Publisher = (*events.Rabbit)(nil)
}

// Activities publish from many goroutines at once through one publisher.
func TestConcurrentPublishes(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t, amqpURL())
	pub, err := events.NewRabbit(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = pub.Close() })
	ch := consumerChannel(t)
	queue := declareTestQueue(t, ch, cfg, []string{"payment.*"}, nil)

	const n = 50
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = pub.Publish(ctx, events.Event{ID: "evt_c_" + string(rune('A'+i)), Type: events.PaymentSucceeded})
		}()
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool {
		q, err := ch.QueueDeclarePassive(queue, true, false, false, false, amqp.Table{"x-dead-letter-exchange": cfg.DeadLetterExchange})
		return err == nil && q.Messages == n
	}, 5*time.Second, 20*time.Millisecond, "every confirmed event is in the queue")
}

// Issue 11, Low: a worker whose broker is down when it starts keeps trying to reach it instead
// of exiting; meanwhile publishing fails (the publishing activities retry) and nothing else
// waits for the broker.
func TestOpenRabbitKeepsTryingUntilTheBrokerIsUp(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	u, err := url.Parse(amqpURL())
	require.NoError(t, err)
	px := startProxy(t, u.Host)
	px.down.Store(true)
	viaProxy := *u
	viaProxy.Host = px.ln.Addr().String()
	cfg := testConfig(t, viaProxy.String())

	pub, err := events.OpenRabbit(cfg)
	require.NoError(t, err, "an unreachable broker is no reason not to start")
	t.Cleanup(func() { _ = pub.Close() })
	connected := make(chan error, 1)
	go func() { connected <- pub.Connect(ctx) }()
	select {
	case err := <-connected:
		t.Fatalf("Connect gave up while the broker was down: %v", err)
	case <-time.After(1500 * time.Millisecond):
	}
	require.Error(t, pub.Publish(ctx, events.Event{ID: "evt_down", Type: events.PaymentSucceeded}))

	px.down.Store(false)
	select {
	case err := <-connected:
		require.NoError(t, err)
	case <-time.After(20 * time.Second):
		t.Fatal("Connect did not connect once the broker was up")
	}
	ch := consumerChannel(t)
	queue := declareTestQueue(t, ch, cfg, []string{"#"}, nil)
	require.NoError(t, pub.Publish(ctx, events.Event{ID: "evt_up", Type: events.PaymentSucceeded}))
	require.Equal(t, "evt_up", getOne(t, ch, queue).MessageId)

	_, err = events.OpenRabbit(events.Config{URL: ""})
	require.Error(t, err, "a URL is still required")
}
