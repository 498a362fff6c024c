package api

import (
	"context"
	"sync"
	"time"

	"paysaga"
)

// Admission bounds the payments one API instance works on at once — in all, and per customer —
// so that past the engine's capacity new payments are turned away at once (429 with
// Retry-After, nothing started, the Idempotency-Key left free) instead of queueing without end
// behind the ones already accepted. A payment holds its slot until the engine has finished
// with it — while its request waits for the outcome, and after a 202 until the payment is
// final (or AUTHORIZED, or UNKNOWN: waiting for a person, not for the engine): when the engine
// slows down, slots free more slowly and fewer payments are admitted (Little's law does the
// rest), so the payments in the engine stay bounded by MaxInFlight × the instances, and an
// admitted payment waits behind at most MaxInFlight−1 others. A nil *Admission admits
// everything.
type Admission struct {
	// MaxInFlight bounds the payments in progress on this instance, PerCustomer those of one
	// customer (so that one busy client cannot take every slot). A payment is a customer's
	// Idempotency-Key: a client's retries of one payment, even at once, share its slot. Zero:
	// no bound.
	MaxInFlight, PerCustomer int
	// RetryAfter is what a turned-away client is told to wait (default 1 s).
	RetryAfter time.Duration
	// HoldAtMost bounds how long a payment that answered 202 keeps its slot while the engine
	// still works on it (default 1 min): past it the slot is given back whatever the payment's
	// state, so that a payment stuck for longer cannot shrink the instance's capacity for good.
	HoldAtMost time.Duration

	mu         sync.Mutex
	inFlight   int            // distinct payments (customer and key) in progress
	holding    int            // requests that answered 202 and hold their payment's slot until settled
	byCustomer map[string]int // distinct keys in progress
	byKey      map[string]int // requests in progress per customer and key
}

// InFlight returns the payments in progress on this instance.
func (a *Admission) InFlight() int {
	if a == nil {
		return 0
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.inFlight
}

// Holding returns how many of the slots in use are held by payments that answered 202 and are
// still being worked on.
func (a *Admission) Holding() int {
	if a == nil {
		return 0
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.holding
}

// holdPoll is the first interval at which a held payment is looked at; it doubles up to
// holdPollMax.
const (
	holdPoll    = 50 * time.Millisecond
	holdPollMax = time.Second
)

// hold keeps the slot given back by release until settled reports true (polled with a
// backoff), or HoldAtMost has passed; then releases it.
// It returns at once: the waiting happens in the background, after the 202 was sent.
func (a *Admission) hold(release func(), settled func(ctx context.Context) (bool, error)) {
	if a == nil {
		release()
		return
	}
	limit := a.HoldAtMost
	if limit <= 0 {
		limit = time.Minute
	}
	a.mu.Lock()
	a.holding++
	a.mu.Unlock()
	go func() {
		defer func() {
			a.mu.Lock()
			a.holding--
			a.mu.Unlock()
			release()
		}()
		ctx, cancel := context.WithTimeout(context.Background(), limit)
		defer cancel()
		for wait := holdPoll; ; wait = min(2*wait, holdPollMax) {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			// An error (the store is down) keeps the slot: the engine may still be at work.
			if done, err := settled(ctx); err == nil && done {
				return
			}
		}
	}()
}

// admit takes a slot for a request for customer's payment with Idempotency-Key key, or says
// (ERATELIMITED, with Retry-After) why not. The returned release gives the slot back; it is
// safe to call once.
func (a *Admission) admit(customer, key string) (release func(), err error) {
	if a == nil {
		return func() {}, nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	after := a.RetryAfter
	if after <= 0 {
		after = time.Second
	}
	ck := customer + "\x00" + key
	joins := a.byKey[ck] > 0 // a retry of a payment in progress: it has its slot
	if !joins && a.MaxInFlight > 0 && a.inFlight >= a.MaxInFlight {
		return nil, WithRetryAfter(paysaga.Errorf(paysaga.ERATELIMITED,
			"the engine is at capacity: nothing was started; retry after the Retry-After delay, with the same Idempotency-Key"), after)
	}
	if !joins && a.PerCustomer > 0 && a.byCustomer[customer] >= a.PerCustomer {
		return nil, WithRetryAfter(paysaga.Errorf(paysaga.ERATELIMITED,
			"too many of your payments are in progress at once: nothing was started; retry after the Retry-After delay, with the same Idempotency-Key"), after)
	}
	if a.byCustomer == nil {
		a.byCustomer, a.byKey = make(map[string]int), make(map[string]int)
	}
	if a.byKey[ck]++; a.byKey[ck] == 1 {
		a.inFlight++
		a.byCustomer[customer]++
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			a.mu.Lock()
			defer a.mu.Unlock()
			if a.byKey[ck]--; a.byKey[ck] > 0 {
				return
			}
			delete(a.byKey, ck)
			a.inFlight--
			if a.byCustomer[customer]--; a.byCustomer[customer] <= 0 {
				delete(a.byCustomer, customer)
			}
		})
	}, nil
}
