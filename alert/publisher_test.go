package alert_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paysaga/alert"
	"paysaga/events"
)

type recordingPublisher struct{ got []events.Event }

func (r *recordingPublisher) Publish(_ context.Context, ev events.Event) error {
	r.got = append(r.got, ev)
	return nil
}

func TestPublisherAlertsWithoutABroker(t *testing.T) {
	var hits atomic.Int32
	var status atomic.Int32
	status.Store(http.StatusOK)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		w.WriteHeader(int(status.Load()))
	}))
	defer srv.Close()
	a, err := alert.New(alert.Config{WebhookURL: srv.URL})
	require.NoError(t, err)
	next := &recordingPublisher{}
	p := alert.Publisher{Next: next, Alerter: a, Attempts: 3, Backoff: time.Millisecond}
	ctx := context.Background()
	failed := events.Event{ID: "evt_1", Type: "payment.failed", OccurredAt: time.Now(),
		Data: json.RawMessage(`{"id":"pay_1","status":"FAILED","amount":1000}`)}

	require.NoError(t, p.Publish(ctx, failed))
	require.EqualValues(t, 1, hits.Load(), "a failed payment raises one alert")
	require.Len(t, next.got, 1, "the event itself is published too")

	ok := events.Event{ID: "evt_2", Type: "payment.succeeded", OccurredAt: time.Now(), Data: json.RawMessage(`{}`)}
	require.NoError(t, p.Publish(ctx, ok))
	require.EqualValues(t, 1, hits.Load(), "a success raises none")

	// The webhook is down: tried a bounded number of times, then given up without failing the
	// publish (which would hold the payment's workflow open).
	status.Store(http.StatusServiceUnavailable)
	hits.Store(0)
	require.NoError(t, p.Publish(ctx, failed))
	require.EqualValues(t, 3, hits.Load())

	// A refusal of the message itself is not retried.
	status.Store(http.StatusBadRequest)
	hits.Store(0)
	require.NoError(t, p.Publish(ctx, failed))
	require.EqualValues(t, 1, hits.Load())
}
