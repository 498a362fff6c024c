package alert

import (
	"context"
	"log/slog"
	"time"

	"paysaga/events"
)

// Publisher sends alerts as events are published, for the embedded default where no broker
// (and so no alert consumer and no dead-letter queue) exists. It tries each alert a few times
// with a back-off and then gives up with an error log line: an undeliverable alert must not
// hold back the workflow publishing the event, and without a broker there is nowhere durable
// to park it.
type Publisher struct {
	Next    events.Publisher
	Alerter *Alerter
	Logger  *slog.Logger
	// Attempts and Backoff bound the delivery (defaults 3 and 500ms, doubling).
	Attempts int
	Backoff  time.Duration
}

// Publish implements events.Publisher: the event goes to Next first; only then is the alert
// sent, so a failed publish (retried by the caller with the same event) alerts once it is out.
func (p Publisher) Publish(ctx context.Context, ev events.Event) error {
	if err := p.Next.Publish(ctx, ev); err != nil {
		return err
	}
	if !Wanted(ev.Type) {
		return nil
	}
	attempts, backoff := p.Attempts, p.Backoff
	if attempts <= 0 {
		attempts = 3
	}
	if backoff <= 0 {
		backoff = 500 * time.Millisecond
	}
	var err error
	for i := 0; i < attempts; i++ {
		if err = p.Alerter.Handle(ctx, ev); err == nil || events.IsPermanent(err) {
			break
		}
		if i+1 < attempts {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(backoff << i):
			}
		}
	}
	if err != nil && p.Logger != nil {
		p.Logger.ErrorContext(ctx, "alert undeliverable; dropped (no broker to dead-letter it)",
			"event_id", ev.ID, "event_type", ev.Type, "error", err.Error())
	}
	return nil
}
