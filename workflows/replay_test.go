package workflows_test

import (
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/log"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"paysaga"
	"paysaga/worker"
	"paysaga/workflows"
)

func histories(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "payment_*.json"))
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(files), len(scenarios), "a recorded history per scenario (go test ./workflows -run TestScenariosOnDevServer -args -record)")
	return files
}

func quietLogger() log.Logger {
	return log.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// TestReplayHistories replays every recorded history against the code the worker registers:
// a change that makes the workflow emit other commands for an old history fails here.
func TestReplayHistories(t *testing.T) {
	for _, file := range histories(t) {
		t.Run(filepath.Base(file), func(t *testing.T) {
			r := sdkworker.NewWorkflowReplayer()
			worker.RegisterWorkflows(r, recordConfigs)
			require.NoError(t, r.ReplayWorkflowHistoryFromJSONFile(quietLogger(), file))
		})
	}
}

// The replay test is not a formality: deliberately altered workflows fail it.
func TestReplayDetectsNonDeterministicChanges(t *testing.T) {
	for name, altered := range map[string]func(workflow.Context, workflows.PaymentInput) (paysaga.Payment, error){
		// A new step (a timer) before the saga, without workflow.GetVersion.
		"timer added": func(ctx workflow.Context, in workflows.PaymentInput) (paysaga.Payment, error) {
			if err := workflow.Sleep(ctx, time.Second); err != nil {
				return paysaga.Payment{}, err
			}
			return workflows.NewPayments(recordConfig).PaymentWorkflow(ctx, in)
		},
		// The debit no longer runs: the history's activity has no command to match.
		"debit skipped": func(ctx workflow.Context, in workflows.PaymentInput) (paysaga.Payment, error) {
			return paysaga.Payment{ID: in.PaymentID, Status: paysaga.PaymentFailed}, nil
		},
	} {
		t.Run(name, func(t *testing.T) {
			r := sdkworker.NewWorkflowReplayer()
			r.RegisterWorkflowWithOptions(altered, workflow.RegisterOptions{Name: workflows.PaymentWorkflowName})
			err := r.ReplayWorkflowHistoryFromJSONFile(quietLogger(), filepath.Join("testdata", "payment_success.json"))
			require.Error(t, err, "an altered workflow must not replay the recorded history")
			t.Logf("replay error: %v", err)
		})
	}
}
