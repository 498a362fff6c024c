package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"paysaga"
	"paysaga/notify"
)

// NotificationHub opens a user's stream of notifications (*notify.Hub).
type NotificationHub interface {
	Open(ctx context.Context, userID, lastEventID string) (*notify.Stream, error)
}

// NotificationDeps configures GET /v1/notifications/stream.
type NotificationDeps struct {
	Hub NotificationHub
	// Heartbeat is how often a comment line is sent on a quiet stream (default 15s), so that
	// proxies keep it open and clients can tell a dead one.
	Heartbeat time.Duration
	// Retry is the reconnection delay the stream suggests to clients (default 3s).
	Retry time.Duration
}

type notificationHandlers struct {
	NotificationDeps
}

// registerNotifications adds the notification routes to the authenticated /v1 group.
func (s *Server) registerNotifications(d NotificationDeps) {
	if d.Heartbeat <= 0 {
		d.Heartbeat = 15 * time.Second
	}
	if d.Retry <= 0 {
		d.Retry = 3 * time.Second
	}
	h := &notificationHandlers{d}
	s.v1.GET("/notifications/stream", h.available, h.stream)
}

func (h *notificationHandlers) available(c *gin.Context) {
	if h.Hub == nil {
		Problem(c, paysaga.Errorf(paysaga.EUNAVAILABLE, "notifications are not available on this server"))
	}
}

// stream serves the caller's notifications as Server-Sent Events: `id:` (send it back as
// Last-Event-ID to resume), `event:` (the event type) and `data:` (the notification's JSON),
// with comment lines as heartbeats. The answer lasts until the client goes or the server
// shuts down.
func (h *notificationHandlers) stream(c *gin.Context) {
	ctx := c.Request.Context()
	last := c.GetHeader("Last-Event-ID")
	if last == "" {
		// EventSource cannot set headers on its first connection; a client that stored the id
		// itself passes it here.
		last = c.Query("last_event_id")
	}
	st, err := h.Hub.Open(ctx, UserFrom(c).UserID, last)
	if err != nil {
		if errors.Is(err, notify.ErrTooManyStreams) {
			err = WithRetryAfter(err, h.Retry)
		}
		Problem(c, err)
		return
	}
	defer st.Close()

	w := c.Writer
	rc := http.NewResponseController(w)
	hdr := w.Header()
	hdr.Set("Content-Type", "text/event-stream; charset=utf-8")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Accel-Buffering", "no") // nginx would otherwise hold the events back
	w.WriteHeader(http.StatusOK)
	// A stalled client must not hold the handler forever: every write has a deadline.
	write := func(s string) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(2*h.Heartbeat + 10*time.Second))
		if _, err := w.WriteString(s); err != nil {
			return false
		}
		w.Flush()
		return true
	}
	if !write("retry: " + strconv.FormatInt(h.Retry.Milliseconds(), 10) + "\n: connected\n\n") {
		return
	}
	heartbeat := time.NewTicker(h.Heartbeat)
	defer heartbeat.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case n, ok := <-st.C():
			if !ok {
				return // the server is shutting down; the client reconnects elsewhere
			}
			if !write(sseEvent(n)) {
				return
			}
		case <-heartbeat.C:
			if !write(": heartbeat\n\n") {
				return
			}
		}
	}
}

func sseEvent(n notify.Notification) string {
	data, _ := json.Marshal(n) // a RawMessage that was valid JSON when stored
	var b strings.Builder
	b.WriteString("id: " + oneLine(n.ID) + "\n")
	b.WriteString("event: " + oneLine(n.Type) + "\n")
	b.WriteString("data: ")
	b.Write(data)
	b.WriteString("\n\n")
	return b.String()
}

// oneLine keeps a field on its line: a newline would end it and start another.
func oneLine(s string) string { return strings.NewReplacer("\r", "", "\n", "").Replace(s) }
