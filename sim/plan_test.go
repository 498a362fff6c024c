package sim

import (
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"time"
)

// plan is everything a schedule does, drawn from its seed before it runs: the customers, the
// operations with their simulated times, and the faults.
type plan struct {
	Seed      uint64
	Customers []planCustomer
	Payments  []planPayment
	Refunds   []planRefund
	// Fault windows, on the simulated clock.
	StoreOutages    []window
	BrokerOutages   []window
	InquiryOutages  []window
	ConflictPermill int
	Bank            bankRates
	Hangs           int
	// LostCompletion is the per-mille chance that an activity's completion is lost after it ran.
	LostCompletion int
	// StoreRefusal is the per-mille chance that the store refuses (a conflict) to record an
	// outcome after money may have moved.
	StoreRefusal int
	// Operator passes: when an operator looks at what waits for one.
	OperatorPasses []time.Duration
	Horizon        time.Duration
}

type planCustomer struct {
	ID      string
	Account string
	Balance int64
}

type window struct{ From, To time.Duration }

func (w window) String() string {
	return fmt.Sprintf("%s→%s (%s)", fmtDur(w.From), fmtDur(w.To), fmtDur(w.To-w.From))
}

type planPayment struct {
	ID         string
	CustomerID string
	AccountID  string
	Amount     int64
	Manual     bool
	At         time.Duration
	// Dups are API retries with the same key: a second start of the same workflow ID, and an
	// outcome Update to it.
	Dups []time.Duration
	// Decision of the merchant on a manual-capture payment, at DecideAt: capture, cancel, or
	// none (the capture deadline cancels it).
	Decision string
	DecideAt time.Duration
	// CancelAt, when set, is a cancellation request of the workflow.
	CancelAt time.Duration
}

type planRefund struct {
	ID        string
	PaymentID string
	Amount    int64
	At        time.Duration
	Dups      []time.Duration
	CancelAt  time.Duration
	// CancelInCredit requests the workflow's cancellation while its credit is being sent.
	CancelInCredit bool
}

const (
	merchantID      = "usr_simmerchant"
	captureDeadline = time.Hour
)

// drawPlan draws a schedule from its seed. Changing the draws changes what every seed runs,
// the regression seeds included (see testdata/regressions.txt): new draws go at the end, by
// hash, and the regression seeds are checked again on the old code.
func drawPlan(seed uint64) *plan {
	rng := rand.New(rand.NewPCG(seed, 0x5a6a))
	p := &plan{Seed: seed}
	between := func(lo, hi time.Duration) time.Duration {
		if hi <= lo {
			return lo
		}
		return (lo + time.Duration(rng.Int64N(int64(hi-lo)))).Truncate(time.Second)
	}
	logUniform := func(lo, hi time.Duration) time.Duration {
		x := math.Log(float64(lo)) + rng.Float64()*(math.Log(float64(hi))-math.Log(float64(lo)))
		return time.Duration(math.Exp(x)).Truncate(time.Second)
	}
	chance := func(pct int) bool { return rng.IntN(100) < pct }

	for i := range 1 + rng.IntN(3) {
		c := planCustomer{ID: fmt.Sprintf("usr_c%d", i+1), Account: fmt.Sprintf("acct_c%d", i+1), Balance: 2_000_000}
		if chance(25) {
			c.Balance = int64(5+rng.IntN(60)) * 1000 // some payments are declined for want of money
		}
		p.Customers = append(p.Customers, c)
	}
	last := time.Duration(0)
	for i := range 1 + rng.IntN(6) {
		c := p.Customers[rng.IntN(len(p.Customers))]
		pp := planPayment{
			ID: fmt.Sprintf("pay_%d", i+1), CustomerID: c.ID, AccountID: c.Account,
			Amount: int64(1+rng.IntN(2000)) * 100, Manual: chance(25), At: between(0, 20*time.Minute),
		}
		if i > 0 && chance(25) {
			pp.At = p.Payments[i-1].At // started together
		}
		for range dups(rng) {
			pp.Dups = append(pp.Dups, pp.At+between(0, 10*time.Minute))
		}
		if pp.Manual {
			switch r := rng.IntN(100); {
			case r < 45:
				pp.Decision = "capture"
			case r < 80:
				pp.Decision = "cancel"
			}
			pp.DecideAt = pp.At + between(time.Second, 45*time.Minute)
		}
		if chance(10) {
			pp.CancelAt = pp.At + between(0, 10*time.Minute)
		}
		p.Payments = append(p.Payments, pp)
		last = max(last, pp.At, pp.DecideAt, pp.CancelAt)
		for _, d := range pp.Dups {
			last = max(last, d)
		}

		if !chance(55) {
			continue
		}
		n := 1 + rng.IntN(3)
		together := n > 1 && chance(35)
		var at time.Duration
		for j := range n {
			r := planRefund{ID: fmt.Sprintf("ref_r%d_%d", i+1, j+1), PaymentID: pp.ID}
			switch x := rng.IntN(100); {
			case x < 30:
				r.Amount = pp.Amount
			case x < 90:
				r.Amount = 100 * (1 + rng.Int64N(pp.Amount/100))
			default:
				r.Amount = pp.Amount + 100 // more than was paid: refused
			}
			if j == 0 || !together {
				at = pp.At + between(0, 60*time.Minute)
				if pp.Manual && pp.Decision == "capture" && chance(60) {
					at = pp.DecideAt + between(0, 10*time.Minute)
				}
			}
			r.At = at
			for range dups(rng) {
				r.Dups = append(r.Dups, r.At+between(0, 5*time.Minute))
			}
			if chance(8) {
				r.CancelAt = r.At + between(0, 2*time.Minute)
			}
			r.CancelInCredit = chance(8)
			p.Refunds = append(p.Refunds, r)
			last = max(last, r.At, r.CancelAt)
			for _, d := range r.Dups {
				last = max(last, d)
			}
		}
	}

	faultsFrom, faultsTo := time.Duration(0), max(last, 30*time.Minute)
	for range []int{0, 0, 1, 1, 1, 2}[rng.IntN(6)] {
		from := between(faultsFrom, faultsTo)
		p.StoreOutages = append(p.StoreOutages, window{from, from + logUniform(time.Second, 3*time.Hour)})
	}
	if chance(30) {
		p.ConflictPermill = 30 + rng.IntN(70)
	}
	if chance(40) {
		// Longer than a few minutes would outlast the test environment's ten attempts of the
		// publishing activity (a real server retries it without end).
		from := between(faultsFrom, faultsTo)
		p.BrokerOutages = append(p.BrokerOutages, window{from, from + logUniform(time.Second, 3*time.Minute)})
	}
	if chance(30) {
		from := between(faultsFrom, faultsTo)
		p.InquiryOutages = append(p.InquiryOutages, window{from, from + logUniform(10*time.Second, 30*time.Minute)})
	}
	p.Bank = bankRates{
		P500: []int{0, 0, 50, 200}[rng.IntN(4)],
		Lost: []int{0, 0, 50, 200, 400}[rng.IntN(5)],
		Late: []int{0, 0, 0, 150}[rng.IntN(4)],
		Slow: []int{0, 0, 0, 0, 40}[rng.IntN(5)],
		Hang: []int{0, 0, 0, 0, 0, 0, 0, 0, 0, 100}[rng.IntN(10)],
	}
	p.Hangs = 1
	if chance(30) {
		p.LostCompletion = 50 + rng.IntN(100)
	}

	end := last
	for _, ws := range [][]window{p.StoreOutages, p.BrokerOutages, p.InquiryOutages} {
		for _, w := range ws {
			end = max(end, w.To)
		}
	}
	p.Horizon = end + 5*time.Hour
	for t := 30 * time.Minute; t < p.Horizon-2*time.Hour; t += []time.Duration{30 * time.Minute, time.Hour, 2 * time.Hour}[rng.IntN(3)] {
		p.OperatorPasses = append(p.OperatorPasses, t)
	}
	p.OperatorPasses = append(p.OperatorPasses, p.Horizon-2*time.Hour)

	if hash(seed, "store-refusals")%100 < 20 {
		p.StoreRefusal = 300
	}
	// Drawn by hash, after every rng draw, so that the schedules of older seeds (the
	// regression seeds) stay what they were.
	for i := range p.Payments {
		pp := &p.Payments[i]
		if pp.Manual && pp.Decision == "" && hash(seed, "deadline-race", pp.ID)%2 == 0 {
			// The merchant captures within two seconds of the capture deadline: the Update and
			// the deadline race.
			pp.Decision = "capture"
			pp.DecideAt = pp.At + captureDeadline + time.Duration(hash(seed, "deadline-offset", pp.ID)%4000)*time.Millisecond - 2*time.Second
		}
	}
	return p
}

func dups(rng *rand.Rand) int {
	switch r := rng.IntN(100); {
	case r < 5:
		return 2
	case r < 25:
		return 1
	}
	return 0
}

// describe writes the plan for the trace.
func (p *plan) describe() []string {
	var out []string
	for _, c := range p.Customers {
		out = append(out, fmt.Sprintf("customer %s balance %d", c.ID, c.Balance))
	}
	for _, x := range p.Payments {
		s := fmt.Sprintf("payment %s %s amount %d at %s", x.ID, x.CustomerID, x.Amount, fmtDur(x.At))
		if x.Manual {
			s += fmt.Sprintf(", manual capture, decision %q at %s", x.Decision, fmtDur(x.DecideAt))
		}
		for _, d := range x.Dups {
			s += ", duplicate start at " + fmtDur(d)
		}
		if x.CancelAt > 0 {
			s += ", workflow cancel request at " + fmtDur(x.CancelAt)
		}
		out = append(out, s)
	}
	for _, x := range p.Refunds {
		s := fmt.Sprintf("refund %s of %s amount %d at %s", x.ID, x.PaymentID, x.Amount, fmtDur(x.At))
		for _, d := range x.Dups {
			s += ", duplicate start at " + fmtDur(d)
		}
		if x.CancelAt > 0 {
			s += ", workflow cancel request at " + fmtDur(x.CancelAt)
		}
		if x.CancelInCredit {
			s += ", workflow cancel request during its credit"
		}
		out = append(out, s)
	}
	for _, w := range p.StoreOutages {
		out = append(out, "fault: store down "+w.String())
	}
	if p.ConflictPermill > 0 {
		out = append(out, fmt.Sprintf("fault: store write conflicts %d‰", p.ConflictPermill))
	}
	for _, w := range p.BrokerOutages {
		out = append(out, "fault: broker down "+w.String())
	}
	for _, w := range p.InquiryOutages {
		out = append(out, "fault: bank inquiries down "+w.String())
	}
	out = append(out, "fault: bank "+p.Bank.String())
	if p.LostCompletion > 0 {
		out = append(out, fmt.Sprintf("fault: activity completions lost %d‰", p.LostCompletion))
	}
	if p.StoreRefusal > 0 {
		out = append(out, fmt.Sprintf("fault: the store refuses an outcome after money moved %d‰ (once per payment or refund)", p.StoreRefusal))
	}
	passes := make([]string, len(p.OperatorPasses))
	for i, t := range p.OperatorPasses {
		passes[i] = fmtDur(t)
	}
	out = append(out, "operator passes at "+strings.Join(passes, ", ")+"; horizon "+fmtDur(p.Horizon))
	return out
}

// hash is a deterministic draw from the seed and a call's identity.
func hash(seed uint64, parts ...any) uint64 {
	h := fnv.New64a()
	fmt.Fprint(h, seed)
	for _, p := range parts {
		fmt.Fprint(h, "|", p)
	}
	x := h.Sum64()
	// splitmix64 finaliser: fnv's low bits are poor.
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// trace is the readable story of one schedule, each line stamped with the simulated time.
type trace struct {
	now func() time.Duration
	mu  sync.Mutex
	seq int
	ls  []traceLine
}

type traceLine struct {
	at  time.Duration
	seq int
	s   string
}

func (t *trace) add(format string, args ...any) {
	var at time.Duration
	if t.now != nil {
		at = t.now()
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.seq++
	t.ls = append(t.ls, traceLine{at, t.seq, fmt.Sprintf(format, args...)})
}

// addAt adds a line stamped with a simulated time of the past.
func (t *trace) addAt(at time.Duration, format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.seq++
	t.ls = append(t.ls, traceLine{at, t.seq, fmt.Sprintf(format, args...)})
}

func (t *trace) lines() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	ls := append([]traceLine(nil), t.ls...)
	sort.SliceStable(ls, func(i, j int) bool { return ls[i].at < ls[j].at })
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = fmt.Sprintf("%9s  %s", fmtDur(l.at), l.s)
	}
	return out
}

func fmtDur(d time.Duration) string {
	if d < 0 {
		return "-" + fmtDur(-d)
	}
	h, m, s := int(d.Hours()), int(d.Minutes())%60, d.Seconds()-float64(int(d.Minutes())*60)
	return fmt.Sprintf("%d:%02d:%06.3f", h, m, s)
}
