package activities_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paysaga"
	"paysaga/activities"
	"paysaga/nh"
	"paysaga/nhsim"
	"paysaga/reconcile"
	"paysaga/seal"
	"paysaga/settlement"
	"paysaga/store"
)

// settlementFixture: the payment fixture's customer paid merchant usr_shop 30,000 won (captured
// now), the merchant has a settlement account at the bank held in holder's name.
type settlementFixture struct {
	*fixture
	acts     *activities.SettlementActivities
	merchant nhsim.Account
	day      string
}

func newSettlementFixture(t *testing.T, holder string) *settlementFixture {
	t.Helper()
	ctx := context.Background()
	f := newFixture(t)
	require.NoError(t, f.db.CreateUser(ctx, &paysaga.User{ID: "usr_shop", Email: "shop@example.com", Name: "원두상점",
		Role: paysaga.RoleMerchant, PasswordHash: "x"}))
	p := f.newPayment(t, 30_000)
	_, err := f.acts.Debit(ctx, activities.DebitInput{PaymentID: p.ID, TransferID: "trf_" + p.ID + "_1"})
	require.NoError(t, err)
	now := time.Now()
	require.NoError(t, f.acts.RecordPayment(ctx, activities.RecordPaymentInput{PaymentID: p.ID, Status: paysaga.PaymentSucceeded,
		Events: []paysaga.PaymentEvent{{ID: "evt_" + p.ID + "_ok", PaymentID: p.ID, Type: store.CapturedEventType, CreatedAt: now}}}))

	m, err := f.sim.CreateAccount(nhsim.Account{Holder: holder, Birth: "19800101", Balance: 0})
	require.NoError(t, err)
	keys := seal.NewDevKeyring()
	sealed, err := activities.SealSettlementAccount(keys, "usr_shop", m.Acno)
	require.NoError(t, err)
	require.NoError(t, f.db.SetSettlementAccount(ctx, "usr_shop", m.Bncd, paysaga.MaskAccountNumber(m.Acno),
		store.SealedAccountNumber{Ciphertext: sealed.Ciphertext, KeyID: sealed.KeyID}))
	return &settlementFixture{fixture: f, merchant: m, day: settlement.FormatDay(now), acts: &activities.SettlementActivities{
		Store: f.db, Bank: f.acts.Bank.(activities.RefundBank), Keys: keys, Events: f.pub, DefaultFeeBPS: 250,
	}}
}

func (f *settlementFixture) payoutsAtBank() []nhsim.Transfer {
	var out []nhsim.Transfer
	for _, tr := range f.sim.Transfers() {
		if tr.API == nh.APIReceivedTransferAccountNumber || tr.API == nh.APIReceivedTransferOtherBank {
			out = append(out, tr)
		}
	}
	return out
}

// A lost payout answer is asked about, never sent again — not by a retry of the same transfer,
// not by another transfer of the settlement; the merchant gets exactly the net and the fintech
// keeps exactly the fee.
func TestPayoutLostAnswerResolvedNotResent(t *testing.T) {
	ctx := context.Background()
	f := newSettlementFixture(t, "원두상점")
	fintechBefore := f.sim.Fintech().Balance
	total := f.sim.TotalMoney()

	s, err := f.acts.PrepareSettlement(ctx, activities.PrepareSettlementInput{MerchantID: "usr_shop", Day: f.day})
	require.NoError(t, err)
	require.Equal(t, settlement.Pending, s.Status)
	require.EqualValues(t, 30_000-750, s.Payout)

	require.NoError(t, f.sim.SetFault(nh.APIReceivedTransferAccountNumber, nhsim.Fault{Kind: nhsim.FaultLostResponse, Probability: 1}))
	_, err = f.acts.Payout(ctx, activities.PayoutInput{SettlementID: s.ID, TransferID: "trf_p1"})
	typ, _ := appErrType(t, err)
	require.Equal(t, activities.ErrTypeUnknownOutcome, typ)
	f.sim.ClearFaults()
	for _, tid := range []string{"trf_p1", "trf_p2"} {
		_, err = f.acts.Payout(ctx, activities.PayoutInput{SettlementID: s.ID, TransferID: tid})
		typ, _ = appErrType(t, err)
		require.Equal(t, activities.ErrTypeUnknownOutcome, typ, "never sent while one is in doubt")
	}
	require.Len(t, f.payoutsAtBank(), 1)
	_, err = f.acts.FinishSettlement(ctx, activities.FinishSettlementInput{SettlementID: s.ID, Status: settlement.Failed})
	typ, _ = appErrType(t, err)
	require.Equal(t, activities.ErrTypeUnknownOutcome, typ, "not FAILED while the payout may have moved money")

	// The merchant registers another account meanwhile: the check still asks about the one the
	// payout went to (asking about the new one, the bank would not know the transfer).
	other, err := f.sim.CreateAccount(nhsim.Account{Holder: "원두상점", Birth: "19800101"})
	require.NoError(t, err)
	sealed, err := activities.SealSettlementAccount(f.acts.Keys, "usr_shop", other.Acno)
	require.NoError(t, err)
	require.NoError(t, f.db.SetSettlementAccount(ctx, "usr_shop", other.Bncd, "****", store.SealedAccountNumber{Ciphertext: sealed.Ciphertext, KeyID: sealed.KeyID}))

	chk, err := f.acts.CheckPayout(ctx, activities.CheckPayoutInput{SettlementID: s.ID})
	require.NoError(t, err)
	require.True(t, chk.Executed)
	require.Equal(t, "trf_p1", chk.TransferID)
	paid, err := f.acts.FinishSettlement(ctx, activities.FinishSettlementInput{SettlementID: s.ID, Status: settlement.Paid, TransferID: chk.TransferID})
	require.NoError(t, err)
	require.Equal(t, settlement.Paid, paid.Status)

	res, err := f.acts.Payout(ctx, activities.PayoutInput{SettlementID: s.ID, TransferID: "trf_p3"})
	require.NoError(t, err, "a paid settlement answers with its payout")
	require.Equal(t, "trf_p1", res.TransferID)
	require.Len(t, f.payoutsAtBank(), 1)
	require.EqualValues(t, 29_250, f.sim.Balance(f.merchant.Bncd, f.merchant.Acno), "the merchant got exactly the net")
	require.EqualValues(t, fintechBefore-29_250, f.sim.Fintech().Balance, "the fintech keeps exactly the fee of the 30,000 it received")
	require.Equal(t, total, f.sim.TotalMoney())

	// The payout is a transfer of its Tsymd: reconcile pairs it with the fintech account's
	// statement, like the customer's debit.
	today := nh.Today(time.Now())
	records, err := f.acts.Bank.(*nh.Client).AllTransactionHistory(ctx, nh.HistoryRequest{Bncd: f.sim.Fintech().Bncd,
		Acno: f.sim.Fintech().Acno, From: today, To: today, Kind: nh.HistoryAll, Order: nh.HistoryAscending})
	require.NoError(t, err)
	transfers, err := f.db.ListTransfersByTsymd(ctx, today)
	require.NoError(t, err)
	rep := reconcile.Compare(today, records, transfers, 5*time.Minute)
	require.False(t, rep.Differs(), "%+v", rep)
	require.Equal(t, 2, rep.Matched, "the debit and the payout")

	require.NoError(t, f.acts.PublishSettlementEvent(ctx, activities.PublishSettlementEventInput{EventID: "evt_stl", Type: "settlement.paid", Settlement: paid}))
	require.Len(t, f.pub.events, 1)
	require.Contains(t, string(f.pub.events[0].Data), `"merchant_id":"usr_shop"`)
}

// An account whose holder is not the merchant is never paid: nothing is sent.
func TestPayoutRefusedToSomeoneElsesAccount(t *testing.T) {
	ctx := context.Background()
	f := newSettlementFixture(t, "김사기")
	s, err := f.acts.PrepareSettlement(ctx, activities.PrepareSettlementInput{MerchantID: "usr_shop", Day: f.day})
	require.NoError(t, err)
	_, err = f.acts.Payout(ctx, activities.PayoutInput{SettlementID: s.ID, TransferID: "trf_x"})
	typ, _ := appErrType(t, err)
	require.Equal(t, activities.ErrTypeNameMismatch, typ)
	require.Empty(t, f.payoutsAtBank())
	failed, err := f.acts.FinishSettlement(ctx, activities.FinishSettlementInput{SettlementID: s.ID, Status: settlement.Failed, FailureCode: "name_mismatch"})
	require.NoError(t, err)
	require.Equal(t, settlement.Failed, failed.Status)
}
