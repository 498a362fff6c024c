// Package balance answers "how much is in this account" at once: the last balance the bank
// reported is kept in Redis with the time it was reported, and the bank is asked again
// (InquireBalance) only on request, when nothing is known, or after a money movement made the
// known value outdated. Every bank inquiry is bounded by a short timeout and goes through a
// circuit breaker, so that a bank outage costs callers nothing but staleness: the last known
// balance is served, marked stale.
package balance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sony/gobreaker/v2"
	"golang.org/x/sync/singleflight"

	"paysaga"
	"paysaga/nh"
)

// Balance is what the account holds, as the bank last reported it.
type Balance struct {
	// Balance is the ledger balance in won (NH's Ldbl).
	Balance int64 `json:"balance"`
	// Available is what may be withdrawn now, in won (NH's RlpmAbamt).
	Available int64 `json:"available"`
	// AsOf is when the bank reported it.
	AsOf time.Time `json:"as_of"`
	// Stale is set when the bank was to be asked and could not be: this is the last known
	// value, which may be outdated.
	Stale bool `json:"stale"`
}

// Bank is the balance inquiry; *nh.Client implements it.
type Bank interface {
	InquireBalance(ctx context.Context, finAcno string) (*nh.Balance, error)
}

// Accounts finds an account with its fin account; *store.DB implements it.
type Accounts interface {
	GetAccount(ctx context.Context, id string) (*paysaga.Account, error)
}

// Defaults of Config's zero values.
const (
	DefaultTTL            = 24 * time.Hour
	DefaultTimeout        = 3 * time.Second
	DefaultFailuresToOpen = 5
	DefaultOpenFor        = 30 * time.Second
	DefaultKeyPrefix      = "paysaga:"
	DefaultRefreshEvery   = 5 * time.Second
)

// Config builds a Service.
type Config struct {
	Redis    redis.UniversalClient
	Bank     Bank
	Accounts Accounts
	// KeyPrefix starts every Redis key ("paysaga:" when empty): the balance of an account is
	// at <prefix>balance:<account id>.
	KeyPrefix string
	// TTL is how long a reported balance is kept (DefaultTTL): past it, nothing is known.
	TTL time.Duration
	// Timeout bounds one inquiry at the bank (DefaultTimeout).
	Timeout time.Duration
	// FailuresToOpen consecutive failed inquiries open the circuit (DefaultFailuresToOpen):
	// the bank is then not asked at all for OpenFor (DefaultOpenFor), after which one trial
	// inquiry decides whether it closes again.
	FailuresToOpen uint32
	OpenFor        time.Duration
	// RefreshEvery is how old a known balance must be before a refresh asks the bank again
	// (DefaultRefreshEvery; negative: every refresh asks): a client asking refresh=true in a
	// loop gets the known balance, with its AsOf, instead of a bank call each time. A money
	// movement (Invalidate) is not throttled.
	RefreshEvery time.Duration
	// Now is the clock of AsOf; time.Now when nil.
	Now    func() time.Time
	Logger *slog.Logger
}

// Service reads and refreshes balances. It is safe for concurrent use.
type Service struct {
	cfg    Config
	cb     *gobreaker.CircuitBreaker[*nh.Balance]
	flight singleflight.Group
}

// New checks cfg and returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Redis == nil || cfg.Bank == nil || cfg.Accounts == nil {
		return nil, fmt.Errorf("balance: Redis, Bank and Accounts are required")
	}
	if cfg.KeyPrefix == "" {
		cfg.KeyPrefix = DefaultKeyPrefix
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.FailuresToOpen == 0 {
		cfg.FailuresToOpen = DefaultFailuresToOpen
	}
	if cfg.OpenFor <= 0 {
		cfg.OpenFor = DefaultOpenFor
	}
	if cfg.RefreshEvery == 0 {
		cfg.RefreshEvery = DefaultRefreshEvery
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{cfg: cfg}
	s.cb = gobreaker.NewCircuitBreaker[*nh.Balance](gobreaker.Settings{
		Name:        "nh." + nh.APIInquireBalance,
		MaxRequests: 1,
		Timeout:     cfg.OpenFor,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= cfg.FailuresToOpen },
		// A refusal is an answer: the bank is up.
		IsSuccessful: func(err error) bool {
			o := nh.Classify(err)
			return o == nh.OutcomeSuccess || o == nh.OutcomeDeclined || o == nh.OutcomeInvalid
		},
		OnStateChange: func(name string, from, to gobreaker.State) {
			cfg.Logger.Warn("circuit breaker changed state", "breaker", name, "from", from.String(), "to", to.String())
		},
	})
	return s, nil
}

// BreakerState is the state of the circuit breaker in front of the bank: "closed", "open" or
// "half-open".
func (s *Service) BreakerState() string { return s.cb.State().String() }

// cached is a balance as Redis keeps it. Dirty: a money movement happened since, so the next
// read asks the bank (and falls back to this value, stale, if the bank does not answer).
type cached struct {
	Balance   int64     `json:"balance"`
	Available int64     `json:"available"`
	AsOf      time.Time `json:"as_of"`
	Dirty     bool      `json:"dirty,omitempty"`
}

func (s *Service) key(accountID string) string { return s.cfg.KeyPrefix + "balance:" + accountID }

// Get answers the balance of an ACTIVE account (the caller checked that it may see it): the
// known value at once, unless refresh is asked, nothing is known, or a money movement made it
// outdated; then the bank is asked, and when it cannot answer the last known value is served
// with Stale set. With nothing known and the bank down, the error is EUNAVAILABLE (with a
// RetryAfter).
func (s *Service) Get(ctx context.Context, acct *paysaga.Account, refresh bool) (Balance, error) {
	if acct.Status != paysaga.AccountActive || acct.FinAccount == "" {
		return Balance{}, paysaga.Errorf(paysaga.ECONFLICT, "the account is %s: its balance cannot be asked", acct.Status)
	}
	known, ok := s.read(ctx, acct.ID)
	if refresh && ok && s.cfg.Now().Sub(known.AsOf) < s.cfg.RefreshEvery {
		refresh = false // asked a moment ago: the known value is as good
	}
	if ok && !refresh && !known.Dirty {
		return Balance{Balance: known.Balance, Available: known.Available, AsOf: known.AsOf}, nil
	}
	b, err := s.fetch(ctx, acct)
	if err == nil {
		return b, nil
	}
	if ok {
		return Balance{Balance: known.Balance, Available: known.Available, AsOf: known.AsOf, Stale: true}, nil
	}
	return Balance{}, err
}

// Refresh asks the bank for an account's balance and writes it to the cache. The payment and
// refund activities call it (or AfterMoneyMovement) once money moved.
func (s *Service) Refresh(ctx context.Context, accountID string) (Balance, error) {
	acct, err := s.cfg.Accounts.GetAccount(ctx, accountID)
	if err != nil {
		return Balance{}, err
	}
	if acct.Status != paysaga.AccountActive || acct.FinAccount == "" {
		return Balance{}, paysaga.Errorf(paysaga.ECONFLICT, "the account is %s: its balance cannot be asked", acct.Status)
	}
	return s.fetch(ctx, acct)
}

// Invalidate marks the known balance as outdated without forgetting it: the next Get asks the
// bank, and serves the old value (stale) if the bank does not answer.
func (s *Service) Invalidate(ctx context.Context, accountID string) error {
	return Invalidator{Redis: s.cfg.Redis, KeyPrefix: s.cfg.KeyPrefix}.Invalidate(ctx, accountID)
}

// Invalidator marks known balances outdated. It needs only Redis, so that whatever sees money
// move (the event consumers, the worker's publisher) can use it without a bank client.
type Invalidator struct {
	Redis redis.UniversalClient
	// KeyPrefix is the Service's (DefaultKeyPrefix when empty).
	KeyPrefix string
}

// invalidateScript sets "dirty" in the cached balance (a JSON object written by write),
// atomically and keeping its expiry; nothing known, nothing to do. The text is edited rather
// than decoded: Lua's cjson would round won amounts above 14 digits.
var invalidateScript = redis.NewScript(`
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
if string.find(raw, '"dirty":true', 1, true) then return 1 end
if string.sub(raw, -1) ~= '}' then return redis.call('DEL', KEYS[1]) end
redis.call('SET', KEYS[1], string.sub(raw, 1, -2) .. ',"dirty":true}', 'KEEPTTL')
return 1
`)

// Invalidate marks the account's known balance outdated: the next Get asks the bank (and
// serves the old value, stale, if the bank does not answer).
func (i Invalidator) Invalidate(ctx context.Context, accountID string) error {
	prefix := i.KeyPrefix
	if prefix == "" {
		prefix = DefaultKeyPrefix
	}
	if err := invalidateScript.Run(ctx, i.Redis, []string{prefix + "balance:" + accountID}).Err(); err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("invalidate balance of %s: %w", accountID, err)
	}
	return nil
}

// AfterMoneyMovement refreshes an account's balance after a payment or refund touched it, and
// when the bank cannot answer, marks the known balance outdated instead. Its error is for the
// log only: money already moved, and the balance will be asked again on the next read.
func (s *Service) AfterMoneyMovement(ctx context.Context, accountID string) error {
	if _, err := s.Refresh(ctx, accountID); err != nil {
		if ierr := s.Invalidate(ctx, accountID); ierr != nil {
			return errors.Join(err, ierr)
		}
		return err
	}
	return nil
}

// fetch asks the bank through the breaker, at most one inquiry per account at a time, and
// writes the answer to the cache.
func (s *Service) fetch(ctx context.Context, acct *paysaga.Account) (Balance, error) {
	ch := s.flight.DoChan(acct.ID, func() (any, error) {
		// Shared by every concurrent caller: not bound to the first one's request.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.Timeout)
		defer cancel()
		res, err := s.cb.Execute(func() (*nh.Balance, error) { return s.cfg.Bank.InquireBalance(ctx, acct.FinAccount) })
		if err != nil {
			return nil, err
		}
		c := cached{Balance: res.Ldbl, Available: res.RlpmAbamt, AsOf: s.cfg.Now().UTC().Truncate(time.Millisecond)}
		if err := s.write(ctx, acct.ID, c); err != nil {
			s.cfg.Logger.Warn("balance not cached", "account_id", acct.ID, "error", err.Error())
		}
		return c, nil
	})
	var r singleflight.Result
	select {
	case r = <-ch:
	case <-ctx.Done():
		return Balance{}, ctx.Err()
	}
	if r.Err != nil {
		return Balance{}, s.unavailable(acct.ID, r.Err)
	}
	c := r.Val.(cached)
	return Balance{Balance: c.Balance, Available: c.Available, AsOf: c.AsOf}, nil
}

func (s *Service) unavailable(accountID string, err error) error {
	after := time.Second
	msg := "the bank cannot report the balance now; try again later"
	switch {
	case errors.Is(err, gobreaker.ErrOpenState), errors.Is(err, gobreaker.ErrTooManyRequests):
		after = s.cfg.OpenFor
		msg = "the bank is unavailable; try again later"
	case nh.Classify(err) == nh.OutcomeDeclined:
		var d *nh.DeclinedError
		errors.As(err, &d)
		msg = fmt.Sprintf("the bank refused the balance inquiry (%s %s)", d.Rpcd, d.Rsms)
	}
	s.cfg.Logger.Warn("balance inquiry failed", "account_id", accountID, "nh_api", nh.APIInquireBalance, "error", err.Error())
	return &UnavailableError{err: paysaga.Errorf(paysaga.EUNAVAILABLE, "%s", msg), cause: err, after: after}
}

// UnavailableError: the bank could not be asked, and no balance is known. It is an
// EUNAVAILABLE domain error and says when to try again (RetryAfter).
type UnavailableError struct {
	err   *paysaga.Error
	cause error
	after time.Duration
}

func (e *UnavailableError) Error() string             { return e.err.Error() + ": " + e.cause.Error() }
func (e *UnavailableError) Unwrap() []error           { return []error{e.err, e.cause} }
func (e *UnavailableError) RetryAfter() time.Duration { return e.after }

func (s *Service) read(ctx context.Context, accountID string) (cached, bool) {
	raw, err := s.cfg.Redis.Get(ctx, s.key(accountID)).Bytes()
	if err != nil {
		if !errors.Is(err, redis.Nil) {
			// Redis down: behave as if nothing were known, and ask the bank.
			s.cfg.Logger.Warn("balance cache unreadable", "account_id", accountID, "error", err.Error())
		}
		return cached{}, false
	}
	var c cached
	if err := json.Unmarshal(raw, &c); err != nil {
		return cached{}, false
	}
	return c, true
}

func (s *Service) write(ctx context.Context, accountID string, c cached) error {
	raw, err := json.Marshal(c)
	if err != nil {
		return err
	}
	return s.cfg.Redis.Set(ctx, s.key(accountID), raw, s.cfg.TTL).Err()
}
