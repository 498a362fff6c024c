package workflows

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"paysaga/activities"
	"paysaga/events"
	"paysaga/seal"
	"paysaga/store"
	"paysaga/store/storetest"
	"paysaga/webhook"
)

// receiver is a merchant's endpoint: it answers the scripted status codes in turn (the last
// one from then on) and keeps what it was sent.
type receiver struct {
	mu     sync.Mutex
	script []int
	got    []received
}

type received struct {
	body      []byte
	signature string
	eventID   string
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, received{body, req.Header.Get(webhook.SignatureHeader), req.Header.Get(webhook.EventIDHeader)})
	code := r.script[min(len(r.got), len(r.script))-1]
	w.WriteHeader(code)
}

func (r *receiver) received() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

// recordingPublisher keeps the events published.
type recordingPublisher struct {
	mu  sync.Mutex
	evs []events.Event
}

func (p *recordingPublisher) Publish(_ context.Context, ev events.Event) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.evs = append(p.evs, ev)
	return nil
}

type webhookFixture struct {
	db       *store.DB
	env      *testsuite.TestWorkflowEnvironment
	recv     *receiver
	pub      *recordingPublisher
	endpoint *webhook.Endpoint
	secret   string
	delivery *webhook.Delivery
}

// newWebhookFixture: an endpoint of merchant usr_m on a test receiver, an event recorded and
// its delivery pending, and the delivery workflow with the real activities (SQLite, HTTP) on
// the time-skipping test environment.
func newWebhookFixture(t *testing.T, script ...int) *webhookFixture {
	t.Helper()
	ctx := context.Background()
	f := &webhookFixture{db: storetest.Open(t, store.DriverSQLite), recv: &receiver{script: script}, pub: &recordingPublisher{}}
	srv := httptest.NewServer(f.recv)
	t.Cleanup(srv.Close)
	keys := seal.NewDevKeyring()

	f.endpoint = &webhook.Endpoint{ID: webhook.NewEndpointID(), MerchantID: "usr_m", URL: srv.URL + "/hook", EventTypes: []string{"payment.*"}}
	f.secret = webhook.NewSecret()
	sealed, err := keys.Seal([]byte(f.secret), webhook.SecretAD(f.endpoint.ID))
	require.NoError(t, err)
	require.NoError(t, f.db.CreateWebhookEndpoint(ctx, f.endpoint, store.SealedSecret{Ciphertext: sealed.Ciphertext, KeyID: sealed.KeyID}))
	ev := webhook.Event{ID: "evt_wh_test_1", Type: "payment.succeeded", OccurredAt: time.Now(), Data: json.RawMessage(`{"id":"pay_1","merchant_id":"usr_m","amount":15000}`)}
	require.NoError(t, f.db.RecordWebhookEvent(ctx, ev, "usr_m"))
	f.delivery, err = f.db.CreateWebhookDelivery(ctx, &webhook.Delivery{ID: webhook.NewDeliveryID(), EndpointID: f.endpoint.ID, MerchantID: "usr_m", EventID: ev.ID, EventType: ev.Type})
	require.NoError(t, err)

	var suite testsuite.WorkflowTestSuite
	f.env = suite.NewTestWorkflowEnvironment()
	RegisterWebhooks(f.env, WebhookConfig{}, &activities.WebhookActivities{
		Store: f.db, Keys: keys, Client: webhook.Policy{AllowLoopback: true}.Client(), Events: f.pub,
	})
	return f
}

func (f *webhookFixture) run(t *testing.T) time.Duration {
	t.Helper()
	start := f.env.Now()
	f.env.ExecuteWorkflow(WebhookDeliveryWorkflowName, activities.WebhookDeliveryInput{
		DeliveryID: f.delivery.ID, EndpointID: f.endpoint.ID, EventID: f.delivery.EventID,
	})
	require.True(t, f.env.IsWorkflowCompleted())
	require.NoError(t, f.env.GetWorkflowError())
	return f.env.Now().Sub(start)
}

func TestWebhookDeliveryRetriesWithBackoffUntil2xx(t *testing.T) {
	f := newWebhookFixture(t, 500, 502, 204)
	took := f.run(t)

	got := f.recv.received()
	require.Len(t, got, 3)
	for _, r := range got {
		require.Equal(t, "evt_wh_test_1", r.eventID, "every attempt carries the same event id")
		require.NoError(t, webhook.Verify(r.body, r.signature, f.secret))
		require.Equal(t, string(got[0].body), string(r.body), "every attempt sends the same bytes")
	}
	// Backoff: 30s after the first failure, 60s after the second.
	require.GreaterOrEqual(t, took, 90*time.Second)
	require.Less(t, took, 3*time.Minute)

	d, err := f.db.GetWebhookDelivery(context.Background(), f.delivery.ID)
	require.NoError(t, err)
	require.Equal(t, webhook.DeliverySucceeded, d.Status)
	require.Equal(t, 3, d.AttemptCount)
	codes := []int{}
	for _, a := range d.Attempts {
		codes = append(codes, a.StatusCode)
	}
	require.Equal(t, []int{500, 502, 204}, codes)
	require.Empty(t, f.pub.evs, "no alert for a delivery that got through")
}

func TestWebhookDeliveryGivesUpAfter24hMarksEndpointFailingAndAlerts(t *testing.T) {
	f := newWebhookFixture(t, 503)
	took := f.run(t)

	attempts := WebhookConfig{}.Attempts()
	require.Equal(t, 30, attempts)
	require.Len(t, f.recv.received(), attempts, "tried on the documented schedule")
	require.GreaterOrEqual(t, took, 23*time.Hour)
	require.LessOrEqual(t, took, 24*time.Hour+time.Minute)

	ctx := context.Background()
	d, err := f.db.GetWebhookDelivery(ctx, f.delivery.ID)
	require.NoError(t, err)
	require.Equal(t, webhook.DeliveryFailed, d.Status)
	require.Len(t, d.Attempts, attempts)
	require.Equal(t, 503, d.LastStatusCode)
	e, err := f.db.GetWebhookEndpoint(ctx, f.endpoint.ID)
	require.NoError(t, err)
	require.Equal(t, webhook.EndpointFailing, e.Status)

	require.Len(t, f.pub.evs, 1)
	alert := f.pub.evs[0]
	require.Equal(t, activities.WebhookEndpointFailing, alert.Type)
	require.Equal(t, activities.FailingEventID(e.ID, *e.FailingSince), alert.ID)
	require.Equal(t, "usr_m", webhook.MerchantOf(alert.Data), "the merchant is who is alerted")
}

func TestWebhookDeliveryToADisabledEndpointIsCanceled(t *testing.T) {
	f := newWebhookFixture(t, 500)
	off := false
	_, err := f.db.UpdateWebhookEndpoint(context.Background(), f.endpoint.ID, store.WebhookEndpointUpdate{Enabled: &off})
	require.NoError(t, err)
	f.run(t)
	require.Empty(t, f.recv.received())
	d, err := f.db.GetWebhookDelivery(context.Background(), f.delivery.ID)
	require.NoError(t, err)
	require.Equal(t, webhook.DeliveryCanceled, d.Status)
	require.Empty(t, f.pub.evs)
}

func TestWebhookDeliveryWorkflowID(t *testing.T) {
	require.Equal(t, "webhook:we_1:evt_2", WebhookDeliveryWorkflowID("we_1", "evt_2", 0))
	require.Equal(t, "webhook:we_1:evt_2:r3", WebhookDeliveryWorkflowID("we_1", "evt_2", 3))
}
