package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	"paysaga"
	"paysaga/events"
	"paysaga/internal/app"
)

// startConsumers runs the notification consumer (and the alert consumer when webhook is set)
// on queues of the test's own, which the broker deletes a minute after the test.
func startConsumers(t *testing.T, webhook string) app.ConsumerOptions {
	t.Helper()
	suffix := strings.ToLower(paysaga.NewID(".e2e-"))
	o := app.ConsumerOptions{
		NotificationsQueue: app.NotificationsQueue + suffix,
		AlertsQueue:        app.AlertsQueue + suffix,
		QueueArgs:          amqp.Table{"x-expires": int32(60_000)},
		AlertWebhookURL:    webhook,
		MaxAttempts:        3,
		Backoff:            50 * time.Millisecond,
		MaxBackoff:         200 * time.Millisecond,
	}
	n, err := env.StartNotifications(context.Background(), o)
	require.NoError(t, err)
	t.Cleanup(n.Stop)
	return o
}

// apiInstance is one more API process on the stack, with a notification hub of its own.
func apiInstance(t *testing.T) string {
	t.Helper()
	srv, closeHub, err := env.NotificationAPI(context.Background())
	require.NoError(t, err)
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	t.Cleanup(closeHub) // runs first: ends the streams the server would wait for
	return hs.URL
}

// notification is one SSE event of a stream, decoded.
type notification struct {
	SSEID   string
	Event   string
	EventID string          `json:"event_id"`
	Type    string          `json:"type"`
	Payment paysaga.Payment `json:"data"`
}

type stream struct {
	cancel context.CancelFunc
	events chan notification
}

// openStream opens GET /v1/notifications/stream and returns once the server answered 200
// (the stream is subscribed by then).
func openStream(t *testing.T, base string, u user, lastEventID string) *stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/notifications/stream", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+u.Token)
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		cancel()
		t.Fatalf("stream: %d %s", resp.StatusCode, b)
	}
	require.Equal(t, "text/event-stream; charset=utf-8", resp.Header.Get("Content-Type"))
	s := &stream{cancel: cancel, events: make(chan notification, 100)}
	t.Cleanup(cancel)
	go func() {
		defer resp.Body.Close()
		defer close(s.events)
		sc := bufio.NewScanner(resp.Body)
		var n notification
		for sc.Scan() {
			name, value, _ := strings.Cut(sc.Text(), ": ")
			switch name {
			case "id":
				n.SSEID = value
			case "event":
				n.Event = value
			case "data":
				if json.Unmarshal([]byte(value), &n) != nil {
					n.Type = "undecodable: " + value
				}
			case "":
				if n.SSEID != "" {
					s.events <- n
				}
				n = notification{}
			}
		}
	}()
	return s
}

// next is the stream's next payment notification. Others are skipped: a customer's stream
// also carries account.registered, published when the registration workflow ends, which may
// be after the test's account was answered 201 and its stream opened.
func (s *stream) next(t *testing.T) notification {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case n, ok := <-s.events:
			require.True(t, ok, "the stream ended")
			if strings.HasPrefix(n.Type, "payment.") {
				return n
			}
		case <-timeout:
			t.Fatal("no payment notification within 30s")
			return notification{}
		}
	}
}

// payOK pays and returns the payment id, requiring the given final status.
func payOK(t *testing.T, c user, acct bankAccount, m user, amount int64, want paysaga.PaymentStatus) string {
	t.Helper()
	a := pay(t, c, acct, m, amount, paysaga.NewID("key_"))
	p := a.Body
	if a.Status == http.StatusPaymentRequired {
		p, _ = a.Body["payment"].(map[string]any)
	}
	require.Equal(t, string(want), p["status"], "%d %s", a.Status, a.Raw)
	return p["id"].(string)
}

// brokerOrder reads the broker's payment events until it has seen every one of ids, and
// returns them in the order the broker delivered them.
func brokerOrder(t *testing.T, q *queue, ids ...string) []string {
	t.Helper()
	var order []string
	for len(order) < len(ids) {
		d := q.await(t, func(d amqp.Delivery) bool {
			for _, id := range ids {
				if containsID(d.Body, id) {
					return true
				}
			}
			return false
		})
		for _, id := range ids {
			if containsID(d.Body, id) {
				order = append(order, id)
			}
		}
	}
	return order
}

func TestNotificationsEachCustomerSeesOwnPaymentsInOrder(t *testing.T) {
	startConsumers(t, "")
	inst1, inst2 := apiInstance(t), apiInstance(t)
	broker := consume(t, "payment.*")
	c1, c2, m := newUser(t, paysaga.RoleCustomer), newUser(t, paysaga.RoleCustomer), newUser(t, paysaga.RoleMerchant)
	a1, a2 := seedAccount(t, c1, 100_000), seedAccount(t, c2, 100_000)

	// Each customer on another API instance: the notification must find its way there.
	s1 := openStream(t, inst1, c1, "")
	s2 := openStream(t, inst2, c2, "")

	p1 := payOK(t, c1, a1, m, 10_000, paysaga.PaymentSucceeded)
	q1 := payOK(t, c2, a2, m, 30_000, paysaga.PaymentSucceeded)
	p2 := payOK(t, c1, a1, m, 500_000, paysaga.PaymentFailed) // more than the balance: declined
	p3 := payOK(t, c1, a1, m, 20_000, paysaga.PaymentSucceeded)
	status := map[string]string{p1: "payment.succeeded", p2: "payment.failed", p3: "payment.succeeded"}

	want := brokerOrder(t, broker, p1, p2, p3)
	var got []notification
	for range want {
		got = append(got, s1.next(t))
	}
	for i, n := range got {
		require.Equal(t, want[i], n.Payment.ID, "the customer's payments, in the order they were published")
		require.Equal(t, c1.ID, n.Payment.CustomerID)
		require.Equal(t, status[n.Payment.ID], n.Type)
		require.Equal(t, n.Type, n.Event)
		require.NotEmpty(t, n.EventID)
	}
	n := s2.next(t)
	require.Equal(t, q1, n.Payment.ID)
	require.Equal(t, c2.ID, n.Payment.CustomerID)

	// Nothing of anyone else's comes in between: each customer's next notification is their
	// next payment.
	q2 := payOK(t, c2, a2, m, 1_000, paysaga.PaymentSucceeded)
	p4 := payOK(t, c1, a1, m, 1_000, paysaga.PaymentSucceeded)
	require.Equal(t, q2, s2.next(t).Payment.ID)
	last := s1.next(t)
	require.Equal(t, p4, last.Payment.ID)

	// c1 goes away; two payments happen meanwhile and are in the log before c1 is back.
	s1.cancel()
	p5 := payOK(t, c1, a1, m, 2_000, paysaga.PaymentSucceeded)
	p6 := payOK(t, c1, a1, m, 900_000, paysaga.PaymentFailed)
	require.Eventually(t, func() bool {
		msgs, err := env.Parts.Redis.XRange(context.Background(), "paysaga:notify:"+c1.ID+":log", "-", "+").Result()
		require.NoError(t, err)
		return len(msgs) > 0 && strings.Contains(msgs[len(msgs)-1].Values["n"].(string), p6)
	}, 30*time.Second, 20*time.Millisecond)

	// Back, on the other instance, with the last id it saw: it gets exactly what it missed.
	back := openStream(t, inst2, c1, last.SSEID)
	require.Equal(t, p5, back.next(t).Payment.ID)
	missed := back.next(t)
	require.Equal(t, p6, missed.Payment.ID)
	require.Equal(t, "payment.failed", missed.Type)
	require.Equal(t, "E1001", missed.Payment.FailureCode)
	// And live from there on.
	p7 := payOK(t, c1, a1, m, 3_000, paysaga.PaymentSucceeded)
	require.Equal(t, p7, back.next(t).Payment.ID)
}

// webhook is a local incoming-webhook receiver that can be down (503).
type webhook struct {
	mu       sync.Mutex
	down     bool
	attempts map[string]int // payment id -> posts mentioning it
	bodies   map[string]string
}

func newWebhook(t *testing.T) (*webhook, string) {
	t.Helper()
	w := &webhook{attempts: map[string]int{}, bodies: map[string]string{}}
	srv := httptest.NewServer(w)
	t.Cleanup(srv.Close)
	return w, srv.URL + "/services/T0000/B0000/e2e-webhook-token"
}

func (w *webhook) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	var p struct {
		Text string `json:"text"`
	}
	_ = json.Unmarshal(b, &p)
	w.mu.Lock()
	defer w.mu.Unlock()
	// The alert names its payment in the text: "Payment failed: pay_…, …".
	for _, f := range strings.FieldsFunc(p.Text, func(r rune) bool { return r == ' ' || r == ',' }) {
		if strings.HasPrefix(f, paysaga.PrefixPayment) {
			w.attempts[f]++
			w.bodies[f] = string(b)
		}
	}
	if w.down {
		rw.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	_, _ = rw.Write([]byte("ok"))
}

func (w *webhook) seen(id string) (int, string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.attempts[id], w.bodies[id]
}

func (w *webhook) setDown(down bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.down = down
}

func TestAlertForDeclinedPayment(t *testing.T) {
	hook, url := newWebhook(t)
	startConsumers(t, url)
	c, m := newUser(t, paysaga.RoleCustomer), newUser(t, paysaga.RoleMerchant)
	acct := seedAccount(t, c, 1_000)

	id := payOK(t, c, acct, m, 5_000, paysaga.PaymentFailed)
	var body string
	require.Eventually(t, func() bool {
		var n int
		n, body = hook.seen(id)
		return n == 1
	}, 30*time.Second, 20*time.Millisecond, "the alert reaches the webhook")
	require.Contains(t, body, "Payment failed")
	require.Contains(t, body, "E1001")
	require.Contains(t, body, "5,000 KRW")
	require.Contains(t, body, c.ID)
	require.NotContains(t, body, acct.Acn.Acno, "never an account number")
	fin, err := env.Parts.DB.GetAccount(context.Background(), acct.ID)
	require.NoError(t, err)
	require.NotContains(t, body, fin.FinAccount, "never a fin account")
}

func TestAlertUndeliverableIsDeadLetteredAndNothingStops(t *testing.T) {
	hook, url := newWebhook(t)
	hook.setDown(true)
	// What the broker dead-letters, as an operator would look at it.
	dead := deadLetters(t)
	o := startConsumers(t, url)
	inst := apiInstance(t)
	c, m := newUser(t, paysaga.RoleCustomer), newUser(t, paysaga.RoleMerchant)
	acct := seedAccount(t, c, 10_000)
	s := openStream(t, inst, c, "")

	failed := payOK(t, c, acct, m, 50_000, paysaga.PaymentFailed)
	d := dead.await(t, func(d amqp.Delivery) bool { return containsID(d.Body, failed) })
	require.Equal(t, "payment.failed", d.RoutingKey)
	deaths, _ := d.Headers["x-death"].([]any)
	require.NotEmpty(t, deaths)
	death := deaths[0].(amqp.Table)
	require.Equal(t, o.AlertsQueue, death["queue"], "dead-lettered by the alert consumer")
	require.Equal(t, "rejected", death["reason"])
	n, _ := hook.seen(failed)
	require.Equal(t, 3, n, "tried MaxAttempts times before giving up")

	// Nothing else stopped: the customer heard of it, payments go on and are heard of too…
	require.Equal(t, failed, s.next(t).Payment.ID)
	ok := payOK(t, c, acct, m, 1_000, paysaga.PaymentSucceeded)
	require.Equal(t, ok, s.next(t).Payment.ID)

	// …and once the receiver is back, the next alert is delivered, while the dead-lettered one
	// is not tried again.
	hook.setDown(false)
	later := payOK(t, c, acct, m, 50_000, paysaga.PaymentFailed)
	require.Eventually(t, func() bool { n, _ := hook.seen(later); return n == 1 }, 30*time.Second, 20*time.Millisecond)
	n, _ = hook.seen(failed)
	require.Equal(t, 3, n)
}

// deadLetters is a temporary queue on the dead-letter exchange: it receives a copy of every
// dead letter, which stays in the dead-letter queue for operators.
func deadLetters(t *testing.T) *queue {
	t.Helper()
	conn, err := amqp.Dial(env.amqp)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	ch, err := conn.Channel()
	require.NoError(t, err)
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	require.NoError(t, err)
	require.NoError(t, ch.QueueBind(q.Name, "#", events.DefaultDeadLetterExchange, false, nil))
	d, err := ch.Consume(q.Name, "", true, true, false, false, nil)
	require.NoError(t, err)
	return &queue{deliveries: d}
}
