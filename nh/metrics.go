package nh

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Bank-call metrics. Labels are bounded: api is one of this package's API names, outcome one of
// Outcome's values, rpcd one of the bank's five-character codes (or "none" when the bank did not
// answer, "other" for anything that does not look like a code).
var (
	bankCalls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "paysaga_bank_calls_total",
		Help: "Calls to the NH Open API, by API name, outcome (success, declined, in_progress, unknown, transient, invalid) and the bank's response code.",
	}, []string{"api", "outcome", "rpcd"})
	bankCallDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "paysaga_bank_call_duration_seconds",
		Help: "Time from sending a call to the NH Open API to its classified answer, by API name and outcome.",
		// The bank answers in tens of milliseconds; timeouts are at 10 s.
		Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 15},
	}, []string{"api", "outcome"})
	unknownOutcomes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "paysaga_bank_unknown_outcomes_total",
		Help: "Money-moving calls whose outcome is unknown (sent, no usable answer): each opens an inquiry with the CheckOn… APIs.",
	}, []string{"api"})
)

// Collectors are the package's metrics, for the process's registry.
func Collectors() []prometheus.Collector {
	return []prometheus.Collector{bankCalls, bankCallDuration, unknownOutcomes}
}

func observeCall(api string, outcome Outcome, rpcd string, elapsed time.Duration) {
	if !knownAPI(api) {
		api = "other"
	}
	switch {
	case rpcd == "":
		rpcd = "none"
	case !codeLike(rpcd):
		rpcd = "other"
	}
	o := outcome.String()
	bankCalls.WithLabelValues(api, o, rpcd).Inc()
	bankCallDuration.WithLabelValues(api, o).Observe(elapsed.Seconds())
	if outcome == OutcomeUnknown {
		unknownOutcomes.WithLabelValues(api).Inc()
	}
}

var apiNames = sync.OnceValue(DefaultSvcCodes)

func knownAPI(api string) bool {
	_, ok := apiNames()[api]
	return ok
}

// codeLike accepts NH's response codes: five letters or digits (00000, A0017, E0001).
func codeLike(s string) bool {
	if len(s) != 5 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}
