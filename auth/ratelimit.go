package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"paysaga"
)

// RateLimitError is the ERATELIMITED error of Login; RetryAfter is when the caller may try
// again (for a Retry-After header). paysaga.ErrorCode sees its code through Unwrap.
type RateLimitError struct {
	RetryAfter time.Duration
	err        *paysaga.Error
}

func (e *RateLimitError) Error() string { return e.err.Error() }
func (e *RateLimitError) Unwrap() error { return e.err }

// limiter slows password guessing down without handing anyone a way to lock somebody else out
// (OWASP Authentication Cheat Sheet: throttle per account with growing delays rather than hard
// lock-outs; NIST SP 800-63B §5.2.2). It keeps, in Redis, with the email hashed:
//
//   - per (email, client address): the first perPair failures in the window are free; each one
//     after that makes that pair wait before its next attempt, twice as long as the previous
//     wait (base, 2·base, 4·base … up to maxDelay). A guesser on someone's account from one
//     address gets a handful of tries per window; the account's owner, from another address,
//     is not affected at all.
//   - per client address: at most perAddress failures in the window across all emails
//     (credential stuffing from one address), except for an email that has logged in from that
//     address before — so neither an attacker sharing a NAT with a user, nor a proxy that is not
//     configured as trusted (PAYSAGA_TRUSTED_PROXIES), shuts known users out.
//   - per email: a high ceiling, perEmail failures in the window from all addresses together,
//     against guessing spread over many addresses. Past it, only addresses the user has logged
//     in from before (known for knownTTL after each success) may try; that is the one place
//     where an attacker can inconvenience a user (at a new address), and only by spending
//     perEmail guesses from many addresses in one window.
//
// An attempt is counted before the password is checked, atomically with the checks, so
// concurrent guesses cannot slip past a limit; a successful login takes its attempt back,
// clears the pair's count and wait, and remembers the address for the email.
type limiter struct {
	rdb                           redis.UniversalClient
	prefix                        string
	window                        time.Duration
	perPair, perAddress, perEmail int
	base, maxDelay, knownTTL      time.Duration
}

// attemptScript: KEYS = pair counter, pair wait, email counter, known marker[, address
// counter]; ARGV = window ms, perPair, perEmail, base ms, max delay ms[, perAddress]. Refused:
// {0, ms to wait}; counted: {1, 0}.
var attemptScript = redis.NewScript(`
local window = tonumber(ARGV[1])
local known = redis.call('EXISTS', KEYS[4]) == 1
local wait = -1
local function blocked(key)
  local ttl = redis.call('PTTL', key)
  if ttl < 0 then
    redis.call('PEXPIRE', key, window)
    ttl = window
  end
  if ttl > wait then wait = ttl end
end
local pause = redis.call('PTTL', KEYS[2])
if pause > 0 then wait = pause end
if not known then
  if tonumber(redis.call('GET', KEYS[3]) or '0') >= tonumber(ARGV[3]) then blocked(KEYS[3]) end
  if KEYS[5] and tonumber(redis.call('GET', KEYS[5]) or '0') >= tonumber(ARGV[6]) then blocked(KEYS[5]) end
end
if wait >= 0 then return {0, wait} end
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], window) end
if n >= tonumber(ARGV[2]) then
  local delay = tonumber(ARGV[4]) * math.pow(2, math.min(n - tonumber(ARGV[2]), 40))
  delay = math.min(delay, tonumber(ARGV[5]))
  redis.call('SET', KEYS[2], '1', 'PX', math.max(1, math.floor(delay)))
  -- The count outlives the wait it causes, so that the next failure doubles it.
  if redis.call('PTTL', KEYS[1]) < delay * 2 then redis.call('PEXPIRE', KEYS[1], math.floor(delay * 2)) end
end
for _, key in ipairs({KEYS[3], KEYS[5]}) do
  if redis.call('INCR', key) == 1 then redis.call('PEXPIRE', key, window) end
end
return {1, 0}
`)

// successScript: KEYS as attemptScript's; ARGV[1] = known TTL in ms. The pair's count and wait
// are cleared, the email's and the address's counts get this attempt back, and the address
// becomes known for the email.
var successScript = redis.NewScript(`
redis.call('DEL', KEYS[1], KEYS[2])
for _, key in ipairs({KEYS[3], KEYS[5]}) do
  if tonumber(redis.call('GET', key) or '0') > 0 then redis.call('DECR', key) end
end
redis.call('SET', KEYS[4], '1', 'PX', ARGV[1])
return 1
`)

func (l *limiter) keys(email, addr string) []string {
	e := hash16(email)
	a := hash16(addr)
	// The {login} hash tag keeps every counter in one Redis Cluster slot, as a script needs.
	p := l.prefix + "{login}:"
	keys := []string{p + "pair:" + e + ":" + a, p + "pause:" + e + ":" + a, p + "account:" + e, p + "known:" + e + ":" + a}
	if addr != "" {
		keys = append(keys, p+"addr:"+a)
	}
	return keys
}

func hash16(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:16])
}

func (l *limiter) attempt(ctx context.Context, email, addr string) error {
	keys := l.keys(email, addr)
	args := []any{l.window.Milliseconds(), l.perPair, l.perEmail, l.base.Milliseconds(), l.maxDelay.Milliseconds()}
	if addr != "" {
		args = append(args, l.perAddress)
	}
	res, err := attemptScript.Run(ctx, l.rdb, keys, args...).Int64Slice()
	if err != nil {
		return unavailable(err)
	}
	if len(res) == 2 && res[0] == 0 {
		wait := time.Duration(res[1]) * time.Millisecond
		secs := int64((wait + time.Second - 1) / time.Second)
		return &RateLimitError{
			RetryAfter: time.Duration(secs) * time.Second,
			err:        paysaga.Errorf(paysaga.ERATELIMITED, "too many login attempts; retry in %d seconds", secs),
		}
	}
	return nil
}

func (l *limiter) succeeded(ctx context.Context, email, addr string) error {
	if err := successScript.Run(ctx, l.rdb, l.keys(email, addr), l.knownTTL.Milliseconds()).Err(); err != nil && !errors.Is(err, redis.Nil) {
		return unavailable(err)
	}
	return nil
}

// unavailable: without Redis, logins fail closed rather than go unlimited.
func unavailable(err error) error {
	return fmt.Errorf("login rate limit: %w: %w", err, paysaga.Errorf(paysaga.EUNAVAILABLE, "login is temporarily unavailable"))
}
