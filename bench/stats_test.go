package main

import (
	"sync"
	"testing"
	"time"
)

func TestPercentileNearestRank(t *testing.T) {
	// 1ms … 100ms: the p-th percentile of 100 evenly spread samples is the p-th sample.
	var d []time.Duration
	for i := 100; i >= 1; i-- { // unsorted on purpose: Summarize sorts
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	s := Summarize(d)
	for _, c := range []struct {
		got, want time.Duration
	}{{s.P50, 50 * time.Millisecond}, {s.P95, 95 * time.Millisecond}, {s.P99, 99 * time.Millisecond}, {s.Max, 100 * time.Millisecond}} {
		if c.got != c.want {
			t.Errorf("got %v, want %v (summary %v)", c.got, c.want, s)
		}
	}
	if s.N != 100 {
		t.Errorf("N = %d", s.N)
	}
}

func TestPercentileSmallSamples(t *testing.T) {
	if got := Percentile(nil, 99); got != 0 {
		t.Errorf("empty: %v", got)
	}
	one := []time.Duration{7}
	for _, p := range []float64{0, 1, 50, 100} {
		if got := Percentile(one, p); got != 7 {
			t.Errorf("one sample, p%v: %v", p, got)
		}
	}
	// Three samples: p50 is the 2nd (ceil(1.5)), p95 and p99 the 3rd — a measured value, never
	// an interpolation.
	three := []time.Duration{1, 2, 3}
	if got := Percentile(three, 50); got != 2 {
		t.Errorf("p50 of 3: %v", got)
	}
	if got := Percentile(three, 99); got != 3 {
		t.Errorf("p99 of 3: %v", got)
	}
	if s := Summarize(nil); s.N != 0 || s.String() != "no samples" {
		t.Errorf("empty summary: %+v %q", s, s.String())
	}
}

func TestDurationsAndCounterConcurrently(t *testing.T) {
	var d Durations
	var c Counter
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			d.Add(time.Duration(i) * time.Millisecond)
			if i%10 == 0 {
				c.Inc("503")
			} else if i%25 == 1 {
				c.Inc("transport")
			}
		})
	}
	wg.Wait()
	if s := d.Summary(); s.N != 50 || s.Max != 49*time.Millisecond {
		t.Errorf("summary %+v", s)
	}
	if c.Total() != 7 || c.String() != "503×5, transport×2" {
		t.Errorf("counter %d %q", c.Total(), c.String())
	}
}

func TestWindow(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	w := Window{From: t0, To: t0.Add(10 * time.Second)}
	if !w.Contains(t0) || w.Contains(t0.Add(10*time.Second)) || w.Contains(t0.Add(-time.Nanosecond)) {
		t.Error("the window is [From, To)")
	}
	if got := w.Rate(250); got != 25 {
		t.Errorf("rate %v", got)
	}
}
