package main

import (
	"context"
	"fmt"
	"sort"
	"strings"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
)

// localActivityMarker is the marker name the Go SDK records for a local activity's result.
const localActivityMarker = "LocalActivity"

// historyShape is what one workflow's history is made of.
type historyShape struct {
	Events          int
	Activities      int            // ActivityTaskScheduled: an activity through the server's task queue
	LocalActivities int            // LocalActivity markers: run in the worker, one event each
	WorkflowTasks   int            // WorkflowTaskCompleted: round trips of the worker with the server
	Steps           string         // the activities in history order: A = activity, L = local activity
	ByType          map[string]int // events by type
}

// readHistory reads a workflow's full history from the server.
func readHistory(ctx context.Context, c client.Client, workflowID string) ([]*historypb.HistoryEvent, error) {
	var events []*historypb.HistoryEvent
	iter := c.GetWorkflowHistory(ctx, workflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for iter.HasNext() {
		ev, err := iter.Next()
		if err != nil {
			return nil, fmt.Errorf("history of %s: %w", workflowID, err)
		}
		events = append(events, ev)
	}
	return events, nil
}

// fetchHistory reads a workflow's full history from the server and counts its events.
func fetchHistory(ctx context.Context, c client.Client, workflowID string) (historyShape, error) {
	h := historyShape{ByType: map[string]int{}}
	var steps strings.Builder
	events, err := readHistory(ctx, c, workflowID)
	if err != nil {
		return h, err
	}
	for _, ev := range events {
		h.Events++
		typ := ev.GetEventType()
		h.ByType[strings.TrimPrefix(typ.String(), "EVENT_TYPE_")]++
		switch typ {
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			h.Activities++
			steps.WriteByte('A')
		case enumspb.EVENT_TYPE_MARKER_RECORDED:
			if ev.GetMarkerRecordedEventAttributes().GetMarkerName() == localActivityMarker {
				h.LocalActivities++
				steps.WriteByte('L')
			}
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
			h.WorkflowTasks++
		}
	}
	h.Steps = steps.String()
	return h, nil
}

// historyStats summarises the histories of a sample of workflows.
type historyStats struct {
	Sampled         int
	Min, Max        int
	Mean            float64
	Typical         historyShape // the most frequent shape (by event count and steps)
	TypicalCount    int
	Activities      float64 // means over the sample
	LocalActivities float64
	WorkflowTasks   float64
}

// sampleHistories fetches the histories of up to n of the workflows, spread evenly over the
// list so that the start and the end of a run are both represented.
func sampleHistories(ctx context.Context, c client.Client, workflowIDs []string, n int) (historyStats, error) {
	var st historyStats
	if len(workflowIDs) == 0 || n <= 0 {
		return st, fmt.Errorf("no workflow to sample")
	}
	n = min(n, len(workflowIDs))
	counts := map[string]int{}
	shapes := map[string]historyShape{}
	var total, acts, las, wfts int
	for i := range n {
		id := workflowIDs[i*len(workflowIDs)/n]
		h, err := fetchHistory(ctx, c, id)
		if err != nil {
			return st, err
		}
		if st.Sampled == 0 || h.Events < st.Min {
			st.Min = h.Events
		}
		st.Max = max(st.Max, h.Events)
		st.Sampled++
		total += h.Events
		acts += h.Activities
		las += h.LocalActivities
		wfts += h.WorkflowTasks
		key := fmt.Sprintf("%03d/%s", h.Events, h.Steps)
		counts[key]++
		shapes[key] = h
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	// Most frequent first; among equals the shortest, the run that nothing disturbed.
	sort.Slice(keys, func(i, j int) bool {
		if counts[keys[i]] != counts[keys[j]] {
			return counts[keys[i]] > counts[keys[j]]
		}
		return keys[i] < keys[j]
	})
	st.Typical, st.TypicalCount = shapes[keys[0]], counts[keys[0]]
	f := float64(st.Sampled)
	st.Mean = float64(total) / f
	st.Activities, st.LocalActivities, st.WorkflowTasks = float64(acts)/f, float64(las)/f, float64(wfts)/f
	return st, nil
}

// breakdown lists a history's events by type, most frequent first.
func (h historyShape) breakdown() string {
	types := make([]string, 0, len(h.ByType))
	for t := range h.ByType {
		types = append(types, t)
	}
	sort.Slice(types, func(i, j int) bool {
		if h.ByType[types[i]] != h.ByType[types[j]] {
			return h.ByType[types[i]] > h.ByType[types[j]]
		}
		return types[i] < types[j]
	})
	parts := make([]string, len(types))
	for i, t := range types {
		parts[i] = fmt.Sprintf("%s %d", t, h.ByType[t])
	}
	return strings.Join(parts, ", ")
}
