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
)

// Issue 11, item 10: right after a lost answer, the bank's "not executed" is not trusted while
// the attempt that recorded the transfer could still send it (a paused worker, a slow
// network): the check asks again once that time is up, and only then is a new transfer
// allowed. Before, the first "not executed" marked the transfer NOT_EXECUTED at once and the
// workflow sent a new one: a possible double debit.
func TestNotExecutedIsTrustedOnlyOnceTheAttemptCanNoLongerSend(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	p := f.newPayment(t, 15_000)
	in := activities.DebitInput{PaymentID: p.ID, TransferID: "trf_" + p.ID + "_1"}
	require.NoError(t, f.sim.SetFault(nh.APIDrawingTransfer, nhsim.Fault{Kind: nhsim.FaultHTTP500, Probability: 1}))
	_, err := f.acts.Debit(ctx, in)
	typ, _ := appErrType(t, err)
	require.Equal(t, activities.ErrTypeUnknownOutcome, typ)
	f.sim.ClearFaults()
	tr, err := f.db.GetTransfer(ctx, in.TransferID)
	require.NoError(t, err)

	check := activities.CheckDebitInput{PaymentID: p.ID, TransferID: in.TransferID, SendableFor: 35 * time.Second}
	f.acts.Now = func() time.Time { return tr.CreatedAt.Add(10 * time.Second) }
	_, err = f.acts.CheckDebit(ctx, check)
	typ, appErr := appErrType(t, err)
	require.Equal(t, activities.ErrTypeStillSendable, typ)
	require.False(t, appErr.NonRetryable(), "asked again later")
	require.InDelta(t, float64(25*time.Second), float64(appErr.NextRetryDelay()), float64(time.Second),
		"asked again when the attempt's time is up")
	again, err := f.db.GetTransfer(ctx, in.TransferID)
	require.NoError(t, err)
	require.NotEqual(t, paysaga.TransferNotExecuted, again.State, "not yet concluded")

	f.acts.Now = func() time.Time { return tr.CreatedAt.Add(36 * time.Second) }
	res, err := f.acts.CheckDebit(ctx, check)
	require.NoError(t, err)
	require.False(t, res.Executed)
	again, err = f.db.GetTransfer(ctx, in.TransferID)
	require.NoError(t, err)
	require.Equal(t, paysaga.TransferNotExecuted, again.State)
}
