// Package worker builds the Temporal worker of the engine: it registers the workflows and the
// activities, wired to their dependencies, on the paysaga task queue.
package worker

import (
	"fmt"
	"log/slog"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"paysaga/activities"
	"paysaga/events"
	"paysaga/seal"
	"paysaga/store"
	"paysaga/workflows"
)

// Worker is a Temporal worker: Start, Run, Stop.
type Worker = sdkworker.Worker

// Deps are what the workflows' steps need.
type Deps struct {
	Store *store.DB
	// Bank is the NH client (*nh.Client), or a stand-in in tests.
	Bank activities.Bank
	// RefundBank pays refunds out; Bank when it can (an *nh.Client can), else refunds are not
	// served by this worker.
	RefundBank activities.RefundBank
	// Keys opens the account numbers support types in for refunds; without them such refunds
	// fail (refunds to the payment's own account need none).
	Keys *seal.Keyring
	// Events publishes the outcome events; events.NoBroker when nil.
	Events events.Publisher
	Logger *slog.Logger
	// Payments holds the deadlines of the payment saga (zero fields: defaults).
	Payments workflows.PaymentConfig
	// Options tunes the worker (concurrency…); zero values are the SDK's defaults.
	Options sdkworker.Options
}

// New returns a worker on workflows.TaskQueue with every workflow and activity registered. It
// is not started.
func New(c client.Client, deps Deps) (Worker, error) {
	if c == nil || deps.Store == nil || deps.Bank == nil {
		return nil, fmt.Errorf("worker: a client, a store and a bank are required")
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Events == nil {
		deps.Events = events.NoBroker{Logger: deps.Logger}
	}
	w := sdkworker.New(c, workflows.TaskQueue, deps.Options)
	RegisterWorkflows(w, deps.Payments)
	RegisterActivities(w, &activities.Activities{
		Store: deps.Store, Bank: deps.Bank, Events: deps.Events, Logger: deps.Logger,
	})
	if deps.RefundBank == nil {
		deps.RefundBank, _ = deps.Bank.(activities.RefundBank)
	}
	if deps.RefundBank != nil {
		(&activities.RefundActivities{
			Store: deps.Store, Bank: deps.RefundBank, Keys: deps.Keys, Events: deps.Events, Logger: deps.Logger,
		}).Register(w)
	}
	return w, nil
}

// WorkflowRegistry is where workflows are registered: a worker, or a replayer.
type WorkflowRegistry interface {
	RegisterWorkflowWithOptions(w any, options workflow.RegisterOptions)
}

// RegisterWorkflows registers every workflow under its stable name. Replay tests and
// `payctl history replay` use it too, so that they check the code the worker runs.
func RegisterWorkflows(r WorkflowRegistry, payments workflows.PaymentConfig) {
	p := workflows.NewPayments(payments)
	r.RegisterWorkflowWithOptions(p.PaymentWorkflow, workflow.RegisterOptions{Name: workflows.PaymentWorkflowName})
	r.RegisterWorkflowWithOptions(p.RefundWorkflow, workflow.RegisterOptions{Name: workflows.RefundWorkflowName})
}

// ActivityRegistry is where activities are registered.
type ActivityRegistry interface {
	RegisterActivityWithOptions(a any, options activity.RegisterOptions)
}

// RegisterActivities registers the activities under the names the workflows call them by
// (local activities are looked up in the same registry).
func RegisterActivities(r ActivityRegistry, a *activities.Activities) {
	for name, fn := range map[string]any{
		activities.RecordPaymentName:       a.RecordPayment,
		activities.DebitName:               a.Debit,
		activities.CheckDebitName:          a.CheckDebit,
		activities.PublishPaymentEventName: a.PublishPaymentEvent,
	} {
		r.RegisterActivityWithOptions(fn, activity.RegisterOptions{Name: name})
	}
}
