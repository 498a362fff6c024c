package auth_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"paysaga"
	"paysaga/auth"
	"paysaga/store"
	"paysaga/store/storetest"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef-test")

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

// newRedis connects to the test Redis and gives the test its own key prefix, deleting its keys
// at the end. An unreachable Redis fails the test.
func newRedis(t *testing.T) (redis.UniversalClient, string) {
	t.Helper()
	addr := os.Getenv("PAYSAGA_TEST_REDIS_ADDR")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		_ = rdb.Close()
		t.Fatalf("Redis at %s is unreachable (%v); start it or set PAYSAGA_TEST_REDIS_ADDR", addr, err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	prefix := "paysaga:test:" + hex.EncodeToString(b[:]) + ":"
	t.Cleanup(func() {
		ctx := context.Background()
		iter := rdb.Scan(ctx, 0, prefix+"*", 100).Iterator()
		for iter.Next(ctx) {
			rdb.Del(ctx, iter.Val())
		}
		_ = rdb.Close()
	})
	return rdb, prefix
}

type env struct {
	svc   *auth.Service
	db    *store.DB
	rdb   redis.UniversalClient
	clock *clock
}

// newEnv builds a service on a fresh SQLite store and the test Redis; adjust tweaks the config.
func newEnv(t *testing.T, adjust func(*auth.Config)) *env {
	t.Helper()
	rdb, prefix := newRedis(t)
	clk := &clock{now: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	cfg := auth.Config{
		Secret: testSecret, Issuer: "paysaga-test", Audience: "paysaga-api-test",
		KeyPrefix: prefix, Now: clk.Now,
		// Cheaper than the default so that the suite stays quick under -race; the code path
		// is the same.
		Password: auth.PasswordParams{Memory: 8 * 1024, Time: 1, Threads: 1},
	}
	if adjust != nil {
		adjust(&cfg)
	}
	db := storetest.Open(t, store.DriverSQLite)
	svc, err := auth.NewService(cfg, db, rdb)
	require.NoError(t, err)
	return &env{svc: svc, db: db, rdb: rdb, clock: clk}
}

func (e *env) signup(t *testing.T, email, password string) *paysaga.User {
	t.Helper()
	u, err := e.svc.Signup(context.Background(), email, password, "Test User")
	require.NoError(t, err)
	return u
}

func requireCode(t *testing.T, code string, err error, msgAndArgs ...any) {
	t.Helper()
	require.Error(t, err, msgAndArgs...)
	require.Equal(t, code, paysaga.ErrorCode(err), msgAndArgs...)
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     auth.Config
		wantErr bool
	}{
		{"missing secret outside dev", auth.Config{}, true},
		{"short secret outside dev", auth.Config{Secret: []byte("too-short-secret")}, true},
		{"31 bytes outside dev", auth.Config{Secret: make([]byte, 31)}, true},
		{"32 bytes outside dev", auth.Config{Secret: make([]byte, 32)}, false},
		{"missing secret in dev", auth.Config{DevMode: true}, false},
		{"short secret in dev", auth.Config{DevMode: true, Secret: []byte("dev")}, false},
		{"negative TTL", auth.Config{Secret: make([]byte, 32), AccessTTL: -time.Second}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.wantErr {
				require.Error(t, err)
				_, nerr := auth.NewService(tc.cfg, &store.DB{}, redis.NewClient(&redis.Options{}))
				require.Error(t, nerr, "NewService refuses it too")
			} else {
				require.NoError(t, err)
			}
		})
	}
}

func TestSignup(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()

	u, err := e.svc.Signup(ctx, "  Kim@Example.com ", "correct horse battery", " 김민준 ")
	require.NoError(t, err)
	require.Equal(t, "kim@example.com", u.Email)
	require.Equal(t, "김민준", u.Name)
	require.Equal(t, paysaga.RoleCustomer, u.Role, "signup never grants more than customer")
	require.True(t, paysaga.HasPrefix(u.ID, paysaga.PrefixUser))
	stored, err := e.db.UserByEmail(ctx, "kim@example.com")
	require.NoError(t, err)
	require.NotContains(t, stored.PasswordHash, "correct horse")
	require.True(t, auth.VerifyPassword("correct horse battery", stored.PasswordHash))

	for _, tc := range []struct {
		name, email, password, userName, code string
	}{
		{"email taken", "kim@example.com", "another long password", "Kim", paysaga.ECONFLICT},
		{"email taken, other case", "KIM@example.COM", "another long password", "Kim", paysaga.ECONFLICT},
		{"malformed email", "kim-at-example.com", "correct horse battery", "Kim", paysaga.EINVALID},
		{"email with display name", "Kim <kim2@example.com>", "correct horse battery", "Kim", paysaga.EINVALID},
		{"empty email", "", "correct horse battery", "Kim", paysaga.EINVALID},
		{"short password", "lee@example.com", "123456789", "Lee", paysaga.EINVALID},
		{"empty name", "lee@example.com", "correct horse battery", "   ", paysaga.EINVALID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.svc.Signup(ctx, tc.email, tc.password, tc.userName)
			requireCode(t, tc.code, err)
			require.NotContains(t, err.Error(), tc.password, "no password in errors")
		})
	}
	n, err := e.db.Bun().NewSelect().Table("users").Count(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 1, n, "failed signups store nothing")
}

func TestLogin(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	u := e.signup(t, "kim@example.com", "correct horse battery")

	pair, err := e.svc.Login(ctx, "KIM@example.com", "correct horse battery", "10.0.0.1")
	require.NoError(t, err)
	require.Equal(t, "Bearer", pair.TokenType)
	require.EqualValues(t, 15*60, pair.ExpiresIn)
	require.NotEmpty(t, pair.RefreshToken)
	claims, err := e.svc.Verify(pair.AccessToken)
	require.NoError(t, err)
	require.Equal(t, u.ID, claims.UserID)
	require.Equal(t, paysaga.RoleCustomer, claims.Role)
	require.NotEmpty(t, claims.TokenID)
	require.Equal(t, e.clock.Now().Add(15*time.Minute), claims.ExpiresAt)

	_, wrongErr := e.svc.Login(ctx, "kim@example.com", "wrong password!", "10.0.0.1")
	requireCode(t, paysaga.EUNAUTHORIZED, wrongErr)
	_, unknownErr := e.svc.Login(ctx, "nobody@example.com", "correct horse battery", "10.0.0.1")
	requireCode(t, paysaga.EUNAUTHORIZED, unknownErr)
	require.Equal(t, wrongErr.Error(), unknownErr.Error(), "unknown user and wrong password look the same")
	require.NotContains(t, wrongErr.Error(), "kim@example.com")
}

// An unknown email must cost about as much as a wrong password, or the response time tells an
// attacker which emails have accounts.
func TestLoginTimingUnknownUserLikeWrongPassword(t *testing.T) {
	e := newEnv(t, func(c *auth.Config) {
		c.Password = auth.DefaultPasswordParams
		c.MaxFailuresPerAccount, c.MaxFailuresPerAddress = 1000, 1000
	})
	ctx := context.Background()
	e.signup(t, "kim@example.com", "correct horse battery")

	// Interleaved, so that a burst of load on this shared machine falls on both alike.
	login := func(email string) time.Duration {
		start := time.Now()
		_, err := e.svc.Login(ctx, email, "wrong password!", "10.0.0.1")
		requireCode(t, paysaga.EUNAUTHORIZED, err)
		return time.Since(start)
	}
	var wrongs, unknowns []time.Duration
	for range 7 {
		wrongs = append(wrongs, login("kim@example.com"))
		unknowns = append(unknowns, login("nobody@example.com"))
	}
	median := func(ds []time.Duration) time.Duration {
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		return ds[len(ds)/2]
	}
	wrong, unknown := median(wrongs), median(unknowns)
	t.Logf("median wrong password %v, unknown user %v", wrong, unknown)
	// Without the dummy hash an unknown user answers in well under a tenth of the time.
	require.Greater(t, unknown, wrong/3)
	require.Less(t, unknown, wrong*3)
}

func TestVerifyRejects(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	u := e.signup(t, "kim@example.com", "correct horse battery")
	pair, err := e.svc.Login(ctx, "kim@example.com", "correct horse battery", "")
	require.NoError(t, err)

	now := e.clock.Now()
	valid := jwt.MapClaims{
		"iss": "paysaga-test", "aud": "paysaga-api-test", "sub": u.ID, "role": "operator",
		"iat": now.Unix(), "exp": now.Add(time.Minute).Unix(), "jti": "jti_x",
	}
	with := func(k string, v any) jwt.MapClaims {
		c := jwt.MapClaims{}
		for kk, vv := range valid {
			c[kk] = vv
		}
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	sign := func(m jwt.SigningMethod, key any, c jwt.Claims) string {
		s, err := jwt.NewWithClaims(m, c).SignedString(key)
		require.NoError(t, err)
		return s
	}

	// The forged-but-well-formed token is accepted, so each case below fails for its own reason.
	ok, err := e.svc.Verify(sign(jwt.SigningMethodHS256, testSecret, valid))
	require.NoError(t, err)
	require.Equal(t, paysaga.RoleOperator, ok.Role)

	for _, tc := range []struct {
		name  string
		token func() string
	}{
		{"other key", func() string {
			return sign(jwt.SigningMethodHS256, []byte("another-secret-another-secret-xx"), valid)
		}},
		{"alg none", func() string { return sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, valid) }},
		{"HS512 with our key", func() string { return sign(jwt.SigningMethodHS512, testSecret, valid) }},
		{"wrong audience", func() string { return sign(jwt.SigningMethodHS256, testSecret, with("aud", "someone-else")) }},
		{"wrong issuer", func() string { return sign(jwt.SigningMethodHS256, testSecret, with("iss", "evil")) }},
		{"no expiry", func() string { return sign(jwt.SigningMethodHS256, testSecret, with("exp", nil)) }},
		{"expired", func() string {
			return sign(jwt.SigningMethodHS256, testSecret, with("exp", now.Add(-time.Second).Unix()))
		}},
		{"unknown role", func() string { return sign(jwt.SigningMethodHS256, testSecret, with("role", "root")) }},
		{"no subject", func() string { return sign(jwt.SigningMethodHS256, testSecret, with("sub", nil)) }},
		{"garbage", func() string { return "not.a.jwt" }},
		{"empty", func() string { return "" }},
		{"tampered payload", func() string { return pair.AccessToken[:len(pair.AccessToken)-2] + "xx" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.svc.Verify(tc.token())
			requireCode(t, paysaga.EUNAUTHORIZED, err)
		})
	}

	// Our own token expires with the clock.
	_, err = e.svc.Verify(pair.AccessToken)
	require.NoError(t, err)
	e.clock.Advance(15*time.Minute + time.Second)
	_, err = e.svc.Verify(pair.AccessToken)
	requireCode(t, paysaga.EUNAUTHORIZED, err, "expired")
}

func TestRefreshRotationAndReuse(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	u := e.signup(t, "kim@example.com", "correct horse battery")
	first, err := e.svc.Login(ctx, "kim@example.com", "correct horse battery", "")
	require.NoError(t, err)
	otherSession, err := e.svc.Login(ctx, "kim@example.com", "correct horse battery", "")
	require.NoError(t, err)

	second, err := e.svc.Refresh(ctx, first.RefreshToken)
	require.NoError(t, err)
	require.NotEqual(t, first.RefreshToken, second.RefreshToken)
	claims, err := e.svc.Verify(second.AccessToken)
	require.NoError(t, err)
	require.Equal(t, u.ID, claims.UserID)

	third, err := e.svc.Refresh(ctx, second.RefreshToken)
	require.NoError(t, err)

	// Someone presents the first (already used) token: the whole family dies, including the
	// newest token, but the user's other session lives on.
	_, err = e.svc.Refresh(ctx, first.RefreshToken)
	requireCode(t, paysaga.EUNAUTHORIZED, err)
	_, err = e.svc.Refresh(ctx, third.RefreshToken)
	requireCode(t, paysaga.EUNAUTHORIZED, err, "family revoked after reuse")
	_, err = e.svc.Refresh(ctx, otherSession.RefreshToken)
	require.NoError(t, err, "another login's family is untouched")

	for name, token := range map[string]string{"unknown": "bm9wZQ", "empty": "", "huge": string(make([]byte, 4096))} {
		_, err = e.svc.Refresh(ctx, token)
		requireCode(t, paysaga.EUNAUTHORIZED, err, name)
	}
}

func TestRefreshConcurrentUseHasOneWinner(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	e.signup(t, "kim@example.com", "correct horse battery")
	pair, err := e.svc.Login(ctx, "kim@example.com", "correct horse battery", "")
	require.NoError(t, err)

	const n = 8
	results := make([]*auth.TokenPair, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { results[i], errs[i] = e.svc.Refresh(ctx, pair.RefreshToken) })
	}
	wg.Wait()
	wins := 0
	for i := range n {
		if errs[i] == nil {
			wins++
			continue
		}
		requireCode(t, paysaga.EUNAUTHORIZED, errs[i])
	}
	require.Equal(t, 1, wins, "one refresh token yields one new pair")
}

func TestRefreshExpires(t *testing.T) {
	e := newEnv(t, func(c *auth.Config) { c.RefreshTTL = time.Hour })
	ctx := context.Background()
	e.signup(t, "kim@example.com", "correct horse battery")
	pair, err := e.svc.Login(ctx, "kim@example.com", "correct horse battery", "")
	require.NoError(t, err)
	e.clock.Advance(time.Hour)
	_, err = e.svc.Refresh(ctx, pair.RefreshToken)
	requireCode(t, paysaga.EUNAUTHORIZED, err)
}

func TestLogout(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	e.signup(t, "kim@example.com", "correct horse battery")
	first, err := e.svc.Login(ctx, "kim@example.com", "correct horse battery", "")
	require.NoError(t, err)
	second, err := e.svc.Refresh(ctx, first.RefreshToken)
	require.NoError(t, err)

	// Logging out with any token of the session ends the session.
	require.NoError(t, e.svc.Logout(ctx, first.RefreshToken))
	require.NoError(t, e.svc.Logout(ctx, first.RefreshToken), "twice is fine")
	_, err = e.svc.Refresh(ctx, second.RefreshToken)
	requireCode(t, paysaga.EUNAUTHORIZED, err)
	requireCode(t, paysaga.EUNAUTHORIZED, e.svc.Logout(ctx, "bm9wZQ"))
}

func TestLoginRateLimit(t *testing.T) {
	ctx := context.Background()
	const password = "correct horse battery"

	// Issue 11, item 11: guessing a victim's password from one address slows that address
	// down, progressively, and never locks the victim out elsewhere.
	t.Run("an attacker's failures do not lock the victim out", func(t *testing.T) {
		e := newEnv(t, func(c *auth.Config) { c.LockoutBase = 200 * time.Millisecond })
		e.signup(t, "kim@example.com", password)
		for i := range 5 {
			_, err := e.svc.Login(ctx, "kim@example.com", "wrong password!", "10.0.0.66")
			requireCode(t, paysaga.EUNAUTHORIZED, err, "attempt %d", i+1)
		}
		// The attacker must now wait before the next guess on this account…
		_, err := e.svc.Login(ctx, "kim@example.com", "wrong password!", "10.0.0.66")
		requireCode(t, paysaga.ERATELIMITED, err)
		var rl *auth.RateLimitError
		require.True(t, errors.As(err, &rl))
		require.Greater(t, rl.RetryAfter, time.Duration(0))
		require.LessOrEqual(t, rl.RetryAfter, 15*time.Minute)
		// …while Kim, from her own address, logs in at once.
		_, err = e.svc.Login(ctx, "kim@example.com", password, "10.0.0.2")
		require.NoError(t, err, "the victim is not locked out by someone else's failures")

		// The attacker's waits grow: after the pause, one more guess, then a longer pause.
		start := time.Now()
		require.Eventually(t, func() bool {
			_, err := e.svc.Login(ctx, "kim@example.com", "wrong password!", "10.0.0.66")
			return paysaga.ErrorCode(err) == paysaga.EUNAUTHORIZED
		}, 5*time.Second, 20*time.Millisecond)
		first := time.Since(start)
		_, err = e.svc.Login(ctx, "kim@example.com", "wrong password!", "10.0.0.66")
		requireCode(t, paysaga.ERATELIMITED, err)
		require.True(t, errors.As(err, &rl))
		require.Greater(t, rl.RetryAfter, time.Duration(0))
		start = time.Now()
		require.Eventually(t, func() bool {
			_, err := e.svc.Login(ctx, "kim@example.com", "wrong password!", "10.0.0.66")
			return paysaga.ErrorCode(err) == paysaga.EUNAUTHORIZED
		}, 5*time.Second, 20*time.Millisecond)
		require.Greater(t, time.Since(start), first, "each further failure doubles the wait")
	})

	t.Run("a distributed attack meets the per-email ceiling, which known addresses pass", func(t *testing.T) {
		e := newEnv(t, func(c *auth.Config) { c.MaxFailuresPerEmail = 10 })
		e.signup(t, "kim@example.com", password)
		_, err := e.svc.Login(ctx, "kim@example.com", password, "10.0.0.2")
		require.NoError(t, err, "Kim's address is now known for her account")
		for i := range 10 {
			_, err := e.svc.Login(ctx, "kim@example.com", "wrong password!", "172.16.0."+string(rune('0'+i)))
			requireCode(t, paysaga.EUNAUTHORIZED, err)
		}
		_, err = e.svc.Login(ctx, "kim@example.com", "wrong password!", "172.16.1.1")
		requireCode(t, paysaga.ERATELIMITED, err, "an eleventh address is refused")
		_, err = e.svc.Login(ctx, "kim@example.com", password, "10.0.0.2")
		require.NoError(t, err, "Kim, from an address she logged in from before, is not")
	})

	t.Run("per address", func(t *testing.T) {
		e := newEnv(t, func(c *auth.Config) { c.MaxFailuresPerAddress = 6 })
		e.signup(t, "kim@example.com", password)
		for i := range 6 {
			_, err := e.svc.Login(ctx, "guess"+string(rune('a'+i))+"@example.com", "wrong password!", "10.0.0.9")
			requireCode(t, paysaga.EUNAUTHORIZED, err)
		}
		_, err := e.svc.Login(ctx, "kim@example.com", password, "10.0.0.9")
		requireCode(t, paysaga.ERATELIMITED, err)
		_, err = e.svc.Login(ctx, "kim@example.com", password, "10.0.0.10")
		require.NoError(t, err, "another address is unaffected")
	})

	t.Run("success resets the account count", func(t *testing.T) {
		e := newEnv(t, nil)
		e.signup(t, "kim@example.com", password)
		for range 2 {
			for range 4 {
				_, err := e.svc.Login(ctx, "kim@example.com", "wrong password!", "10.0.0.1")
				requireCode(t, paysaga.EUNAUTHORIZED, err)
			}
			_, err := e.svc.Login(ctx, "kim@example.com", password, "10.0.0.1")
			require.NoError(t, err)
		}
	})

	t.Run("concurrent guesses cannot pass the limit", func(t *testing.T) {
		e := newEnv(t, nil)
		e.signup(t, "kim@example.com", password)
		const n = 20
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { _, errs[i] = e.svc.Login(ctx, "kim@example.com", "wrong password!", "") })
		}
		wg.Wait()
		checked := 0
		for _, err := range errs {
			if paysaga.ErrorCode(err) == paysaga.EUNAUTHORIZED {
				checked++
			} else {
				requireCode(t, paysaga.ERATELIMITED, err)
			}
		}
		require.Equal(t, 5, checked, "exactly the allowed number of passwords were checked")
	})
}

func TestGrant(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	e.signup(t, "shop@example.com", "correct horse battery")
	pair, err := e.svc.Login(ctx, "shop@example.com", "correct horse battery", "")
	require.NoError(t, err)

	require.NoError(t, e.svc.Grant(ctx, "Shop@Example.com", paysaga.RoleMerchant))
	// The next refresh carries the new role.
	next, err := e.svc.Refresh(ctx, pair.RefreshToken)
	require.NoError(t, err)
	claims, err := e.svc.Verify(next.AccessToken)
	require.NoError(t, err)
	require.Equal(t, paysaga.RoleMerchant, claims.Role)

	requireCode(t, paysaga.ENOTFOUND, e.svc.Grant(ctx, "nobody@example.com", paysaga.RoleOperator))
	requireCode(t, paysaga.EINVALID, e.svc.Grant(ctx, "shop@example.com", "root"))
}
