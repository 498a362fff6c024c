// Package webhook is what merchants are told over HTTP: their webhook endpoints (a URL, the
// event types it wants, a secret to sign with), the signed JSON POST each event becomes, the
// rules an endpoint's URL must follow so that it cannot be turned against our own network, and
// the log of every delivery attempt. It speaks only the standard library: the store keeps
// endpoints and deliveries, a Temporal workflow (workflows.WebhookDeliveryWorkflow) retries a
// delivery for a day, and the Dispatcher turns one published event into one delivery per
// subscribed endpoint.
//
// Signing (Stripe's scheme): each POST carries the header
//
//	Paysaga-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>
//
// with one v1 per secret that signs (two while a rotation's overlap lasts). A receiver
// recomputes the HMAC over the exact bytes it received with its secret, compares in constant
// time with any v1, and refuses a t older than DefaultTolerance (see Verify). The event id
// (body "id", header Paysaga-Event-Id) is stable across retries and redeliveries: a receiver
// drops the ones it has seen.
package webhook

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"paysaga"
)

// ID prefixes.
const (
	PrefixEndpoint = "we_"
	PrefixDelivery = "whd_"
	// SecretPrefix starts every signing secret, so that one found in a log or a repository is
	// recognisable (and greppable by secret scanners).
	SecretPrefix = "whsec_"
)

// EndpointStatus is whether an endpoint receives events.
type EndpointStatus string

const (
	// EndpointEnabled receives the events it subscribed to.
	EndpointEnabled EndpointStatus = "enabled"
	// EndpointFailing still receives events, but a delivery to it gave up after a day of
	// retries; the merchant was alerted. The next successful delivery makes it enabled again.
	EndpointFailing EndpointStatus = "failing"
	// EndpointDisabled receives nothing (the merchant turned it off); deliveries in flight stop.
	EndpointDisabled EndpointStatus = "disabled"
	// EndpointDeleted is gone for the merchant; its secrets are erased, its delivery log kept.
	EndpointDeleted EndpointStatus = "deleted"
)

// Receives reports whether an endpoint in this status is sent events.
func (s EndpointStatus) Receives() bool { return s == EndpointEnabled || s == EndpointFailing }

// Endpoint is a merchant's webhook endpoint. Its secrets are not part of it: they are sealed
// at rest and opened only to sign (and shown once, when made).
type Endpoint struct {
	ID          string         `json:"id"`
	MerchantID  string         `json:"merchant_id"`
	URL         string         `json:"url"`
	EventTypes  []string       `json:"event_types"`
	Description string         `json:"description,omitempty"`
	Status      EndpointStatus `json:"status"`
	// PreviousSecretExpiresAt is set during a rotation's overlap: until then the previous
	// secret signs too.
	PreviousSecretExpiresAt *time.Time `json:"previous_secret_expires_at,omitempty"`
	// FailingSince is when a delivery last gave up (status failing).
	FailingSince *time.Time `json:"failing_since,omitempty"`
	CreatedAt    time.Time  `json:"created_at"`
	UpdatedAt    time.Time  `json:"updated_at"`
}

// Subscribed reports whether the endpoint wants events of type t.
func (e *Endpoint) Subscribed(t string) bool {
	return slices.ContainsFunc(e.EventTypes, func(p string) bool { return MatchType(p, t) })
}

// EventTypes a merchant can subscribe to: the outcomes of its payments and refunds, and its
// settlements. "payment.*", "refund.*", "settlement.*" and "*" subscribe to a whole family.
var EventTypes = []string{
	"payment.succeeded", "payment.failed", "payment.unknown", "payment.canceled", "payment.cancel_failed",
	"refund.succeeded", "refund.failed", "refund.unknown",
	"settlement.paid", "settlement.failed",
}

// Families are the event-type prefixes deliverable to merchants: the dispatcher consumes these.
var Families = []string{"payment.*", "refund.*", "settlement.*"}

// ValidEventType reports whether p may be subscribed to: a known type, a family, or "*".
func ValidEventType(p string) bool {
	return p == "*" || slices.Contains(Families, p) || slices.Contains(EventTypes, p)
}

// MatchType reports whether the subscription pattern p covers event type t: equal, "*", or a
// family "x.*" covering every "x.…". Only the merchant-facing families are ever matched.
func MatchType(p, t string) bool {
	if !Deliverable(t) {
		return false
	}
	switch {
	case p == "*" || p == t:
		return true
	case strings.HasSuffix(p, ".*"):
		return strings.HasPrefix(t, strings.TrimSuffix(p, "*"))
	}
	return false
}

// Deliverable reports whether events of type t may go to merchants at all.
func Deliverable(t string) bool {
	for _, f := range Families {
		if strings.HasPrefix(t, strings.TrimSuffix(f, "*")) && len(t) > len(f)-1 {
			return true
		}
	}
	return false
}

// NewSecret returns a fresh signing secret: SecretPrefix and 32 random bytes, base64url. The
// HMAC key is the whole string's bytes, prefix included.
func NewSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return SecretPrefix + base64.RawURLEncoding.EncodeToString(b)
}

// Event is one event as merchants receive it: the POST body is its JSON. ID is the engine's
// stable event id.
type Event struct {
	ID         string          `json:"id"`
	Type       string          `json:"type"`
	OccurredAt time.Time       `json:"occurred_at"`
	Data       json.RawMessage `json:"data"`
}

// MerchantOf returns the merchant an event concerns, from its body: "merchant_id" at the top
// (payments, settlements) or in the embedded "payment" (refunds). Empty: nobody's.
func MerchantOf(data json.RawMessage) string {
	var body struct {
		MerchantID string `json:"merchant_id"`
		Payment    *struct {
			MerchantID string `json:"merchant_id"`
		} `json:"payment"`
	}
	if len(data) == 0 || json.Unmarshal(data, &body) != nil {
		return ""
	}
	if body.MerchantID != "" {
		return body.MerchantID
	}
	if body.Payment != nil {
		return body.Payment.MerchantID
	}
	return ""
}

// Body returns the exact bytes POSTed for ev.
func Body(ev Event) ([]byte, error) {
	ev.OccurredAt = ev.OccurredAt.UTC()
	b, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("webhook: encode event %s: %w", ev.ID, err)
	}
	return b, nil
}

// DeliveryStatus is where a delivery (one event to one endpoint) is.
type DeliveryStatus string

const (
	// DeliveryPending: being tried (a workflow runs for it).
	DeliveryPending DeliveryStatus = "pending"
	// DeliverySucceeded: the endpoint answered 2xx within the timeout.
	DeliverySucceeded DeliveryStatus = "succeeded"
	// DeliveryFailed: every try of a day failed; the endpoint was marked failing.
	DeliveryFailed DeliveryStatus = "failed"
	// DeliveryCanceled: the endpoint was disabled or deleted before it answered 2xx.
	DeliveryCanceled DeliveryStatus = "canceled"
)

// Delivery is one event to one endpoint: unique per (endpoint, event). Generation counts the
// redeliveries asked for (0: the first delivery); each is a workflow of its own.
type Delivery struct {
	ID             string         `json:"id"`
	EndpointID     string         `json:"endpoint_id"`
	MerchantID     string         `json:"merchant_id"`
	EventID        string         `json:"event_id"`
	EventType      string         `json:"event_type"`
	Status         DeliveryStatus `json:"status"`
	Generation     int            `json:"redeliveries"`
	AttemptCount   int            `json:"attempt_count"`
	LastStatusCode int            `json:"last_status_code,omitempty"`
	LastError      string         `json:"last_error,omitempty"`
	CreatedAt      time.Time      `json:"created_at"`
	UpdatedAt      time.Time      `json:"updated_at"`
	DeliveredAt    *time.Time     `json:"delivered_at,omitempty"`
	// Attempts is the log, oldest first (filled where the detail is asked for).
	Attempts []Attempt `json:"attempts,omitempty"`
}

// Attempt is one POST of a delivery.
type Attempt struct {
	DeliveryID string `json:"-"`
	// Generation is the redelivery the attempt belongs to (0: the first delivery); Number
	// counts the attempts within it, from 1.
	Generation int       `json:"redelivery"`
	Number     int       `json:"number"`
	At         time.Time `json:"at"`
	// StatusCode is the endpoint's answer (0: none — refused address, timeout, connection).
	StatusCode int   `json:"status_code,omitempty"`
	LatencyMS  int64 `json:"latency_ms"`
	// Error says why an attempt without an answer failed.
	Error string `json:"error,omitempty"`
}

// Succeeded reports whether the attempt counts as delivered: a 2xx answer.
func (a Attempt) Succeeded() bool { return a.StatusCode >= 200 && a.StatusCode < 300 }

// NewEndpointID and NewDeliveryID return fresh ids.
func NewEndpointID() string { return paysaga.NewID(PrefixEndpoint) }

// NewDeliveryID returns a fresh delivery id.
func NewDeliveryID() string { return paysaga.NewID(PrefixDelivery) }

// SecretAD is the additional data an endpoint's secret is sealed with: a sealed secret moved
// to another endpoint's row does not open.
func SecretAD(endpointID string) string { return "webhook-secret:" + endpointID }
