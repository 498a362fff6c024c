package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// UserAgent identifies deliveries.
const UserAgent = "paysaga-webhooks/1"

// Request is one POST to make: the event's exact body to url, signed with secrets (the current
// one first) at the time of sending.
type Request struct {
	URL     string
	EventID string
	Type    string
	Body    []byte
	Secrets []string
}

// Send posts r with c (Policy.Client) and reports the attempt: the status code and latency, or
// why there was no answer. It never returns the body of the answer, nor follows a redirect.
func Send(ctx context.Context, c *http.Client, r Request, now func() time.Time) Attempt {
	if now == nil {
		now = time.Now
	}
	start := now()
	a := Attempt{At: start.UTC()}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.URL, bytes.NewReader(r.Body))
	if err != nil {
		a.Error = "bad URL"
		return a
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", UserAgent)
	req.Header.Set(EventIDHeader, r.EventID)
	req.Header.Set(EventTypeHeader, r.Type)
	req.Header.Set(SignatureHeader, Sign(r.Body, start, r.Secrets...))
	resp, err := c.Do(req)
	a.LatencyMS = now().Sub(start).Milliseconds()
	if err != nil {
		a.Error = describe(err)
		return a
	}
	// Read a little of the answer so the connection can be reused; its content is ignored.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	a.StatusCode = resp.StatusCode
	return a
}

// describe says why there was no answer, without echoing the URL (its query may carry a token
// of the merchant's): the *url.Error around the cause is dropped.
func describe(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var t interface{ Timeout() bool }
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &t) && t.Timeout()) {
		return fmt.Sprintf("no answer within %s", Timeout)
	}
	return err.Error()
}
