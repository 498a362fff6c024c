package saga

import (
	"context"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"paysaga/settlement"
	"paysaga/workflows"
)

// Settlements starts settlement workflows on an operator's demand; the daily ones are started
// by their Schedule.
type Settlements struct {
	Client client.Client
}

// Retry starts a new run of a merchant's day settlement that ended FAILED or UNKNOWN, as actor.
// A run of it still going is an error (it is not joined: its outcome is not the retry's).
func (s Settlements) Retry(ctx context.Context, merchantID, day, actor string) (client.WorkflowRun, error) {
	return s.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: settlement.WorkflowID(merchantID, day), TaskQueue: workflows.TaskQueue,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		TypedSearchAttributes:    workflows.SettlementSearchAttributes(merchantID),
	}, workflows.SettlementWorkflowName, workflows.SettlementInput{MerchantID: merchantID, Day: day, Retry: true, Actor: actor})
}

// SettleDay starts the settlement of a Korea day (YYYY-MM-DD), or joins the run going; a day
// settled already pays nobody again.
func (s Settlements) SettleDay(ctx context.Context, day string) (client.WorkflowRun, error) {
	return s.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: settlement.DayWorkflowID(day), TaskQueue: workflows.TaskQueue,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
	}, workflows.SettlementDayWorkflowName, workflows.SettlementDayInput{Day: day})
}
