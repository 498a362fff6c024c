package app_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"paysaga/internal/app"
	"paysaga/internal/temporaltest"
	"paysaga/workflows"
)

func TestSettlementScheduleIsKoreaTime(t *testing.T) {
	for hhmm, want := range map[string][2]int{"01:00": {16, 0}, "00:30": {15, 30}, "09:00": {0, 0}, "23:59": {14, 59}} {
		spec, action, err := app.SettlementSchedule(hhmm)
		require.NoError(t, err)
		require.Equal(t, want[0], spec.Calendars[0].Hour[0].Start, hhmm)
		require.Equal(t, want[1], spec.Calendars[0].Minute[0].Start, hhmm)
		require.Equal(t, workflows.SettlementDayWorkflowName, action.Workflow)
	}
	_, _, err := app.SettlementSchedule("25:00")
	require.Error(t, err)
}

// Workers starting at once all ensure the one Schedule; a new time updates it; off pauses it.
func TestEnsureSettlementSchedule(t *testing.T) {
	srv := temporaltest.Start(t)
	ctx := context.Background()
	logger := slog.New(slog.DiscardHandler)
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Go(func() { errs[i] = app.EnsureSettlementSchedule(ctx, srv.Client, "01:00", logger) })
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	h := srv.Client.ScheduleClient().GetHandle(ctx, app.SettlementScheduleID)
	d, err := h.Describe(ctx)
	require.NoError(t, err)
	require.Equal(t, 16, d.Schedule.Spec.Calendars[0].Hour[0].Start)
	act, ok := d.Schedule.Action.(*client.ScheduleWorkflowAction)
	require.True(t, ok)
	require.Equal(t, workflows.SettlementDayWorkflowName, act.Workflow)
	require.False(t, d.Schedule.State.Paused)

	require.NoError(t, app.EnsureSettlementSchedule(ctx, srv.Client, "02:30", logger))
	d, err = h.Describe(ctx)
	require.NoError(t, err)
	require.Equal(t, 17, d.Schedule.Spec.Calendars[0].Hour[0].Start)
	require.Equal(t, 30, d.Schedule.Spec.Calendars[0].Minute[0].Start)

	require.NoError(t, app.EnsureSettlementSchedule(ctx, srv.Client, "", logger))
	d, err = h.Describe(ctx)
	require.NoError(t, err)
	require.True(t, d.Schedule.State.Paused)
	require.NoError(t, app.EnsureSettlementSchedule(ctx, srv.Client, "01:00", logger))
	d, err = h.Describe(ctx)
	require.NoError(t, err)
	require.False(t, d.Schedule.State.Paused, "a configured time resumes it")
}
