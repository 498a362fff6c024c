package e2e

import (
	"net/http"
	"strings"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	"paysaga"
	"paysaga/cmd/payctl/ctl"
	"paysaga/events"
	"paysaga/nh"
	"paysaga/nhsim"
)

// Issue 11, item 3: the refund of a manual-capture cancellation is declined. The payment stays
// AUTHORIZED and needs attention, payment.cancel_failed reaches the broker (and the alerts),
// and `payctl refund replay` of that refund — refused before ("capture it first"), and the
// payment's workflow had ended — pays the customer back and cancels the payment.
func TestManualCaptureCancelFailedIsReplayedByPayctl(t *testing.T) {
	c, m, acct, p := paid(t, 100_000, 30_000, map[string]any{"capture": "manual"})
	id := p.str("id")
	require.Equal(t, "AUTHORIZED", p.str("status"))
	failed := consume(t, events.PaymentCancelFailed)
	withFault(t, nh.APIReceivedTransferFinAccount, nhsim.Fault{Kind: nhsim.FaultDecline, Probability: 1, Rpcd: "E9999"})

	a := call(t, "POST", "/v1/payments/"+id+"/cancel", m.Token, map[string]any{"reason": "out of stock"})
	require.Contains(t, []int{http.StatusOK, http.StatusAccepted}, a.Status, "%s", a.Raw)
	failed.await(t, func(d amqp.Delivery) bool { return containsID(d.Body, id) })
	require.Equal(t, "AUTHORIZED", call(t, "GET", "/v1/payments/"+id, c.Token, nil).str("status"))
	k, _ := credits(acct)
	require.Zero(t, k, "nothing paid back yet")

	rid := paysaga.PrefixRefund + strings.TrimPrefix(id, paysaga.PrefixPayment)
	env.Sim.ClearFault(nh.APIReceivedTransferFinAccount)
	code, rows, out := replayRefunds(t, rid)
	require.Equal(t, ctl.ExitOK, code, out)
	require.Len(t, rows, 1)
	require.Equal(t, "succeeded", rows[0]["result"], out)

	waitStatus(t, c, id, paysaga.PaymentCanceled)
	k, total := credits(acct)
	require.Equal(t, 1, k, "paid back exactly once")
	require.EqualValues(t, 30_000, total)
	require.EqualValues(t, 100_000, env.Sim.Balance("011", acct.Acn.Acno))

	// Replaying again is refused: the payment is canceled, its refund succeeded.
	code, rows, out = replayRefunds(t, rid)
	require.Equal(t, ctl.ExitRefused, code, out)
	require.Equal(t, "refused", rows[0]["result"])
}
