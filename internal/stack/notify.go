package stack

import (
	"context"
	"errors"
	"time"

	"paysaga/api"
	"paysaga/events"
	"paysaga/internal/app"
	"paysaga/notify"
)

// Notifications are the stack's running event consumers (notifications, alerts).
type Notifications struct {
	Consumers []*events.Consumer
	cancel    context.CancelFunc
	done      chan struct{}
}

// StartNotifications runs the notification consumer — and the alert consumer when o or the
// configuration names a webhook — on the stack's broker and Redis, and returns once they
// consume. It needs a broker; without one, customers are notified by app.NotifyingPublisher
// in front of the worker's publisher instead.
func (s *Stack) StartNotifications(ctx context.Context, o app.ConsumerOptions) (*Notifications, error) {
	p := s.Parts
	consumers, err := app.Consumers(p.Config, p.Redis, p.Logger, o)
	if err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	n := &Notifications{Consumers: consumers, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(n.done)
		app.RunConsumers(runCtx, consumers)
	}()
	timeout := time.After(30 * time.Second)
	for _, c := range consumers {
		select {
		case <-c.Ready():
		case <-ctx.Done():
			n.Stop()
			return nil, ctx.Err()
		case <-timeout:
			n.Stop()
			return nil, errors.New("stack: the event consumers did not start within 30s")
		}
	}
	return n, nil
}

// Stop stops the consumers and waits for them.
func (n *Notifications) Stop() {
	n.cancel()
	<-n.done
}

// NotificationAPI is one more API instance on the stack's database and Redis — the auth
// routes and the notification stream, with a Hub of its own — as a further API process would
// be. close ends its streams.
func (s *Stack) NotificationAPI(ctx context.Context) (_ *api.Server, close func(), _ error) {
	p := s.Parts
	hub, err := app.NewHub(ctx, p.Config, p.Redis, p.Logger)
	if err != nil {
		return nil, nil, err
	}
	authSvc, err := app.NewAuth(p.Config, p.DB, p.Redis, p.Dev)
	if err != nil {
		_ = hub.Close()
		return nil, nil, err
	}
	srv := api.New(api.Deps{
		Auth: authSvc, Users: p.DB, Logger: p.Logger,
		Notifications: app.NotificationDeps(p.Config, hub),
	})
	return srv, func() { _ = hub.Close() }, nil
}

var _ api.NotificationHub = (*notify.Hub)(nil)
