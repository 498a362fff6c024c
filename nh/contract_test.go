package nh_test

import (
	"context"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paysaga/nh"
	"paysaga/nhsim"
)

// The contract tests run the client against the simulator over HTTP, so that both sides of
// every rule in NH-API.md are checked together.

// fakeClock is shared by the simulator and the client, so that issuance delays and dates move
// only when a test says so.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

const (
	customerBirth = "19900101"
	issueDelay    = 3 * time.Second
)

type fixture struct {
	sim      *nhsim.Sim
	client   *nh.Client
	clock    *fakeClock
	seq      *nh.MemorySequencer
	url      string
	customer nhsim.Account // NH bank, registered for withdrawals
	other    nhsim.Account // KB, no fin account
	readOnly nhsim.Account // NH mutual, fin account without withdrawals
	fin      string
	roFin    string
	rgno     string // an issued registration of customer
}

func newFixture(t *testing.T, mutate ...func(*nh.Config)) *fixture {
	t.Helper()
	f := &fixture{clock: &fakeClock{now: fixedNow}, seq: nh.NewMemorySequencer()}
	f.sim = nhsim.New(nhsim.Config{
		Iscd: testIscd, AccessToken: testToken, IssueDelay: issueDelay, Seed: 1, Clock: f.clock.Now,
		FintechAccount: nhsim.Account{Balance: 1_000_000},
	})
	srv := httptest.NewServer(f.sim.Handler())
	t.Cleanup(func() {
		f.sim.Close()
		srv.Close()
	})
	f.url = srv.URL
	var err error
	f.customer, err = f.sim.CreateAccount(nhsim.Account{Holder: "김고객", Birth: customerBirth, Balance: 100_000})
	require.NoError(t, err)
	f.other, err = f.sim.CreateAccount(nhsim.Account{Bncd: "004", Holder: "이타행", Birth: "19800505", Balance: 5_000})
	require.NoError(t, err)
	f.readOnly, err = f.sim.CreateAccount(nhsim.Account{Bncd: "012", Holder: "박조회", Birth: "19700707", Balance: 7_000})
	require.NoError(t, err)
	f.roFin, err = f.sim.RegisterFinAccount(f.readOnly.Bncd, f.readOnly.Acno, false)
	require.NoError(t, err)

	cfg := nh.Config{BaseURL: srv.URL, Iscd: testIscd, AccessToken: testToken, Now: f.clock.Now,
		Timeouts: map[string]time.Duration{"*": 2 * time.Second}}
	for _, m := range mutate {
		m(&cfg)
	}
	f.client, err = nh.New(cfg, f.seq)
	require.NoError(t, err)

	// Register the customer's account the way the engine does, through the two calls.
	ctx := context.Background()
	open, err := f.client.OpenFinAccountDirect(ctx, nh.OpenFinAccountRequest{Withdrawal: true, BrdtBrno: customerBirth, Bncd: f.customer.Bncd, Acno: f.customer.Acno})
	require.NoError(t, err)
	f.rgno = open.Rgno
	f.clock.Advance(issueDelay)
	issued, err := f.client.CheckOpenFinAccountDirect(ctx, f.rgno, customerBirth)
	require.NoError(t, err)
	f.fin = issued.FinAcno
	return f
}

func (f *fixture) ref(t *testing.T) nh.Ref {
	t.Helper()
	ref, err := nh.NewRef(context.Background(), f.seq, f.clock.Now())
	require.NoError(t, err)
	return ref
}

func TestContractFinAccountIssuance(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	acct, err := f.sim.CreateAccount(nhsim.Account{Holder: "최신규", Birth: "20000229"})
	require.NoError(t, err)

	open, err := f.client.OpenFinAccountDirect(ctx, nh.OpenFinAccountRequest{BrdtBrno: "20000229", Bncd: acct.Bncd, Acno: acct.Acno})
	require.NoError(t, err)
	require.NotEmpty(t, open.Rgno)
	require.Equal(t, nh.RpcdOK, open.Header.Rpcd)
	require.Equal(t, nh.APIOpenFinAccountDirect, open.Header.ApiNm)
	require.NotEmpty(t, open.Header.IsTuno, "the bank echoes the IsTuno")

	_, err = f.client.CheckOpenFinAccountDirect(ctx, open.Rgno, "20000229")
	require.Equal(t, nh.OutcomeInProgress, nh.Classify(err), "issuance takes IssueDelay")
	var inProgress *nh.InProgressError
	require.ErrorAs(t, err, &inProgress)
	require.Equal(t, nh.RpcdInProgress, inProgress.Rpcd)

	f.clock.Advance(issueDelay - time.Second)
	_, err = f.client.CheckOpenFinAccountDirect(ctx, open.Rgno, "20000229")
	require.Equal(t, nh.OutcomeInProgress, nh.Classify(err))

	f.clock.Advance(time.Second)
	issued, err := f.client.CheckOpenFinAccountDirect(ctx, open.Rgno, "20000229")
	require.NoError(t, err)
	require.NotEmpty(t, issued.FinAcno)
	require.LessOrEqual(t, len(issued.FinAcno), 30)
	require.Equal(t, nh.Today(f.clock.Now()), issued.RgsnYmd)

	// Opened with DrtrRgyn=N: balance yes, withdrawal no.
	bal, err := f.client.InquireBalance(ctx, issued.FinAcno)
	require.NoError(t, err)
	require.Equal(t, int64(0), bal.Ldbl)
	_, err = f.client.DrawingTransfer(ctx, f.ref(t), nh.DrawingTransferRequest{FinAcno: issued.FinAcno, Tram: 1})
	requireDeclined(t, err, nhsim.CodeNotForWithdraw)

	tests := []struct {
		name string
		call func() error
		code string
	}{
		{"open with a wrong birth date", func() error {
			_, err := f.client.OpenFinAccountDirect(ctx, nh.OpenFinAccountRequest{BrdtBrno: "19991231", Bncd: acct.Bncd, Acno: acct.Acno})
			return err
		}, nhsim.CodeBirthMismatch},
		{"open an unknown account", func() error {
			_, err := f.client.OpenFinAccountDirect(ctx, nh.OpenFinAccountRequest{BrdtBrno: "20000229", Bncd: "011", Acno: "999999999"})
			return err
		}, nhsim.CodeUnknownAccount},
		{"open with an impossible birth date", func() error {
			_, err := f.client.OpenFinAccountDirect(ctx, nh.OpenFinAccountRequest{BrdtBrno: "20010229", Bncd: acct.Bncd, Acno: acct.Acno})
			return err
		}, nhsim.CodeInvalidField},
		{"check an unknown Rgno", func() error {
			_, err := f.client.CheckOpenFinAccountDirect(ctx, "424242", "20000229")
			return err
		}, nhsim.CodeUnknownRgno},
		{"check with a wrong birth date", func() error {
			_, err := f.client.CheckOpenFinAccountDirect(ctx, open.Rgno, "20000228")
			return err
		}, nhsim.CodeBirthMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { requireDeclined(t, tt.call(), tt.code) })
	}
}

func requireDeclined(t *testing.T, err error, code string) {
	t.Helper()
	require.Equal(t, nh.OutcomeDeclined, nh.Classify(err), "error: %v", err)
	var d *nh.DeclinedError
	require.ErrorAs(t, err, &d)
	require.Equal(t, code, d.Rpcd)
	require.Equal(t, nhsim.Message(code), d.Rsms)
}

func TestContractMoneyMovement(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	total := f.sim.TotalMoney()

	// Withdrawal: customer → fintech.
	ref := f.ref(t)
	res, err := f.client.DrawingTransfer(ctx, ref, nh.DrawingTransferRequest{FinAcno: f.fin, Tram: 30_000, DractOtlt: "페이사가"})
	require.NoError(t, err)
	require.Equal(t, f.fin, res.FinAcno)
	require.Equal(t, ref.IsTuno, res.Header.IsTuno)
	require.Equal(t, int64(70_000), f.sim.Balance(f.customer.Bncd, f.customer.Acno))
	require.Equal(t, int64(1_030_000), f.sim.Fintech().Balance)
	check, err := f.client.CheckOnDrawingTransfer(ctx, nh.CheckOnDrawingTransferRequest{Original: ref, FinAcno: f.fin, Tram: 30_000})
	require.NoError(t, err)
	require.True(t, check.Executed())

	// The same IsTuno again: refused, nothing moves.
	_, err = f.client.DrawingTransfer(ctx, ref, nh.DrawingTransferRequest{FinAcno: f.fin, Tram: 30_000})
	requireDeclined(t, err, nhsim.CodeDuplicateIsTuno)
	require.Equal(t, int64(70_000), f.sim.Balance(f.customer.Bncd, f.customer.Acno))

	// Deposits: to the fin account, to an NH account by number, to another bank.
	ref1 := f.ref(t)
	_, err = f.client.ReceivedTransferFinAccount(ctx, ref1, nh.ReceivedTransferFinAccountRequest{FinAcno: f.fin, Tram: 1_000, DractOtlt: "환불", MractOtlt: "페이사가 환불"})
	require.NoError(t, err)
	ref2 := f.ref(t)
	_, err = f.client.ReceivedTransferAccountNumber(ctx, ref2, nh.ReceivedTransferAccountRequest{Bncd: f.readOnly.Bncd, Acno: f.readOnly.Acno, Tram: 2_000})
	require.NoError(t, err)
	ref3 := f.ref(t)
	_, err = f.client.ReceivedTransferOtherBank(ctx, ref3, nh.ReceivedTransferAccountRequest{Bncd: f.other.Bncd, Acno: f.other.Acno, Tram: 3_000})
	require.NoError(t, err)
	require.Equal(t, int64(71_000), f.sim.Balance(f.customer.Bncd, f.customer.Acno))
	require.Equal(t, int64(9_000), f.sim.Balance(f.readOnly.Bncd, f.readOnly.Acno))
	require.Equal(t, int64(8_000), f.sim.Balance(f.other.Bncd, f.other.Acno))
	require.Equal(t, int64(1_024_000), f.sim.Fintech().Balance)
	require.Equal(t, total, f.sim.TotalMoney())
	require.Len(t, f.sim.Transfers(), 4)

	for _, q := range []nh.CheckOnReceivedTransferRequest{
		{Original: ref1, FinAcno: f.fin, Tram: 1_000},
		{Original: ref2, Bncd: f.readOnly.Bncd, Acno: f.readOnly.Acno, Tram: 2_000},
		{Original: ref3, Bncd: f.other.Bncd, Acno: f.other.Acno, Tram: 3_000},
	} {
		check, err := f.client.CheckOnReceivedTransfer(ctx, q)
		require.NoError(t, err)
		require.True(t, check.Executed(), "original %s", q.Original.IsTuno)
	}

	// Result inquiries about something never sent, and about mismatched originals.
	never := f.ref(t)
	check, err = f.client.CheckOnDrawingTransfer(ctx, nh.CheckOnDrawingTransferRequest{Original: never, FinAcno: f.fin, Tram: 1})
	require.NoError(t, err)
	require.True(t, check.NotExecuted())
	_, err = f.client.CheckOnDrawingTransfer(ctx, nh.CheckOnDrawingTransferRequest{Original: ref, FinAcno: f.fin, Tram: 29_999})
	require.Equal(t, nh.OutcomeTransient, nh.Classify(err), "a refused inquiry is retried, never read as a decline")
	_, err = f.client.CheckOnReceivedTransfer(ctx, nh.CheckOnReceivedTransferRequest{Original: ref, FinAcno: f.fin, Tram: 30_000})
	require.Equal(t, nh.OutcomeTransient, nh.Classify(err), "a withdrawal is not a deposit")

	// Balance and depositor names.
	bal, err := f.client.InquireBalance(ctx, f.fin)
	require.NoError(t, err)
	require.Equal(t, int64(71_000), bal.Ldbl)
	require.Equal(t, int64(71_000), bal.RlpmAbamt)
	dep, err := f.client.InquireDepositor(ctx, f.customer.Bncd, f.customer.Acno)
	require.NoError(t, err)
	require.Equal(t, "김고객", dep.Dpnm)
	dep, err = f.client.InquireDepositorOtherBank(ctx, f.other.Bncd, f.other.Acno)
	require.NoError(t, err)
	require.Equal(t, "이타행", dep.Dpnm)
	_, err = f.client.InquireDepositor(ctx, "088", "1234567890")
	requireDeclined(t, err, nhsim.CodeUnknownAccount)
}

func TestContractDeclines(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	drain, err := f.sim.CreateAccount(nhsim.Account{Holder: "한계좌", Birth: "19600101", Balance: 10})
	require.NoError(t, err)
	drainFin, err := f.sim.RegisterFinAccount(drain.Bncd, drain.Acno, true)
	require.NoError(t, err)
	before := f.sim.Ledger()

	wrong := func(mutate func(*nh.Config)) *nh.Client {
		cfg := nh.Config{BaseURL: f.url, Iscd: testIscd, AccessToken: testToken, Now: f.clock.Now}
		mutate(&cfg)
		c, err := nh.New(cfg, nh.NewMemorySequencer())
		require.NoError(t, err)
		return c
	}
	tests := []struct {
		name string
		call func() error
		code string
	}{
		{"insufficient balance", func() error {
			_, err := f.client.DrawingTransfer(ctx, f.ref(t), nh.DrawingTransferRequest{FinAcno: drainFin, Tram: 11})
			return err
		}, nhsim.CodeInsufficient},
		{"fintech cannot pay out more than it holds", func() error {
			_, err := f.client.ReceivedTransferFinAccount(ctx, f.ref(t), nh.ReceivedTransferFinAccountRequest{FinAcno: f.fin, Tram: 1_000_001})
			return err
		}, nhsim.CodeInsufficient},
		{"unknown fin account", func() error {
			_, err := f.client.DrawingTransfer(ctx, f.ref(t), nh.DrawingTransferRequest{FinAcno: "00820100999999999999999999", Tram: 1})
			return err
		}, nhsim.CodeUnknownFin},
		{"fin account not registered for withdrawals", func() error {
			_, err := f.client.DrawingTransfer(ctx, f.ref(t), nh.DrawingTransferRequest{FinAcno: f.roFin, Tram: 1})
			return err
		}, nhsim.CodeNotForWithdraw},
		{"over the transfer limit", func() error {
			_, err := f.client.DrawingTransfer(ctx, f.ref(t), nh.DrawingTransferRequest{FinAcno: f.fin, Tram: nhsim.DefaultTransferLimit + 1})
			return err
		}, nhsim.CodeOverLimit},
		{"unknown account by number", func() error {
			_, err := f.client.ReceivedTransferOtherBank(ctx, f.ref(t), nh.ReceivedTransferAccountRequest{Bncd: "088", Acno: "110123456789", Tram: 1})
			return err
		}, nhsim.CodeUnknownAccount},
		{"fin account with a character the bank refuses", func() error {
			_, err := f.client.InquireBalance(ctx, "0082-0100")
			return err
		}, nhsim.CodeInvalidField},
		{"wrong access token", func() error {
			c := wrong(func(c *nh.Config) { c.AccessToken = "f" + testToken[1:] })
			_, err := c.InquireBalance(ctx, f.fin)
			return err
		}, nhsim.CodeWrongToken},
		{"wrong institution code", func() error {
			c := wrong(func(c *nh.Config) { c.Iscd = "999999" })
			_, err := c.DrawingTransfer(ctx, f.ref(t), nh.DrawingTransferRequest{FinAcno: f.fin, Tram: 1})
			return err
		}, nhsim.CodeWrongIscd},
		{"history period over three months", func() error {
			_, err := f.client.InquireTransactionHistory(ctx, nh.HistoryRequest{FinAcno: f.fin, From: "20260801", To: "20261125"})
			return err
		}, nhsim.CodeBadPeriod},
		{"history more than a year back", func() error {
			_, err := f.client.InquireTransactionHistory(ctx, nh.HistoryRequest{FinAcno: f.fin, From: "20251101", To: "20251130"})
			return err
		}, nhsim.CodeBadPeriod},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { requireDeclined(t, tt.call(), tt.code) })
	}
	require.Equal(t, before, f.sim.Ledger(), "no decline moves money")
}

func TestContractHistoryPaging(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for i := range 7 {
		f.clock.Advance(time.Minute)
		if i%3 == 2 {
			_, err := f.client.ReceivedTransferFinAccount(ctx, f.ref(t), nh.ReceivedTransferFinAccountRequest{FinAcno: f.fin, Tram: 500, MractOtlt: "환불"})
			require.NoError(t, err)
			continue
		}
		_, err := f.client.DrawingTransfer(ctx, f.ref(t), nh.DrawingTransferRequest{FinAcno: f.fin, Tram: int64(1000 * (i + 1)), DractOtlt: "결제"})
		require.NoError(t, err)
	}
	today := nh.Today(f.clock.Now())
	req := nh.HistoryRequest{Bncd: f.customer.Bncd, Acno: f.customer.Acno, From: today, To: today, PageSize: 3}
	page, err := f.client.InquireTransactionHistory(ctx, req)
	require.NoError(t, err)
	require.True(t, page.More)
	require.Len(t, page.Records, 3)
	require.False(t, page.Records[0].Deposit())
	require.Equal(t, int64(1000), page.Records[0].Tram)
	require.Equal(t, int64(99_000), page.Records[0].AftrBlnc)
	require.Equal(t, "결제", page.Records[0].BnprCntn)

	all, err := f.client.AllTransactionHistory(ctx, req)
	require.NoError(t, err)
	require.Len(t, all, 7)
	balance := int64(100_000)
	tunos := map[string]bool{}
	for _, r := range all {
		if r.Deposit() {
			balance += r.Tram
		} else {
			balance -= r.Tram
		}
		require.Equal(t, balance, r.AftrBlnc, "each row's balance follows from the previous one")
		require.False(t, tunos[r.Tuno])
		tunos[r.Tuno] = true
	}
	require.Equal(t, f.sim.Balance(f.customer.Bncd, f.customer.Acno), balance)

	deposits, err := f.client.AllTransactionHistory(ctx, nh.HistoryRequest{FinAcno: f.fin, From: today, To: today, Kind: nh.HistoryDeposits, Order: nh.HistoryDescending})
	require.NoError(t, err)
	require.Len(t, deposits, 2)
	require.True(t, deposits[0].Deposit())
	require.Greater(t, deposits[0].Txtm, deposits[1].Txtm, "newest first")

	yesterday := nh.Today(f.clock.Now().AddDate(0, 0, -1))
	none, err := f.client.AllTransactionHistory(ctx, nh.HistoryRequest{FinAcno: f.fin, From: yesterday, To: yesterday})
	require.NoError(t, err)
	require.Empty(t, none)
}
