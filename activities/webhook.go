package activities

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"paysaga"
	"paysaga/events"
	"paysaga/seal"
	"paysaga/store"
	"paysaga/webhook"
)

// Webhook activity names and error types.
const (
	// DeliverWebhookName POSTs one attempt of a webhook delivery and logs it.
	DeliverWebhookName = "DeliverWebhook"
	// GiveUpWebhookName ends a delivery whose day of retries ran out: the delivery failed, the
	// endpoint failing, the merchant alerted.
	GiveUpWebhookName = "GiveUpWebhook"

	// ErrTypeWebhookNotDelivered: the endpoint did not answer 2xx in time (retried).
	ErrTypeWebhookNotDelivered = "WebhookNotDelivered"
	// ErrTypeWebhookEndpointGone: the endpoint was disabled or deleted; the delivery is
	// canceled (not retried).
	ErrTypeWebhookEndpointGone = "WebhookEndpointGone"
)

// WebhookEndpointFailing is the event that alerts a merchant that an endpoint of theirs is
// failing (its data carries merchant_id, so the merchant's notification stream gets it).
const WebhookEndpointFailing = "webhook_endpoint.failing"

// WebhookDeliveryInput names one generation of a delivery (0: the first delivery; each
// redelivery is the next). Nothing secret: the activity reads the body and the secrets itself.
type WebhookDeliveryInput struct {
	DeliveryID string `json:"delivery_id"`
	EndpointID string `json:"endpoint_id"`
	EventID    string `json:"event_id"`
	Generation int    `json:"generation"`
}

// WebhookActivities deliver webhooks.
type WebhookActivities struct {
	Store *store.DB
	// Keys open the endpoints' sealed secrets.
	Keys *seal.Keyring
	// Client sends (webhook.Policy.Client: every connection checked, no redirects, 10 s).
	Client *http.Client
	// Events publishes the failing-endpoint alert.
	Events events.Publisher
	Logger *slog.Logger
	// Now is the signing clock (time.Now when nil).
	Now func() time.Time
}

func (a *WebhookActivities) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

func (a *WebhookActivities) log(ctx context.Context, in WebhookDeliveryInput) *slog.Logger {
	return activityLogger(ctx, a.Logger, "delivery_id", in.DeliveryID).With("endpoint_id", in.EndpointID, "event_id", in.EventID)
}

// DeliverWebhook makes one attempt: POST the event's recorded body to the endpoint, signed with
// every secret that signs now, and log the attempt (status code, latency). A 2xx ends the
// delivery as succeeded; anything else is a retryable ErrTypeWebhookNotDelivered. A disabled or
// deleted endpoint cancels the delivery (ErrTypeWebhookEndpointGone, not retried). A delivery
// that ended already, or that a newer redelivery took over, is left alone.
func (a *WebhookActivities) DeliverWebhook(ctx context.Context, in WebhookDeliveryInput) error {
	d, err := a.Store.GetWebhookDelivery(ctx, in.DeliveryID)
	if err != nil {
		return storeError(err)
	}
	if d.Generation != in.Generation || d.Status != webhook.DeliveryPending {
		return nil
	}
	e, sealed, err := a.Store.WebhookEndpointSecrets(ctx, in.EndpointID)
	if paysaga.ErrorCode(err) == paysaga.ENOTFOUND || (err == nil && !e.Status.Receives()) {
		if _, ferr := a.Store.FinishWebhookDelivery(ctx, in.DeliveryID, in.Generation, webhook.DeliveryCanceled); ferr != nil {
			return ferr
		}
		return temporal.NewNonRetryableApplicationError("the endpoint was disabled or deleted", ErrTypeWebhookEndpointGone, nil)
	}
	if err != nil {
		return err
	}
	secrets, err := a.openSecrets(e.ID, sealed)
	if err != nil {
		return err
	}
	body, err := a.Store.WebhookEventBody(ctx, in.EventID)
	if err != nil {
		return storeError(err)
	}
	att := webhook.Send(ctx, a.Client, webhook.Request{
		URL: e.URL, EventID: in.EventID, Type: d.EventType, Body: body, Secrets: secrets,
	}, a.now)
	att.DeliveryID, att.Generation, att.Number = in.DeliveryID, in.Generation, int(activity.GetInfo(ctx).Attempt)
	if err := a.Store.RecordWebhookAttempt(ctx, att); err != nil {
		return err
	}
	log := a.log(ctx, in).With("attempt", att.Number, "status_code", att.StatusCode, "latency_ms", att.LatencyMS)
	if !att.Succeeded() {
		why := "answered " + strconv.Itoa(att.StatusCode)
		if att.StatusCode == 0 {
			why = att.Error
		}
		log.Info("webhook not delivered; retrying", "reason", why)
		return temporal.NewApplicationError("webhook not delivered: "+why, ErrTypeWebhookNotDelivered)
	}
	if _, err := a.Store.FinishWebhookDelivery(ctx, in.DeliveryID, in.Generation, webhook.DeliverySucceeded); err != nil {
		return err
	}
	log.Info("webhook delivered")
	return nil
}

// openSecrets opens the secrets that sign, the current one first.
func (a *WebhookActivities) openSecrets(endpointID string, s *store.WebhookSecrets) ([]string, error) {
	if a.Keys == nil {
		return nil, temporal.NewNonRetryableApplicationError("no keys to open webhook secrets", ErrTypeWebhookNotDelivered, nil)
	}
	all := []store.SealedSecret{s.Current}
	if s.Previous != nil {
		all = append(all, *s.Previous)
	}
	out := make([]string, 0, len(all))
	for _, sec := range all {
		b, err := a.Keys.Open(seal.Sealed{Ciphertext: sec.Ciphertext, KeyID: sec.KeyID}, webhook.SecretAD(endpointID))
		if err != nil {
			// Retried: a key missing from this worker's keyring may be present on the next.
			return nil, fmt.Errorf("open the secret of webhook endpoint %s: %w", endpointID, err)
		}
		out = append(out, string(b))
	}
	return out, nil
}

// GiveUpWebhook ends a delivery whose retries ran out: the delivery failed, the endpoint
// failing (if it still receives events), and — once per failing spell of the endpoint, however
// many deliveries give up during it — the webhook_endpoint.failing event, which reaches the
// merchant's notification stream. Idempotent: the event's id is stable for the spell.
func (a *WebhookActivities) GiveUpWebhook(ctx context.Context, in WebhookDeliveryInput) error {
	if _, err := a.Store.FinishWebhookDelivery(ctx, in.DeliveryID, in.Generation, webhook.DeliveryFailed); err != nil {
		return err
	}
	e, err := a.Store.GetWebhookEndpoint(ctx, in.EndpointID)
	if err != nil {
		return storeError(err)
	}
	if e.Status != webhook.EndpointFailing || e.FailingSince == nil {
		return nil // disabled or deleted meanwhile, or succeeded since: nothing to alert
	}
	data, err := json.Marshal(struct {
		ID           string    `json:"id"`
		MerchantID   string    `json:"merchant_id"`
		URL          string    `json:"url"`
		Status       string    `json:"status"`
		FailingSince time.Time `json:"failing_since"`
		DeliveryID   string    `json:"delivery_id"`
		EventID      string    `json:"event_id"`
	}{e.ID, e.MerchantID, e.URL, string(e.Status), *e.FailingSince, in.DeliveryID, in.EventID})
	if err != nil {
		return temporal.NewNonRetryableApplicationError("encode event: "+err.Error(), ErrTypeWebhookNotDelivered, nil)
	}
	ev := events.Event{
		ID:         FailingEventID(e.ID, *e.FailingSince),
		Type:       WebhookEndpointFailing,
		OccurredAt: *e.FailingSince,
		Data:       data,
	}
	if err := a.Events.Publish(ctx, ev); err != nil {
		return err
	}
	a.log(ctx, in).Warn("webhook endpoint failing: a delivery gave up after its retries; merchant alerted")
	return nil
}

// FailingEventID is the id of the webhook_endpoint.failing event of an endpoint's failing
// spell that began at since.
func FailingEventID(endpointID string, since time.Time) string {
	return paysaga.PrefixEvent + "whfail_" + endpointID + "_" + strconv.FormatInt(since.UnixMicro(), 10)
}
