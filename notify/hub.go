package notify

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"paysaga"
)

// ErrTooManyStreams is Open's answer when the user already has MaxStreams streams open, on
// this instance or any other.
var ErrTooManyStreams = paysaga.Errorf(paysaga.ERATELIMITED, "too many notification streams are open for this user; close one first")

// HubConfig configures a Hub. Zero values take the defaults.
type HubConfig struct {
	Config
	// MaxStreams is how many streams a user may hold open at once, across every instance
	// (default 5).
	MaxStreams int
	// LeaseTTL is how long an open stream counts against the limit without being refreshed
	// (default 1m; refreshed every third of it): the streams of an instance that died stop
	// counting after it.
	LeaseTTL time.Duration
	// Buffer is how many notifications wait for a slow client before its stream falls back
	// to reading the log (default 64).
	Buffer int
	Logger *slog.Logger
}

func (c HubConfig) withDefaults() HubConfig {
	c.Config = c.Config.withDefaults()
	if c.MaxStreams <= 0 {
		c.MaxStreams = 5
	}
	if c.LeaseTTL <= 0 {
		c.LeaseTTL = time.Minute
	}
	if c.Buffer <= 0 {
		c.Buffer = 64
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Hub holds one API instance's notification streams. It subscribes to a user's channel while
// it holds at least one stream of theirs, and hands each notification to those streams.
type Hub struct {
	rdb  redis.UniversalClient
	cfg  HubConfig
	ps   *redis.PubSub
	done chan struct{}

	mu     sync.Mutex
	users  map[string]*subscription
	closed bool
}

// subscription is the state of one user's channel on this Hub's connection. Redis confirms
// SUBSCRIBE commands in the order they were sent; a stream may only replay the log once its
// channel is confirmed, or a notification published in between would be missed by both.
type subscription struct {
	streams   map[*Stream]struct{}
	sent      int // SUBSCRIBE commands sent
	confirmed int // and confirmed
	waiters   []waiter
}

type waiter struct {
	target int
	ch     chan struct{}
}

// NewHub connects a Hub to Redis. Close it to end its streams.
func NewHub(ctx context.Context, rdb redis.UniversalClient, cfg HubConfig) (*Hub, error) {
	cfg = cfg.withDefaults()
	// The hub's own channel puts the connection in subscribed mode from the start, so that
	// receiving and pinging work before any user connects.
	ps := rdb.Subscribe(ctx, cfg.Prefix+"hub:"+randomID())
	if _, err := ps.Receive(ctx); err != nil {
		_ = ps.Close()
		return nil, fmt.Errorf("notify: subscribe: %w", err)
	}
	h := &Hub{rdb: rdb, cfg: cfg, ps: ps, done: make(chan struct{}), users: map[string]*subscription{}}
	go h.receive()
	return h, nil
}

func (h *Hub) isClosed() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.closed
}

// Close ends every stream of the Hub (their channels close) and its Redis subscription.
func (h *Hub) Close() error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	var streams []*Stream
	for _, sub := range h.users {
		for s := range sub.streams {
			streams = append(streams, s)
		}
	}
	h.mu.Unlock()
	for _, s := range streams {
		s.Close()
	}
	err := h.ps.Close()
	<-h.done
	return err
}

// receive reads the subscription until the Hub closes. go-redis reconnects and subscribes
// again after a broken connection; what was published meanwhile is then read from the logs.
func (h *Hub) receive() {
	defer close(h.done)
	ctx := context.Background()
	lost := false
	for {
		msg, err := h.ps.ReceiveTimeout(ctx, 30*time.Second)
		if err != nil {
			if errors.Is(err, redis.ErrClosed) || h.isClosed() {
				return // Close closed the subscription under us
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				_ = h.ps.Ping(ctx) // keeps the connection honest; the pong is read next
				continue
			}
			if !lost {
				h.cfg.Logger.Warn("notification subscription lost; reconnecting", "error", err)
			}
			lost = true
			time.Sleep(200 * time.Millisecond) // go-redis reconnects on the next receive
			continue
		}
		if lost {
			lost = false
			h.cfg.Logger.Info("notification subscription back; streams catch up from the logs")
			h.resyncAll()
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				h.confirm(strings.TrimPrefix(m.Channel, h.cfg.Prefix))
			}
		case *redis.Message:
			h.dispatch(m)
		}
	}
}

func (h *Hub) confirm(user string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	sub := h.users[user]
	if sub == nil {
		return
	}
	sub.confirmed++
	kept := sub.waiters[:0]
	for _, w := range sub.waiters {
		if w.target <= sub.confirmed {
			close(w.ch)
		} else {
			kept = append(kept, w)
		}
	}
	sub.waiters = kept
	if len(sub.streams) == 0 && sub.confirmed >= sub.sent {
		delete(h.users, user)
	}
}

func (h *Hub) dispatch(m *redis.Message) {
	user := strings.TrimPrefix(m.Channel, h.cfg.Prefix)
	id, body, ok := strings.Cut(m.Payload, "\n")
	if !ok {
		return
	}
	n, err := decode(id, body)
	if err != nil {
		h.cfg.Logger.Warn("undecodable notification dropped", "user_id", user, "error", err)
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if sub := h.users[user]; sub != nil {
		for s := range sub.streams {
			s.offer(n)
		}
	}
}

func (h *Hub) resyncAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, sub := range h.users {
		for s := range sub.streams {
			s.requestResync()
		}
	}
}

// Open opens a stream of userID's notifications: after lastEventID (a Notification.ID the
// client saw) if it is given and still in the replay window, otherwise from now on. It fails
// with ErrTooManyStreams when the user has MaxStreams streams open already. Close the stream
// when the client goes.
func (h *Hub) Open(ctx context.Context, userID, lastEventID string) (*Stream, error) {
	if userID == "" {
		return nil, fmt.Errorf("notify: a stream needs a user")
	}
	s := &Stream{
		hub: h, user: userID, connID: randomID(),
		live: make(chan Notification, h.cfg.Buffer), resync: make(chan struct{}, 1),
		out: make(chan Notification), done: make(chan struct{}),
	}
	ok, err := h.lease(ctx, s)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ErrTooManyStreams
	}
	ready, err := h.add(ctx, s)
	if err != nil {
		s.Close()
		return nil, err
	}
	select {
	case <-ready:
	case <-ctx.Done():
		s.Close()
		return nil, ctx.Err()
	}

	// Where the stream starts: the client's last id, unless it is not a log id or lies beyond
	// the log's end (a client cannot have seen the future), in which case the end.
	tail, err := h.tail(ctx, userID)
	if err != nil {
		s.Close()
		return nil, err
	}
	s.last = tail
	if id, ok := parseID(lastEventID); ok && !tail.less(id) {
		s.last = id
	}
	go s.pump()
	return s, nil
}

// add registers s and subscribes to its user's channel if this is their first stream here. The
// returned channel is closed once Redis confirmed the subscription.
func (h *Hub) add(ctx context.Context, s *Stream) (<-chan struct{}, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, paysaga.Errorf(paysaga.EUNAVAILABLE, "the server is shutting down")
	}
	sub := h.users[s.user]
	if sub == nil {
		sub = &subscription{streams: map[*Stream]struct{}{}}
		h.users[s.user] = sub
	}
	sub.streams[s] = struct{}{}
	if len(sub.streams) == 1 {
		// Subscribing under the lock keeps SUBSCRIBE and UNSUBSCRIBE of one user in order.
		if err := h.ps.Subscribe(ctx, h.cfg.channel(s.user)); err != nil {
			delete(sub.streams, s)
			return nil, fmt.Errorf("notify: subscribe: %w", err)
		}
		sub.sent++
	}
	ready := make(chan struct{})
	if sub.confirmed >= sub.sent {
		close(ready)
	} else {
		sub.waiters = append(sub.waiters, waiter{target: sub.sent, ch: ready})
	}
	return ready, nil
}

func (h *Hub) remove(s *Stream) {
	h.mu.Lock()
	defer h.mu.Unlock()
	sub := h.users[s.user]
	if sub == nil {
		return
	}
	if _, ok := sub.streams[s]; !ok {
		return
	}
	delete(sub.streams, s)
	if len(sub.streams) > 0 {
		return
	}
	if !h.closed {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := h.ps.Unsubscribe(ctx, h.cfg.channel(s.user)); err != nil {
			h.cfg.Logger.Warn("notification channel not unsubscribed", "user_id", s.user, "error", err)
		}
	}
	if sub.confirmed >= sub.sent {
		delete(h.users, s.user)
	}
}

// leaseScript takes (or refreshes) a place among a user's open streams, if there is room.
//
// KEYS: conns. ARGV: now ms, expiry ms, stream id, max streams, ttl ms.
var leaseScript = redis.NewScript(`
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if not redis.call('ZSCORE', KEYS[1], ARGV[3]) and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then
	return 0
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1`)

func (h *Hub) lease(ctx context.Context, s *Stream) (bool, error) {
	now := time.Now()
	n, err := leaseScript.Run(ctx, h.rdb, []string{h.cfg.conns(s.user)},
		now.UnixMilli(), now.Add(h.cfg.LeaseTTL).UnixMilli(), s.connID, h.cfg.MaxStreams, h.cfg.LeaseTTL.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("notify: count streams: %w", err)
	}
	return n == 1, nil
}

func (h *Hub) unlease(s *Stream) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := h.rdb.ZRem(ctx, h.cfg.conns(s.user), s.connID).Err(); err != nil {
		h.cfg.Logger.Warn("closed stream still counted until its lease ends", "user_id", s.user, "error", err)
	}
}

// tail is the id of the last notification in the user's log ("0-0" if empty).
func (h *Hub) tail(ctx context.Context, user string) (logID, error) {
	msgs, err := h.rdb.XRevRangeN(ctx, h.cfg.log(user), "+", "-", 1).Result()
	if err != nil {
		return logID{}, fmt.Errorf("notify: read log: %w", err)
	}
	if len(msgs) == 0 {
		return logID{}, nil
	}
	id, _ := parseID(msgs[0].ID)
	return id, nil
}

// since reads the user's log after id, within the replay window.
func (h *Hub) since(ctx context.Context, user string, after logID) ([]Notification, error) {
	msgs, err := h.rdb.XRangeN(ctx, h.cfg.log(user), "("+after.String(), "+", h.cfg.MaxLen).Result()
	if err != nil {
		return nil, fmt.Errorf("notify: read log: %w", err)
	}
	oldest := uint64(max(0, time.Now().Add(-h.cfg.Window).UnixMilli()))
	var out []Notification
	for _, m := range msgs {
		id, ok := parseID(m.ID)
		body, _ := m.Values["n"].(string)
		if !ok || id.ms < oldest {
			continue // trimming is approximate; the window is not
		}
		n, err := decode(m.ID, body)
		if err != nil {
			continue
		}
		out = append(out, n)
	}
	return out, nil
}

// Stream is one client's stream of notifications.
type Stream struct {
	hub    *Hub
	user   string
	connID string

	live   chan Notification // from the Hub
	resync chan struct{}     // read the log: the live feed missed something
	out    chan Notification // to the client
	done   chan struct{}
	once   sync.Once

	last logID // the last notification handed out (pump only, after Open)
}

// C delivers the notifications, in order and each once. It is closed when the stream ends
// (Close, or the Hub closing).
func (s *Stream) C() <-chan Notification { return s.out }

// Close ends the stream and frees its place under the connection limit.
func (s *Stream) Close() {
	s.once.Do(func() {
		close(s.done)
		s.hub.remove(s)
		s.hub.unlease(s)
	})
}

func (s *Stream) offer(n Notification) {
	select {
	case s.live <- n:
	default:
		// The client is slow: rather than drop or block, read the log when it catches up.
		s.requestResync()
	}
}

func (s *Stream) requestResync() {
	select {
	case s.resync <- struct{}{}:
	default:
	}
}

func (s *Stream) pump() {
	defer close(s.out)
	refresh := time.NewTicker(s.hub.cfg.LeaseTTL / 3)
	defer refresh.Stop()
	// What was published between the client's last id (or the log's end) and the
	// subscription is in the log.
	if !s.catchUp() {
		return
	}
	for {
		select {
		case <-s.done:
			return
		case n := <-s.live:
			if !s.send(n) {
				return
			}
		case <-s.resync:
			if !s.catchUp() {
				return
			}
		case <-refresh.C:
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if _, err := s.hub.lease(ctx, s); err != nil {
				s.hub.cfg.Logger.Warn("stream lease not refreshed", "user_id", s.user, "error", err)
			}
			cancel()
		}
	}
}

// catchUp hands out what the log has after the last notification sent; false: stream over.
func (s *Stream) catchUp() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	ns, err := s.hub.since(ctx, s.user, s.last)
	cancel()
	if err != nil {
		s.hub.cfg.Logger.Warn("notification log not read; the stream goes on live", "user_id", s.user, "error", err)
		return true
	}
	for _, n := range ns {
		if !s.send(n) {
			return false
		}
	}
	return true
}

// send hands n to the client unless it was handed out already (replayed, then heard live).
func (s *Stream) send(n Notification) bool {
	id, ok := parseID(n.ID)
	if !ok || !s.last.less(id) {
		return true
	}
	select {
	case s.out <- n:
		s.last = id
		return true
	case <-s.done:
		return false
	}
}

func decode(id, body string) (Notification, error) {
	var n Notification
	if err := json.Unmarshal([]byte(body), &n); err != nil {
		return n, err
	}
	n.ID = id
	return n, nil
}

// logID is a Redis stream id: milliseconds and a sequence number.
type logID struct{ ms, seq uint64 }

func parseID(s string) (logID, bool) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return logID{}, false
	}
	ms, err1 := strconv.ParseUint(a, 10, 64)
	seq, err2 := strconv.ParseUint(b, 10, 64)
	if err1 != nil || err2 != nil {
		return logID{}, false
	}
	return logID{ms, seq}, true
}

func (a logID) less(b logID) bool { return a.ms < b.ms || (a.ms == b.ms && a.seq < b.seq) }

func (a logID) String() string {
	return strconv.FormatUint(a.ms, 10) + "-" + strconv.FormatUint(a.seq, 10)
}

func randomID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
