package activities_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"paysaga"
	"paysaga/activities"
	"paysaga/nh"
	"paysaga/nhsim"
	"paysaga/seal"
)

// refundFixture is the payment fixture with a SUCCEEDED payment of 50,000 won, money at the
// fintech to give back, and the refund steps.
type refundFixture struct {
	*fixture
	acts    *activities.RefundActivities
	keys    *seal.Keyring
	payment *paysaga.Payment
}

func newRefundFixture(t *testing.T) *refundFixture {
	t.Helper()
	f := newFixture(t)
	p := f.newPayment(t, 50_000)
	_, err := f.acts.Debit(context.Background(), activities.DebitInput{PaymentID: p.ID, TransferID: "trf_" + p.ID + "_1"})
	require.NoError(t, err)
	require.NoError(t, f.acts.RecordPayment(context.Background(), activities.RecordPaymentInput{PaymentID: p.ID, Status: paysaga.PaymentSucceeded}))
	keys := seal.NewDevKeyring()
	return &refundFixture{fixture: f, keys: keys, payment: p, acts: &activities.RefundActivities{
		Store: f.db, Bank: f.acts.Bank.(activities.RefundBank), Keys: keys, Events: f.pub,
	}}
}

func (f *refundFixture) reserve(t *testing.T, amount int64) paysaga.Refund {
	t.Helper()
	r, err := f.acts.ReserveRefund(context.Background(), activities.ReserveRefundInput{Refund: paysaga.Refund{
		ID: paysaga.NewID(paysaga.PrefixRefund), PaymentID: f.payment.ID, Amount: amount, CreatedBy: "usr_shop"}})
	require.NoError(t, err)
	return r
}

func (f *refundFixture) creditsAtBank() []nhsim.Transfer {
	var out []nhsim.Transfer
	for _, tr := range f.sim.Transfers() {
		if tr.API != nh.APIDrawingTransfer {
			out = append(out, tr)
		}
	}
	return out
}

func TestCreditOnceEvenWhenRunAgain(t *testing.T) {
	f := newRefundFixture(t)
	ctx := context.Background()
	r := f.reserve(t, 20_000)

	res, err := f.acts.Credit(ctx, activities.CreditInput{RefundID: r.ID, TransferID: "trf_r1"})
	require.NoError(t, err)
	require.Equal(t, "00000", res.Rpcd)
	again, err := f.acts.Credit(ctx, activities.CreditInput{RefundID: r.ID, TransferID: "trf_r1"})
	require.NoError(t, err)
	require.Equal(t, res, again)
	// Another transfer of the same refund (a replay's run) never pays a second time either.
	other, err := f.acts.Credit(ctx, activities.CreditInput{RefundID: r.ID, TransferID: "trf_r2"})
	require.NoError(t, err)
	require.Equal(t, "trf_r1", other.TransferID)
	require.Len(t, f.creditsAtBank(), 1)
	require.EqualValues(t, 100_000-50_000+20_000, f.sim.Balance("011", f.bankAcno))

	_, err = f.acts.SettleRefund(ctx, activities.SettleRefundInput{RefundID: r.ID, Status: paysaga.RefundFailed})
	typ, _ := appErrType(t, err)
	require.Equal(t, activities.ErrTypeCreditExecuted, typ, "money that left is never released as if it had not")
	settled, err := f.acts.SettleRefund(ctx, activities.SettleRefundInput{RefundID: r.ID, Status: paysaga.RefundSucceeded})
	require.NoError(t, err)
	require.Equal(t, paysaga.RefundSucceeded, settled.Status)
}

func TestCreditDeclinedThenReleased(t *testing.T) {
	f := newRefundFixture(t)
	ctx := context.Background()
	r := f.reserve(t, 20_000)
	require.NoError(t, f.sim.SetFault(nh.APIReceivedTransferFinAccount, nhsim.Fault{Kind: nhsim.FaultDecline, Probability: 1}))

	_, err := f.acts.Credit(ctx, activities.CreditInput{RefundID: r.ID, TransferID: "trf_r1"})
	typ, appErr := appErrType(t, err)
	require.Equal(t, activities.ErrTypeDeclined, typ)
	require.True(t, appErr.NonRetryable())
	var ans activities.BankAnswer
	require.NoError(t, appErr.Details(&ans))
	require.Equal(t, "E9999", ans.Rpcd)

	failed, err := f.acts.SettleRefund(ctx, activities.SettleRefundInput{RefundID: r.ID, Status: paysaga.RefundFailed, FailureCode: ans.Rpcd})
	require.NoError(t, err)
	require.Equal(t, paysaga.RefundFailed, failed.Status)
	reserved, _ := f.db.ReservedRefundAmount(ctx, f.payment.ID)
	require.Zero(t, reserved)
	require.Empty(t, f.creditsAtBank())
}

func TestCreditLostAnswerIsCheckedNotResent(t *testing.T) {
	f := newRefundFixture(t)
	ctx := context.Background()
	r := f.reserve(t, 20_000)
	require.NoError(t, f.sim.SetFault(nh.APIReceivedTransferFinAccount, nhsim.Fault{Kind: nhsim.FaultLostResponse, Probability: 1}))

	_, err := f.acts.Credit(ctx, activities.CreditInput{RefundID: r.ID, TransferID: "trf_r1"})
	typ, _ := appErrType(t, err)
	require.Equal(t, activities.ErrTypeUnknownOutcome, typ)
	// A new transfer is refused while the first one's outcome is unknown.
	_, err = f.acts.Credit(ctx, activities.CreditInput{RefundID: r.ID, TransferID: "trf_r2"})
	typ, _ = appErrType(t, err)
	require.Equal(t, activities.ErrTypeUnknownOutcome, typ)
	_, err = f.acts.SettleRefund(ctx, activities.SettleRefundInput{RefundID: r.ID, Status: paysaga.RefundFailed})
	typ, _ = appErrType(t, err)
	require.Equal(t, activities.ErrTypeUnknownOutcome, typ, "no release while the credit is in doubt")

	f.sim.ClearFaults()
	chk, err := f.acts.CheckCredit(ctx, activities.CheckCreditInput{RefundID: r.ID})
	require.NoError(t, err)
	require.True(t, chk.Executed)
	require.Equal(t, "trf_r1", chk.TransferID)
	require.Len(t, f.creditsAtBank(), 1)
}

func TestReserveRefundRefusalIsClear(t *testing.T) {
	f := newRefundFixture(t)
	f.reserve(t, 40_000)
	_, err := f.acts.ReserveRefund(context.Background(), activities.ReserveRefundInput{Refund: paysaga.Refund{
		ID: paysaga.NewID(paysaga.PrefixRefund), PaymentID: f.payment.ID, Amount: 20_000, CreatedBy: "usr_shop"}})
	typ, appErr := appErrType(t, err)
	require.Equal(t, activities.ErrTypeRefundRefused, typ)
	require.True(t, appErr.NonRetryable())
	require.Contains(t, appErr.Message(), "10000 won")
}

// A refund event names the payment's customer and merchant, so that the customer's stream and
// the team's alerts can route it without looking anything up.
func TestRefundEventCarriesItsPayment(t *testing.T) {
	f := newRefundFixture(t)
	r := f.reserve(t, 10_000)
	before := len(f.pub.events)
	require.NoError(t, f.acts.PublishRefundEvent(context.Background(), activities.PublishRefundEventInput{
		EventID: "evt_refund_1", Type: "refund.succeeded", Refund: r}))
	require.Len(t, f.pub.events, before+1)
	ev := f.pub.events[before]
	var body struct {
		ID      string `json:"id"`
		Amount  int64  `json:"amount"`
		Payment struct {
			ID         string `json:"id"`
			CustomerID string `json:"customer_id"`
			MerchantID string `json:"merchant_id"`
		} `json:"payment"`
	}
	require.NoError(t, json.Unmarshal(ev.Data, &body))
	require.Equal(t, r.ID, body.ID)
	require.EqualValues(t, 10_000, body.Amount)
	require.Equal(t, f.payment.ID, body.Payment.ID)
	require.Equal(t, f.payment.CustomerID, body.Payment.CustomerID)
	require.Equal(t, f.payment.MerchantID, body.Payment.MerchantID)
}
