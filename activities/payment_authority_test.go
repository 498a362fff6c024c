package activities_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"paysaga"
	"paysaga/activities"
)

// Issue 11, item 9: the Temporal frontend is a trust boundary. Anyone who reaches it can start
// PaymentWorkflow with any input; the payment row the API wrote is what the steps obey, and a
// workflow whose input disagrees with it is refused before any bank call.
func TestWorkflowInputDisagreeingWithThePaymentRowIsRefused(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		// row is what the API recorded (nil: nothing); input what the attacker started the
		// workflow with.
		row   func(f *fixture, id string) *paysaga.Payment
		input func(f *fixture, id string) *paysaga.Payment
	}{
		{name: "no payment recorded by the API",
			input: func(f *fixture, id string) *paysaga.Payment {
				return &paysaga.Payment{ID: id, CustomerID: f.customerID, AccountID: f.accountID, MerchantID: "usr_attacker", Amount: 90_000}
			}},
		{name: "another merchant and amount than recorded",
			row: func(f *fixture, id string) *paysaga.Payment {
				return &paysaga.Payment{ID: id, CustomerID: f.customerID, AccountID: f.accountID, MerchantID: "usr_shop", Amount: 1_000}
			},
			input: func(f *fixture, id string) *paysaga.Payment {
				return &paysaga.Payment{ID: id, CustomerID: f.customerID, AccountID: f.accountID, MerchantID: "usr_attacker", Amount: 90_000}
			}},
		{name: "another customer's account under the attacker's own payment",
			row: func(f *fixture, id string) *paysaga.Payment {
				return &paysaga.Payment{ID: id, CustomerID: f.customerID, AccountID: f.accountID, MerchantID: "usr_shop", Amount: 1_000}
			},
			input: func(f *fixture, id string) *paysaga.Payment {
				return &paysaga.Payment{ID: id, CustomerID: "usr_attacker", AccountID: f.accountID, MerchantID: "usr_shop", Amount: 1_000}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			id := paysaga.NewID(paysaga.PrefixPayment)
			if tc.row != nil {
				row := tc.row(f, id)
				row.Status = paysaga.PaymentPending
				_, _, err := f.db.CreatePayment(ctx, row)
				require.NoError(t, err)
			}
			in := tc.input(f, id)
			in.Status = paysaga.PaymentPending

			// The workflow's first step, as it runs it.
			err := f.acts.RecordPayment(ctx, activities.RecordPaymentInput{Create: in, PaymentID: id, Status: paysaga.PaymentProcessing,
				Events: []paysaga.PaymentEvent{{ID: "evt_" + id + "_1", PaymentID: id, Type: "payment.created", Status: paysaga.PaymentPending}}})
			typ, appErr := appErrType(t, err)
			require.Equal(t, activities.ErrTypeStateConflict, typ)
			require.True(t, appErr.NonRetryable())

			stored, err := f.db.GetPayment(ctx, id)
			if tc.row == nil {
				require.Equal(t, paysaga.ENOTFOUND, paysaga.ErrorCode(err), "the workflow's input creates no payment")
			} else {
				require.NoError(t, err)
				require.Equal(t, paysaga.PaymentPending, stored.Status, "nothing written")
				require.Equal(t, tc.row(f, id).Amount, stored.Amount)
			}
			evs, err := f.db.ListPaymentEvents(ctx, id)
			require.NoError(t, err)
			require.Empty(t, evs)

			// Had the run gone on to its debit, nothing would be sent either.
			_, err = runDebit(t, f, activities.PaymentWorkflowPrefix+id, activities.DebitInput{PaymentID: id, TransferID: "trf_" + id + "_1"})
			typ, _ = appErrType(t, err)
			require.Equal(t, activities.ErrTypeStateConflict, typ)
			require.Empty(t, f.debitsAtBank(), "no bank call")
			require.EqualValues(t, 100_000, f.sim.Balance("011", f.bankAcno))
		})
	}
}

// A debit moves money only for the payment's own workflow, and only while its row is
// PROCESSING (checked against the workflow's input by the first step).
func TestDebitOnlyFromThePaymentsOwnWorkflow(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	p := f.newPayment(t, 12_000)
	in := activities.DebitInput{PaymentID: p.ID, TransferID: "trf_" + p.ID + "_1"}

	for _, wid := range []string{"payment:" + paysaga.NewID(paysaga.PrefixPayment), "refund:" + p.ID, "attacker-" + p.ID} {
		_, err := runDebit(t, f, wid, in)
		typ, appErr := appErrType(t, err)
		require.Equal(t, activities.ErrTypeStateConflict, typ, wid)
		require.True(t, appErr.NonRetryable())
	}
	require.Empty(t, f.debitsAtBank())
	_, err := f.db.GetTransfer(ctx, in.TransferID)
	require.Equal(t, paysaga.ENOTFOUND, paysaga.ErrorCode(err), "no transfer recorded")

	// A PENDING row (the first step never ran) is not debited, even by its own workflow.
	pending := &paysaga.Payment{ID: paysaga.NewID(paysaga.PrefixPayment), CustomerID: f.customerID, MerchantID: "usr_shop",
		AccountID: f.accountID, Amount: 3_000, Status: paysaga.PaymentPending}
	_, _, err = f.db.CreatePayment(ctx, pending)
	require.NoError(t, err)
	_, err = runDebit(t, f, activities.PaymentWorkflowPrefix+pending.ID, activities.DebitInput{PaymentID: pending.ID, TransferID: "trf_" + pending.ID + "_1"})
	typ, _ := appErrType(t, err)
	require.Equal(t, activities.ErrTypeStateConflict, typ)
	require.Empty(t, f.debitsAtBank())

	res, err := runDebit(t, f, activities.PaymentWorkflowPrefix+p.ID, in)
	require.NoError(t, err)
	require.Equal(t, "00000", res.Rpcd)
	require.Len(t, f.debitsAtBank(), 1)
	require.EqualValues(t, 100_000-12_000, f.sim.Balance("011", f.bankAcno))
}

// runDebit runs the Debit activity once from a workflow with ID workflowID, as a worker would.
func runDebit(t *testing.T, f *fixture, workflowID string, in activities.DebitInput) (activities.DebitResult, error) {
	t.Helper()
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.RegisterActivityWithOptions(f.acts.Debit, activity.RegisterOptions{Name: activities.DebitName})
	wf := func(ctx workflow.Context, in activities.DebitInput) (activities.DebitResult, error) {
		ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 10 * time.Second,
			RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 1}})
		var res activities.DebitResult
		err := workflow.ExecuteActivity(ctx, activities.DebitName, in).Get(ctx, &res)
		return res, err
	}
	env.RegisterWorkflowWithOptions(wf, workflow.RegisterOptions{Name: "DebitProbe"})
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: workflowID})
	env.ExecuteWorkflow("DebitProbe", in)
	require.True(t, env.IsWorkflowCompleted())
	var res activities.DebitResult
	if err := env.GetWorkflowError(); err != nil {
		return res, err
	}
	require.NoError(t, env.GetWorkflowResult(&res))
	return res, nil
}

// A workflow started under another ID with a real payment's exact details (the attacker read
// them somewhere) cannot write that payment: not its status, not its history.
func TestRecordPaymentOnlyFromThePaymentsOwnWorkflow(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	p := f.newPayment(t, 5_000) // PROCESSING, its own workflow debiting
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.RegisterActivityWithOptions(f.acts.RecordPayment, activity.RegisterOptions{Name: activities.RecordPaymentName})
	env.RegisterWorkflowWithOptions(func(ctx workflow.Context, in activities.RecordPaymentInput) error {
		ctx = workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{StartToCloseTimeout: 10 * time.Second,
			RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 1}})
		return workflow.ExecuteLocalActivity(ctx, activities.RecordPaymentName, in).Get(ctx, nil)
	}, workflow.RegisterOptions{Name: "RecordProbe"})
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: "payment:" + paysaga.NewID(paysaga.PrefixPayment)})
	env.ExecuteWorkflow("RecordProbe", activities.RecordPaymentInput{PaymentID: p.ID, Status: paysaga.PaymentFailed,
		FailureCode: "E9999", Events: []paysaga.PaymentEvent{{ID: "evt_forged", PaymentID: p.ID, Type: "payment.failed"}}})
	require.True(t, env.IsWorkflowCompleted())
	typ, _ := appErrType(t, env.GetWorkflowError())
	require.Equal(t, activities.ErrTypeStateConflict, typ)

	stored, err := f.db.GetPayment(ctx, p.ID)
	require.NoError(t, err)
	require.Equal(t, paysaga.PaymentProcessing, stored.Status)
	evs, err := f.db.ListPaymentEvents(ctx, p.ID)
	require.NoError(t, err)
	for _, e := range evs {
		require.NotEqual(t, "evt_forged", e.ID)
	}
}
