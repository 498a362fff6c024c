package activities_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/testsuite"

	"paysaga"
	"paysaga/activities"
	"paysaga/nh"
	"paysaga/nhsim"
	"paysaga/seal"
	"paysaga/store"
)

// typedInFixture is a customer, 최유나, who paid 50,000 won from her NH account, registered the
// way the API registers accounts (the number sealed with the keyring), and the refund steps
// with that keyring.
type typedInFixture struct {
	*fixture
	acts    *activities.RefundActivities
	keys    *seal.Keyring
	payment *paysaga.Payment
}

func newTypedInFixture(t *testing.T) *typedInFixture {
	t.Helper()
	ctx := context.Background()
	f := newFixture(t)
	keys := seal.NewDevKeyring()
	bankAcct, err := f.sim.CreateAccount(nhsim.Account{Holder: "최유나", Birth: "19950505", Balance: 100_000})
	require.NoError(t, err)
	fin, err := f.sim.RegisterFinAccount(bankAcct.Bncd, bankAcct.Acno, true)
	require.NoError(t, err)
	u := &paysaga.User{ID: paysaga.NewID(paysaga.PrefixUser), Email: "choi@example.com", Name: "Yuna",
		Role: paysaga.RoleCustomer, PasswordHash: "x"}
	require.NoError(t, f.db.CreateUser(ctx, u))
	acct := &paysaga.Account{ID: paysaga.NewID(paysaga.PrefixAccount), OwnerID: u.ID, BankCode: bankAcct.Bncd,
		MaskedNumber: paysaga.MaskAccountNumber(bankAcct.Acno), Status: paysaga.AccountActive, FinAccount: fin}
	sealed, err := keys.Seal([]byte(bankAcct.Acno), seal.AccountNumberAD(acct.ID))
	require.NoError(t, err)
	require.NoError(t, f.db.CreateAccount(ctx, acct, store.SealedAccountNumber{Ciphertext: sealed.Ciphertext, KeyID: sealed.KeyID,
		Hash: keys.AccountNumberHash(bankAcct.Bncd, bankAcct.Acno)}))
	f.customerID, f.accountID, f.bankAcno = u.ID, acct.ID, bankAcct.Acno

	p := f.newPayment(t, 50_000)
	_, err = f.acts.Debit(ctx, activities.DebitInput{PaymentID: p.ID, TransferID: "trf_" + p.ID + "_1"})
	require.NoError(t, err)
	require.NoError(t, f.acts.RecordPayment(ctx, activities.RecordPaymentInput{PaymentID: p.ID, Status: paysaga.PaymentSucceeded}))
	return &typedInFixture{fixture: f, keys: keys, payment: p, acts: &activities.RefundActivities{
		Store: f.db, Bank: f.acts.Bank.(activities.RefundBank), Keys: keys, Events: f.pub,
	}}
}

// typeIn saves a destination for a new refund the way the API does for an operator, sealing
// plaintext (the JSON the API seals) as it is, and reserves the refund with the history event
// the workflow writes.
func (f *typedInFixture) typeIn(t *testing.T, bank, number string, plaintext []byte, operator string) paysaga.Refund {
	t.Helper()
	ctx := context.Background()
	id := paysaga.NewID(paysaga.PrefixRefund)
	sealed, err := f.keys.Seal(plaintext, seal.RefundDestinationAD(id))
	require.NoError(t, err)
	kind := paysaga.DestinationOtherBank
	if nh.IsNHBank(bank) {
		kind = paysaga.DestinationAccountNumber
	}
	require.NoError(t, f.db.SaveRefundDestination(ctx, id, store.SealedDestination{Kind: kind, BankCode: bank,
		Masked: paysaga.MaskAccountNumber(number), Sealed: store.SealedSecret{Ciphertext: sealed.Ciphertext, KeyID: sealed.KeyID}}))
	r, err := f.acts.ReserveRefund(ctx, activities.ReserveRefundInput{
		Refund: paysaga.Refund{ID: id, PaymentID: f.payment.ID, Amount: 7_000, Reason: "계좌 해지", CreatedBy: operator},
		Events: []paysaga.PaymentEvent{{ID: "evt_" + strings.TrimPrefix(id, "ref_") + "_01", PaymentID: f.payment.ID, RefundID: id,
			Type: "refund.created", Actor: operator, Reason: "계좌 해지"}},
	})
	require.NoError(t, err)
	require.Equal(t, kind, r.Destination.Kind)
	return r
}

func (f *typedInFixture) creditsAtBank() []nhsim.Transfer {
	var out []nhsim.Transfer
	for _, tr := range f.sim.Transfers() {
		if tr.API != nh.APIDrawingTransfer {
			out = append(out, tr)
		}
	}
	return out
}

// Issue 11, item 1: a typed-in destination is paid only when the bank names the same depositor
// for it as for the account that paid — whatever name the request carried.
func TestCreditToTypedInAccountMustBeThePayingCustomers(t *testing.T) {
	ctx := context.Background()
	const operator = "usr_operator_kang"
	for _, tc := range []struct {
		name, bank, holder string
		// named is the holder name sealed with the destination by older code (a caller's
		// word); it must change nothing.
		named    string
		wantAPI  string
		stranger bool
	}{
		{name: "the customer's other-bank account", bank: "004", holder: "최유나", wantAPI: nh.APIReceivedTransferOtherBank},
		{name: "the customer's other NH account", bank: "011", holder: " 최 유나 ", wantAPI: nh.APIReceivedTransferAccountNumber},
		{name: "a stranger's account", bank: "004", holder: "박지훈", stranger: true},
		{name: "a stranger's account the request named", bank: "004", holder: "박지훈", named: "박지훈", stranger: true},
		{name: "the customer's account named as someone else", bank: "004", holder: "최유나", named: "박지훈",
			wantAPI: nh.APIReceivedTransferOtherBank},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newTypedInFixture(t)
			dest, err := f.sim.CreateAccount(nhsim.Account{Bncd: tc.bank, Holder: tc.holder, Birth: "19800101"})
			require.NoError(t, err)
			plain, err := json.Marshal(map[string]string{"number": dest.Acno, "holder": tc.named})
			require.NoError(t, err)
			r := f.typeIn(t, tc.bank, dest.Acno, plain, operator)

			// The history says where the money goes (masked) and which operator chose it.
			evs, err := f.db.ListPaymentEvents(ctx, f.payment.ID)
			require.NoError(t, err)
			var created *paysaga.PaymentEvent
			for _, e := range evs {
				if e.RefundID == r.ID && e.Type == "refund.created" {
					created = e
				}
			}
			require.NotNil(t, created)
			require.Equal(t, operator, created.Actor)
			require.Contains(t, created.Reason, "계좌 해지")
			require.Contains(t, created.Reason, "typed-in account "+paysaga.MaskAccountNumber(dest.Acno))
			require.Contains(t, created.Reason, "chosen by "+operator)
			require.NotContains(t, created.Reason, dest.Acno)

			_, err = inActivity[activities.CreditResult](t, activities.CreditName, f.acts.Credit,
				activities.CreditInput{RefundID: r.ID, TransferID: "trf_t1"})
			if tc.stranger {
				typ, appErr := appErrType(t, err)
				require.Equal(t, activities.ErrTypeNameMismatch, typ)
				require.True(t, appErr.NonRetryable())
				require.Empty(t, f.creditsAtBank(), "nothing is paid to a stranger")
				require.Zero(t, f.sim.Balance(tc.bank, dest.Acno))
				return
			}
			require.NoError(t, err)
			credits := f.creditsAtBank()
			require.Len(t, credits, 1)
			require.Equal(t, tc.wantAPI, credits[0].API)
			require.EqualValues(t, 7_000, f.sim.Balance(tc.bank, dest.Acno))
		})
	}
}

// inActivity runs activity fn once as Temporal would (in an activity context, registered as
// name), and returns its result or its error as the workflow would see it.
func inActivity[T any](t *testing.T, name string, fn any, in any) (T, error) {
	t.Helper()
	var (
		suite testsuite.WorkflowTestSuite
		out   T
	)
	env := suite.NewTestActivityEnvironment()
	env.RegisterActivityWithOptions(fn, activity.RegisterOptions{Name: name})
	v, err := env.ExecuteActivity(name, in)
	if err != nil {
		return out, err
	}
	require.NoError(t, v.Get(&out))
	return out, nil
}
