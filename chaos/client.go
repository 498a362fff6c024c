package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

// answer is one HTTP exchange with an API instance, as the run saw it.
type answer struct {
	At     time.Time     `json:"at"` // when the request was sent
	Dur    time.Duration `json:"duration_ns"`
	Inst   int           `json:"api"` // 0 or 1
	Method string        `json:"method"`
	Path   string        `json:"path"`
	Status int           `json:"status"` // 0: no answer (Err)
	Err    string        `json:"error,omitempty"`
	Code   string        `json:"code,omitempty"` // problem+json code
	ID     string        `json:"id,omitempty"`   // the resource the answer names
	Key    string        `json:"key,omitempty"`  // Idempotency-Key sent

	body     map[string]any
	location string
}

func (a answer) str(key string) string {
	v, _ := a.body[key].(string)
	return v
}

// definitive reports whether the answer settles a request: a 2xx, or a 4xx other than 429.
// Anything else (no answer, 5xx, 429) is sent again with the same Idempotency-Key.
func (a answer) definitive() bool {
	return a.Status >= 200 && a.Status < 300 || a.Status >= 400 && a.Status < 500 && a.Status != http.StatusTooManyRequests
}

// apiClient talks to the two API instances and keeps every answer.
type apiClient struct {
	bases [2]string
	hc    *http.Client

	mu      sync.Mutex
	answers []answer
	log     *json.Encoder
}

func newAPIClient(bases [2]string, logFile *os.File) *apiClient {
	return &apiClient{
		bases: bases,
		hc: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
			MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second,
		}},
		log: json.NewEncoder(logFile),
	}
}

// do sends one request to instance inst; hdr is pairs of header names and values.
func (c *apiClient) do(ctx context.Context, inst int, method, path, token string, body any, hdr ...string) answer {
	a := answer{At: time.Now(), Inst: inst, Method: method, Path: path}
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.bases[inst]+path, rd)
	if err != nil {
		a.Err = err.Error()
		return a
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
		if hdr[i] == "Idempotency-Key" {
			a.Key = hdr[i+1]
		}
	}
	resp, err := c.hc.Do(req)
	a.Dur = time.Since(a.At)
	if err != nil {
		a.Err = err.Error()
		if ctx.Err() == nil {
			c.record(a)
		}
		return a
	}
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	a.Status = resp.StatusCode
	if err != nil {
		a.Err = "read body: " + err.Error()
	}
	a.location = resp.Header.Get("Location")
	if len(raw) > 0 && raw[0] == '{' {
		_ = json.Unmarshal(raw, &a.body)
	}
	a.Code = a.str("code")
	a.ID = answerID(a)
	c.record(a)
	return a
}

func (c *apiClient) record(a answer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.answers = append(c.answers, a)
	_ = c.log.Encode(a)
}

func (c *apiClient) all() []answer {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]answer(nil), c.answers...)
}

// answerID finds the id of the payment or refund an answer is about: the Location header, else
// the body's id, else the id of its "payment" or "refund" object (202 and 402 answers).
func answerID(a answer) string {
	if i := strings.LastIndex(a.location, "/"); i >= 0 && a.location[i+1:] != "" {
		return a.location[i+1:]
	}
	if id := a.str("id"); id != "" {
		return id
	}
	for _, k := range []string{"refund", "payment", "account"} {
		if m, ok := a.body[k].(map[string]any); ok {
			if id, _ := m["id"].(string); id != "" {
				return id
			}
		}
	}
	return ""
}

// send sends a request until it gets a definitive answer (see answer.definitive), alternating
// between the instances, with the same body and headers each time, until give-up passes.
func (c *apiClient) send(ctx context.Context, inst int, method, path, token string, body any, giveUp time.Duration, hdr ...string) (answer, int) {
	deadline := time.Now().Add(giveUp)
	backoff := 300 * time.Millisecond
	tries := 0
	for {
		tries++
		a := c.do(ctx, inst, method, path, token, body, hdr...)
		if a.definitive() || ctx.Err() != nil || time.Now().After(deadline) {
			return a, tries
		}
		sleep(ctx, backoff)
		backoff = min(backoff*2, 3*time.Second)
		inst = 1 - inst
	}
}

// get reads a resource until it gets a definitive answer.
func (c *apiClient) get(ctx context.Context, inst int, path, token string) answer {
	a, _ := c.send(ctx, inst, http.MethodGet, path, token, nil, 3*time.Minute)
	return a
}

// window is a span of time in which an instance (or all) may answer 5xx: it was restarting,
// or the Temporal server was.
type window struct {
	From, To time.Time
	Inst     int // -1: every instance
	Why      string
	// Only503 excuses only "503 unavailable, retry" answers: a worker's restart may keep a
	// request from being recorded in time, never make the API fail otherwise.
	Only503 bool
}

func (w window) covers(a answer) bool {
	if w.Only503 && a.Status != 503 {
		return false
	}
	// The request overlapped the window.
	return (w.Inst < 0 || w.Inst == a.Inst) && !a.At.Add(a.Dur).Before(w.From) && !a.At.After(w.To)
}

func (w window) String() string {
	who := "all APIs"
	if w.Inst >= 0 {
		who = fmt.Sprintf("api-%d", w.Inst+1)
	}
	return fmt.Sprintf("%s (%s, %.1fs)", w.Why, who, w.To.Sub(w.From).Seconds())
}
