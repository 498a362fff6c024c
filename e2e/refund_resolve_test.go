package e2e

import (
	"context"
	"net/http"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	"paysaga"
	"paysaga/cmd/payctl/ctl"
	"paysaga/nh"
	"paysaga/nhsim"
	"paysaga/workflows"
)

// waitRefundUnknown polls the refund until it is UNKNOWN.
func waitRefundUnknown(t *testing.T, u user, id string) answer {
	t.Helper()
	var last answer
	require.Eventually(t, func() bool {
		last = call(t, "GET", "/v1/refunds/"+id, u.Token, nil)
		return last.Status == http.StatusOK && last.str("status") == string(paysaga.RefundUnknown)
	}, 60*time.Second, 100*time.Millisecond, "refund %s never became UNKNOWN", id)
	return last
}

// lastRefundEvent is the payment's last history event of the refund.
func lastRefundEvent(t *testing.T, paymentID, refundID string) *paysaga.PaymentEvent {
	t.Helper()
	evs, err := env.Parts.DB.ListPaymentEvents(context.Background(), paymentID)
	require.NoError(t, err)
	var last *paysaga.PaymentEvent
	for _, e := range evs {
		if e.RefundID == refundID {
			last = e
		}
	}
	require.NotNil(t, last, "no event of refund %s", refundID)
	return last
}

// A refund whose credit's answer was lost, and which the bank cannot be asked about, is left
// UNKNOWN; an operator who found the credit on the statement resolves it as succeeded with
// payctl, before the bank can say: SUCCEEDED, the payment PARTIALLY_REFUNDED, the transfer
// SUCCEEDED, who and why in the history, the event published, and a second verdict refused.
func TestRefundResolveSucceeded(t *testing.T) {
	events := consume(t, "refund.*")
	c, m, acct, p := paid(t, 100_000, 40_000, nil)
	id := p.str("id")
	withFault(t, nh.APIReceivedTransferFinAccount, nhsim.Fault{Kind: nhsim.FaultLostResponse, Probability: 1})
	withFault(t, nh.APICheckOnReceivedTransfer, nhsim.Fault{Kind: nhsim.FaultHTTP500, Probability: 1})

	// Not a refund, not a refund id: usage errors.
	bad := payctl(t, "refund", "resolve", id, "--as", "succeeded", "--reason", "r")
	require.Equal(t, ctl.ExitUsage, bad.Code, "%s%s", bad.Stdout, bad.Stderr)

	a := refund(t, m, id, 15_000, "resolve-succeeded-1")
	rid := refundID(a)
	require.NotEmpty(t, rid, "%s", a.Raw)
	waitRefundUnknown(t, m, rid)
	k, _ := credits(acct)
	require.Equal(t, 1, k, "the bank executed the credit; only its answer was lost")
	reserved, err := env.Parts.DB.ReservedRefundAmount(context.Background(), id)
	require.NoError(t, err)
	require.EqualValues(t, 15_000, reserved, "UNKNOWN keeps the reservation")

	reason := "credit found on the NH statement"
	r := payctl(t, "refund", "resolve", rid, "--as", "succeeded", "--reason", reason, "--actor", "ops@example.com")
	require.Equal(t, ctl.ExitOK, r.Code, "%s%s", r.Stdout, r.Stderr)
	require.Contains(t, r.Stdout, "resolved: SUCCEEDED")
	require.Equal(t, "SUCCEEDED", waitRefund(t, m, rid).str("status"))
	got := waitStatus(t, c, id, paysaga.PaymentPartiallyRefunded)
	require.EqualValues(t, 15_000, got.Body["refunded_amount"])

	ev := lastRefundEvent(t, id, rid)
	require.Equal(t, workflows.EventRefundSucceeded, ev.Type)
	require.Equal(t, "ops@example.com", ev.Actor)
	require.Equal(t, reason, ev.Reason)
	trs, err := env.Parts.DB.ListTransfersByRefund(context.Background(), rid)
	require.NoError(t, err)
	require.Len(t, trs, 1, "never sent again")
	require.Equal(t, paysaga.TransferSucceeded, trs[0].State)
	events.await(t, func(d amqp.Delivery) bool {
		return d.RoutingKey == workflows.EventRefundSucceeded && containsID(d.Body, rid)
	})

	// A second verdict is refused: the refund no longer waits.
	again := payctl(t, "refund", "resolve", rid, "--as", "failed", "--reason", "changed my mind")
	require.Equal(t, ctl.ExitRefused, again.Code, "%s%s", again.Stdout, again.Stderr)
	require.Contains(t, again.Stderr, "not waiting for a resolution")
	require.Equal(t, "SUCCEEDED", waitRefund(t, m, rid).str("status"))
	k, _ = credits(acct)
	require.Equal(t, 1, k)
}

// An UNKNOWN refund resolved as failed: FAILED with the reservation given back, its transfer
// NOT_EXECUTED, the payment untouched.
func TestRefundResolveFailed(t *testing.T) {
	c, m, acct, p := paid(t, 100_000, 40_000, nil)
	id := p.str("id")
	// The connection drops before the bank processes the credit: nothing executed, but
	// paysaga cannot know it, nor ask.
	withFault(t, nh.APIReceivedTransferFinAccount, nhsim.Fault{Kind: nhsim.FaultDrop, Probability: 1})
	withFault(t, nh.APICheckOnReceivedTransfer, nhsim.Fault{Kind: nhsim.FaultHTTP500, Probability: 1})

	a := refund(t, m, id, 40_000, "resolve-failed-1")
	rid := refundID(a)
	require.NotEmpty(t, rid, "%s", a.Raw)
	waitRefundUnknown(t, m, rid)

	r := payctl(t, "refund", "resolve", rid, "--as", "failed", "--reason", "no credit on the NH statement")
	require.Equal(t, ctl.ExitOK, r.Code, "%s%s", r.Stdout, r.Stderr)
	require.Contains(t, r.Stdout, "resolved: FAILED")
	f := waitRefund(t, m, rid)
	require.Equal(t, "FAILED", f.str("status"))
	require.Equal(t, workflows.FailureOperator, f.str("failure_code"))
	reserved, err := env.Parts.DB.ReservedRefundAmount(context.Background(), id)
	require.NoError(t, err)
	require.Zero(t, reserved, "the reservation was given back")
	waitStatus(t, c, id, paysaga.PaymentSucceeded)
	k, _ := credits(acct)
	require.Zero(t, k)

	ev := lastRefundEvent(t, id, rid)
	require.Equal(t, workflows.EventRefundFailed, ev.Type)
	require.Equal(t, "e2e-operator", ev.Actor, "the actor defaults to $USER")
	require.Equal(t, "no credit on the NH statement", ev.Reason)
	trs, err := env.Parts.DB.ListTransfersByRefund(context.Background(), rid)
	require.NoError(t, err)
	require.Len(t, trs, 1)
	require.Equal(t, paysaga.TransferNotExecuted, trs[0].State)
}
