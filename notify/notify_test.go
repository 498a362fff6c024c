package notify_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"paysaga"
	"paysaga/events"
	"paysaga/notify"
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

// testConfig gives each test keys of its own.
func testConfig() notify.Config {
	return notify.Config{Prefix: "paysaga:test:" + paysaga.NewID("") + ":", Window: time.Minute}
}

func newHub(t *testing.T, rdb redis.UniversalClient, cfg notify.HubConfig) *notify.Hub {
	t.Helper()
	h, err := notify.NewHub(context.Background(), rdb, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = h.Close() })
	return h
}

func open(t *testing.T, h *notify.Hub, user, last string) *notify.Stream {
	t.Helper()
	s, err := h.Open(context.Background(), user, last)
	require.NoError(t, err)
	t.Cleanup(s.Close)
	return s
}

// paymentEvent is an event as PublishPaymentEvent sends it: the payment's JSON.
func paymentEvent(customer, merchant string, status paysaga.PaymentStatus) events.Event {
	p := paysaga.Payment{ID: paysaga.NewID(paysaga.PrefixPayment), CustomerID: customer, MerchantID: merchant,
		AccountID: "acct_x", Amount: 5_000, Currency: "KRW", Status: status}
	data, _ := json.Marshal(p)
	return events.Event{ID: paysaga.NewID("evt_"), Type: "payment." + string(status), OccurredAt: time.Now().UTC(), Data: data}
}

// next waits for the stream's next notification.
func next(t *testing.T, s *notify.Stream) notify.Notification {
	t.Helper()
	select {
	case n, ok := <-s.C():
		require.True(t, ok, "the stream ended")
		return n
	case <-time.After(5 * time.Second):
		t.Fatal("no notification within 5s")
	}
	return notify.Notification{}
}

// expect reads the stream's next notifications and checks they are exactly these events.
func expect(t *testing.T, s *notify.Stream, evs ...events.Event) []notify.Notification {
	t.Helper()
	var got []notify.Notification
	for _, ev := range evs {
		n := next(t, s)
		require.Equal(t, ev.ID, n.EventID, "in order, nothing else in between")
		require.Equal(t, ev.Type, n.Type)
		require.JSONEq(t, string(ev.Data), string(n.Data))
		require.NotEmpty(t, n.ID)
		got = append(got, n)
	}
	return got
}

func TestRecipients(t *testing.T) {
	for _, tc := range []struct {
		name string
		data string
		want []string
	}{
		{"payment", `{"id":"pay_1","customer_id":"usr_c","merchant_id":"usr_m","status":"SUCCEEDED"}`, []string{"usr_c", "usr_m"}},
		{"own shop", `{"customer_id":"usr_c","merchant_id":"usr_c"}`, []string{"usr_c"}},
		{"refund carrying its payment", `{"id":"ref_1","payment":{"customer_id":"usr_c","merchant_id":"usr_m"}}`, []string{"usr_c", "usr_m"}},
		{"account", `{"id":"acct_1","owner_id":"usr_o","status":"ACTIVE"}`, []string{"usr_o"}},
		{"nobody", `{"id":"ref_1","payment_id":"pay_1"}`, nil},
		{"not an object", `[1,2]`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, notify.Recipients(events.Event{ID: "evt_1", Type: "x", Data: json.RawMessage(tc.data)}))
		})
	}
}

// Two API instances (hubs) on one Redis: each user's notifications reach their streams
// wherever they are connected, and nobody else's.
func TestTwoHubsFanOutPerUser(t *testing.T) {
	rdb := testRedis(t)
	cfg := testConfig()
	hub1 := newHub(t, rdb, notify.HubConfig{Config: cfg})
	hub2 := newHub(t, testRedis(t), notify.HubConfig{Config: cfg})
	n := notify.NewNotifier(rdb, cfg)
	ctx := context.Background()
	alice, bob, shop := paysaga.NewID("usr_"), paysaga.NewID("usr_"), paysaga.NewID("usr_")

	aliceOn1 := open(t, hub1, alice, "")
	aliceOn2 := open(t, hub2, alice, "")
	bobOn2 := open(t, hub2, bob, "")
	shopOn1 := open(t, hub1, shop, "")

	a1, b1 := paymentEvent(alice, shop, paysaga.PaymentSucceeded), paymentEvent(bob, shop, paysaga.PaymentFailed)
	a2 := paymentEvent(alice, shop, paysaga.PaymentFailed)
	for _, ev := range []events.Event{a1, b1, a2} {
		require.NoError(t, n.Notify(ctx, ev))
	}
	// Republished (at least once): nobody hears of it twice.
	require.NoError(t, n.Notify(ctx, a1))
	aliceEnd, bobEnd := paymentEvent(alice, "", paysaga.PaymentSucceeded), paymentEvent(bob, "", paysaga.PaymentSucceeded)
	require.NoError(t, n.Notify(ctx, aliceEnd))
	require.NoError(t, n.Notify(ctx, bobEnd))

	expect(t, aliceOn1, a1, a2, aliceEnd)
	expect(t, aliceOn2, a1, a2, aliceEnd)
	expect(t, bobOn2, b1, bobEnd)
	expect(t, shopOn1, a1, b1, a2)
}

func TestReplayAfterLastEventID(t *testing.T) {
	rdb := testRedis(t)
	cfg := testConfig()
	hub := newHub(t, rdb, notify.HubConfig{Config: cfg})
	n := notify.NewNotifier(rdb, cfg)
	ctx := context.Background()
	user := paysaga.NewID("usr_")

	first := open(t, hub, user, "")
	e1, e2 := paymentEvent(user, "", paysaga.PaymentSucceeded), paymentEvent(user, "", paysaga.PaymentSucceeded)
	require.NoError(t, n.Notify(ctx, e1))
	require.NoError(t, n.Notify(ctx, e2))
	got := expect(t, first, e1, e2)
	first.Close()
	_, ok := <-first.C()
	require.False(t, ok, "a closed stream's channel ends")

	// Missed while disconnected.
	e3, e4 := paymentEvent(user, "", paysaga.PaymentFailed), paymentEvent(user, "", paysaga.PaymentSucceeded)
	require.NoError(t, n.Notify(ctx, e3))
	require.NoError(t, n.Notify(ctx, e4))

	resumed := open(t, hub, user, got[0].ID)
	expect(t, resumed, e2, e3, e4)
	fresh := open(t, hub, user, "")
	garbage := open(t, hub, user, "not-an-id")
	future := open(t, hub, user, "99999999999999-0")
	e5 := paymentEvent(user, "", paysaga.PaymentSucceeded)
	require.NoError(t, n.Notify(ctx, e5))
	expect(t, resumed, e5)
	expect(t, fresh, e5)   // no Last-Event-ID: from now on
	expect(t, garbage, e5) // an id we never gave out: from now on
	expect(t, future, e5)  // an id from the future: from now on, not never
}

func TestReplayWindow(t *testing.T) {
	rdb := testRedis(t)
	cfg := testConfig()
	hub := newHub(t, rdb, notify.HubConfig{Config: cfg})
	ctx := context.Background()
	user := paysaga.NewID("usr_")

	// A notification older than the window, still in the log (trimming is approximate).
	old := time.Now().Add(-2 * cfg.Window).UnixMilli()
	require.NoError(t, rdb.XAdd(ctx, &redis.XAddArgs{
		Stream: cfg.Prefix + user + ":log", ID: fmt.Sprintf("%d-0", old),
		Values: []string{"n", `{"event_id":"evt_old","type":"payment.succeeded","data":{}}`},
	}).Err())
	s := open(t, hub, user, fmt.Sprintf("%d-0", old-1000))
	ev := paymentEvent(user, "", paysaga.PaymentSucceeded)
	require.NoError(t, notify.NewNotifier(rdb, cfg).Notify(ctx, ev))
	expect(t, s, ev) // and not evt_old first
}

func TestConnectionLimitAcrossHubs(t *testing.T) {
	rdb := testRedis(t)
	cfg := notify.HubConfig{Config: testConfig(), MaxStreams: 2}
	hub1, hub2 := newHub(t, rdb, cfg), newHub(t, rdb, cfg)
	ctx := context.Background()
	user, other := paysaga.NewID("usr_"), paysaga.NewID("usr_")

	s1 := open(t, hub1, user, "")
	open(t, hub2, user, "")
	for _, h := range []*notify.Hub{hub1, hub2} {
		_, err := h.Open(ctx, user, "")
		require.ErrorIs(t, err, notify.ErrTooManyStreams)
		require.Equal(t, paysaga.ERATELIMITED, paysaga.ErrorCode(err))
	}
	open(t, hub1, other, "") // another user is not limited by this one

	s1.Close()
	s3 := open(t, hub2, user, "")
	require.NotNil(t, s3)
	_, err := hub1.Open(ctx, user, "")
	require.ErrorIs(t, err, notify.ErrTooManyStreams)
}

// A client that does not read falls behind the live feed; it then catches up from the log and
// misses nothing.
func TestSlowClientCatchesUpFromTheLog(t *testing.T) {
	rdb := testRedis(t)
	cfg := testConfig()
	hub := newHub(t, rdb, notify.HubConfig{Config: cfg, Buffer: 1})
	n := notify.NewNotifier(rdb, cfg)
	user := paysaga.NewID("usr_")
	s := open(t, hub, user, "")
	var evs []events.Event
	for range 10 {
		ev := paymentEvent(user, "", paysaga.PaymentSucceeded)
		require.NoError(t, n.Notify(context.Background(), ev))
		evs = append(evs, ev)
	}
	expect(t, s, evs...)
}

func TestHubCloseEndsStreams(t *testing.T) {
	rdb := testRedis(t)
	hub, err := notify.NewHub(context.Background(), rdb, notify.HubConfig{Config: testConfig()})
	require.NoError(t, err)
	s, err := hub.Open(context.Background(), paysaga.NewID("usr_"), "")
	require.NoError(t, err)
	require.NoError(t, hub.Close())
	_, ok := <-s.C()
	require.False(t, ok)
	_, err = hub.Open(context.Background(), paysaga.NewID("usr_"), "")
	require.Error(t, err)
}

type failingPublisher struct{ err error }

func (f failingPublisher) Publish(context.Context, events.Event) error { return f.err }

// Without a broker, the publisher itself notifies.
func TestPublisherNotifiesWithoutBroker(t *testing.T) {
	rdb := testRedis(t)
	cfg := testConfig()
	hub := newHub(t, rdb, notify.HubConfig{Config: cfg})
	user := paysaga.NewID("usr_")
	s := open(t, hub, user, "")
	n := notify.NewNotifier(rdb, cfg)

	lost := paymentEvent(user, "", paysaga.PaymentFailed)
	err := notify.Publisher{Next: failingPublisher{errors.New("down")}, Notifier: n}.Publish(context.Background(), lost)
	require.Error(t, err, "not published, not notified: the caller publishes again")

	pub := notify.Publisher{Next: events.NoBroker{}, Notifier: n}
	ev := paymentEvent(user, "", paysaga.PaymentSucceeded)
	require.NoError(t, pub.Publish(context.Background(), ev))
	require.NoError(t, pub.Publish(context.Background(), ev)) // a retried activity
	end := paymentEvent(user, "", paysaga.PaymentSucceeded)
	require.NoError(t, pub.Publish(context.Background(), end))
	expect(t, s, ev, end)
}

// The embedded default runs on an in-process Redis-protocol server: the same flow works there.
func TestOnMiniredis(t *testing.T) {
	mini := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mini.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	cfg := notify.Config{}
	hub1 := newHub(t, rdb, notify.HubConfig{Config: cfg, MaxStreams: 1})
	hub2 := newHub(t, rdb, notify.HubConfig{Config: cfg, MaxStreams: 1})
	n := notify.NewNotifier(rdb, cfg)
	user := paysaga.NewID("usr_")

	s := open(t, hub1, user, "")
	_, err := hub2.Open(context.Background(), user, "")
	require.ErrorIs(t, err, notify.ErrTooManyStreams)
	e1, e2 := paymentEvent(user, "", paysaga.PaymentSucceeded), paymentEvent(user, "", paysaga.PaymentFailed)
	require.NoError(t, n.Notify(context.Background(), e1))
	got := expect(t, s, e1)
	s.Close()
	require.NoError(t, n.Notify(context.Background(), e1))
	require.NoError(t, n.Notify(context.Background(), e2))
	expect(t, open(t, hub2, user, got[0].ID), e2)
}
