package webhook

import (
	"context"
	"fmt"
	"log/slog"
)

// DispatchStore is what the Dispatcher reads and writes (*store.DB).
type DispatchStore interface {
	// SubscribedWebhookEndpoints returns the merchant's endpoints that receive events of type t.
	SubscribedWebhookEndpoints(ctx context.Context, merchantID, t string) ([]*Endpoint, error)
	// RecordWebhookEvent keeps the event's body (once: a second call changes nothing), so
	// that every try and every redelivery sends the same bytes.
	RecordWebhookEvent(ctx context.Context, ev Event, merchantID string) error
	// CreateWebhookDelivery stores a pending delivery, or returns the one stored already for
	// the same endpoint and event.
	CreateWebhookDelivery(ctx context.Context, d *Delivery) (*Delivery, error)
}

// Starter starts the workflow that delivers d (its current generation); starting one that was
// started already is not an error.
type Starter interface {
	StartDelivery(ctx context.Context, d *Delivery) error
}

// Dispatcher turns a published event into deliveries: one per endpoint of the event's merchant
// subscribed to its type, each recorded and its workflow started. Dispatch is idempotent, and
// returns an error until every delivery is started: the caller (the broker consumer, or the
// publishing activity without a broker) tries again, so a Temporal outage delays webhooks but
// loses none.
type Dispatcher struct {
	Store   DispatchStore
	Starter Starter
	Logger  *slog.Logger
}

// Dispatch implements the above for one event.
func (d *Dispatcher) Dispatch(ctx context.Context, ev Event) error {
	if !Deliverable(ev.Type) || ev.ID == "" {
		return nil
	}
	merchant := MerchantOf(ev.Data)
	if merchant == "" {
		return nil
	}
	endpoints, err := d.Store.SubscribedWebhookEndpoints(ctx, merchant, ev.Type)
	if err != nil {
		return fmt.Errorf("webhook: endpoints of event %s: %w", ev.ID, err)
	}
	if len(endpoints) == 0 {
		return nil
	}
	if err := d.Store.RecordWebhookEvent(ctx, ev, merchant); err != nil {
		return fmt.Errorf("webhook: record event %s: %w", ev.ID, err)
	}
	for _, e := range endpoints {
		del, err := d.Store.CreateWebhookDelivery(ctx, &Delivery{
			ID: NewDeliveryID(), EndpointID: e.ID, MerchantID: merchant, EventID: ev.ID, EventType: ev.Type,
			Status: DeliveryPending,
		})
		if err != nil {
			return fmt.Errorf("webhook: delivery of event %s to %s: %w", ev.ID, e.ID, err)
		}
		if del.Status != DeliveryPending {
			continue // delivered (or given up) already: a republished event is not sent again
		}
		if err := d.Starter.StartDelivery(ctx, del); err != nil {
			return fmt.Errorf("webhook: start delivery %s: %w", del.ID, err)
		}
		if d.Logger != nil {
			d.Logger.DebugContext(ctx, "webhook delivery started", "delivery_id", del.ID, "endpoint_id", e.ID, "event_id", ev.ID)
		}
	}
	return nil
}
