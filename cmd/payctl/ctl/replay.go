package ctl

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	tlog "go.temporal.io/sdk/log"
	sdkworker "go.temporal.io/sdk/worker"

	"paysaga/internal/connect"
)

func historyCmd(s *session) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "history",
		Short: "Check workflow histories against the current code",
	}
	cmd.AddCommand(historyReplayCmd(s))
	return cmd
}

// closedQuery selects workflows that have finished: their histories are final.
const closedQuery = `ExecutionStatus != "Running"`

// replayResult is the outcome of replaying one history.
type replayResult struct {
	WorkflowID   string `json:"workflow_id"`
	RunID        string `json:"run_id"`
	WorkflowType string `json:"workflow_type"`
	Events       int    `json:"events"`
	OK           bool   `json:"ok"`
	// Nondeterministic: the code emitted other commands than the history holds (TMPRL1100).
	Nondeterministic bool   `json:"nondeterministic,omitempty"`
	Error            string `json:"error,omitempty"`
}

func historyReplayCmd(s *session) *cobra.Command {
	var query string
	var limit int
	cmd := &cobra.Command{
		Use:   "replay [--query '…'] [--limit N]",
		Short: "Replay the histories of closed workflows against this build's workflow code",
		Long: `replay fetches the histories of closed workflows of every type from Temporal (newest first,
selected by --query, a visibility query; closed ones only) and replays each against the workflow code this
payctl was built with, as a worker would after a deploy. A history the code cannot replay means
the change is not deterministic: put it behind workflow.GetVersion before deploying. Exit code 3
when any history fails to replay.`,
		Example: `  payctl history replay
  payctl history replay --query 'CloseTime > "2026-11-24T00:00:00Z"' --limit 500`,
		Args: args(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 1 {
				return usageErrorf("--limit must be at least 1")
			}
			q := closedQuery
			if query != "" {
				q = "(" + query + ") AND " + closedQuery
			}
			results, err := s.replay(cmd.Context(), q, limit)
			if err != nil {
				return err
			}
			failed := 0
			for _, r := range results {
				if !r.OK {
					failed++
				}
			}
			if s.output == "json" {
				err = printJSON(s.env.Stdout, results)
			} else {
				t := newTable(s.env.Stdout, "WORKFLOW", "RUN", "TYPE", "EVENTS", "RESULT")
				for _, r := range results {
					res := "ok"
					switch {
					case r.Nondeterministic:
						res = "FAILED: NON-DETERMINISTIC: " + r.Error
					case !r.OK:
						res = "FAILED: " + r.Error
					}
					t.row(r.WorkflowID, r.RunID, r.WorkflowType, fmt.Sprint(r.Events), res)
				}
				if err = t.flush(); err == nil {
					fmt.Fprintf(s.env.Stdout, "replayed %d histories: %d ok, %d failed\n", len(results), len(results)-failed, failed)
				}
			}
			if err != nil {
				return err
			}
			if failed > 0 {
				return refusedErrorf("%d of %d histories do not replay against this code (non-determinism)", failed, len(results))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&query, "query", "", "visibility query selecting the workflows (ANDed with: closed); empty: every workflow type the worker runs")
	cmd.Flags().IntVar(&limit, "limit", 100, "at most this many histories")
	return cmd
}

func (s *session) replay(ctx context.Context, query string, limit int) ([]replayResult, error) {
	c, err := s.client(ctx)
	if err != nil {
		return nil, err
	}
	infos, err := listWorkflows(ctx, c, s.namespace(), query, limit)
	if err != nil {
		return nil, err
	}
	cfg, err := s.config()
	if err != nil {
		return nil, err
	}
	// The engine's histories hold encrypted payloads (PAYSAGA_TEMPORAL_PAYLOAD_KEYS).
	ropts, err := connect.ReplayerOptions(cfg)
	if err != nil {
		return nil, err
	}
	replayer, err := sdkworker.NewWorkflowReplayerWithOptions(ropts)
	if err != nil {
		return nil, err
	}
	s.env.RegisterWorkflows(replayer)
	quiet := tlog.NewStructuredLogger(slog.New(slog.DiscardHandler))
	results := make([]replayResult, 0, len(infos))
	for _, info := range infos {
		wid, rid := info.GetExecution().GetWorkflowId(), info.GetExecution().GetRunId()
		var hist historypb.History
		it := c.GetWorkflowHistory(ctx, wid, rid, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			ev, err := it.Next()
			if err != nil {
				return nil, fmt.Errorf("history of %s (run %s): %w", wid, rid, err)
			}
			hist.Events = append(hist.Events, ev)
		}
		r := replayResult{WorkflowID: wid, RunID: rid, WorkflowType: info.GetType().GetName(), Events: len(hist.Events), OK: true}
		if err := replayer.ReplayWorkflowHistory(quiet, &hist); err != nil {
			r.OK, r.Error = false, err.Error()
			r.Nondeterministic = strings.Contains(r.Error, "TMPRL1100") || strings.Contains(strings.ToLower(r.Error), "nondetermin")
		}
		results = append(results, r)
	}
	return results, nil
}
