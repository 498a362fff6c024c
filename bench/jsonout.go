package main

import (
	"encoding/json"
	"os"
	"runtime"
	"time"

	"paysaga/internal/cpuuse"
)

// jsonReport is what -json writes: the run's figures, one object, so that a script can compare
// a run with an earlier one (docs/benchmarks.md keeps the dated table).
type jsonReport struct {
	At          time.Time `json:"at"`
	GoVersion   string    `json:"go_version"`
	CPUs        int       `json:"cpus"`
	LoadBefore  string    `json:"load_before"`
	LoadAfter   string    `json:"load_after"`
	Temporal    string    `json:"temporal"`
	OfferedRate float64   `json:"offered_per_s"`
	Neighbour   float64   `json:"neighbour_cores"`
	Duration    float64   `json:"duration_s"`

	Sent        int     `json:"sent"`
	Accepted    int     `json:"accepted"`
	Succeeded   int     `json:"succeeded"`
	Failed      int     `json:"failed"`
	NotFinal    int     `json:"not_final"`
	Shed        int     `json:"shed"`
	AcceptedPS  float64 `json:"accepted_per_s"`
	CompletedPS float64 `json:"completed_per_s"`
	ShedPS      float64 `json:"shed_per_s"`

	AnswerMS jsonLatency `json:"answer_ms"`
	FinalMS  jsonLatency `json:"final_ms"`
	ShedMS   jsonLatency `json:"shed_answer_ms"`

	HistoryEvents float64 `json:"history_events_per_payment"`
	BaselinePS    float64 `json:"baseline_completed_per_s"`
	BaselineShape string  `json:"baseline_shape"`
	Ratio         float64 `json:"ratio"`
	LedgerOK      bool    `json:"ledger_ok"`

	// Timeline: each segment of an answer that succeeded at once (200), from the histories.
	Timeline []jsonSegment `json:"timeline_ms"`

	CPUBusyCores float64       `json:"cpu_busy_cores"`
	CPUByProcess []cpuuse.Proc `json:"cpu_by_process"`

	// CPU per completed workflow (ms) of each process in each phase, and the Temporal server's
	// per payment over per baseline workflow.
	CPUPerWorkflow struct {
		BaselineBefore []cpuuse.Cost `json:"baseline_before"`
		Payments       []cpuuse.Cost `json:"payments"`
		BaselineAfter  []cpuuse.Cost `json:"baseline_after"`
	} `json:"cpu_ms_per_workflow"`
	ServerCostFactor float64 `json:"server_cost_per_payment_over_baseline"`
}

type jsonSegment struct {
	Segment string `json:"segment"`
	jsonLatency
}

type jsonLatency struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

func latencyJSON(s Summary) jsonLatency {
	return jsonLatency{N: s.N, P50: msf(s.P50), P95: msf(s.P95), P99: msf(s.P99), Max: msf(s.Max)}
}

// writeJSON writes the figures of d to path.
func writeJSON(path string, o options, d reportData) error {
	c, l := d.counts, d.load
	b1, b2 := d.base[0], d.base[1]
	baseRate := (b1.Window.Rate(b1.Completed) + b2.Window.Rate(b2.Completed)) / 2
	r := jsonReport{
		At: d.began.UTC(), GoVersion: runtime.Version(), CPUs: runtime.NumCPU(),
		LoadBefore: d.loadBefore, LoadAfter: d.loadAfter, Temporal: temporalMode(o),
		OfferedRate: o.rate, Neighbour: o.neighbour, Duration: o.duration.Seconds(),
		Sent: c.Sent, Accepted: c.Accepted, Succeeded: c.Succeeded, Failed: c.Failed, NotFinal: c.NotFinal, Shed: c.Shed,
		AcceptedPS: l.Window.Rate(c.AcceptedInWindow), CompletedPS: l.Window.Rate(c.CompletedInWindow),
		ShedPS:   l.Window.Rate(c.ShedInWindow),
		AnswerMS: latencyJSON(l.AnswerLatency.Summary()), FinalMS: latencyJSON(l.FinalLatency.Summary()),
		ShedMS:        latencyJSON(l.ShedLatency.Summary()),
		HistoryEvents: d.hist.Mean, BaselinePS: baseRate, BaselineShape: o.baselineShape, LedgerOK: d.ledger.OK(),
		CPUBusyCores: l.CPU.Total, CPUByProcess: l.CPU.Procs,
	}
	costs := costsOf(d)
	r.CPUPerWorkflow.BaselineBefore, r.CPUPerWorkflow.Payments, r.CPUPerWorkflow.BaselineAfter = costs.Before, costs.Payments, costs.After
	r.ServerCostFactor = costs.serverFactor()
	if d.timeline.Sampled > 0 {
		for i, name := range timelineSegments {
			r.Timeline = append(r.Timeline, jsonSegment{Segment: name, jsonLatency: latencyJSON(d.timeline.Segments[i])})
		}
	}
	if baseRate > 0 {
		r.Ratio = r.CompletedPS / baseRate
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
