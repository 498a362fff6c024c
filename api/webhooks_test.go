package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paysaga"
	"paysaga/api"
	"paysaga/seal"
	"paysaga/store"
	"paysaga/store/storetest"
	"paysaga/webhook"
)

// fakeDeliveryStarter records the deliveries the API started.
type fakeDeliveryStarter struct {
	mu      sync.Mutex
	started []*webhook.Delivery
}

func (f *fakeDeliveryStarter) StartDelivery(_ context.Context, d *webhook.Delivery) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.started = append(f.started, d)
	return nil
}

// publicResolver answers every host name with a public address.
type publicResolver struct{}

func (publicResolver) LookupNetIP(context.Context, string, string) ([]netip.Addr, error) {
	return []netip.Addr{netip.MustParseAddr("93.184.215.14")}, nil
}

type webhookEnv struct {
	*testEnv
	db      *store.DB
	keys    *seal.Keyring
	starter *fakeDeliveryStarter
}

func newWebhookEnv(t *testing.T) *webhookEnv {
	t.Helper()
	db := storetest.Open(t, store.DriverSQLite)
	keys := seal.NewDevKeyring()
	starter := &fakeDeliveryStarter{}
	env := newTestEnv(t, func(d *api.Deps) {
		d.Webhooks = api.WebhookDeps{Store: db, Keys: keys, Starter: starter, Policy: webhook.Policy{Resolver: publicResolver{}}}
	})
	return &webhookEnv{testEnv: env, db: db, keys: keys, starter: starter}
}

type endpointAnswer struct {
	webhook.Endpoint
	Secret string `json:"secret"`
}

func (e *webhookEnv) create(t *testing.T, token, key, body string) endpointAnswer {
	t.Helper()
	h := bearer(token)
	h["Idempotency-Key"] = key
	rec := e.do(t, req{method: http.MethodPost, path: "/v1/webhook-endpoints", body: body, header: h})
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	var out endpointAnswer
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &out))
	return out
}

func TestWebhookEndpointsLifecycle(t *testing.T) {
	e := newWebhookEnv(t)
	m, token := e.auth.addUser("m@example.com", "pw", paysaga.RoleMerchant)
	body := `{"url":"https://hooks.example.com/paysaga","event_types":["payment.*","refund.succeeded"]}`
	ep := e.create(t, token, "k1", body)
	require.True(t, strings.HasPrefix(ep.ID, webhook.PrefixEndpoint))
	require.True(t, strings.HasPrefix(ep.Secret, webhook.SecretPrefix))
	require.Equal(t, m.ID, ep.MerchantID)
	require.Equal(t, webhook.EndpointEnabled, ep.Status)

	// The secret is sealed at rest, not stored in clear, and opens to what was shown.
	_, sealed, err := e.db.WebhookEndpointSecrets(context.Background(), ep.ID)
	require.NoError(t, err)
	require.NotContains(t, string(sealed.Current.Ciphertext), ep.Secret)
	plain, err := e.keys.Open(seal.Sealed{Ciphertext: sealed.Current.Ciphertext, KeyID: sealed.Current.KeyID}, webhook.SecretAD(ep.ID))
	require.NoError(t, err)
	require.Equal(t, ep.Secret, string(plain))

	// Replaying the creation answers the same endpoint (with its secret), creates nothing.
	again := e.create(t, token, "k1", body)
	require.Equal(t, ep.ID, again.ID)
	require.Equal(t, ep.Secret, again.Secret)
	h := bearer(token)
	h["Idempotency-Key"] = "k1"
	requireProblem(t, e.do(t, req{method: http.MethodPost, path: "/v1/webhook-endpoints", header: h,
		body: `{"url":"https://other.example.com/","event_types":["*"]}`}), http.StatusUnprocessableEntity, paysaga.EIDEMPOTENCY)

	// Reads never show the secret.
	rec := e.do(t, req{method: http.MethodGet, path: "/v1/webhook-endpoints/" + ep.ID, header: bearer(token)})
	require.Equal(t, http.StatusOK, rec.Code)
	require.NotContains(t, rec.Body.String(), ep.Secret)
	require.NotContains(t, rec.Body.String(), `"secret"`)
	rec = e.do(t, req{method: http.MethodGet, path: "/v1/webhook-endpoints", header: bearer(token)})
	require.Equal(t, http.StatusOK, rec.Code)
	require.NotContains(t, rec.Body.String(), ep.Secret)
	var list struct {
		Data []webhook.Endpoint `json:"data"`
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &list))
	require.Len(t, list.Data, 1)

	// Rotation with an overlap: a new secret, the old one still signing until the overlap ends.
	rec = e.do(t, req{method: http.MethodPost, path: "/v1/webhook-endpoints/" + ep.ID + "/rotate-secret", header: bearer(token), body: `{"overlap_seconds":3600}`})
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var rotated endpointAnswer
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &rotated))
	require.NotEqual(t, ep.Secret, rotated.Secret)
	require.NotNil(t, rotated.PreviousSecretExpiresAt)
	require.WithinDuration(t, time.Now().Add(time.Hour), *rotated.PreviousSecretExpiresAt, time.Minute)
	_, sealed, err = e.db.WebhookEndpointSecrets(context.Background(), ep.ID)
	require.NoError(t, err)
	require.NotNil(t, sealed.Previous)

	// Disable, enable, delete.
	rec = e.do(t, req{method: http.MethodPatch, path: "/v1/webhook-endpoints/" + ep.ID, header: bearer(token), body: `{"enabled":false}`})
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Contains(t, rec.Body.String(), `"status":"disabled"`)
	rec = e.do(t, req{method: http.MethodPatch, path: "/v1/webhook-endpoints/" + ep.ID, header: bearer(token), body: `{"enabled":true,"event_types":["*"]}`})
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Contains(t, rec.Body.String(), `"status":"enabled"`)
	rec = e.do(t, req{method: http.MethodDelete, path: "/v1/webhook-endpoints/" + ep.ID, header: bearer(token)})
	require.Equal(t, http.StatusOK, rec.Code)
	requireProblem(t, e.do(t, req{method: http.MethodGet, path: "/v1/webhook-endpoints/" + ep.ID, header: bearer(token)}), http.StatusNotFound, paysaga.ENOTFOUND)
}

func TestWebhookEndpointsAreTheMerchantsOwn(t *testing.T) {
	e := newWebhookEnv(t)
	_, mine := e.auth.addUser("m1@example.com", "pw", paysaga.RoleMerchant)
	_, theirs := e.auth.addUser("m2@example.com", "pw", paysaga.RoleMerchant)
	_, customer := e.auth.addUser("c@example.com", "pw", paysaga.RoleCustomer)
	ep := e.create(t, mine, "k1", `{"url":"https://hooks.example.com/a","event_types":["*"]}`)

	for _, r := range []req{
		{method: http.MethodGet, path: "/v1/webhook-endpoints/" + ep.ID},
		{method: http.MethodPatch, path: "/v1/webhook-endpoints/" + ep.ID, body: `{"enabled":false}`},
		{method: http.MethodDelete, path: "/v1/webhook-endpoints/" + ep.ID},
		{method: http.MethodPost, path: "/v1/webhook-endpoints/" + ep.ID + "/rotate-secret"},
		{method: http.MethodGet, path: "/v1/webhook-endpoints/" + ep.ID + "/deliveries"},
		{method: http.MethodPost, path: "/v1/webhook-endpoints/" + ep.ID + "/deliveries/whd_x/redeliver"},
	} {
		r.header = bearer(theirs)
		requireProblem(t, e.do(t, r), http.StatusNotFound, paysaga.ENOTFOUND)
		r.header = bearer(customer)
		requireProblem(t, e.do(t, r), http.StatusForbidden, paysaga.EFORBIDDEN)
	}
	rec := e.do(t, req{method: http.MethodGet, path: "/v1/webhook-endpoints", header: bearer(theirs)})
	require.Equal(t, http.StatusOK, rec.Code)
	require.NotContains(t, rec.Body.String(), ep.ID)
	// Still there, unchanged, for its owner.
	rec = e.do(t, req{method: http.MethodGet, path: "/v1/webhook-endpoints/" + ep.ID, header: bearer(mine)})
	require.Equal(t, http.StatusOK, rec.Code)
	require.Contains(t, rec.Body.String(), `"status":"enabled"`)
}

func TestWebhookEndpointURLsAreChecked(t *testing.T) {
	e := newWebhookEnv(t)
	_, token := e.auth.addUser("m@example.com", "pw", paysaga.RoleMerchant)
	for i, u := range []string{
		"http://hooks.example.com/", "https://127.0.0.1/", "https://10.1.2.3/", "https://169.254.169.254/",
		"https://[::1]/", "https://[fd00::1]/", "https://100.64.0.1/", "https://localhost/", "https://u:p@hooks.example.com/", "nope",
	} {
		h := bearer(token)
		h["Idempotency-Key"] = "bad-" + string(rune('a'+i))
		p := requireProblem(t, e.do(t, req{method: http.MethodPost, path: "/v1/webhook-endpoints", header: h,
			body: `{"url":"` + u + `","event_types":["payment.succeeded"]}`}), http.StatusUnprocessableEntity, paysaga.EINVALID)
		require.Equal(t, "url", p.Errors[0].Field, u)
	}
	h := bearer(token)
	h["Idempotency-Key"] = "bad-types"
	requireProblem(t, e.do(t, req{method: http.MethodPost, path: "/v1/webhook-endpoints", header: h,
		body: `{"url":"https://hooks.example.com/","event_types":["account.registered"]}`}), http.StatusUnprocessableEntity, paysaga.EINVALID)
	page, err := e.db.ListWebhookEndpoints(context.Background(), store.WebhookEndpointFilter{MerchantID: "usr_none"})
	require.NoError(t, err)
	require.Empty(t, page.Endpoints)
	ep := e.create(t, token, "ok", `{"url":"https://hooks.example.com/","event_types":["payment.succeeded"]}`)
	requireProblem(t, e.do(t, req{method: http.MethodPatch, path: "/v1/webhook-endpoints/" + ep.ID, header: bearer(token),
		body: `{"url":"https://192.168.0.1/"}`}), http.StatusUnprocessableEntity, paysaga.EINVALID)
}

func TestWebhookDeliveriesAndRedelivery(t *testing.T) {
	e := newWebhookEnv(t)
	m, token := e.auth.addUser("m@example.com", "pw", paysaga.RoleMerchant)
	ep := e.create(t, token, "k1", `{"url":"https://hooks.example.com/","event_types":["*"]}`)
	ctx := context.Background()
	ev := webhook.Event{ID: "evt_api_1", Type: "payment.succeeded", OccurredAt: time.Now(), Data: json.RawMessage(`{"merchant_id":"` + m.ID + `"}`)}
	require.NoError(t, e.db.RecordWebhookEvent(ctx, ev, m.ID))
	d, err := e.db.CreateWebhookDelivery(ctx, &webhook.Delivery{ID: webhook.NewDeliveryID(), EndpointID: ep.ID, MerchantID: m.ID, EventID: ev.ID, EventType: ev.Type})
	require.NoError(t, err)
	require.NoError(t, e.db.RecordWebhookAttempt(ctx, webhook.Attempt{DeliveryID: d.ID, Number: 1, At: time.Now(), StatusCode: 500, LatencyMS: 40}))
	require.NoError(t, e.db.RecordWebhookAttempt(ctx, webhook.Attempt{DeliveryID: d.ID, Number: 2, At: time.Now(), StatusCode: 200, LatencyMS: 12}))
	_, err = e.db.FinishWebhookDelivery(ctx, d.ID, 0, webhook.DeliverySucceeded)
	require.NoError(t, err)

	rec := e.do(t, req{method: http.MethodGet, path: "/v1/webhook-endpoints/" + ep.ID + "/deliveries", header: bearer(token)})
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var page struct {
		Data []webhook.Delivery `json:"data"`
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &page))
	require.Len(t, page.Data, 1)
	require.Equal(t, "evt_api_1", page.Data[0].EventID)
	require.Len(t, page.Data[0].Attempts, 2)
	require.Equal(t, 500, page.Data[0].Attempts[0].StatusCode)
	require.EqualValues(t, 40, page.Data[0].Attempts[0].LatencyMS)

	rec = e.do(t, req{method: http.MethodPost, path: "/v1/webhook-endpoints/" + ep.ID + "/deliveries/" + d.ID + "/redeliver", header: bearer(token)})
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
	require.Len(t, e.starter.started, 1)
	require.Equal(t, 1, e.starter.started[0].Generation)
	require.Equal(t, "evt_api_1", e.starter.started[0].EventID, "a redelivery is the same event")
}
