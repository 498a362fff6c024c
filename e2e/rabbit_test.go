package e2e

import (
	"bytes"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"paysaga/events"
)

// queue is a temporary queue bound to the events exchange, as another service would bind one.
type queue struct {
	deliveries <-chan amqp.Delivery
}

func consume(t *testing.T, bindingKey string) *queue {
	t.Helper()
	conn, err := amqp.Dial(env.amqp)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind(q.Name, bindingKey, events.DefaultExchange, false, nil); err != nil {
		t.Fatal(err)
	}
	d, err := ch.Consume(q.Name, "", true, true, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &queue{deliveries: d}
}

func (q *queue) await(t *testing.T, match func(amqp.Delivery) bool) amqp.Delivery {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case d := <-q.deliveries:
			if match(d) {
				return d
			}
		case <-timeout:
			t.Fatal("no matching event arrived on RabbitMQ")
		}
	}
}

func containsID(body []byte, id string) bool { return bytes.Contains(body, []byte(`"`+id+`"`)) }
