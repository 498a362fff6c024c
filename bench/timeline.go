package main

import (
	"context"
	"net/http"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"

	"paysaga"
	"paysaga/workflows"
)

// A payment's answer latency, cut where its history says what happened: the client's clock
// (sent, answered) and the server's event times (the same machine's clock in the bench).
// Segments, in order, for a payment that succeeded with one debit:
var timelineSegments = []string{
	"API: request → workflow started (admission, key, checks, row, start)",
	"workflow task 1 waits for a poller",
	"workflow task 1 runs (RecordPayment PROCESSING, schedule Debit)",
	"Debit waits for a poller",
	"Debit runs (transfer row, bank call, result row)",
	"workflow task 2 waits for a poller",
	"workflow task 2 runs (RecordPayment SUCCEEDED, answer, publish)",
	"answer: task completed → client has the 200",
}

// timeline is the distribution of each segment over the sampled payments.
type timeline struct {
	Sampled  int
	Skipped  int // histories of another shape (retries, a 202): not cut into segments
	Segments []Summary
}

// sampleTimeline cuts the answer latency of up to n successful payments answered 200 into
// timelineSegments, reading their histories. Payments whose history has another shape (a debit
// retried, a workflow task that failed) are counted as skipped.
func sampleTimeline(ctx context.Context, c client.Client, ps []*payment, n int) (timeline, error) {
	var cands []*payment
	for _, p := range ps {
		if p.Status == paysaga.PaymentSucceeded && p.AnswerCode == http.StatusOK {
			cands = append(cands, p)
		}
	}
	t := timeline{Segments: make([]Summary, len(timelineSegments))}
	if len(cands) == 0 || n <= 0 {
		return t, nil
	}
	n = min(n, len(cands))
	segs := make([][]time.Duration, len(timelineSegments))
	for i := range n {
		p := cands[i*len(cands)/n]
		segments, ok, err := cutTimeline(ctx, c, p)
		if err != nil {
			return t, err
		}
		if !ok {
			t.Skipped++
			continue
		}
		t.Sampled++
		for j, d := range segments {
			segs[j] = append(segs[j], d)
		}
	}
	for j := range segs {
		t.Segments[j] = Summarize(segs[j])
	}
	return t, nil
}

// cutTimeline reads p's history and cuts its answer latency (cut).
func cutTimeline(ctx context.Context, c client.Client, p *payment) ([]time.Duration, bool, error) {
	events, err := readHistory(ctx, c, workflows.PaymentWorkflowID(p.ID))
	if err != nil {
		return nil, false, err
	}
	segments, ok := cut(events, p.Sent, p.AnsweredAt)
	return segments, ok, nil
}

// cut cuts the time from sent to answered into timelineSegments by the history's event times;
// ok is false for a history that is not the plain shape (one activity, tried once, and two
// workflow tasks that neither failed nor timed out before the answer).
func cut(events []*historypb.HistoryEvent, sent, answered time.Time) ([]time.Duration, bool) {
	var started, actSched, actStart, actDone time.Time
	var wft [][3]time.Time // scheduled, started, completed
	for _, ev := range events {
		at := ev.GetEventTime().AsTime()
		switch ev.GetEventType() {
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
			started = at
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
			wft = append(wft, [3]time.Time{at})
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_STARTED:
			if len(wft) > 0 {
				wft[len(wft)-1][1] = at
			}
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
			if len(wft) > 0 {
				wft[len(wft)-1][2] = at
			}
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_FAILED, enumspb.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT:
			return nil, false
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			if !actSched.IsZero() {
				return nil, false
			}
			actSched = at
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
			if ev.GetActivityTaskStartedEventAttributes().GetAttempt() != 1 {
				return nil, false
			}
			actStart = at
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
			actDone = at
		}
	}
	if started.IsZero() || actStart.IsZero() || actDone.IsZero() || len(wft) < 2 {
		return nil, false
	}
	w1, w2 := wft[0], wft[1]
	for _, w := range [][3]time.Time{w1, w2} {
		if w[1].IsZero() || w[2].IsZero() {
			return nil, false
		}
	}
	return []time.Duration{
		started.Sub(sent),
		w1[1].Sub(w1[0]),
		w1[2].Sub(w1[1]),
		actStart.Sub(actSched),
		actDone.Sub(actStart),
		w2[1].Sub(w2[0]),
		w2[2].Sub(w2[1]),
		answered.Sub(w2[2]),
	}, true
}
