package workflows

import (
	"errors"
	"strconv"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"paysaga/activities"
	"paysaga/webhook"
)

// WebhookDeliveryWorkflowName is the registered name of WebhookDeliveryWorkflow.
const WebhookDeliveryWorkflowName = "WebhookDeliveryWorkflow"

// WebhookDeliveryWorkflowID is the ID of the workflow delivering one generation of one event to
// one endpoint: "webhook:<endpoint id>:<event id>" for the first delivery, with ":r<n>" for the
// n-th redelivery. Starting it twice (a republished event, a dispatcher retried after Temporal
// came back) joins or is refused as a duplicate: the event is delivered once per generation.
// Opaque ids only: nothing personal in a workflow ID.
func WebhookDeliveryWorkflowID(endpointID, eventID string, generation int) string {
	id := "webhook:" + endpointID + ":" + eventID
	if generation > 0 {
		id += ":r" + strconv.Itoa(generation)
	}
	return id
}

// WebhookConfig is the retry schedule of a delivery. Zero fields take the defaults.
type WebhookConfig struct {
	// InitialInterval is the wait after the first failed attempt (30s), doubled after each
	// one up to MaximumInterval (1h).
	InitialInterval time.Duration
	MaximumInterval time.Duration
	// GiveUpAfter is how long a delivery is retried before it fails, the endpoint is marked
	// failing and the merchant alerted (24h).
	GiveUpAfter time.Duration
}

func (c WebhookConfig) withDefaults() WebhookConfig {
	if c.InitialInterval <= 0 {
		c.InitialInterval = 30 * time.Second
	}
	if c.MaximumInterval < c.InitialInterval {
		c.MaximumInterval = max(time.Hour, c.InitialInterval)
	}
	if c.GiveUpAfter <= 0 {
		c.GiveUpAfter = 24 * time.Hour
	}
	return c
}

// Attempts is how many attempts the schedule makes within GiveUpAfter: with the defaults, 30
// (at 0, 30s, 1m30s, 3m30s, … 1h03m30s, then hourly until 23h03m30s). The activity's retry policy names it
// rather than "unlimited", so that the schedule is the same wherever it runs (Temporal's test
// environment caps unlimited retries at 10).
func (c WebhookConfig) Attempts() int {
	c = c.withDefaults()
	n, at, wait := 1, time.Duration(0), c.InitialInterval
	for at+wait < c.GiveUpAfter {
		at += wait
		n++
		wait = min(2*wait, c.MaximumInterval)
	}
	return n
}

// Webhooks runs delivery workflows with a configuration.
type Webhooks struct{ cfg WebhookConfig }

// NewWebhooks returns the delivery workflows configured by cfg.
func NewWebhooks(cfg WebhookConfig) *Webhooks { return &Webhooks{cfg: cfg.withDefaults()} }

// WebhookDeliveryWorkflow delivers one event to one endpoint: one activity, retried by Temporal
// with exponential backoff (no history event per retry: a day of retries is a handful of
// events) until a 2xx or GiveUpAfter; then the delivery fails, the endpoint is marked failing
// and the merchant alerted. A workflow per delivery rather than per endpoint: one slow event
// never holds the others back, each has its own schedule and history, and a redelivery is just
// another start; the order of deliveries is not guaranteed (receivers order by occurred_at).
func (w *Webhooks) WebhookDeliveryWorkflow(ctx workflow.Context, in activities.WebhookDeliveryInput) error {
	deliver := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    webhook.Timeout + 20*time.Second,
		ScheduleToCloseTimeout: w.cfg.GiveUpAfter,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        w.cfg.InitialInterval,
			BackoffCoefficient:     2,
			MaximumInterval:        w.cfg.MaximumInterval,
			MaximumAttempts:        int32(w.cfg.Attempts()), // as many as fit in GiveUpAfter
			NonRetryableErrorTypes: []string{activities.ErrTypeWebhookEndpointGone},
		},
	})
	err := workflow.ExecuteActivity(deliver, activities.DeliverWebhookName, in).Get(ctx, nil)
	var appErr *temporal.ApplicationError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &appErr) && appErr.Type() == activities.ErrTypeWebhookEndpointGone:
		return nil // the endpoint was disabled or deleted: the delivery is canceled
	case temporal.IsCanceledError(err):
		return err
	}
	workflow.GetLogger(ctx).Warn("webhook delivery gave up", "delivery_id", in.DeliveryID, "error", err)
	giveUp := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute,
			MaximumAttempts: 0, // until the database and the broker answer
		},
	})
	return workflow.ExecuteActivity(giveUp, activities.GiveUpWebhookName, in).Get(ctx, nil)
}

// WebhookRegistry is where the delivery workflow and its activities are registered (a worker).
type WebhookRegistry interface {
	RegisterWorkflowWithOptions(w any, options workflow.RegisterOptions)
	RegisterActivityWithOptions(a any, options activity.RegisterOptions)
}

// RegisterWebhooks registers the delivery workflow (configured by cfg) and, when a is not nil,
// its activities: for tests. The worker registers the workflow with every other one
// (worker.RegisterWorkflows, which payctl history replay uses too) and the activities with
// RegisterWebhookActivities.
func RegisterWebhooks(r WebhookRegistry, cfg WebhookConfig, a *activities.WebhookActivities) {
	r.RegisterWorkflowWithOptions(NewWebhooks(cfg).WebhookDeliveryWorkflow, workflow.RegisterOptions{Name: WebhookDeliveryWorkflowName})
	RegisterWebhookActivities(r, a)
}

// RegisterWebhookActivities registers the delivery activities (nothing when a is nil).
func RegisterWebhookActivities(r interface {
	RegisterActivityWithOptions(a any, options activity.RegisterOptions)
}, a *activities.WebhookActivities) {
	if a != nil {
		r.RegisterActivityWithOptions(a.DeliverWebhook, activity.RegisterOptions{Name: activities.DeliverWebhookName})
		r.RegisterActivityWithOptions(a.GiveUpWebhook, activity.RegisterOptions{Name: activities.GiveUpWebhookName})
	}
}
