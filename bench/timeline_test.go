package main

import (
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// history builds a history of events of the given types, the i-th at t0 + offsets[i] ms.
func history(t0 time.Time, evs ...any) []*historypb.HistoryEvent {
	var out []*historypb.HistoryEvent
	for i := 0; i < len(evs); i += 2 {
		ev := &historypb.HistoryEvent{
			EventType: evs[i].(enumspb.EventType),
			EventTime: timestamppb.New(t0.Add(time.Duration(evs[i+1].(int)) * time.Millisecond)),
		}
		if ev.EventType == enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED {
			ev.Attributes = &historypb.HistoryEvent_ActivityTaskStartedEventAttributes{
				ActivityTaskStartedEventAttributes: &historypb.ActivityTaskStartedEventAttributes{Attempt: 1},
			}
		}
		out = append(out, ev)
	}
	return out
}

func TestCutSplitsAnAnswerAtItsHistorysEvents(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	evs := history(t0,
		enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED, 10,
		enumspb.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED, 10,
		enumspb.EVENT_TYPE_WORKFLOW_TASK_STARTED, 13,
		enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED, 25,
		enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED, 25,
		enumspb.EVENT_TYPE_MARKER_RECORDED, 25,
		enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, 25,
		enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED, 29,
		enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED, 40,
		enumspb.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED, 40,
		enumspb.EVENT_TYPE_WORKFLOW_TASK_STARTED, 42,
		enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED, 55,
		enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED, 55,
	)
	got, ok := cut(evs, t0, t0.Add(60*time.Millisecond))
	if !ok {
		t.Fatal("a plain payment's history was not cut")
	}
	want := []int{10, 3, 12, 4, 11, 2, 13, 5}
	if len(got) != len(timelineSegments) || len(want) != len(timelineSegments) {
		t.Fatalf("%d segments, want %d", len(got), len(timelineSegments))
	}
	var sum time.Duration
	for i, d := range got {
		sum += d
		if d != time.Duration(want[i])*time.Millisecond {
			t.Errorf("%s = %s, want %dms", timelineSegments[i], d, want[i])
		}
	}
	if sum != 60*time.Millisecond {
		t.Errorf("the segments add up to %s, not the answer's 60ms", sum)
	}

	// Another shape is not cut: a retried debit, a workflow task that failed.
	retried := history(t0,
		enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED, 0,
		enumspb.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED, 0,
		enumspb.EVENT_TYPE_WORKFLOW_TASK_STARTED, 1,
		enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED, 2,
		enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, 2,
		enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED, 3,
	)
	retried[len(retried)-1].GetActivityTaskStartedEventAttributes().Attempt = 2
	if _, ok := cut(retried, t0, t0.Add(time.Second)); ok {
		t.Error("a debit tried twice was cut")
	}
	failed := history(t0,
		enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED, 0,
		enumspb.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED, 0,
		enumspb.EVENT_TYPE_WORKFLOW_TASK_STARTED, 1,
		enumspb.EVENT_TYPE_WORKFLOW_TASK_FAILED, 2,
	)
	if _, ok := cut(failed, t0, t0.Add(time.Second)); ok {
		t.Error("a history with a failed workflow task was cut")
	}
}
