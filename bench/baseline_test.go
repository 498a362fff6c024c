package main

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"paysaga/workflows"
)

// The payment-shaped baseline asks of Temporal what a payment asks: its outcome Update answers
// after all steps but the last and one status upsert, and the last step (the publish) runs after.
func TestPaymentShapedBaselineAnswersItsOutcomeUpdateBeforeItsLastStep(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(PaymentShapedBaselineWorkflow)
	env.RegisterActivityWithOptions(Noop, activity.RegisterOptions{Name: baselineActivity})

	var mu sync.Mutex
	var order []string
	note := func(s string) {
		mu.Lock()
		defer mu.Unlock()
		order = append(order, s)
	}
	// The no-op runs as the activity and as the local activity alike (the same function).
	env.OnActivity(baselineActivity, mock.Anything).Run(func(mock.Arguments) { note("step") }).Return(nil)
	env.OnUpsertTypedSearchAttributes(mock.Anything).Run(func(args mock.Arguments) {
		got, ok := args.Get(0).(temporal.SearchAttributes).GetKeyword(workflows.SearchPaymentStatus)
		require.True(t, ok)
		note("upsert " + got)
	}).Return(nil)
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(workflows.UpdateOutcome, "outcome", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { t.Errorf("outcome update rejected: %v", err) },
			OnAccept: func() {},
			OnComplete: func(v any, err error) {
				require.NoError(t, err)
				require.Equal(t, "done", v)
				note("answered")
			},
		})
	}, 0)
	env.ExecuteWorkflow(PaymentShapedBaselineWorkflow, "LAA")
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	require.Equal(t, []string{"step", "step", "upsert SUCCEEDED", "answered", "step"}, order)
}
