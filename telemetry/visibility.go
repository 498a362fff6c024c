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

	unknown, attention *prometheus.Desc

	mu      sync.Mutex
	at      time.Time
	counts  [2]float64
	haveAny bool
}

const refreshEvery = 30 * time.Second

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
	})
}

func (v *visibilityCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- v.unknown
	ch <- v.attention
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
		if ok {
			v.counts, v.at, v.haveAny = fresh, time.Now(), true
		}
	}
	if !v.haveAny {
		return // visibility unreachable so far: no number rather than a false zero
	}
	ch <- prometheus.MustNewConstMetric(v.unknown, prometheus.GaugeValue, v.counts[0])
	ch <- prometheus.MustNewConstMetric(v.attention, prometheus.GaugeValue, v.counts[1])
}
