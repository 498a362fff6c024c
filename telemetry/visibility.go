package telemetry

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
)

// visibilityCollector counts, when scraped, the sagas that wait for an operator, from Temporal's
// visibility (the search attributes the workflows keep up to date): the payments and refunds
// whose outcome is UNKNOWN, and every run flagged NeedsAttention. The counts are cached for
// refreshEvery so that many scrapers cost one query each.
type visibilityCollector struct {
	client    client.Client
	namespace string

	unknown, attention, oldest *prometheus.Desc

	mu      sync.Mutex
	at      time.Time
	counts  [2]float64
	age     float64 // seconds since the oldest UNKNOWN run started; 0 without one
	haveAny bool
}

// maxUnknownScanned bounds the runs read to find the oldest UNKNOWN one: there are normally a
// handful; past this many, the age is that of the oldest seen.
const maxUnknownScanned = 1000

const refreshEvery = 10 * time.Second

// Visibility queries of the gauges.
const (
	QueryUnknown        = `PaymentStatus = "UNKNOWN" AND ExecutionStatus = "Running"`
	QueryNeedsAttention = `NeedsAttention = true AND ExecutionStatus = "Running"`
)

// RegisterVisibility adds the gauges paysaga_workflows_unknown and
// paysaga_workflows_needing_attention, read from c's visibility, to reg (the API's registry:
// every API instance reports the same numbers; alert on max()).
func RegisterVisibility(reg prometheus.Registerer, c client.Client, namespace string) {
	_ = register(reg, &visibilityCollector{
		client: c, namespace: namespace,
		unknown: prometheus.NewDesc("paysaga_workflows_unknown",
			"Running payment and refund workflows whose outcome is UNKNOWN (the bank could not tell; an operator resolves them with payctl).", nil, nil),
		attention: prometheus.NewDesc("paysaga_workflows_needing_attention",
			"Running workflows flagged NeedsAttention (unknown outcomes, stalled store writes, failed cancellations).", nil, nil),
		oldest: prometheus.NewDesc("paysaga_workflows_unknown_oldest_age_seconds",
			"Age of the oldest running payment or refund workflow whose outcome is UNKNOWN (since it started); 0 when there is none. How long a customer has been waiting for an operator.", nil, nil),
	})
}

func (v *visibilityCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- v.unknown
	ch <- v.attention
	ch <- v.oldest
}

func (v *visibilityCollector) Collect(ch chan<- prometheus.Metric) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if time.Since(v.at) > refreshEvery {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		var fresh [2]float64
		ok := true
		for i, q := range []string{QueryUnknown, QueryNeedsAttention} {
			res, err := v.client.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Namespace: v.namespace, Query: q})
			if err != nil {
				ok = false
				break
			}
			fresh[i] = float64(res.GetCount())
		}
		var age float64
		if ok && fresh[0] > 0 {
			age, ok = v.oldestUnknown(ctx)
		}
		if ok {
			v.counts, v.age, v.at, v.haveAny = fresh, age, time.Now(), true
		}
	}
	if !v.haveAny {
		return // visibility unreachable so far: no number rather than a false zero
	}
	ch <- prometheus.MustNewConstMetric(v.unknown, prometheus.GaugeValue, v.counts[0])
	ch <- prometheus.MustNewConstMetric(v.attention, prometheus.GaugeValue, v.counts[1])
	ch <- prometheus.MustNewConstMetric(v.oldest, prometheus.GaugeValue, v.age)
}

// oldestUnknown pages through the running UNKNOWN workflows (visibility cannot sort on every
// store) and returns the age of the oldest.
func (v *visibilityCollector) oldestUnknown(ctx context.Context) (float64, bool) {
	var oldest time.Time
	var token []byte
	for seen := 0; seen < maxUnknownScanned; {
		res, err := v.client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: v.namespace, Query: QueryUnknown, PageSize: 100, NextPageToken: token})
		if err != nil {
			return 0, false
		}
		for _, e := range res.GetExecutions() {
			if st := e.GetStartTime().AsTime(); oldest.IsZero() || st.Before(oldest) {
				oldest = st
			}
		}
		seen += len(res.GetExecutions())
		if token = res.GetNextPageToken(); len(token) == 0 {
			break
		}
	}
	if oldest.IsZero() {
		return 0, true
	}
	return time.Since(oldest).Seconds(), true
}
