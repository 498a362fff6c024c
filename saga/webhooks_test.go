package saga_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"paysaga/activities"
	"paysaga/saga"
	"paysaga/webhook"
	"paysaga/workflows"
)

// A delivery's workflow is started once per generation under its deterministic ID: one running
// is joined and one that ended is not started again, both without an error; other failures
// are the caller's to retry.
func TestStartDelivery(t *testing.T) {
	d := &webhook.Delivery{ID: "whd_1", EndpointID: "whe_1", EventID: "evt_1", Generation: 2, MerchantID: "usr_m"}
	var args []any
	tc := &fakeTemporal{answer: func(_ context.Context, o client.UpdateWorkflowOptions) (any, error) {
		args = o.Args
		return nil, nil
	}}
	require.NoError(t, saga.WebhookDeliveries{Client: tc}.StartDelivery(context.Background(), d))
	start := tc.Starts()[0]
	require.Equal(t, workflows.WebhookDeliveryWorkflowID("whe_1", "evt_1", 2), start.ID)
	require.Equal(t, enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE, start.WorkflowIDReusePolicy)
	require.Equal(t, enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING, start.WorkflowIDConflictPolicy)
	require.Equal(t, []any{activities.WebhookDeliveryInput{DeliveryID: "whd_1", EndpointID: "whe_1", EventID: "evt_1", Generation: 2}}, args)

	tc.answer = func(context.Context, client.UpdateWorkflowOptions) (any, error) {
		return nil, serviceerror.NewWorkflowExecutionAlreadyStarted("ended", "", "")
	}
	require.NoError(t, saga.WebhookDeliveries{Client: tc}.StartDelivery(context.Background(), d))

	tc.answer = func(context.Context, client.UpdateWorkflowOptions) (any, error) {
		return nil, serviceerror.NewUnavailable("connection refused")
	}
	require.Error(t, saga.WebhookDeliveries{Client: tc}.StartDelivery(context.Background(), d))
}
