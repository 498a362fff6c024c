package ctl

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"paysaga"
	"paysaga/saga"
	"paysaga/store"
	"paysaga/workflows"
)

func webhooksCmd(s *session) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "webhooks",
		Short: "Inspect merchants' webhook endpoints and deliveries; redeliver events",
	}
	cmd.AddCommand(webhookEndpointsCmd(s), webhookDeliveriesCmd(s), webhookRedeliverCmd(s))
	return cmd
}

func webhookEndpointsCmd(s *session) *cobra.Command {
	var merchant string
	var limit int
	c := &cobra.Command{
		Use:     "endpoints --merchant usr_…",
		Short:   "A merchant's webhook endpoints (never their secrets)",
		Example: `  payctl webhooks endpoints --merchant usr_demomerchant`,
		Args:    args(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if merchant == "" {
				return usageErrorf("--merchant is required")
			}
			db, err := s.database(cmd.Context())
			if err != nil {
				return err
			}
			page, err := db.ListWebhookEndpoints(cmd.Context(), store.WebhookEndpointFilter{MerchantID: merchant, Limit: limit})
			if err != nil {
				return err
			}
			if s.output == "json" {
				return printJSON(s.env.Stdout, page.Endpoints)
			}
			t := newTable(s.env.Stdout, "ENDPOINT", "STATUS", "URL", "EVENT TYPES", "FAILING SINCE")
			for _, e := range page.Endpoints {
				since := ""
				if e.FailingSince != nil {
					since = when(*e.FailingSince)
				}
				t.row(e.ID, string(e.Status), e.URL, fmt.Sprint(e.EventTypes), since)
			}
			return t.flush()
		},
	}
	c.Flags().StringVar(&merchant, "merchant", "", "the merchant's user id")
	c.Flags().IntVar(&limit, "limit", 100, "at most this many (1 to 100)")
	return c
}

func webhookDeliveriesCmd(s *session) *cobra.Command {
	var event string
	var limit int
	c := &cobra.Command{
		Use:   "deliveries [<endpoint id>] [--event evt_…]",
		Short: "The delivery log: each event sent to an endpoint, with every attempt",
		Long: `deliveries lists the deliveries of an endpoint (newest first), or of one event to every
endpoint it went to (--event), each with its attempts: when, the status code, the latency, or why
there was no answer. A delivery is pending while it is retried (24 h), then succeeded, failed
(the endpoint was marked failing) or canceled (the endpoint was disabled or deleted).`,
		Example: `  payctl webhooks deliveries we_…
  payctl webhooks deliveries --event evt_…`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, a []string) error {
			f := store.WebhookDeliveryFilter{EventID: event, Limit: limit}
			if len(a) == 1 {
				f.EndpointID = a[0]
			}
			if f.EndpointID == "" && f.EventID == "" {
				return usageErrorf("name an endpoint, or an event with --event")
			}
			db, err := s.database(cmd.Context())
			if err != nil {
				return err
			}
			page, err := db.ListWebhookDeliveries(cmd.Context(), f)
			if err != nil {
				return err
			}
			if s.output == "json" {
				return printJSON(s.env.Stdout, page.Deliveries)
			}
			t := newTable(s.env.Stdout, "DELIVERY", "ENDPOINT", "EVENT", "TYPE", "STATUS", "ATTEMPT", "AT", "CODE", "LATENCY", "ERROR")
			for _, d := range page.Deliveries {
				t.row(d.ID, d.EndpointID, d.EventID, d.EventType, string(d.Status), "", when(d.UpdatedAt), "", "", "")
				for _, at := range d.Attempts {
					n := strconv.Itoa(at.Number)
					if at.Generation > 0 {
						n = fmt.Sprintf("r%d.%d", at.Generation, at.Number)
					}
					code := ""
					if at.StatusCode != 0 {
						code = strconv.Itoa(at.StatusCode)
					}
					t.row("", "", "", "", "", n, when(at.At), code, fmt.Sprintf("%dms", at.LatencyMS), at.Error)
				}
			}
			return t.flush()
		},
	}
	c.Flags().StringVar(&event, "event", "", "only the deliveries of this event id")
	c.Flags().IntVar(&limit, "limit", 20, "at most this many deliveries (1 to 100)")
	return c
}

func webhookRedeliverCmd(s *session) *cobra.Command {
	return &cobra.Command{
		Use:   "redeliver <delivery id>...",
		Short: "Send events to their endpoint again: the same event id and body, a new series of attempts",
		Long: `redeliver starts a new delivery workflow for each delivery named (webhook:<endpoint>:<event>:r<n>),
which POSTs the same event — same id, same body, signed afresh — with the usual 24 h of retries.
Receivers drop the event ids they have already seen, so redelivering is safe. A delivery still
being retried is left to its workflow (started again if it is not running). Refused (exit 3) for
an endpoint that is disabled or deleted.`,
		Example: `  payctl webhooks redeliver whd_…`,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, a []string) error {
			ctx := cmd.Context()
			db, err := s.database(ctx)
			if err != nil {
				return err
			}
			tc, err := s.client(ctx)
			if err != nil {
				return err
			}
			starter := saga.WebhookDeliveries{Client: tc}
			type result struct {
				DeliveryID string `json:"delivery_id"`
				EventID    string `json:"event_id"`
				Redelivery int    `json:"redelivery"`
				WorkflowID string `json:"workflow_id"`
			}
			var out []result
			for _, id := range a {
				d, err := db.GetWebhookDelivery(ctx, id)
				if paysaga.ErrorCode(err) == paysaga.ENOTFOUND {
					return refusedErrorf("no delivery %s", id)
				}
				if err != nil {
					return err
				}
				e, err := db.GetWebhookEndpoint(ctx, d.EndpointID)
				if err != nil {
					return err
				}
				if !e.Status.Receives() {
					return refusedErrorf("delivery %s: endpoint %s is %s", id, e.ID, e.Status)
				}
				if d, err = db.RedeliverWebhook(ctx, id); err != nil {
					return err
				}
				if err := starter.StartDelivery(ctx, d); err != nil {
					return fmt.Errorf("start the redelivery of %s: %w", id, err)
				}
				out = append(out, result{d.ID, d.EventID, d.Generation, workflows.WebhookDeliveryWorkflowID(d.EndpointID, d.EventID, d.Generation)})
			}
			if s.output == "json" {
				return printJSON(s.env.Stdout, out)
			}
			t := newTable(s.env.Stdout, "DELIVERY", "EVENT", "REDELIVERY", "WORKFLOW")
			for _, r := range out {
				t.row(r.DeliveryID, r.EventID, strconv.Itoa(r.Redelivery), r.WorkflowID)
			}
			return t.flush()
		},
	}
}
