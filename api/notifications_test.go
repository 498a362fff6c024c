package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"paysaga"
	"paysaga/api"
	"paysaga/events"
	"paysaga/notify"
)

// sseFrame is one Server-Sent Events block: its fields, or a comment.
type sseFrame struct {
	ID, Event, Data string
	Comment         string
	Retry           string
}

// sseClient reads a stream frame by frame.
type sseClient struct {
	resp   *http.Response
	frames chan sseFrame
}

func openSSE(t *testing.T, url, token string, header ...string) (*http.Response, *sseClient) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/v1/notifications/stream", nil)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { cancel(); _ = resp.Body.Close() })
	c := &sseClient{resp: resp, frames: make(chan sseFrame, 100)}
	if resp.StatusCode != http.StatusOK {
		return resp, c
	}
	go func() {
		defer close(c.frames)
		sc := bufio.NewScanner(resp.Body)
		var f sseFrame
		var any bool
		for sc.Scan() {
			line := sc.Text()
			if line == "" {
				if any {
					c.frames <- f
				}
				f, any = sseFrame{}, false
				continue
			}
			any = true
			name, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch name {
			case "":
				f.Comment = value
			case "id":
				f.ID = value
			case "event":
				f.Event = value
			case "data":
				f.Data = value
			case "retry":
				f.Retry = value
			}
		}
	}()
	return resp, c
}

// next returns the next frame that is not a comment (heartbeats skipped).
func (c *sseClient) next(t *testing.T) sseFrame {
	t.Helper()
	for {
		select {
		case f, ok := <-c.frames:
			require.True(t, ok, "the stream ended")
			if f.ID == "" && f.Event == "" && f.Data == "" {
				continue
			}
			return f
		case <-time.After(5 * time.Second):
			t.Fatal("no event within 5s")
		}
	}
}

func notifyTestRedis(t *testing.T) *redis.Client {
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

type notifyEnv struct {
	*testEnv
	url      string
	notifier *notify.Notifier
}

func newNotifyEnv(t *testing.T, heartbeat time.Duration) *notifyEnv {
	t.Helper()
	rdb := notifyTestRedis(t)
	cfg := notify.Config{Prefix: "paysaga:test:" + paysaga.NewID("") + ":"}
	hub, err := notify.NewHub(context.Background(), rdb, notify.HubConfig{Config: cfg, MaxStreams: 2})
	require.NoError(t, err)
	env := newTestEnv(t, func(d *api.Deps) {
		d.Notifications = api.NotificationDeps{Hub: hub, Heartbeat: heartbeat}
	})
	srv := httptest.NewServer(env.srv)
	// The server is closed after the hub, whose closing ends the streams it would wait for.
	t.Cleanup(srv.Close)
	t.Cleanup(func() { _ = hub.Close() })
	return &notifyEnv{testEnv: env, url: srv.URL, notifier: notify.NewNotifier(rdb, cfg)}
}

func (e *notifyEnv) notify(t *testing.T, customer string, status paysaga.PaymentStatus) events.Event {
	t.Helper()
	data, _ := json.Marshal(paysaga.Payment{ID: paysaga.NewID(paysaga.PrefixPayment), CustomerID: customer, Amount: 1000, Status: status})
	ev := events.Event{ID: paysaga.NewID("evt_"), Type: "payment." + strings.ToLower(string(status)), OccurredAt: time.Now().UTC(), Data: data}
	require.NoError(t, e.notifier.Notify(context.Background(), ev))
	return ev
}

func TestNotificationStream(t *testing.T) {
	e := newNotifyEnv(t, 20*time.Millisecond)
	u, token := e.auth.addUser("c@example.com", "pw", paysaga.RoleCustomer)
	other, _ := e.auth.addUser("o@example.com", "pw", paysaga.RoleCustomer)

	resp, s := openSSE(t, e.url, token)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/event-stream; charset=utf-8", resp.Header.Get("Content-Type"))
	require.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
	first := <-s.frames
	require.Equal(t, "3000", first.Retry, "the stream opens with a retry hint")

	e.notify(t, other.ID, paysaga.PaymentSucceeded) // someone else's
	ev := e.notify(t, u.ID, paysaga.PaymentFailed)
	f := s.next(t)
	require.NotEmpty(t, f.ID)
	require.Equal(t, "payment.failed", f.Event)
	var n struct {
		EventID string          `json:"event_id"`
		Type    string          `json:"type"`
		Data    paysaga.Payment `json:"data"`
	}
	require.NoError(t, json.Unmarshal([]byte(f.Data), &n))
	require.Equal(t, ev.ID, n.EventID)
	require.Equal(t, u.ID, n.Data.CustomerID)

	// Quiet: heartbeats, as comments.
	require.Eventually(t, func() bool {
		select {
		case f := <-s.frames:
			return f.Comment == "heartbeat"
		default:
			return false
		}
	}, 5*time.Second, 5*time.Millisecond)

	// Reconnecting with Last-Event-ID gets what was missed.
	missed := e.notify(t, u.ID, paysaga.PaymentSucceeded)
	require.Equal(t, missed.ID, eventID(t, s.next(t)))
	_, again := openSSE(t, e.url, token, "Last-Event-ID", f.ID)
	require.Equal(t, missed.ID, eventID(t, again.next(t)))
}

func eventID(t *testing.T, f sseFrame) string {
	t.Helper()
	var n struct {
		EventID string `json:"event_id"`
	}
	require.NoError(t, json.Unmarshal([]byte(f.Data), &n))
	return n.EventID
}

func TestNotificationStreamLimitAndAuth(t *testing.T) {
	e := newNotifyEnv(t, time.Second)
	_, token := e.auth.addUser("c@example.com", "pw", paysaga.RoleCustomer)

	resp, _ := openSSE(t, e.url, "")
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)

	for range 2 {
		resp, _ := openSSE(t, e.url, token)
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
	resp, _ = openSSE(t, e.url, token)
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	require.Equal(t, api.ProblemContentType, resp.Header.Get("Content-Type"))
	require.Equal(t, "3", resp.Header.Get("Retry-After"))
	var p api.ProblemDetails
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&p))
	require.Equal(t, paysaga.ERATELIMITED, p.Code)
}

func TestNotificationStreamUnavailableWithoutHub(t *testing.T) {
	e := newTestEnv(t)
	_, token := e.auth.addUser("c@example.com", "pw", paysaga.RoleCustomer)
	w := e.do(t, req{method: "GET", path: "/v1/notifications/stream", header: map[string]string{"Authorization": "Bearer " + token}})
	require.Equal(t, http.StatusServiceUnavailable, w.Code)
	require.Contains(t, w.Body.String(), `"code":"unavailable"`)
}
