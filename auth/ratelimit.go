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

// limiter counts login attempts in fixed windows in Redis, per account (a hash of the email, so
// Redis holds no addresses) and per client address. An attempt is counted before the password
// is checked, atomically with the limit check, so concurrent guesses cannot slip past the
// limit; a successful login takes its attempt back and clears the account's count.
type limiter struct {
	rdb                    redis.UniversalClient
	prefix                 string
	window                 time.Duration
	perAccount, perAddress int
}

// attemptScript: KEYS = counters, ARGV = window in ms, then each key's limit. If any counter is
// at its limit, returns {0, pttl of the one that blocks longest}; otherwise counts the attempt
// in each (starting its window on first use) and returns {1, 0}.
var attemptScript = redis.NewScript(`
local wait = -1
for i, key in ipairs(KEYS) do
  local n = tonumber(redis.call('GET', key) or '0')
  if n >= tonumber(ARGV[i + 1]) then
    local ttl = redis.call('PTTL', key)
    if ttl < 0 then
      redis.call('PEXPIRE', key, ARGV[1])
      ttl = tonumber(ARGV[1])
    end
    if ttl > wait then wait = ttl end
  end
end
if wait >= 0 then return {0, wait} end
for _, key in ipairs(KEYS) do
  if redis.call('INCR', key) == 1 then redis.call('PEXPIRE', key, ARGV[1]) end
end
return {1, 0}
`)

// successScript: KEYS[1] = account counter (deleted), KEYS[2] = address counter (one attempt
// given back).
var successScript = redis.NewScript(`
redis.call('DEL', KEYS[1])
if KEYS[2] and (tonumber(redis.call('GET', KEYS[2]) or '0') > 0) then
  redis.call('DECR', KEYS[2])
end
return 1
`)

func (l *limiter) keys(email, addr string) ([]string, []any) {
	sum := sha256.Sum256([]byte(email))
	// The {login} hash tag keeps both counters in one Redis Cluster slot, as a script needs.
	keys := []string{l.prefix + "{login}:account:" + hex.EncodeToString(sum[:16])}
	args := []any{l.window.Milliseconds(), l.perAccount}
	if addr != "" {
		keys = append(keys, l.prefix+"{login}:addr:"+addr)
		args = append(args, l.perAddress)
	}
	return keys, args
}

func (l *limiter) attempt(ctx context.Context, email, addr string) error {
	keys, args := l.keys(email, addr)
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
	keys, _ := l.keys(email, addr)
	if err := successScript.Run(ctx, l.rdb, keys).Err(); err != nil && !errors.Is(err, redis.Nil) {
		return unavailable(err)
	}
	return nil
}

// unavailable: without Redis, logins fail closed rather than go unlimited.
func unavailable(err error) error {
	return fmt.Errorf("login rate limit: %w: %w", err, paysaga.Errorf(paysaga.EUNAVAILABLE, "login is temporarily unavailable"))
}
