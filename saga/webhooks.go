package saga

import (
	"context"
	"errors"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"paysaga/activities"
	"paysaga/webhook"
	"paysaga/workflows"
)

// WebhookDeliveries starts webhook delivery workflows: the webhook.Starter of the dispatcher,
// the API's redeliveries and payctl's.
type WebhookDeliveries struct {
	Client client.Client
}

// StartDelivery starts the workflow of d's current generation, by its deterministic ID: one
// running already is joined, one that ended is not started again (both answer nil).
func (w WebhookDeliveries) StartDelivery(ctx context.Context, d *webhook.Delivery) error {
	_, err := w.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       workflows.WebhookDeliveryWorkflowID(d.EndpointID, d.EventID, d.Generation),
		TaskQueue:                workflows.TaskQueue,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		TypedSearchAttributes:    temporal.NewSearchAttributes(workflows.SearchMerchantID.ValueSet(d.MerchantID)),
	}, workflows.WebhookDeliveryWorkflowName, activities.WebhookDeliveryInput{
		DeliveryID: d.ID, EndpointID: d.EndpointID, EventID: d.EventID, Generation: d.Generation,
	})
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return nil
	}
	return err
}
