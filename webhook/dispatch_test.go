package webhook

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// memStore is a DispatchStore in memory.
type memStore struct {
	endpoints  []*Endpoint
	events     map[string]Event
	deliveries map[string]*Delivery // endpoint|event → delivery
}

func (m *memStore) SubscribedWebhookEndpoints(_ context.Context, merchant, t string) ([]*Endpoint, error) {
	var out []*Endpoint
	for _, e := range m.endpoints {
		if e.MerchantID == merchant && e.Status.Receives() && e.Subscribed(t) {
			out = append(out, e)
		}
	}
	return out, nil
}

func (m *memStore) RecordWebhookEvent(_ context.Context, ev Event, _ string) error {
	if _, ok := m.events[ev.ID]; !ok {
		m.events[ev.ID] = ev
	}
	return nil
}

func (m *memStore) CreateWebhookDelivery(_ context.Context, d *Delivery) (*Delivery, error) {
	k := d.EndpointID + "|" + d.EventID
	if got, ok := m.deliveries[k]; ok {
		return got, nil
	}
	c := *d
	m.deliveries[k] = &c
	return &c, nil
}

// flakyStarter fails while down, and records what it started.
type flakyStarter struct {
	down    bool
	started map[string]int
}

func (f *flakyStarter) StartDelivery(_ context.Context, d *Delivery) error {
	if f.down {
		return errors.New("temporal unavailable")
	}
	f.started[d.ID]++
	return nil
}

func TestDispatchStartsOneDeliveryPerSubscribedEndpointAndSurvivesAnOutage(t *testing.T) {
	st := &memStore{events: map[string]Event{}, deliveries: map[string]*Delivery{}, endpoints: []*Endpoint{
		{ID: "we_a", MerchantID: "usr_m", Status: EndpointEnabled, EventTypes: []string{"payment.*"}},
		{ID: "we_b", MerchantID: "usr_m", Status: EndpointFailing, EventTypes: []string{"payment.succeeded"}},
		{ID: "we_c", MerchantID: "usr_m", Status: EndpointDisabled, EventTypes: []string{"*"}},
		{ID: "we_d", MerchantID: "usr_m", Status: EndpointEnabled, EventTypes: []string{"refund.*"}},
		{ID: "we_e", MerchantID: "usr_other", Status: EndpointEnabled, EventTypes: []string{"*"}},
	}}
	starter := &flakyStarter{down: true, started: map[string]int{}}
	d := &Dispatcher{Store: st, Starter: starter}
	ev := Event{ID: "evt_1", Type: "payment.succeeded", OccurredAt: time.Now(), Data: []byte(`{"id":"pay_1","merchant_id":"usr_m"}`)}

	// Temporal down: the dispatch fails, so the caller keeps the event (no ack, no publish).
	require.Error(t, d.Dispatch(context.Background(), ev))
	require.Empty(t, starter.started)

	// Back up: the retried dispatch starts each subscribed endpoint's delivery, once.
	starter.down = false
	require.NoError(t, d.Dispatch(context.Background(), ev))
	require.NoError(t, d.Dispatch(context.Background(), ev)) // a republished event
	require.Len(t, st.deliveries, 2)
	require.NotNil(t, st.deliveries["we_a|evt_1"])
	require.NotNil(t, st.deliveries["we_b|evt_1"])
	for _, del := range st.deliveries {
		require.Equal(t, 2, starter.started[del.ID], "started again while pending: the starter joins by workflow id")
	}

	// Delivered already: a republished event is not sent again.
	for _, del := range st.deliveries {
		del.Status = DeliverySucceeded
	}
	require.NoError(t, d.Dispatch(context.Background(), ev))
	for _, del := range st.deliveries {
		require.Equal(t, 2, starter.started[del.ID])
	}

	// Nobody's event, an engine-internal one: nothing.
	require.NoError(t, d.Dispatch(context.Background(), Event{ID: "evt_2", Type: "account.registered", Data: []byte(`{"owner_id":"usr_m","merchant_id":"usr_m"}`)}))
	require.NoError(t, d.Dispatch(context.Background(), Event{ID: "evt_3", Type: "payment.failed", Data: []byte(`{"id":"pay_3"}`)}))
	require.Len(t, st.deliveries, 2)
}
