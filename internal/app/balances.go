package app

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/redis/go-redis/v9"

	"paysaga/balance"
	"paysaga/config"
	"paysaga/events"
	"paysaga/notify"
)

// The balance cache learns that money moved from the outcome events, where the engine sees
// them: the notification consumer with a broker, the worker's publisher without one. Every
// payment and refund event marks its account's balance outdated (not only "succeeded": an
// unknown or cancelled outcome may have moved money too); a needless mark costs one bank
// inquiry on the next read.

// movedAccount is the account a payment or refund event concerns ("" for any other event): a
// payment's own, or for a refund the account of its payment.
func movedAccount(ev events.Event) string {
	if !strings.HasPrefix(ev.Type, "payment.") && !strings.HasPrefix(ev.Type, "refund.") {
		return ""
	}
	var body struct {
		AccountID string `json:"account_id"`
		Payment   *struct {
			AccountID string `json:"account_id"`
		} `json:"payment"`
	}
	if len(ev.Data) == 0 || json.Unmarshal(ev.Data, &body) != nil {
		return ""
	}
	if body.AccountID == "" && body.Payment != nil {
		return body.Payment.AccountID
	}
	return body.AccountID
}

// invalidateBalance marks the balance of the account ev concerns outdated.
func invalidateBalance(ctx context.Context, inv balance.Invalidator, ev events.Event) error {
	if id := movedAccount(ev); id != "" {
		return inv.Invalidate(ctx, id)
	}
	return nil
}

// balancePublisher invalidates the balance an event concerns once Next has published it.
type balancePublisher struct {
	Next events.Publisher
	Inv  balance.Invalidator
}

func (p balancePublisher) Publish(ctx context.Context, ev events.Event) error {
	if err := p.Next.Publish(ctx, ev); err != nil {
		return err
	}
	return invalidateBalance(ctx, p.Inv, ev)
}

// NotificationHandler is what the notification consumer does with each event: mark the
// balance it concerns outdated, then notify the customers it concerns. Both are idempotent, so
// a redelivered event is harmless.
func NotificationHandler(cfg config.Config, rdb redis.UniversalClient) events.Handler {
	notifier := notify.NewNotifier(rdb, NotifyConfig(cfg))
	inv := balance.Invalidator{Redis: rdb, KeyPrefix: RedisKeyPrefix(cfg)}
	return func(ctx context.Context, ev events.Event) error {
		if err := invalidateBalance(ctx, inv, ev); err != nil {
			return err
		}
		return notifier.Handle(ctx, ev)
	}
}
