package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"paysaga"
	"paysaga/internal/cpuuse"
)

// payment is one payment the load generator sends, and what became of it.
type payment struct {
	Seq       int
	Key       string // Idempotency-Key, unique per payment and reused by its own retries
	Customer  *customer
	Account   bankAccount
	Amount    int64
	Scheduled time.Time // when the open model says it is sent; latencies count from here

	// Written by the payment's own goroutine only, read after the run.
	Sent       time.Time // when it was actually sent (the generator may run late)
	AnsweredAt time.Time // the accepted answer (200, 202 or 402), zero if none came
	AnswerCode int       // its HTTP status
	ID         string
	Status     paysaga.PaymentStatus // the last status seen
	FinalAt    time.Time             // when it became final (its updated_at), zero if never seen final
	Err        string                // why it never got an accepted answer
	ShedAt     time.Time             // when the API turned it away (429), zero if it did not
}

func (p *payment) final() bool { return !p.FinalAt.IsZero() }

// loadResult is what a run of the load generator measured.
type loadResult struct {
	Payments []*payment
	Window   Window // the measurement window: after the warm-up, before the drain

	AnswerLatency Durations    // scheduled → accepted answer, payments scheduled in the window
	FinalLatency  Durations    // scheduled → final (updated_at), payments scheduled in the window
	SendLag       Durations    // scheduled → actually sent: how late the generator itself ran
	Answers       Counter      // every POST answer by status, retries included
	Errors        Counter      // failed requests by method and status ("POST 503", "GET transport")
	Polls         atomic.Int64 // GET requests of payments that answered 202
	ShedLatency   Durations    // sent → 429, payments scheduled in the window that were turned away
	CPU           cpuuse.Use   // the CPU each process used in the window
	CPUErr        error        // writing the CPU profile (-cpuprofile)
}

// pollInterval is how often a payment that answered 202 is asked for its status when the
// answer carried no Retry-After. The API's Retry-After is honoured, as a well-behaved client
// would: polling faster would give a finer time to final status, but past saturation hundreds
// of payments answer 202 at once and their polls alone would take the CPU the payments need.
const pollInterval = time.Second

// maxPollInterval caps the backoff of the polls.
const maxPollInterval = 5 * time.Second

// drive sends payments at a fixed arrival rate — an open model: each payment is sent at its
// scheduled time whether or not the earlier ones have been answered, as independent clients
// would — for warmup+duration, then waits up to drain for the ones still running to reach a
// final status.
func drive(ctx context.Context, e *env, pop *seeded, o options) *loadResult {
	total := int((o.warmup + o.duration).Seconds() * o.rate)
	start := time.Now().Add(100 * time.Millisecond)
	r := &loadResult{
		Window:   Window{From: start.Add(o.warmup), To: start.Add(o.warmup + o.duration)},
		Payments: make([]*payment, 0, total),
	}
	// Polls and retries stop at the drain deadline; what is not final by then is reported.
	deadline := start.Add(o.warmup + o.duration + o.drain)
	runCtx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()

	cpu := watchWindow(ctx, r.Window, o.cpuProfile)
	runID := fmt.Sprintf("%x", time.Now().UnixNano())
	var wg sync.WaitGroup
	var finished atomic.Int64
	stopProgress := progress(start, total, &finished)
	defer stopProgress()
	schedule(ctx, start, o.rate, total, func(i int, at time.Time) {
		c := &pop.Customers[i%len(pop.Customers)]
		p := &payment{
			Seq: i, Key: fmt.Sprintf("bench-%s-%d", runID, i), Customer: c, Account: c.Rich,
			Amount: 1000 + 100*rand.Int64N(100), Scheduled: at,
		}
		if rand.Float64() < o.declines {
			p.Account = c.Empty // holds nothing: the bank declines it
		}
		r.Payments = append(r.Payments, p)
		wg.Go(func() {
			r.pay(runCtx, e, pop.MerchantID, p)
			finished.Add(1)
		})
	})
	wg.Wait()
	r.CPU, r.CPUErr = cpu()

	for _, p := range r.Payments {
		if !r.Window.Contains(p.Scheduled) {
			continue
		}
		r.SendLag.Add(p.Sent.Sub(p.Scheduled))
		if !p.ShedAt.IsZero() {
			r.ShedLatency.Add(p.ShedAt.Sub(p.Sent))
		}
		if !p.AnsweredAt.IsZero() {
			r.AnswerLatency.Add(p.AnsweredAt.Sub(p.Scheduled))
		}
		if p.final() {
			r.FinalLatency.Add(p.FinalAt.Sub(p.Scheduled))
		}
	}
	return r
}

// probe sends n payments one at a time from funded accounts and waits for each to be final.
func probe(ctx context.Context, e *env, pop *seeded, n int) []*payment {
	r := &loadResult{}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for i := range n {
		c := &pop.Customers[i%len(pop.Customers)]
		p := &payment{Seq: -1 - i, Key: paysaga.NewID("bench-probe-"), Customer: c, Account: c.Rich,
			Amount: 1000, Scheduled: time.Now()}
		r.pay(ctx, e, pop.MerchantID, p)
		r.Payments = append(r.Payments, p)
	}
	return r.Payments
}

// progress prints every 10 seconds how far the run is, so that a slow drain is not mistaken
// for a hang. It returns a function that stops it.
func progress(start time.Time, total int, finished *atomic.Int64) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(10 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				fmt.Fprintf(os.Stderr, "          %3.0fs: %d of %d payments finished\n",
					now.Sub(start).Seconds(), finished.Load(), total)
			}
		}
	}()
	return func() { close(done) }
}

// pay sends one payment, retrying with the same Idempotency-Key when the API could not answer
// (as a client must: the key makes the retry join the first attempt, never pay twice), then
// polls it until it is final if the answer was 202.
func (r *loadResult) pay(ctx context.Context, e *env, merchantID string, p *payment) {
	body, _ := json.Marshal(map[string]any{
		"account_id": p.Account.ID, "amount": p.Amount, "merchant_id": merchantID, "description": "bench",
	})
	p.Sent = time.Now()
	wait := pollInterval
	for attempt := 1; ; attempt++ {
		status, header, raw, err := r.do(ctx, e, http.MethodPost, "/v1/payments", p.Customer.Token, body, p.Key)
		if err == nil {
			r.Answers.Inc(fmt.Sprint(status))
			if status == http.StatusTooManyRequests {
				// Turned away by admission control: nothing was started. The offered load is
				// what it is (an open model), so a shed payment is counted, not retried.
				p.ShedAt, p.Err = time.Now(), "shed (429)"
				return
			}
			if r.accept(p, status, raw) {
				if secs, err := strconv.Atoi(header.Get("Retry-After")); err == nil && secs > 0 {
					wait = time.Duration(secs) * time.Second
				}
				break
			}
			r.Errors.Inc(fmt.Sprintf("POST %d", status))
			p.Err = fmt.Sprintf("POST answered %d", status)
		} else if ctx.Err() == nil {
			r.Errors.Inc("POST transport")
			p.Err = "POST: " + err.Error()
		}
		if attempt == 4 || ctx.Err() != nil {
			return
		}
		sleep(ctx, time.Duration(attempt)*500*time.Millisecond)
	}
	for !p.final() && ctx.Err() == nil {
		sleep(ctx, wait)
		// Each poll waits a little longer, up to maxPollInterval: past saturation, hundreds of
		// payments wait at once, and polls at a fixed pace would grow with the backlog and take
		// the CPU that would drain it.
		wait = min(wait*3/2, maxPollInterval)
		r.Polls.Add(1)
		status, _, raw, err := r.do(ctx, e, http.MethodGet, "/v1/payments/"+p.ID, p.Customer.Token, nil, "")
		switch {
		case err != nil:
			if ctx.Err() == nil {
				r.Errors.Inc("GET transport")
			}
		case status == http.StatusOK:
			var got paysaga.Payment
			if json.Unmarshal(raw, &got) == nil {
				r.observe(p, got)
			}
		case status == http.StatusNotFound:
			// Accepted before the workflow's first step recorded it: not an error yet.
		default:
			r.Errors.Inc(fmt.Sprintf("GET %d", status))
		}
	}
}

// accept reads a POST answer: 200 (final), 402 (declined: final) or 202 (running). Anything
// else is not an accepted payment.
func (r *loadResult) accept(p *payment, status int, raw []byte) bool {
	var got paysaga.Payment
	switch status {
	case http.StatusOK:
		if json.Unmarshal(raw, &got) != nil {
			return false
		}
	case http.StatusPaymentRequired, http.StatusAccepted:
		var wrapped struct {
			Payment paysaga.Payment `json:"payment"`
		}
		if json.Unmarshal(raw, &wrapped) != nil {
			return false
		}
		got = wrapped.Payment
	default:
		return false
	}
	if got.ID == "" {
		return false
	}
	p.AnsweredAt, p.AnswerCode, p.ID, p.Err = time.Now(), status, got.ID, ""
	r.observe(p, got)
	return true
}

// observe records a status seen in an answer. The time a payment became final is its
// updated_at — written by the workflow's last step, on this machine's clock — rather than when
// a poll happened to see it: polls back off, and their lag would blur the time to final status
// and push completions out of the measurement window.
func (r *loadResult) observe(p *payment, got paysaga.Payment) {
	p.Status = got.Status
	if !got.Status.Final() || !p.FinalAt.IsZero() {
		return
	}
	p.FinalAt = got.UpdatedAt
	if p.FinalAt.IsZero() || p.FinalAt.Before(p.Scheduled) {
		p.FinalAt = time.Now()
	}
}

func (r *loadResult) do(ctx context.Context, e *env, method, path, token string, body []byte, key string) (int, http.Header, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, e.APIURL+path, rd)
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := e.HTTP.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, raw, err
}

// schedule calls send(i, at) at start + i/rate for i in [0, total), an open model: each call
// happens on time whether or not earlier ones have finished (send must not block). Each time is
// computed from the start, not from the previous call, so a late wake-up does not shift the rest
// of the schedule.
func schedule(ctx context.Context, start time.Time, rate float64, total int, send func(i int, at time.Time)) {
	interval := time.Duration(float64(time.Second) / rate)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for i := range total {
		at := start.Add(time.Duration(i) * interval)
		if d := time.Until(at); d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil {
			return
		}
		send(i, at)
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// counts of what the run produced, for the report and the ledger check.
type loadCounts struct {
	Sent, Accepted, Succeeded, Failed, NotFinal, NoAnswer int
	AcceptedInWindow, CompletedInWindow                   int
	Shed, ShedInWindow                                    int
}

func (r *loadResult) counts() loadCounts {
	var c loadCounts
	for _, p := range r.Payments {
		c.Sent++
		if !p.ShedAt.IsZero() {
			c.Shed++
			if r.Window.Contains(p.ShedAt) {
				c.ShedInWindow++
			}
			continue
		}
		switch {
		case p.AnsweredAt.IsZero():
			c.NoAnswer++
			continue
		case r.Window.Contains(p.AnsweredAt):
			c.AcceptedInWindow++
		}
		c.Accepted++
		switch {
		case !p.final():
			c.NotFinal++
		case p.Status == paysaga.PaymentSucceeded:
			c.Succeeded++
		default:
			c.Failed++
		}
		if p.final() && r.Window.Contains(p.FinalAt) {
			c.CompletedInWindow++
		}
	}
	return c
}
