package saga_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"paysaga"
	"paysaga/saga"
	"paysaga/workflows"
)

// A registration may run again under its workflow ID (after FAILED or DELETED), so every call
// waits on an Update of its own.
func TestStartRegistration(t *testing.T) {
	in := workflows.FinAccountInput{AccountID: paysaga.NewID(paysaga.PrefixAccount), OwnerID: "usr_c"}
	tc := &fakeTemporal{answer: func(context.Context, client.UpdateWorkflowOptions) (any, error) {
		return paysaga.Account{ID: in.AccountID, Status: paysaga.AccountActive}, nil
	}}
	starter := saga.Accounts{Client: tc, Store: fakeStore{}}
	for range 2 {
		a, err := starter.StartRegistration(context.Background(), in, time.Second)
		require.NoError(t, err)
		require.Equal(t, paysaga.AccountActive, a.Status)
	}
	starts, updates := tc.Starts(), tc.Updates()
	require.Equal(t, workflows.FinAccountWorkflowID(in.AccountID), starts[0].ID)
	require.Equal(t, enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE, starts[0].WorkflowIDReusePolicy)
	require.Equal(t, enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING, starts[0].WorkflowIDConflictPolicy)
	require.Equal(t, workflows.UpdateOutcome, updates[0].UpdateName)
	require.NotEqual(t, updates[0].UpdateID, updates[1].UpdateID)
}

// Issue 11, item 6: a registration whose workflow the server does not confirm running is
// EUNAVAILABLE (the PENDING account waits for the retry, which starts it), not "still
// running"; once the server answers, a wait that runs out is (nil, nil).
func TestStartRegistrationNotRunningUntilTheServerSaysSo(t *testing.T) {
	in := workflows.FinAccountInput{AccountID: paysaga.NewID(paysaga.PrefixAccount), OwnerID: "usr_c"}
	db := fakeStore{accounts: map[string]*paysaga.Account{in.AccountID: {ID: in.AccountID, Status: paysaga.AccountPending}}}
	tc := &fakeTemporal{describe: down}
	starter := saga.Accounts{Client: tc, Store: db}
	a, err := starter.StartRegistration(context.Background(), in, 20*time.Millisecond)
	require.Nil(t, a)
	require.Equal(t, paysaga.EUNAVAILABLE, paysaga.ErrorCode(err))
	require.Equal(t, "the registration could not be started; retry with the same Idempotency-Key", paysaga.ErrorMessage(err))

	tc.describe = func(wid string) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
		return nil, serviceerror.NewNotFound("workflow not found for ID: " + wid)
	}
	_, err = starter.StartRegistration(context.Background(), in, 20*time.Millisecond)
	require.Equal(t, paysaga.EUNAVAILABLE, paysaga.ErrorCode(err), "a workflow that does not exist is not running")

	tc.describe = nil
	a, err = starter.StartRegistration(context.Background(), in, 20*time.Millisecond)
	require.NoError(t, err)
	require.Nil(t, a, "running: the client polls")

	// Ended meanwhile: the store has the answer.
	db.accounts[in.AccountID] = &paysaga.Account{ID: in.AccountID, Status: paysaga.AccountFailed}
	tc.answer = func(context.Context, client.UpdateWorkflowOptions) (any, error) {
		return nil, serviceerror.NewInternal("boom")
	}
	a, err = starter.StartRegistration(context.Background(), in, time.Second)
	require.NoError(t, err)
	require.Equal(t, paysaga.AccountFailed, a.Status)
}
