package workflows_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/temporalproto"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"

	"paysaga"
	"paysaga/activities"
	"paysaga/internal/temporaltest"
	"paysaga/seal"
	"paysaga/store"
	"paysaga/store/storetest"
	"paysaga/webhook"
	"paysaga/worker"
	"paysaga/workflows"
)

// webhookRecordConfig is the schedule webhook histories are recorded with: fast retries, a
// give-up after seconds. Replays use the worker's defaults (activity options are not part of
// what a replay compares).
var webhookRecordConfig = workflows.WebhookConfig{InitialInterval: 100 * time.Millisecond, MaximumInterval: 200 * time.Millisecond, GiveUpAfter: 3 * time.Second}

// TestWebhookDeliveryOnDevServer runs deliveries on a real dev server with the real activities:
// retried then delivered, given up, canceled by a disabled endpoint. With -record it writes the
// histories TestReplayWebhookHistories replays.
func TestWebhookDeliveryOnDevServer(t *testing.T) {
	srv := temporaltest.Start(t)
	for _, tc := range []struct {
		name    string
		answers func(n int64) int
		disable bool
		want    webhook.DeliveryStatus
	}{
		{"retried_then_delivered", func(n int64) int {
			if n <= 2 {
				return http.StatusInternalServerError
			}
			return http.StatusNoContent
		}, false, webhook.DeliverySucceeded},
		{"gave_up", func(int64) int { return http.StatusServiceUnavailable }, false, webhook.DeliveryFailed},
		{"endpoint_disabled", func(int64) int { return http.StatusOK }, true, webhook.DeliveryCanceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			db := storetest.Open(t, store.DriverSQLite)
			keys := seal.NewDevKeyring()
			var hits atomic.Int64
			recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tc.answers(hits.Add(1)))
			}))
			t.Cleanup(recv.Close)
			e := &webhook.Endpoint{ID: webhook.NewEndpointID(), MerchantID: "usr_m", URL: recv.URL, EventTypes: []string{"*"}}
			secret := webhook.NewSecret()
			sealed, err := keys.Seal([]byte(secret), webhook.SecretAD(e.ID))
			require.NoError(t, err)
			require.NoError(t, db.CreateWebhookEndpoint(ctx, e, store.SealedSecret{Ciphertext: sealed.Ciphertext, KeyID: sealed.KeyID}))
			ev := webhook.Event{ID: paysaga.NewID(paysaga.PrefixEvent), Type: "payment.succeeded", OccurredAt: time.Now(),
				Data: json.RawMessage(`{"id":"pay_1","merchant_id":"usr_m","amount":15000}`)}
			require.NoError(t, db.RecordWebhookEvent(ctx, ev, "usr_m"))
			d, err := db.CreateWebhookDelivery(ctx, &webhook.Delivery{ID: webhook.NewDeliveryID(), EndpointID: e.ID, MerchantID: "usr_m", EventID: ev.ID, EventType: ev.Type})
			require.NoError(t, err)
			if tc.disable {
				off := false
				_, err := db.UpdateWebhookEndpoint(ctx, e.ID, store.WebhookEndpointUpdate{Enabled: &off})
				require.NoError(t, err)
			}

			queue := "webhook-" + strings.TrimPrefix(paysaga.NewID("q_"), "q_")
			w := sdkworker.New(srv.Client, queue, sdkworker.Options{})
			cfg := recordConfigs
			cfg.Webhooks = webhookRecordConfig
			worker.RegisterWorkflows(w, cfg)
			workflows.RegisterWebhookActivities(w, &activities.WebhookActivities{Store: db, Keys: keys,
				Client: webhook.Policy{AllowLoopback: true}.Client(), Events: &finPublisher{}})
			require.NoError(t, w.Start())
			t.Cleanup(w.Stop)

			id := workflows.WebhookDeliveryWorkflowID(e.ID, ev.ID, 0)
			run, err := srv.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: queue},
				workflows.WebhookDeliveryWorkflowName, activities.WebhookDeliveryInput{DeliveryID: d.ID, EndpointID: e.ID, EventID: ev.ID})
			require.NoError(t, err)
			require.NoError(t, run.Get(ctx, nil))
			got, err := db.GetWebhookDelivery(ctx, d.ID)
			require.NoError(t, err)
			require.Equal(t, tc.want, got.Status)

			var hist historypb.History
			it := srv.Client.GetWorkflowHistory(ctx, id, run.GetRunID(), false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
			for it.HasNext() {
				ev, err := it.Next()
				require.NoError(t, err)
				hist.Events = append(hist.Events, ev)
			}
			raw, err := temporalproto.CustomJSONMarshalOptions{Indent: "  "}.Marshal(&hist)
			require.NoError(t, err)
			require.NotContains(t, string(raw), secret, "the secret never reaches workflow history")
			require.NotContains(t, string(raw), recv.URL, "nor the endpoint's URL")
			t.Logf("%s: %d history events, %d POSTs", tc.name, len(hist.Events), hits.Load())
			if *record {
				require.NoError(t, os.WriteFile(filepath.Join("testdata", "webhook_"+tc.name+".json"), append(raw, '\n'), 0o644))
			}
		})
	}
}

// TestReplayWebhookHistories replays the recorded delivery histories against the code the
// worker registers.
func TestReplayWebhookHistories(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "webhook_*.json"))
	require.NoError(t, err)
	require.Len(t, files, 3, "go test ./workflows -run TestWebhookDeliveryOnDevServer -args -record")
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			r := sdkworker.NewWorkflowReplayer()
			worker.RegisterWorkflows(r, recordConfigs)
			require.NoError(t, r.ReplayWorkflowHistoryFromJSONFile(quietLogger(), file))
		})
	}
}
