package api

import (
	"errors"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"paysaga"
)

// httpMetrics are the RED metrics of the API, labelled by route template (never the raw path)
// so that their cardinality is bounded by the number of routes.
type httpMetrics struct {
	requests    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	streams     prometheus.Gauge
	idempotency *prometheus.CounterVec
}

// streamRoute is the notification stream's route: its requests last as long as the stream.
const streamRoute = "/v1/notifications/stream"

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	labels := []string{"method", "route", "status"}
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "paysaga_http_requests_total",
			Help: "HTTP requests answered, by method, route template and status code.",
		}, labels),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "paysaga_http_request_duration_seconds",
			Help: "Time to answer an HTTP request, by method, route template and status code.",
			// Payments wait up to a few seconds for the bank, so the buckets reach 10 s.
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, labels),
	}
	m.streams = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "paysaga_notification_streams_open",
		Help: "Notification streams (SSE) this API instance holds open.",
	})
	m.idempotency = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "paysaga_idempotency_requests_total",
		Help: "Requests whose Idempotency-Key was used before, by route and result: replayed (the stored answer was sent again) or mismatch (another request under the same key, refused with 422).",
	}, []string{"route", "result"})
	m.requests = register(reg, m.requests)
	m.duration = register(reg, m.duration)
	m.streams = register(reg, m.streams)
	m.idempotency = register(reg, m.idempotency)
	return m
}

// register adds c to reg, or returns the collector already registered under the same name, so
// that two servers sharing one registry (tests, a restart in-process) count into the same series.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic("api: register metrics: " + err.Error())
	}
	return c
}

func (m *httpMetrics) middleware() gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		if c.FullPath() == streamRoute {
			m.streams.Inc()
			defer m.streams.Dec()
		}
		c.Next()
		switch {
		case c.Writer.Header().Get("Idempotent-Replayed") == "true":
			m.idempotency.WithLabelValues(routeLabel(c), "replayed").Inc()
		case idempotencyMismatch(c):
			m.idempotency.WithLabelValues(routeLabel(c), "mismatch").Inc()
		}
		method := c.Request.Method
		if !knownMethods[method] {
			method = "OTHER" // methods are client-chosen strings too
		}
		lv := []string{method, routeLabel(c), strconv.Itoa(c.Writer.Status())}
		m.requests.WithLabelValues(lv...).Inc()
		m.duration.WithLabelValues(lv...).Observe(time.Since(start).Seconds())
	}
}

var knownMethods = map[string]bool{
	"GET": true, "HEAD": true, "POST": true, "PUT": true, "PATCH": true, "DELETE": true, "OPTIONS": true,
}

// idempotencyMismatch reports whether the request was refused because its Idempotency-Key was
// used for a different request (the handlers leave the error on the context through Problem).
func idempotencyMismatch(c *gin.Context) bool {
	for _, e := range c.Errors {
		if paysaga.ErrorCode(e.Err) == paysaga.EIDEMPOTENCY {
			return true
		}
	}
	return false
}
