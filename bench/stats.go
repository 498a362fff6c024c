package main

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Durations collects latencies from many goroutines. A benchmark run holds a few thousand
// samples, so keeping them all and sorting once is simpler and exact, where a histogram would
// only approximate the tail.
type Durations struct {
	mu sync.Mutex
	d  []time.Duration
}

// Add records one sample.
func (s *Durations) Add(d time.Duration) {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
}

// Summary returns the percentiles of what was recorded.
func (s *Durations) Summary() Summary {
	s.mu.Lock()
	d := slices.Clone(s.d)
	s.mu.Unlock()
	return Summarize(d)
}

// Summary is the shape of a latency distribution.
type Summary struct {
	N                  int
	P50, P95, P99, Max time.Duration
}

// Summarize sorts d (in place) and returns its percentiles.
func Summarize(d []time.Duration) Summary {
	slices.Sort(d)
	s := Summary{N: len(d)}
	if len(d) == 0 {
		return s
	}
	s.P50, s.P95, s.P99 = Percentile(d, 50), Percentile(d, 95), Percentile(d, 99)
	s.Max = d[len(d)-1]
	return s
}

// Percentile returns the p-th percentile (0 < p ≤ 100) of sorted by the nearest-rank method:
// the smallest sample such that at least p% of the samples are ≤ it. It is always a value
// that was measured, never an interpolation between two, which is what one wants of a tail
// latency ("99% of the answers came within X").
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

func (s Summary) String() string {
	if s.N == 0 {
		return "no samples"
	}
	return fmt.Sprintf("p50 %s  p95 %s  p99 %s  max %s  (n=%d)",
		ms(s.P50), ms(s.P95), ms(s.P99), ms(s.Max), s.N)
}

// ms prints a duration in milliseconds, the unit every latency here is read in.
func ms(d time.Duration) string {
	return fmt.Sprintf("%.0fms", float64(d)/float64(time.Millisecond))
}

// Counter counts occurrences by label (errors by status, answers by code) from many
// goroutines.
type Counter struct {
	mu sync.Mutex
	m  map[string]int
}

// Inc adds one to label.
func (c *Counter) Inc(label string) {
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]int{}
	}
	c.m[label]++
	c.mu.Unlock()
}

// Total is the sum over every label.
func (c *Counter) Total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.m {
		n += v
	}
	return n
}

// String lists the labels, most frequent first: "503×4, transport×1".
func (c *Counter) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) == 0 {
		return "none"
	}
	labels := make([]string, 0, len(c.m))
	for l := range c.m {
		labels = append(labels, l)
	}
	sort.Slice(labels, func(i, j int) bool {
		if c.m[labels[i]] != c.m[labels[j]] {
			return c.m[labels[i]] > c.m[labels[j]]
		}
		return labels[i] < labels[j]
	})
	parts := make([]string, len(labels))
	for i, l := range labels {
		parts[i] = fmt.Sprintf("%s×%d", l, c.m[l])
	}
	return strings.Join(parts, ", ")
}

// Window counts events whose time falls in [From, To): the measurement window that excludes
// the warm-up and the drain, so that a rate is events ÷ window length.
type Window struct {
	From, To time.Time
}

// Contains reports whether t is in the window.
func (w Window) Contains(t time.Time) bool { return !t.Before(w.From) && t.Before(w.To) }

// Rate is n per second of the window.
func (w Window) Rate(n int) float64 {
	secs := w.To.Sub(w.From).Seconds()
	if secs <= 0 {
		return 0
	}
	return float64(n) / secs
}

// msf is a duration in milliseconds as a number, for figures finer than a millisecond.
func msf(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
