// Package worker builds the Temporal worker of the engine and is the one place that registers
// the engine's workflows and activities: the worker, the replay tests and `payctl history
// replay` all register through RegisterWorkflows, so they check the code the worker runs.
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
	"paysaga/nh"
	"paysaga/seal"
	"paysaga/store"
	"paysaga/workflows"
)

// Worker is a Temporal worker: Start, Run, Stop.
type Worker = sdkworker.Worker

// Bank is what the activities need of the bank; *nh.Client implements it.
type Bank interface {
	activities.Bank
	activities.RefundBank
	activities.AccountBank
}

var _ Bank = (*nh.Client)(nil)

// Deps are what the workflows' steps need.
type Deps struct {
	Store *store.DB
	// Bank is the NH client (*nh.Client), or a stand-in in tests.
	Bank Bank
	// Keys opens the sealed account numbers and birth dates (registrations, refunds to an
	// account support typed in).
	Keys *seal.Keyring
	// Events publishes the outcome events; events.NoBroker when nil.
	Events events.Publisher
	Logger *slog.Logger
	// Payments, Refunds and FinAccounts hold the deadlines of the sagas (zero fields: defaults).
	Payments    workflows.PaymentConfig
	Refunds     workflows.RefundConfig
	FinAccounts workflows.FinAccountConfig
	// Webhooks is the retry schedule of webhook deliveries (zero fields: defaults); their
	// activities are registered by internal/app (WebhookWorker).
	Webhooks workflows.WebhookConfig
	// SettlementFeeBPS is the fee rate of merchants without one of their own
	// (PAYSAGA_SETTLEMENT_FEE_BPS).
	SettlementFeeBPS int64
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
	RegisterWorkflows(w, Config{Payments: deps.Payments, Refunds: deps.Refunds, FinAccounts: deps.FinAccounts, Webhooks: deps.Webhooks})
	RegisterActivities(w, Activities{
		Payments: &activities.Activities{Store: deps.Store, Bank: deps.Bank, Events: deps.Events, Logger: deps.Logger},
		Refunds: &activities.RefundActivities{
			Store: deps.Store, Bank: deps.Bank, Keys: deps.Keys, Events: deps.Events, Logger: deps.Logger,
		},
		Accounts: &activities.AccountActivities{
			Store: deps.Store, Bank: deps.Bank, Keys: deps.Keys, Events: deps.Events, Logger: deps.Logger,
		},
		Settlements: &activities.SettlementActivities{
			Store: deps.Store, Bank: deps.Bank, Keys: deps.Keys, Events: deps.Events, Logger: deps.Logger,
			DefaultFeeBPS: deps.SettlementFeeBPS,
		},
	})
	return w, nil
}

// Config is the configuration of every workflow (zero fields: the defaults).
type Config struct {
	Payments    workflows.PaymentConfig
	Refunds     workflows.RefundConfig
	FinAccounts workflows.FinAccountConfig
	Webhooks    workflows.WebhookConfig
}

// WorkflowRegistry is where workflows are registered: a worker, or a replayer.
type WorkflowRegistry interface {
	RegisterWorkflowWithOptions(w any, options workflow.RegisterOptions)
}

// RegisterWorkflows registers every workflow under its stable type name.
func RegisterWorkflows(r WorkflowRegistry, cfg Config) {
	for name, fn := range map[string]any{
		workflows.PaymentWorkflowName:    workflows.NewPayments(cfg.Payments).PaymentWorkflow,
		workflows.RefundWorkflowName:     workflows.NewRefunds(cfg.Refunds).RefundWorkflow,
		workflows.FinAccountWorkflowName: workflows.NewFinAccounts(cfg.FinAccounts).FinAccountWorkflow,
		// Settlement pays out like a refund credits: the payments' bank deadlines.
		workflows.SettlementDayWorkflowName:   workflows.NewPayments(cfg.Payments).SettlementDayWorkflow,
		workflows.SettlementWorkflowName:      workflows.NewPayments(cfg.Payments).SettlementWorkflow,
		workflows.WebhookDeliveryWorkflowName: workflows.NewWebhooks(cfg.Webhooks).WebhookDeliveryWorkflow,
	} {
		r.RegisterWorkflowWithOptions(fn, workflow.RegisterOptions{Name: name})
	}
}

// Activities are the steps of the workflows, wired to their dependencies. A nil field
// registers nothing.
type Activities struct {
	Payments *activities.Activities
	Refunds  *activities.RefundActivities
	Accounts *activities.AccountActivities
	// Settlements are the settlement steps (a payout, its check, …).
	Settlements *activities.SettlementActivities
}

// ActivityRegistry is where activities are registered.
type ActivityRegistry interface {
	RegisterActivityWithOptions(a any, options activity.RegisterOptions)
}

// RegisterActivities registers the activities under the names the workflows call them by
// (local activities are looked up in the same registry).
func RegisterActivities(r ActivityRegistry, acts Activities) {
	steps := map[string]any{}
	if a := acts.Payments; a != nil {
		steps[activities.RecordPaymentName] = a.RecordPayment
		steps[activities.DebitName] = a.Debit
		steps[activities.CheckDebitName] = a.CheckDebit
		steps[activities.PublishPaymentEventName] = a.PublishPaymentEvent
	}
	if a := acts.Refunds; a != nil {
		steps[activities.ReserveRefundName] = a.ReserveRefund
		steps[activities.CreditName] = a.Credit
		steps[activities.CheckCreditName] = a.CheckCredit
		steps[activities.SettleRefundName] = a.SettleRefund
		steps[activities.PublishRefundEventName] = a.PublishRefundEvent
	}
	if a := acts.Accounts; a != nil {
		steps[activities.OpenFinAccountName] = a.OpenFinAccount
		steps[activities.CheckFinAccountName] = a.CheckFinAccount
		steps[activities.FailFinAccountName] = a.FailFinAccount
		steps[activities.PublishAccountEventName] = a.PublishAccountEvent
	}
	if a := acts.Settlements; a != nil {
		steps[activities.ListSettlementMerchantsName] = a.ListSettlementMerchants
		steps[activities.PrepareSettlementName] = a.PrepareSettlement
		steps[activities.ReopenSettlementName] = a.ReopenSettlement
		steps[activities.PayoutName] = a.Payout
		steps[activities.CheckPayoutName] = a.CheckPayout
		steps[activities.FinishSettlementName] = a.FinishSettlement
		steps[activities.PublishSettlementEventName] = a.PublishSettlementEvent
	}
	for name, fn := range steps {
		r.RegisterActivityWithOptions(fn, activity.RegisterOptions{Name: name})
	}
}
