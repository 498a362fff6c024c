package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paysaga"
	"paysaga/store"
	"paysaga/store/storetest"
	"paysaga/webhook"
)

func TestWebhookEndpointsAndDeliveries(t *testing.T) {
	for _, driver := range storetest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			now := time.Date(2026, 12, 2, 6, 0, 0, 0, time.UTC)
			db := storetest.Open(t, driver).WithClock(func() time.Time { return now })

			sealed := func(s string) store.SealedSecret { return store.SealedSecret{Ciphertext: []byte(s), KeyID: "k1"} }
			mine := &webhook.Endpoint{ID: webhook.NewEndpointID(), MerchantID: "usr_m1", URL: "https://a.example/hook", EventTypes: []string{"payment.*"}}
			require.NoError(t, db.CreateWebhookEndpoint(ctx, mine, sealed("secret-1")))
			other := &webhook.Endpoint{ID: webhook.NewEndpointID(), MerchantID: "usr_m2", URL: "https://b.example/hook", EventTypes: []string{"*"}}
			require.NoError(t, db.CreateWebhookEndpoint(ctx, other, sealed("secret-other")))

			// A merchant lists its own endpoints only.
			page, err := db.ListWebhookEndpoints(ctx, store.WebhookEndpointFilter{MerchantID: "usr_m1"})
			require.NoError(t, err)
			require.Len(t, page.Endpoints, 1)
			require.Equal(t, mine.ID, page.Endpoints[0].ID)
			require.Equal(t, []string{"payment.*"}, page.Endpoints[0].EventTypes)
			_, err = db.ListWebhookEndpoints(ctx, store.WebhookEndpointFilter{MerchantID: "usr_m1", StartingAfter: other.ID})
			require.Equal(t, paysaga.EINVALID, paysaga.ErrorCode(err))

			subs, err := db.SubscribedWebhookEndpoints(ctx, "usr_m1", "payment.succeeded")
			require.NoError(t, err)
			require.Len(t, subs, 1)
			subs, err = db.SubscribedWebhookEndpoints(ctx, "usr_m1", "refund.succeeded")
			require.NoError(t, err)
			require.Empty(t, subs)

			// Rotation: both secrets sign during the overlap, only the new one after.
			_, err = db.RotateWebhookSecret(ctx, mine.ID, sealed("secret-2"), now.Add(time.Hour))
			require.NoError(t, err)
			_, s, err := db.WebhookEndpointSecrets(ctx, mine.ID)
			require.NoError(t, err)
			require.Equal(t, "secret-2", string(s.Current.Ciphertext))
			require.NotNil(t, s.Previous)
			require.Equal(t, "secret-1", string(s.Previous.Ciphertext))
			later := db.WithClock(func() time.Time { return now.Add(time.Hour + time.Second) })
			_, s, err = later.WebhookEndpointSecrets(ctx, mine.ID)
			require.NoError(t, err)
			require.Nil(t, s.Previous)

			// An event, its delivery (once per endpoint and event), its attempts.
			ev := webhook.Event{ID: "evt_1", Type: "payment.succeeded", OccurredAt: now, Data: []byte(`{"merchant_id":"usr_m1"}`)}
			require.NoError(t, db.RecordWebhookEvent(ctx, ev, "usr_m1"))
			changed := ev
			changed.Data = []byte(`{"merchant_id":"usr_m1","x":1}`)
			require.NoError(t, db.RecordWebhookEvent(ctx, changed, "usr_m1"))
			body, err := db.WebhookEventBody(ctx, "evt_1")
			require.NoError(t, err)
			want, _ := webhook.Body(ev)
			require.JSONEq(t, string(want), string(body), "the first body stays")

			d1, err := db.CreateWebhookDelivery(ctx, &webhook.Delivery{ID: webhook.NewDeliveryID(), EndpointID: mine.ID, MerchantID: "usr_m1", EventID: "evt_1", EventType: ev.Type})
			require.NoError(t, err)
			d2, err := db.CreateWebhookDelivery(ctx, &webhook.Delivery{ID: webhook.NewDeliveryID(), EndpointID: mine.ID, MerchantID: "usr_m1", EventID: "evt_1", EventType: ev.Type})
			require.NoError(t, err)
			require.Equal(t, d1.ID, d2.ID)
			require.Equal(t, webhook.DeliveryPending, d1.Status)

			for i, code := range []int{500, 0} {
				a := webhook.Attempt{DeliveryID: d1.ID, Number: i + 1, At: now, StatusCode: code, LatencyMS: 12}
				if code == 0 {
					a.Error = "no answer within 10s"
				}
				require.NoError(t, db.RecordWebhookAttempt(ctx, a))
				require.NoError(t, db.RecordWebhookAttempt(ctx, a)) // twice: logged once
			}
			failing, err := db.FinishWebhookDelivery(ctx, d1.ID, 0, webhook.DeliveryFailed)
			require.NoError(t, err)
			require.True(t, failing)
			got, err := db.GetWebhookDelivery(ctx, d1.ID)
			require.NoError(t, err)
			require.Equal(t, webhook.DeliveryFailed, got.Status)
			require.Equal(t, 2, got.AttemptCount)
			require.Len(t, got.Attempts, 2)
			require.Equal(t, 500, got.Attempts[0].StatusCode)
			require.Equal(t, "no answer within 10s", got.LastError)
			e, err := db.GetWebhookEndpoint(ctx, mine.ID)
			require.NoError(t, err)
			require.Equal(t, webhook.EndpointFailing, e.Status)
			require.NotNil(t, e.FailingSince)

			// A redelivery is a new generation; its success makes the endpoint enabled again.
			r, err := db.RedeliverWebhook(ctx, d1.ID)
			require.NoError(t, err)
			require.Equal(t, 1, r.Generation)
			require.Equal(t, webhook.DeliveryPending, r.Status)
			again, err := db.RedeliverWebhook(ctx, d1.ID)
			require.NoError(t, err)
			require.Equal(t, 1, again.Generation, "a pending delivery is not redelivered twice")
			failing, err = db.FinishWebhookDelivery(ctx, d1.ID, 0, webhook.DeliverySucceeded)
			require.NoError(t, err)
			require.False(t, failing)
			require.NoError(t, db.RecordWebhookAttempt(ctx, webhook.Attempt{DeliveryID: d1.ID, Generation: 1, Number: 1, At: now, StatusCode: 204}))
			_, err = db.FinishWebhookDelivery(ctx, d1.ID, 1, webhook.DeliverySucceeded)
			require.NoError(t, err)
			got, err = db.GetWebhookDelivery(ctx, d1.ID)
			require.NoError(t, err)
			require.Equal(t, webhook.DeliverySucceeded, got.Status)
			require.NotNil(t, got.DeliveredAt)
			require.Len(t, got.Attempts, 3)
			e, err = db.GetWebhookEndpoint(ctx, mine.ID)
			require.NoError(t, err)
			require.Equal(t, webhook.EndpointEnabled, e.Status)

			list, err := db.ListWebhookDeliveries(ctx, store.WebhookDeliveryFilter{EndpointID: mine.ID})
			require.NoError(t, err)
			require.Len(t, list.Deliveries, 1)
			require.Len(t, list.Deliveries[0].Attempts, 3)
			list, err = db.ListWebhookDeliveries(ctx, store.WebhookDeliveryFilter{EndpointID: other.ID})
			require.NoError(t, err)
			require.Empty(t, list.Deliveries)

			// Disable, then delete: nothing subscribed any more, the secrets erased.
			off := false
			e, err = db.UpdateWebhookEndpoint(ctx, mine.ID, store.WebhookEndpointUpdate{Enabled: &off})
			require.NoError(t, err)
			require.Equal(t, webhook.EndpointDisabled, e.Status)
			subs, err = db.SubscribedWebhookEndpoints(ctx, "usr_m1", "payment.succeeded")
			require.NoError(t, err)
			require.Empty(t, subs)
			_, err = db.DeleteWebhookEndpoint(ctx, mine.ID)
			require.NoError(t, err)
			_, _, err = db.WebhookEndpointSecrets(ctx, mine.ID)
			require.Equal(t, paysaga.ENOTFOUND, paysaga.ErrorCode(err))
			page, err = db.ListWebhookEndpoints(ctx, store.WebhookEndpointFilter{MerchantID: "usr_m1"})
			require.NoError(t, err)
			require.Empty(t, page.Endpoints)
			_, err = db.UpdateWebhookEndpoint(ctx, mine.ID, store.WebhookEndpointUpdate{Enabled: &off})
			require.Equal(t, paysaga.ENOTFOUND, paysaga.ErrorCode(err))
		})
	}
}

// A failing spell starts once: a second delivery giving up keeps failing_since (the id of the
// merchant's webhook_endpoint.failing event is derived from it, so the alert is not repeated).
func TestWebhookFailingSpellKeepsItsStart(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 2, 6, 0, 0, 0, time.UTC)
	base := storetest.Open(t, store.DriverSQLite)
	db := base.WithClock(func() time.Time { return now })
	e := &webhook.Endpoint{ID: webhook.NewEndpointID(), MerchantID: "usr_m", URL: "https://a.example/", EventTypes: []string{"*"}}
	require.NoError(t, db.CreateWebhookEndpoint(ctx, e, store.SealedSecret{Ciphertext: []byte("s"), KeyID: "k"}))
	fail := func(db *store.DB, event string) {
		require.NoError(t, db.RecordWebhookEvent(ctx, webhook.Event{ID: event, Type: "payment.failed", OccurredAt: now, Data: []byte(`{}`)}, "usr_m"))
		d, err := db.CreateWebhookDelivery(ctx, &webhook.Delivery{ID: webhook.NewDeliveryID(), EndpointID: e.ID, MerchantID: "usr_m", EventID: event, EventType: "payment.failed"})
		require.NoError(t, err)
		_, err = db.FinishWebhookDelivery(ctx, d.ID, 0, webhook.DeliveryFailed)
		require.NoError(t, err)
	}
	fail(db, "evt_a")
	first, err := db.GetWebhookEndpoint(ctx, e.ID)
	require.NoError(t, err)
	require.Equal(t, webhook.EndpointFailing, first.Status)
	fail(base.WithClock(func() time.Time { return now.Add(time.Hour) }), "evt_b")
	second, err := db.GetWebhookEndpoint(ctx, e.ID)
	require.NoError(t, err)
	require.Equal(t, *first.FailingSince, *second.FailingSince)
}
