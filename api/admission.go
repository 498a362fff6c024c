package api

import (
	"sync"
	"time"

	"paysaga"
)

// Admission bounds the payments one API instance works on at once — in all, and per customer —
// so that past the engine's capacity new payments are turned away at once (429 with
// Retry-After, nothing started, the Idempotency-Key left free) instead of queueing without end
// behind the ones already accepted. A payment holds its slot while its request waits for the
// outcome: when the engine slows down, requests wait longer, slots free more slowly and fewer
// payments are admitted (Little's law does the rest), so the backlog stays bounded by
// MaxInFlight × the instances. A nil *Admission admits everything.
type Admission struct {
	// MaxInFlight bounds the payment requests in progress on this instance; PerCustomer the
	// payments (distinct Idempotency-Keys: a client's retries of one payment share its slot)
	// of one customer, so that one busy client cannot take every slot. Zero: no bound.
	MaxInFlight, PerCustomer int
	// RetryAfter is what a turned-away client is told to wait (default 1 s).
	RetryAfter time.Duration

	mu         sync.Mutex
	inFlight   int
	byCustomer map[string]int // distinct keys in progress
	byKey      map[string]int // requests in progress per customer and key
}

// InFlight returns the payment requests in progress on this instance.
func (a *Admission) InFlight() int {
	if a == nil {
		return 0
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.inFlight
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
	if a.MaxInFlight > 0 && a.inFlight >= a.MaxInFlight {
		return nil, WithRetryAfter(paysaga.Errorf(paysaga.ERATELIMITED,
			"the engine is at capacity: nothing was started; retry after the Retry-After delay, with the same Idempotency-Key"), after)
	}
	ck := customer + "\x00" + key
	if a.PerCustomer > 0 && a.byKey[ck] == 0 && a.byCustomer[customer] >= a.PerCustomer {
		return nil, WithRetryAfter(paysaga.Errorf(paysaga.ERATELIMITED,
			"too many of your payments are in progress at once: nothing was started; retry after the Retry-After delay, with the same Idempotency-Key"), after)
	}
	if a.byCustomer == nil {
		a.byCustomer, a.byKey = make(map[string]int), make(map[string]int)
	}
	a.inFlight++
	if a.byKey[ck]++; a.byKey[ck] == 1 {
		a.byCustomer[customer]++
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			a.mu.Lock()
			defer a.mu.Unlock()
			a.inFlight--
			if a.byKey[ck]--; a.byKey[ck] > 0 {
				return
			}
			delete(a.byKey, ck)
			if a.byCustomer[customer]--; a.byCustomer[customer] <= 0 {
				delete(a.byCustomer, customer)
			}
		})
	}, nil
}
