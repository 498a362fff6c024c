package app_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"paysaga/activities"
	"paysaga/internal/app"
	"paysaga/nh"
)

// Issue 11, Low: the Temporal SDK logs every failed activity attempt as an ERROR ("Activity
// error."). A bank answer — declined, in progress, or a call that failed and is retried — has
// been logged once already by the activity, at the level it deserves: the SDK's line for it is
// DEBUG. Anything else the SDK reports stays as it was.
func TestTemporalLoggerDowngradesBankOutcomes(t *testing.T) {
	var buf bytes.Buffer
	logger := app.TemporalLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})))
	transient := &nh.TransportError{API: nh.APIDrawingTransfer, Cause: errors.New("HTTP status 500")}
	for _, err := range []error{
		fmt.Errorf("bank call failed: %w", transient),
		temporal.NewApplicationError("debit not sent", activities.ErrTypeNotExecuted, nil),
		temporal.NewNonRetryableApplicationError("declined", activities.ErrTypeDeclined, nil),
		temporal.NewApplicationError("fin account not issued yet", activities.ErrTypeInProgress, nil),
		temporal.NewNonRetryableApplicationError("unknown outcome", activities.ErrTypeUnknownOutcome, transient),
	} {
		logger.Error("Activity error.", "ActivityType", "Debit", "Attempt", 3, "Error", err)
	}
	require.Empty(t, buf.String(), "bank outcomes are not SDK errors")

	logger.Error("Activity error.", "ActivityType", "RecordPayment", "Attempt", 1, "Error", errors.New("database is locked"))
	logger.Error("Workflow panic", "Error", errors.New("boom"))
	require.Equal(t, 2, strings.Count(buf.String(), "level=ERROR"), buf.String())
}
