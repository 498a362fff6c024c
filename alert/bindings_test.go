package alert_test

import (
	"strings"
	"testing"

	"paysaga/activities"
	"paysaga/alert"
	"paysaga/events"
	"paysaga/workflows"
)

// emitted are the event types the workflows publish (their outbox), and whether each one needs
// a person.
var emitted = map[string]bool{
	workflows.EventSucceeded:                false,
	workflows.EventAuthorized:               false,
	workflows.EventCanceled:                 false,
	workflows.EventFailed:                   true,
	workflows.EventUnknown:                  true,
	workflows.EventCancelFailed:             true,
	workflows.EventStalled:                  true,
	workflows.EventRefundSucceeded:          false,
	workflows.EventRefundFailed:             true,
	workflows.EventRefundUnknown:            true,
	workflows.EventRefundStalled:            true,
	workflows.EventRefundCompensationFailed: true,
	events.SettlementPaid:                   false,
	events.SettlementFailed:                 true,
	events.SettlementUnknown:                true,
	activities.WebhookEndpointFailing:       false, // the merchant is told, on its stream
}

// topicMatch is AMQP topic matching of a routing key against a binding pattern ("*" one word,
// "#" zero or more).
func topicMatch(pattern, key string) bool {
	var match func(p, k []string) bool
	match = func(p, k []string) bool {
		switch {
		case len(p) == 0:
			return len(k) == 0
		case p[0] == "#":
			for i := 0; i <= len(k); i++ {
				if match(p[1:], k[i:]) {
					return true
				}
			}
			return false
		case len(k) == 0:
			return false
		case p[0] == "*" || p[0] == k[0]:
			return match(p[1:], k[1:])
		}
		return false
	}
	return match(strings.Split(pattern, "."), strings.Split(key, "."))
}

// Every binding of the alert queue can fire (some workflow emits a type it matches), every type
// that needs a person reaches the queue and is wanted, and no routine outcome raises an alert.
func TestAlertBindingsMatchEmittedEvents(t *testing.T) {
	for _, p := range alert.Patterns {
		fires := false
		for typ := range emitted {
			fires = fires || topicMatch(p, typ)
		}
		if !fires {
			t.Errorf("alert binding %q matches no event type the workflows publish: it can never fire", p)
		}
	}
	for typ, needsPerson := range emitted {
		bound := false
		for _, p := range alert.Patterns {
			bound = bound || topicMatch(p, typ)
		}
		if needsPerson && (!bound || !alert.Wanted(typ)) {
			t.Errorf("%s needs a person but does not raise an alert (bound %v, wanted %v)", typ, bound, alert.Wanted(typ))
		}
		if !needsPerson && (bound || alert.Wanted(typ)) {
			t.Errorf("%s is routine but raises an alert", typ)
		}
	}
	// The routing keys the events package names are the workflows' own.
	for _, k := range []string{events.PaymentCancelFailed, events.RefundUnknown, events.PaymentUnknown} {
		if _, ok := emitted[k]; !ok {
			t.Errorf("events.%s is not an event type the workflows publish", k)
		}
	}
}
