package saga

import (
	"context"
	"errors"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"paysaga"
	"paysaga/workflows"
)

// AccountStore reads an account whose registration workflow may have closed. *store.DB
// implements it.
type AccountStore interface {
	GetAccount(ctx context.Context, id string) (*paysaga.Account, error)
}

// Accounts starts fin-account registration workflows.
type Accounts struct {
	Client client.Client
	// Store reads an account whose workflow has already closed.
	Store AccountStore
}

// StartRegistration starts the registration workflow of a PENDING account with
// Update-with-Start — one round trip starts it (or joins the one running for the account) and
// waits on its outcome Update — for up to wait. It returns the account ACTIVE or FAILED, or
// (nil, nil) when the bank has not issued the fin account in time (the client polls).
func (t Accounts) StartRegistration(ctx context.Context, in workflows.FinAccountInput, wait time.Duration) (*paysaga.Account, error) {
	o := outcome{
		options: client.StartWorkflowOptions{
			ID:        workflows.FinAccountWorkflowID(in.AccountID),
			TaskQueue: workflows.TaskQueue,
			// A retry joins the running registration. A closed one may be followed by a new run:
			// the API starts one only for a PENDING account (a new registration after FAILED or
			// DELETED), and the workflow's steps refuse any other.
			WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
			WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
			TypedSearchAttributes:    temporal.NewSearchAttributes(workflows.SearchCustomerID.ValueSet(in.OwnerID)),
		},
		workflow: workflows.FinAccountWorkflowName, input: in,
		// An update of its own per call: unlike a payment, an account is registered again after
		// a refusal (a new run under the same workflow ID), and the server would answer a reused
		// update ID with the previous run's outcome. Waiting twice on a running registration is
		// harmless.
		updateID: workflows.UpdateOutcome + ":" + strings.TrimPrefix(paysaga.NewID("u"), "u"),
	}
	waitCtx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	var a paysaga.Account
	err := o.await(waitCtx, t.Client, &a)
	if err == nil {
		return &a, nil
	}
	// A wait that runs out looks the same whether the registration is running or the start
	// never reached the server (Temporal down): "poll here" is answered only once the server
	// confirms the workflow runs. Otherwise EUNAVAILABLE: the PENDING account waits for the
	// client's retry with the same Idempotency-Key, which starts it.
	if stillRunning(ctx, waitCtx, err) && t.running(ctx, in.AccountID) {
		return nil, nil // still issuing: the client polls
	}
	// The workflow may have ended between our read and the update: the store has the answer.
	if got, gerr := t.Store.GetAccount(ctx, in.AccountID); gerr == nil && got.Status != paysaga.AccountPending {
		return got, nil
	}
	if err == nil {
		err = errors.New("the registration workflow is not running")
	}
	return nil, unavailable("account", in.AccountID, "the registration could not be started", err)
}

// running asks the server whether the account's registration workflow is running, briefly:
// no answer counts as no.
func (t Accounts) running(ctx context.Context, accountID string) bool {
	ctx, cancel := context.WithTimeout(ctx, confirmWait)
	defer cancel()
	desc, err := t.Client.DescribeWorkflowExecution(ctx, workflows.FinAccountWorkflowID(accountID), "")
	return err == nil && desc.GetWorkflowExecutionInfo().GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING
}
