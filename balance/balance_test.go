package balance_test

import (
	"context"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"paysaga"
	"paysaga/balance"
	"paysaga/nh"
	"paysaga/nhsim"
)

// These tests run against the Redis at PAYSAGA_TEST_REDIS_ADDR (default 127.0.0.1:6379) and the
// in-process simulator; an unreachable Redis fails them.

// TestRedis returns a client of the test Redis and a key prefix of the test's own, whose keys
// are deleted when the test ends.
func testRedis(t *testing.T) (*redis.Client, string) {
	t.Helper()
	addr := os.Getenv("PAYSAGA_TEST_REDIS_ADDR")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = rdb.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, rdb.Ping(ctx).Err(), "Redis at %s is unreachable; start it or set PAYSAGA_TEST_REDIS_ADDR", addr)
	prefix := "paysaga:test:balance:" + strings.TrimPrefix(paysaga.NewID("t_"), "t_") + ":"
	t.Cleanup(func() {
		keys, _ := rdb.Keys(context.Background(), prefix+"*").Result()
		if len(keys) > 0 {
			_ = rdb.Del(context.Background(), keys...).Err()
		}
	})
	return rdb, prefix
}

type accounts map[string]*paysaga.Account

func (a accounts) GetAccount(_ context.Context, id string) (*paysaga.Account, error) {
	if acct, ok := a[id]; ok {
		return acct, nil
	}
	return nil, paysaga.Errorf(paysaga.ENOTFOUND, "account not found")
}

type fixture struct {
	svc    *balance.Service
	sim    *nhsim.Sim
	client *nh.Client
	seq    *nh.MemorySequencer
	acct   *paysaga.Account
	rdb    *redis.Client
}

func newFixture(t *testing.T, mutate func(*balance.Config)) *fixture {
	t.Helper()
	sim := nhsim.New(nhsim.Config{Seed: 1})
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	t.Cleanup(sim.Close) // first: cuts injected delays short, so that the server closes at once
	seq := nh.NewMemorySequencer()
	client, err := nh.New(sim.ClientConfig(srv.URL), seq)
	require.NoError(t, err)
	bank, err := sim.CreateAccount(nhsim.Account{Holder: "박지훈", Birth: "19750505", Balance: 120_000})
	require.NoError(t, err)
	fin, err := sim.RegisterFinAccount(bank.Bncd, bank.Acno, true)
	require.NoError(t, err)
	acct := &paysaga.Account{ID: paysaga.NewID(paysaga.PrefixAccount), Status: paysaga.AccountActive, FinAccount: fin}
	rdb, prefix := testRedis(t)
	cfg := balance.Config{Redis: rdb, Bank: client, Accounts: accounts{acct.ID: acct}, KeyPrefix: prefix,
		Timeout: time.Second, FailuresToOpen: 3, OpenFor: 300 * time.Millisecond,
		RefreshEvery: -1} // every refresh asks the bank, unless a test says otherwise
	if mutate != nil {
		mutate(&cfg)
	}
	svc, err := balance.New(cfg)
	require.NoError(t, err)
	return &fixture{svc: svc, sim: sim, client: client, seq: seq, acct: acct, rdb: rdb}
}

func (f *fixture) inquiries() int { return f.sim.Stats()[nh.APIInquireBalance].Requests }

// spend moves money out of the account at the bank, behind the cache's back.
func (f *fixture) spend(t *testing.T, amount int64) {
	t.Helper()
	ctx := context.Background()
	ref, err := nh.NewRef(ctx, f.seq, time.Now())
	require.NoError(t, err)
	_, err = f.client.DrawingTransfer(ctx, ref, nh.DrawingTransferRequest{FinAcno: f.acct.FinAccount, Tram: amount, DractOtlt: "test"})
	require.NoError(t, err)
}

func TestCachedAndRefreshed(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)

	first, err := f.svc.Get(ctx, f.acct, false)
	require.NoError(t, err, "nothing known: the bank is asked")
	require.Equal(t, int64(120_000), first.Balance)
	require.Equal(t, int64(120_000), first.Available)
	require.False(t, first.Stale)
	require.Equal(t, 1, f.inquiries())

	f.spend(t, 20_000)
	cached, err := f.svc.Get(ctx, f.acct, false)
	require.NoError(t, err)
	require.Equal(t, first, cached, "answered from the cache, as of the first inquiry")
	require.Equal(t, 1, f.inquiries())

	fresh, err := f.svc.Get(ctx, f.acct, true)
	require.NoError(t, err)
	require.Equal(t, int64(100_000), fresh.Balance)
	require.False(t, fresh.AsOf.Before(first.AsOf))
	require.Equal(t, 2, f.inquiries())

	// A payment moved money: the activity refreshes the cache.
	f.spend(t, 10_000)
	require.NoError(t, f.svc.AfterMoneyMovement(ctx, f.acct.ID))
	after, err := f.svc.Get(ctx, f.acct, false)
	require.NoError(t, err)
	require.Equal(t, int64(90_000), after.Balance)
	require.Equal(t, 3, f.inquiries())

	ttl, err := f.rdb.TTL(ctx, keyOf(t, f)).Result()
	require.NoError(t, err)
	require.Greater(t, ttl, time.Hour, "kept with a TTL")
}

func keyOf(t *testing.T, f *fixture) string {
	t.Helper()
	keys, err := f.rdb.Keys(context.Background(), "paysaga:test:balance:*"+f.acct.ID).Result()
	require.NoError(t, err)
	require.Len(t, keys, 1)
	return keys[0]
}

func TestStaleWhileTheBankFails(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, func(c *balance.Config) { c.FailuresToOpen = 100 })

	known, err := f.svc.Get(ctx, f.acct, true)
	require.NoError(t, err)

	require.NoError(t, f.sim.SetFault(nh.APIInquireBalance, nhsim.Fault{Kind: nhsim.FaultHTTP500, Probability: 1}))
	stale, err := f.svc.Get(ctx, f.acct, true)
	require.NoError(t, err)
	require.True(t, stale.Stale, "the bank is down: last known value, marked stale")
	require.Equal(t, known.Balance, stale.Balance)
	require.Equal(t, known.AsOf, stale.AsOf, "as_of says how old it is")

	// A money movement while the bank is down: the known value is kept but outdated.
	require.Error(t, f.svc.AfterMoneyMovement(ctx, f.acct.ID))
	after, err := f.svc.Get(ctx, f.acct, false)
	require.NoError(t, err)
	require.True(t, after.Stale, "outdated by a movement and not refreshable: stale")

	f.sim.ClearFaults()
	back, err := f.svc.Get(ctx, f.acct, false)
	require.NoError(t, err, "the outdated value makes the next read ask the bank")
	require.False(t, back.Stale)
	require.True(t, back.AsOf.After(known.AsOf) || back.AsOf.Equal(known.AsOf))

	// Nothing known and the bank down: 503 material.
	other := &paysaga.Account{ID: paysaga.NewID(paysaga.PrefixAccount), Status: paysaga.AccountActive, FinAccount: f.acct.FinAccount}
	require.NoError(t, f.sim.SetFault(nh.APIInquireBalance, nhsim.Fault{Kind: nhsim.FaultDrop, Probability: 1}))
	_, err = f.svc.Get(ctx, other, false)
	require.Equal(t, paysaga.EUNAVAILABLE, paysaga.ErrorCode(err))
	var ra interface{ RetryAfter() time.Duration }
	require.ErrorAs(t, err, &ra)
	require.Positive(t, ra.RetryAfter())
	require.NotContains(t, err.Error(), f.acct.FinAccount, "no fin account in an error")

	inactive := &paysaga.Account{ID: "acct_p", Status: paysaga.AccountPending}
	_, err = f.svc.Get(ctx, inactive, false)
	require.Equal(t, paysaga.ECONFLICT, paysaga.ErrorCode(err))
}

func TestShortTimeout(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, func(c *balance.Config) { c.Timeout = 200 * time.Millisecond })
	_, err := f.svc.Get(ctx, f.acct, true)
	require.NoError(t, err)
	require.NoError(t, f.sim.SetFault(nh.APIInquireBalance, nhsim.Fault{Kind: nhsim.FaultLatency, Probability: 1, Latency: 5 * time.Second}))
	start := time.Now()
	b, err := f.svc.Get(ctx, f.acct, true)
	require.NoError(t, err)
	require.True(t, b.Stale)
	require.Less(t, time.Since(start), 2*time.Second, "a slow bank costs the caller the timeout, not the bank's delay")
}

func TestCircuitBreakerOpensAndCloses(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil) // 3 failures open it for 300ms
	_, err := f.svc.Get(ctx, f.acct, true)
	require.NoError(t, err)
	require.Equal(t, "closed", f.svc.BreakerState())

	require.NoError(t, f.sim.SetFault(nh.APIInquireBalance, nhsim.Fault{Kind: nhsim.FaultHTTP500, Probability: 1}))
	for i := 0; i < 3; i++ {
		b, err := f.svc.Get(ctx, f.acct, true)
		require.NoError(t, err)
		require.True(t, b.Stale)
	}
	require.Equal(t, "open", f.svc.BreakerState())
	asked := f.inquiries()
	for i := 0; i < 5; i++ {
		b, err := f.svc.Get(ctx, f.acct, true)
		require.NoError(t, err)
		require.True(t, b.Stale)
	}
	require.Equal(t, asked, f.inquiries(), "while open, the bank is not asked at all")

	f.sim.ClearFaults()
	require.Eventually(t, func() bool { return f.svc.BreakerState() == "half-open" }, 5*time.Second, 20*time.Millisecond)
	b, err := f.svc.Get(ctx, f.acct, true)
	require.NoError(t, err)
	require.False(t, b.Stale, "the trial inquiry went through")
	require.Equal(t, asked+1, f.inquiries())
	require.Equal(t, "closed", f.svc.BreakerState())

	// A refusal is an answer, not an outage: it never opens the circuit.
	require.NoError(t, f.sim.SetFault(nh.APIInquireBalance, nhsim.Fault{Kind: nhsim.FaultDecline, Probability: 1}))
	for i := 0; i < 5; i++ {
		_, _ = f.svc.Get(ctx, f.acct, true)
	}
	require.Equal(t, "closed", f.svc.BreakerState())
}

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Advance(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

// Issue 11, Low: ?refresh=true asks the bank at most once per RefreshEvery per account; within
// it, the known balance is answered, with its AsOf.
func TestRefreshThrottledPerAccount(t *testing.T) {
	ctx := context.Background()
	clk := &fakeClock{now: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	f := newFixture(t, func(c *balance.Config) { c.RefreshEvery, c.Now = 5*time.Second, clk.Now })

	first, err := f.svc.Get(ctx, f.acct, true)
	require.NoError(t, err)
	require.Equal(t, 1, f.inquiries())
	f.spend(t, 20_000)
	for range 10 {
		clk.Advance(400 * time.Millisecond)
		again, err := f.svc.Get(ctx, f.acct, true)
		require.NoError(t, err)
		require.Equal(t, first, again, "throttled: the known balance, as of its inquiry")
	}
	require.Equal(t, 1, f.inquiries(), "ten refreshes within 5 s ask the bank once")

	clk.Advance(time.Second)
	fresh, err := f.svc.Get(ctx, f.acct, true)
	require.NoError(t, err)
	require.Equal(t, int64(100_000), fresh.Balance)
	require.Equal(t, clk.Now(), fresh.AsOf)
	require.Equal(t, 2, f.inquiries())
}

// A money movement makes the known balance outdated, through the Invalidator that needs only
// Redis (the event consumers have no bank client).
func TestInvalidatorMakesTheNextReadAskTheBank(t *testing.T) {
	ctx := context.Background()
	clk := &fakeClock{now: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	var prefix string
	f := newFixture(t, func(c *balance.Config) { c.RefreshEvery, c.Now, prefix = 5*time.Second, clk.Now, c.KeyPrefix })
	_, err := f.svc.Get(ctx, f.acct, false)
	require.NoError(t, err)
	f.spend(t, 20_000)
	require.NoError(t, balance.Invalidator{Redis: f.rdb, KeyPrefix: prefix}.Invalidate(ctx, f.acct.ID))
	b, err := f.svc.Get(ctx, f.acct, false)
	require.NoError(t, err)
	require.Equal(t, int64(100_000), b.Balance, "the movement is seen at once, throttle or not")
	require.Equal(t, 2, f.inquiries())
	b, err = f.svc.Get(ctx, f.acct, false)
	require.NoError(t, err)
	require.Equal(t, 2, f.inquiries(), "and cached again")
	require.NoError(t, balance.Invalidator{Redis: f.rdb, KeyPrefix: prefix}.Invalidate(ctx, "acct_unknown"), "nothing known: nothing to do")
}
