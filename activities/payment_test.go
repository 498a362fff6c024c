package activities_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"paysaga"
	"paysaga/activities"
	"paysaga/events"
	"paysaga/nh"
	"paysaga/nhsim"
	"paysaga/store"
	"paysaga/store/storetest"
)

const (
	testIscd  = "000123"
	testToken = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
)

type recordingPublisher struct {
	mu     sync.Mutex
	events []events.Event
	err    error
}

func (p *recordingPublisher) Publish(_ context.Context, ev events.Event) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return p.err
	}
	p.events = append(p.events, ev)
	return nil
}

// fixture is a database, a simulated bank behind a real nh client, and a customer with a
// registered account holding 100,000 won at the bank.
type fixture struct {
	db         *store.DB
	sim        *nhsim.Sim
	acts       *activities.Activities
	pub        *recordingPublisher
	customerID string
	accountID  string
	bankAcno   string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	db := storetest.Open(t, store.DriverSQLite)
	sim := nhsim.New(nhsim.Config{Iscd: testIscd, AccessToken: testToken, Seed: 1})
	t.Cleanup(sim.Close)
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	client, err := nh.New(nh.Config{BaseURL: srv.URL, Iscd: testIscd, AccessToken: testToken,
		Timeouts: map[string]time.Duration{"*": 2 * time.Second}}, db)
	require.NoError(t, err)

	bankAcct, err := sim.CreateAccount(nhsim.Account{Holder: "김민준", Birth: "19900101", Balance: 100_000})
	require.NoError(t, err)
	fin, err := sim.RegisterFinAccount(bankAcct.Bncd, bankAcct.Acno, true)
	require.NoError(t, err)

	u := &paysaga.User{ID: paysaga.NewID(paysaga.PrefixUser), Email: "kim@example.com", Name: "김민준",
		Role: paysaga.RoleCustomer, PasswordHash: "x"}
	require.NoError(t, db.CreateUser(ctx, u))
	acct := &paysaga.Account{ID: paysaga.NewID(paysaga.PrefixAccount), OwnerID: u.ID, BankCode: bankAcct.Bncd,
		MaskedNumber: paysaga.MaskAccountNumber(bankAcct.Acno), Status: paysaga.AccountActive, FinAccount: fin}
	require.NoError(t, db.CreateAccount(ctx, acct, store.SealedAccountNumber{Ciphertext: []byte("x"), KeyID: "k", Hash: "h1"}))

	pub := &recordingPublisher{}
	return &fixture{
		db: db, sim: sim, pub: pub, customerID: u.ID, accountID: acct.ID, bankAcno: bankAcct.Acno,
		acts: &activities.Activities{Store: db, Bank: client, Events: pub},
	}
}

// newPayment records a PROCESSING payment the way the API (the row, PENDING) and the
// workflow's first step (checked against its input, PROCESSING) do.
func (f *fixture) newPayment(t *testing.T, amount int64) *paysaga.Payment {
	t.Helper()
	p := &paysaga.Payment{ID: paysaga.NewID(paysaga.PrefixPayment), CustomerID: f.customerID, MerchantID: "usr_shop",
		AccountID: f.accountID, Amount: amount, Description: "원두 1kg 그리고 아주 긴 설명이 붙은 주문 번호 12345", Status: paysaga.PaymentPending}
	_, _, err := f.db.CreatePayment(context.Background(), p)
	require.NoError(t, err)
	require.NoError(t, f.acts.RecordPayment(context.Background(), activities.RecordPaymentInput{
		Create: p, PaymentID: p.ID, Status: paysaga.PaymentProcessing,
		Events: []paysaga.PaymentEvent{{ID: "evt_" + p.ID + "_1", PaymentID: p.ID, Type: "payment.created", Status: paysaga.PaymentPending}},
	}))
	return p
}

func (f *fixture) debitsAtBank() []nhsim.Transfer {
	var out []nhsim.Transfer
	for _, tr := range f.sim.Transfers() {
		if tr.API == nh.APIDrawingTransfer {
			out = append(out, tr)
		}
	}
	return out
}

func appErrType(t *testing.T, err error) (string, *temporal.ApplicationError) {
	t.Helper()
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr), "want an application error, got %v", err)
	return appErr.Type(), appErr
}

func TestDebitSucceedsOnceEvenWhenRunAgain(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	p := f.newPayment(t, 15_000)
	in := activities.DebitInput{PaymentID: p.ID, TransferID: "trf_" + p.ID + "_1"}

	res, err := f.acts.Debit(ctx, in)
	require.NoError(t, err)
	require.Equal(t, nh.RpcdOK, res.Rpcd)
	require.Len(t, res.IsTuno, 20)

	again, err := f.acts.Debit(ctx, in)
	require.NoError(t, err, "a retried activity answers from the transfer row")
	require.Equal(t, res, again)

	debits := f.debitsAtBank()
	require.Len(t, debits, 1, "exactly one debit at the bank")
	require.Equal(t, res.IsTuno, debits[0].IsTuno)
	require.Equal(t, int64(85_000), f.sim.Balance(nh.BankNH, f.bankAcno))
	tr, err := f.db.GetTransfer(ctx, in.TransferID)
	require.NoError(t, err)
	require.Equal(t, paysaga.TransferSucceeded, tr.State)
	require.Equal(t, res.IsTuno, tr.IsTuno)
	require.Equal(t, int64(15_000), tr.Amount)
}

func TestDebitDeclined(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	p := f.newPayment(t, 150_000) // more than the balance
	in := activities.DebitInput{PaymentID: p.ID, TransferID: "trf_" + p.ID + "_1"}

	_, err := f.acts.Debit(ctx, in)
	typ, appErr := appErrType(t, err)
	require.Equal(t, activities.ErrTypeDeclined, typ)
	require.True(t, appErr.NonRetryable())
	var ans activities.BankAnswer
	require.NoError(t, appErr.Details(&ans))
	require.Equal(t, "E1001", ans.Rpcd)
	require.NotEmpty(t, ans.Rsms)

	tr, err := f.db.GetTransfer(ctx, in.TransferID)
	require.NoError(t, err)
	require.Equal(t, paysaga.TransferDeclined, tr.State)
	require.Equal(t, "E1001", tr.Rpcd)
	_, err = f.acts.Debit(ctx, in)
	typ, _ = appErrType(t, err)
	require.Equal(t, activities.ErrTypeDeclined, typ, "a decline stays a decline")
	require.Empty(t, f.debitsAtBank())
}

func TestLostAnswerAfterCommitIsResolvedNotResent(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	p := f.newPayment(t, 15_000)
	in := activities.DebitInput{PaymentID: p.ID, TransferID: "trf_" + p.ID + "_1"}
	require.NoError(t, f.sim.SetFault(nh.APIDrawingTransfer, nhsim.Fault{Kind: nhsim.FaultLostResponse, Probability: 1}))

	_, err := f.acts.Debit(ctx, in)
	typ, _ := appErrType(t, err)
	require.Equal(t, activities.ErrTypeUnknownOutcome, typ)
	f.sim.ClearFaults()

	// The activity runs again (a retry, a restarted worker): it must not send again.
	_, err = f.acts.Debit(ctx, in)
	typ, _ = appErrType(t, err)
	require.Equal(t, activities.ErrTypeUnknownOutcome, typ)
	require.Len(t, f.debitsAtBank(), 1)

	res, err := f.acts.CheckDebit(ctx, activities.CheckDebitInput{PaymentID: p.ID, TransferID: in.TransferID})
	require.NoError(t, err)
	require.True(t, res.Executed, "the bank says the lost debit executed")
	tr, err := f.db.GetTransfer(ctx, in.TransferID)
	require.NoError(t, err)
	require.Equal(t, paysaga.TransferSucceeded, tr.State)

	require.Len(t, f.debitsAtBank(), 1, "exactly one debit in the bank's ledger")
	require.Equal(t, int64(85_000), f.sim.Balance(nh.BankNH, f.bankAcno))
	again, err := f.acts.Debit(ctx, in)
	require.NoError(t, err, "the transfer is now known to have executed")
	require.Equal(t, tr.IsTuno, again.IsTuno)
}

func TestLostAnswerNotExecutedThenNewTransfer(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	p := f.newPayment(t, 15_000)
	first := activities.DebitInput{PaymentID: p.ID, TransferID: "trf_" + p.ID + "_1"}
	// HTTP 500 before processing: the client cannot know that nothing happened.
	require.NoError(t, f.sim.SetFault(nh.APIDrawingTransfer, nhsim.Fault{Kind: nhsim.FaultHTTP500, Probability: 1}))
	_, err := f.acts.Debit(ctx, first)
	typ, _ := appErrType(t, err)
	require.Equal(t, activities.ErrTypeUnknownOutcome, typ)
	f.sim.ClearFaults()

	res, err := f.acts.CheckDebit(ctx, activities.CheckDebitInput{PaymentID: p.ID, TransferID: first.TransferID})
	require.NoError(t, err)
	require.False(t, res.Executed)
	tr1, err := f.db.GetTransfer(ctx, first.TransferID)
	require.NoError(t, err)
	require.Equal(t, paysaga.TransferNotExecuted, tr1.State)

	second := activities.DebitInput{PaymentID: p.ID, TransferID: "trf_" + p.ID + "_2"}
	res2, err := f.acts.Debit(ctx, second)
	require.NoError(t, err)
	require.NotEqual(t, tr1.IsTuno, res2.IsTuno, "a new transfer has a new IsTuno")
	require.Len(t, f.debitsAtBank(), 1)
	transfers, err := f.db.ListTransfersByPayment(ctx, p.ID)
	require.NoError(t, err)
	require.Len(t, transfers, 2)
}

func TestCheckDebitInProgressIsRetryable(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	p := f.newPayment(t, 15_000)
	in := activities.DebitInput{PaymentID: p.ID, TransferID: "trf_" + p.ID + "_1"}
	require.NoError(t, f.sim.SetFault(nh.APIDrawingTransfer, nhsim.Fault{Kind: nhsim.FaultLostResponse, Probability: 1}))
	_, err := f.acts.Debit(ctx, in)
	require.Error(t, err)
	// The bank cannot be asked either: the check fails, retryably.
	require.NoError(t, f.sim.SetFault(nh.APICheckOnDrawingTransfer, nhsim.Fault{Kind: nhsim.FaultHTTP500, Probability: 1}))
	_, err = f.acts.CheckDebit(ctx, activities.CheckDebitInput{PaymentID: p.ID, TransferID: in.TransferID})
	require.Error(t, err)
	var appErr *temporal.ApplicationError
	require.False(t, errors.As(err, &appErr) && appErr.NonRetryable(), "asked again until the deadline")
	tr, err := f.db.GetTransfer(ctx, in.TransferID)
	require.NoError(t, err)
	require.Equal(t, paysaga.TransferUnknown, tr.State)
}

func TestCheckDebitOfTransferNeverWritten(t *testing.T) {
	f := newFixture(t)
	p := f.newPayment(t, 15_000)
	res, err := f.acts.CheckDebit(context.Background(), activities.CheckDebitInput{PaymentID: p.ID, TransferID: "trf_none"})
	require.NoError(t, err)
	require.False(t, res.Executed)
}

func TestDebitRefusesAnotherCustomersAccount(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	other := &paysaga.User{ID: paysaga.NewID(paysaga.PrefixUser), Email: "lee@example.com", Name: "이", Role: paysaga.RoleCustomer, PasswordHash: "x"}
	require.NoError(t, f.db.CreateUser(ctx, other))
	p := &paysaga.Payment{ID: paysaga.NewID(paysaga.PrefixPayment), CustomerID: other.ID, MerchantID: "usr_shop",
		AccountID: f.accountID, Amount: 1000, Status: paysaga.PaymentPending}
	_, _, err := f.db.CreatePayment(ctx, p)
	require.NoError(t, err)
	require.NoError(t, f.acts.RecordPayment(ctx, activities.RecordPaymentInput{Create: p, PaymentID: p.ID, Status: paysaga.PaymentProcessing}))

	_, err = f.acts.Debit(ctx, activities.DebitInput{PaymentID: p.ID, TransferID: "trf_x_1"})
	typ, _ := appErrType(t, err)
	require.Equal(t, activities.ErrTypeAccountUnusable, typ)
	_, err = f.db.GetTransfer(ctx, "trf_x_1")
	require.Equal(t, paysaga.ENOTFOUND, paysaga.ErrorCode(err), "nothing recorded, nothing sent")
	require.Empty(t, f.debitsAtBank())
}

func TestRecordPaymentConflictIsNonRetryable(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	p := f.newPayment(t, 15_000)
	require.NoError(t, f.acts.RecordPayment(ctx, activities.RecordPaymentInput{PaymentID: p.ID, Status: paysaga.PaymentSucceeded}))
	err := f.acts.RecordPayment(ctx, activities.RecordPaymentInput{PaymentID: p.ID, Status: paysaga.PaymentPending})
	typ, appErr := appErrType(t, err)
	require.Equal(t, activities.ErrTypeStateConflict, typ)
	require.True(t, appErr.NonRetryable())
}

func TestPublishPaymentEvent(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	p := f.newPayment(t, 15_000)
	stored, err := f.db.GetPayment(ctx, p.ID)
	require.NoError(t, err)
	in := activities.PublishPaymentEventInput{EventID: "evt_1", Type: events.PaymentSucceeded, Payment: *stored,
		OccurredAt: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)}
	require.NoError(t, f.acts.PublishPaymentEvent(ctx, in))
	require.Len(t, f.pub.events, 1)
	ev := f.pub.events[0]
	require.Equal(t, "evt_1", ev.ID)
	require.Equal(t, events.PaymentSucceeded, ev.Type)
	var body map[string]any
	require.NoError(t, json.Unmarshal(ev.Data, &body))
	require.Equal(t, p.ID, body["id"])
	require.EqualValues(t, 15_000, body["amount"])
	acct, err := f.db.GetAccount(ctx, f.accountID)
	require.NoError(t, err)
	require.False(t, strings.Contains(string(ev.Data), acct.FinAccount), "no fin account in an event")

	f.pub.err = errors.New("broker down")
	err = f.acts.PublishPaymentEvent(ctx, in)
	require.Error(t, err)
	var appErr *temporal.ApplicationError
	require.False(t, errors.As(err, &appErr) && appErr.NonRetryable(), "a broker outage is retried")
}
