package worker_test

import (
	"sort"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/workflow"

	"paysaga/activities"
	"paysaga/worker"
	"paysaga/workflows"
)

type registry struct {
	workflows, activities []string
}

func (r *registry) RegisterWorkflowWithOptions(_ any, o workflow.RegisterOptions) {
	r.workflows = append(r.workflows, o.Name)
}

func (r *registry) RegisterActivityWithOptions(_ any, o activity.RegisterOptions) {
	r.activities = append(r.activities, o.Name)
}

// One place registers everything: every workflow type (the registration one included, which
// the worker's caller registered separately before), so that a replayer that registers
// through RegisterWorkflows — the replay tests, `payctl history replay` — checks them all.
func TestRegisterWorkflowsRegistersEveryWorkflow(t *testing.T) {
	var r registry
	worker.RegisterWorkflows(&r, worker.Config{})
	sort.Strings(r.workflows)
	want := []string{workflows.FinAccountWorkflowName, workflows.PaymentWorkflowName, workflows.RefundWorkflowName,
		workflows.SettlementDayWorkflowName, workflows.SettlementWorkflowName, workflows.WebhookDeliveryWorkflowName}
	sort.Strings(want)
	require.Equal(t, want, r.workflows)
}

// Every step the workflows call is registered under its name, once.
func TestRegisterActivitiesRegistersEveryStep(t *testing.T) {
	var r registry
	worker.RegisterActivities(&r, worker.Activities{
		Payments: &activities.Activities{}, Refunds: &activities.RefundActivities{}, Accounts: &activities.AccountActivities{},
		Settlements: &activities.SettlementActivities{},
	})
	sort.Strings(r.activities)
	want := []string{
		activities.RecordPaymentName, activities.DebitName, activities.CheckDebitName, activities.PublishPaymentEventName,
		activities.ReserveRefundName, activities.CreditName, activities.CheckCreditName, activities.SettleRefundName,
		activities.PublishRefundEventName,
		activities.OpenFinAccountName, activities.CheckFinAccountName, activities.FailFinAccountName, activities.PublishAccountEventName,
		activities.ListSettlementMerchantsName, activities.PrepareSettlementName, activities.ReopenSettlementName,
		activities.PayoutName, activities.CheckPayoutName, activities.FinishSettlementName, activities.PublishSettlementEventName,
	}
	sort.Strings(want)
	require.Equal(t, want, r.activities)

	var none registry
	worker.RegisterActivities(&none, worker.Activities{Payments: &activities.Activities{}})
	require.Len(t, none.activities, 4, "a nil field registers nothing")
}
