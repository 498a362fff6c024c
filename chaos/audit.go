package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"paysaga/events"
)

// auditQueue is the run's own durable queue bound to the events exchange for every routing key,
// declared before the first payment: what the engine publishes stays there, through the broker's
// restart, until the judge reads it.
const auditQueue = "chaos.audit"

func declareAudit(ctx context.Context, amqpURL string) error {
	conn, err := amqp.DialConfig(amqpURL, amqp.Config{Dial: amqp.DefaultDial(10 * time.Second)})
	if err != nil {
		return fmt.Errorf("RabbitMQ: %w", err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	defer ch.Close()
	if err := events.DeclareTopology(ch, events.Config{}); err != nil {
		return err
	}
	return events.DeclareQueue(ch, events.Config{}, auditQueue, []string{"#"}, nil)
}

// readAudit takes every message off the audit queue and adds to out, per payment or refund id,
// the routing keys seen; it returns how many messages it took.
func readAudit(ctx context.Context, amqpURL string, out map[string]map[string]bool) (int, error) {
	conn, err := amqp.DialConfig(amqpURL, amqp.Config{Dial: amqp.DefaultDial(10 * time.Second)})
	if err != nil {
		return 0, fmt.Errorf("RabbitMQ: %w", err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return 0, err
	}
	defer ch.Close()
	n := 0
	for ctx.Err() == nil {
		d, ok, err := ch.Get(auditQueue, true)
		if err != nil {
			return n, err
		}
		if !ok {
			break
		}
		n++
		var ev struct {
			Type string `json:"type"`
			Data struct {
				ID string `json:"id"`
			} `json:"data"`
		}
		if json.Unmarshal(d.Body, &ev) != nil || ev.Data.ID == "" {
			continue
		}
		if out[ev.Data.ID] == nil {
			out[ev.Data.ID] = map[string]bool{}
		}
		out[ev.Data.ID][d.RoutingKey] = true
	}
	return n, ctx.Err()
}
