package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"paysaga/workflows"
)

// SettlementScheduleID is the Temporal Schedule that settles each day to the merchants (the
// Web UI lists it under Schedules).
const SettlementScheduleID = "paysaga-settlement"

// SettlementSchedule is the Schedule's definition: every day at hhmm Korea time (HH:MM) it
// starts SettlementDayWorkflow, which settles the previous Korea day. Korea has no daylight
// saving, so the spec is kept in UTC and needs no time-zone database on the server.
func SettlementSchedule(hhmm string) (client.ScheduleSpec, *client.ScheduleWorkflowAction, error) {
	t, err := time.Parse("15:04", hhmm)
	if err != nil {
		return client.ScheduleSpec{}, nil, fmt.Errorf("settlement time %q: want HH:MM", hhmm)
	}
	hour := (t.Hour() + 24 - 9) % 24
	spec := client.ScheduleSpec{Calendars: []client.ScheduleCalendarSpec{{
		Hour:    []client.ScheduleRange{{Start: hour}},
		Minute:  []client.ScheduleRange{{Start: t.Minute()}},
		Comment: "daily at " + hhmm + " KST: settle the previous day",
	}}}
	action := &client.ScheduleWorkflowAction{
		// Temporal appends the scheduled time: settlement-day-2026-12-01T16:00:00Z.
		ID:        "settlement-day",
		Workflow:  workflows.SettlementDayWorkflowName,
		Args:      []any{workflows.SettlementDayInput{}},
		TaskQueue: workflows.TaskQueue,
	}
	return spec, action, nil
}

// EnsureSettlementSchedule creates the settlement Schedule, or brings an existing one to hhmm,
// idempotently: every worker calls it at start, several at once. hhmm "" (PAYSAGA_SETTLEMENT_TIME
// off) pauses an existing Schedule instead. A day's run buffers behind one still running, and a
// run missed while the cluster was down is caught up within a day: a day is never skipped, and
// running one twice pays nobody twice.
func EnsureSettlementSchedule(ctx context.Context, c client.Client, hhmm string, logger *slog.Logger) error {
	sc := c.ScheduleClient()
	if hhmm == "" {
		err := sc.GetHandle(ctx, SettlementScheduleID).Pause(ctx, client.SchedulePauseOptions{Note: "PAYSAGA_SETTLEMENT_TIME=off"})
		var nf *serviceerror.NotFound
		if err != nil && !errors.As(err, &nf) {
			return fmt.Errorf("pause the settlement schedule: %w", err)
		}
		return nil
	}
	spec, action, err := SettlementSchedule(hhmm)
	if err != nil {
		return err
	}
	_, err = sc.Create(ctx, client.ScheduleOptions{
		ID: SettlementScheduleID, Spec: spec, Action: action,
		Overlap:       enumspb.SCHEDULE_OVERLAP_POLICY_BUFFER_ONE,
		CatchupWindow: 24 * time.Hour,
		Note:          "created by the paysaga worker",
	})
	if err == nil {
		logger.Info("settlement schedule created", "schedule_id", SettlementScheduleID, "kst", hhmm)
		return nil
	}
	if !errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
		return fmt.Errorf("create the settlement schedule: %w", err)
	}
	err = sc.GetHandle(ctx, SettlementScheduleID).Update(ctx, client.ScheduleUpdateOptions{
		DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
			s := in.Description.Schedule
			s.Spec, s.Action = &spec, action
			if s.Policy != nil {
				s.Policy.Overlap, s.Policy.CatchupWindow = enumspb.SCHEDULE_OVERLAP_POLICY_BUFFER_ONE, 24*time.Hour
			}
			if s.State != nil {
				s.State.Paused, s.State.Note = false, "updated by the paysaga worker"
			}
			return &client.ScheduleUpdate{Schedule: &s}, nil
		},
	})
	if err != nil {
		return fmt.Errorf("update the settlement schedule: %w", err)
	}
	return nil
}

// ensureSettlementSchedule is EnsureSettlementSchedule at worker start, with the configured time.
func (p *Parts) ensureSettlementSchedule() error {
	if p.Temporal == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	logger := p.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return EnsureSettlementSchedule(ctx, p.Temporal, p.Config.SettlementTime, logger)
}
