package events_test

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"paysaga"
	"paysaga/events"
)

// testRedis is the Redis of the tests; an unreachable one fails them.
func testRedis(t *testing.T) *redis.Client {
	t.Helper()
	addr := os.Getenv("PAYSAGA_TEST_REDIS_ADDR")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = rdb.Close() })
	require.NoError(t, rdb.Ping(context.Background()).Err(), "Redis must be reachable at PAYSAGA_TEST_REDIS_ADDR")
	return rdb
}

// recorder is a handler that fails as told and records every call.
type recorder struct {
	mu    sync.Mutex
	calls map[string]int
	order []string
	fail  func(ev events.Event, attempt int) error
}

func (r *recorder) handle(_ context.Context, ev events.Event) error {
	r.mu.Lock()
	r.calls[ev.ID]++
	n := r.calls[ev.ID]
	fail := r.fail
	r.mu.Unlock()
	var err error
	if fail != nil {
		err = fail(ev, n)
	}
	if err == nil {
		r.mu.Lock()
		r.order = append(r.order, ev.ID)
		r.mu.Unlock()
	}
	return err
}

func (r *recorder) count(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls[id]
}

func (r *recorder) handled() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.order...)
}

// startConsumer runs a consumer of a fresh queue until the test ends.
func startConsumer(t *testing.T, cfg events.Config, rdb *redis.Client, rec *recorder, maxAttempts int) string {
	t.Helper()
	queue := cfg.Exchange + ".consumer"
	c, err := events.NewConsumer(events.ConsumerConfig{
		Config: cfg, Queue: queue, Patterns: []string{"payment.*"},
		MaxAttempts: maxAttempts, Backoff: 10 * time.Millisecond, MaxBackoff: 40 * time.Millisecond,
		Dedupe: events.RedisDedupe{Client: rdb, Prefix: "paysaga:test:dedupe:" + queue + ":", TTL: time.Minute},
	}, rec.handle)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		ch := consumerChannel(t)
		_, _ = ch.QueueDelete(queue, false, false, false)
	})
	select {
	case <-c.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("consumer never became ready")
	}
	return queue
}

func TestConsumerHandlesOnceInOrderAndDropsDuplicates(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t, amqpURL())
	pub, err := events.NewRabbit(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = pub.Close() })
	rec := &recorder{calls: map[string]int{}}
	startConsumer(t, cfg, testRedis(t), rec, 3)

	ids := []string{paysaga.NewID("evt_"), paysaga.NewID("evt_"), paysaga.NewID("evt_")}
	for _, id := range ids {
		require.NoError(t, pub.Publish(ctx, events.Event{ID: id, Type: events.PaymentSucceeded, OccurredAt: time.Now()}))
	}
	// At-least-once: the same event published again (a retried activity) must not be handled
	// twice.
	require.NoError(t, pub.Publish(ctx, events.Event{ID: ids[0], Type: events.PaymentSucceeded, OccurredAt: time.Now()}))
	last := paysaga.NewID("evt_")
	require.NoError(t, pub.Publish(ctx, events.Event{ID: last, Type: events.PaymentFailed, OccurredAt: time.Now()}))

	require.Eventually(t, func() bool { return rec.count(last) == 1 }, 10*time.Second, 10*time.Millisecond)
	require.Equal(t, append(ids, last), rec.handled(), "each event once, in the order published")
	require.Equal(t, 1, rec.count(ids[0]), "the duplicate was dropped")
}

func TestConsumerRetriesThenDeadLettersAndGoesOn(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t, amqpURL())
	pub, err := events.NewRabbit(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = pub.Close() })
	poison, flaky, bad, fine := paysaga.NewID("evt_"), paysaga.NewID("evt_"), paysaga.NewID("evt_"), paysaga.NewID("evt_")
	rec := &recorder{calls: map[string]int{}, fail: func(ev events.Event, attempt int) error {
		switch {
		case ev.ID == poison:
			return errors.New("receiver down")
		case ev.ID == flaky && attempt < 3:
			return errors.New("hiccup")
		case ev.ID == bad:
			return events.Permanent(errors.New("400 invalid payload"))
		}
		return nil
	}}
	rdb := testRedis(t)
	queue := startConsumer(t, cfg, rdb, rec, 4)
	ch := consumerChannel(t)

	for _, id := range []string{poison, flaky, bad, fine} {
		require.NoError(t, pub.Publish(ctx, events.Event{ID: id, Type: events.PaymentFailed, OccurredAt: time.Now()}))
	}
	require.Eventually(t, func() bool { return rec.count(fine) == 1 }, 10*time.Second, 10*time.Millisecond,
		"a poisoned event must not stop the ones after it")
	require.Equal(t, 4, rec.count(poison), "tried MaxAttempts times")
	require.Equal(t, 3, rec.count(flaky), "retried until it worked")
	require.Equal(t, 1, rec.count(bad), "a permanent failure is not retried")

	dead := map[string]amqp.Delivery{}
	for range 2 {
		d := getOne(t, ch, cfg.DeadLetterQueue)
		dead[d.MessageId] = d
		require.NoError(t, d.Ack(false))
	}
	require.Contains(t, dead, poison)
	require.Contains(t, dead, bad)
	deaths, _ := dead[poison].Headers["x-death"].([]any)
	require.NotEmpty(t, deaths)
	require.Equal(t, queue, deaths[0].(amqp.Table)["queue"], "dead-lettered by the consumer's queue")
	_, ok, err := ch.Get(cfg.DeadLetterQueue, false)
	require.NoError(t, err)
	require.False(t, ok, "nothing handled successfully was dead-lettered")

	// A dead-lettered event was released: republished later (an operator's replay), it is
	// handled again rather than dropped as a duplicate; a handled one stays dropped.
	rec.mu.Lock()
	rec.fail = nil
	rec.mu.Unlock()
	require.NoError(t, pub.Publish(ctx, events.Event{ID: poison, Type: events.PaymentFailed, OccurredAt: time.Now()}))
	require.NoError(t, pub.Publish(ctx, events.Event{ID: flaky, Type: events.PaymentFailed, OccurredAt: time.Now()}))
	end := paysaga.NewID("evt_")
	require.NoError(t, pub.Publish(ctx, events.Event{ID: end, Type: events.PaymentFailed, OccurredAt: time.Now()}))
	require.Eventually(t, func() bool { return rec.count(end) == 1 }, 10*time.Second, 10*time.Millisecond)
	require.Equal(t, 5, rec.count(poison))
	require.Equal(t, 3, rec.count(flaky))
}

// A consumer that died while handling an event leaves its claim behind; the event, delivered
// again, is handled anyway instead of waiting for the claim to expire.
func TestConsumerTakesOverAClaimLeftByADeadConsumer(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t, amqpURL())
	pub, err := events.NewRabbit(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = pub.Close() })
	rdb := testRedis(t)
	rec := &recorder{calls: map[string]int{}}
	queue := startConsumer(t, cfg, rdb, rec, 3)

	id := paysaga.NewID("evt_")
	dead := events.RedisDedupe{Client: rdb, Prefix: "paysaga:test:dedupe:" + queue + ":"}
	s, err := dead.Claim(ctx, id)
	require.NoError(t, err)
	require.Equal(t, events.ClaimNew, s)

	require.NoError(t, pub.Publish(ctx, events.Event{ID: id, Type: events.PaymentSucceeded, OccurredAt: time.Now()}))
	require.Eventually(t, func() bool { return rec.count(id) == 1 }, 10*time.Second, 10*time.Millisecond)
	s, err = dead.Claim(ctx, id)
	require.NoError(t, err)
	require.Equal(t, events.ClaimDone, s)
}

func TestRedisDedupe(t *testing.T) {
	ctx := context.Background()
	d := events.RedisDedupe{Client: testRedis(t), Prefix: "paysaga:test:dedupe:" + paysaga.NewID("") + ":", TTL: time.Minute}
	id := paysaga.NewID("evt_")

	s, err := d.Claim(ctx, id)
	require.NoError(t, err)
	require.Equal(t, events.ClaimNew, s)
	s, err = d.Claim(ctx, id)
	require.NoError(t, err)
	require.Equal(t, events.ClaimBusy, s, "claimed by someone handling it now")

	require.NoError(t, d.Release(ctx, id))
	s, err = d.Claim(ctx, id)
	require.NoError(t, err)
	require.Equal(t, events.ClaimNew, s, "released: the next delivery handles it")

	require.NoError(t, d.Done(ctx, id))
	require.NoError(t, d.Release(ctx, id), "releasing never forgets a handled event")
	s, err = d.Claim(ctx, id)
	require.NoError(t, err)
	require.Equal(t, events.ClaimDone, s)
}
