package saga_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"paysaga/saga"
	"paysaga/settlement"
	"paysaga/workflows"
)

// A retry is a new run of the merchant's day, never joined to one still going; a day's
// settlement is joined while it runs.
func TestSettlements(t *testing.T) {
	var args [][]any
	tc := &fakeTemporal{answer: func(_ context.Context, o client.UpdateWorkflowOptions) (any, error) {
		args = append(args, o.Args)
		return nil, nil
	}}
	s := saga.Settlements{Client: tc}
	_, err := s.Retry(context.Background(), "usr_m", "2026-11-30", "ops")
	require.NoError(t, err)
	_, err = s.SettleDay(context.Background(), "2026-11-30")
	require.NoError(t, err)

	starts := tc.Starts()
	require.Equal(t, settlement.WorkflowID("usr_m", "2026-11-30"), starts[0].ID)
	require.Equal(t, enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE, starts[0].WorkflowIDReusePolicy)
	require.Equal(t, enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL, starts[0].WorkflowIDConflictPolicy)
	require.Equal(t, []any{workflows.SettlementInput{MerchantID: "usr_m", Day: "2026-11-30", Retry: true, Actor: "ops"}}, args[0])
	require.Equal(t, settlement.DayWorkflowID("2026-11-30"), starts[1].ID)
	require.Equal(t, enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING, starts[1].WorkflowIDConflictPolicy)
	require.Equal(t, []any{workflows.SettlementDayInput{Day: "2026-11-30"}}, args[1])
}
