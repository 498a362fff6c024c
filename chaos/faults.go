package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"
)

// The bank's misbehaviour during the drive (nhsim fault specs): errors before processing, lost
// answers after processing, declines, answers slower than the client's timeout, and inquiries
// that fail now and then.
const baseFaults = "DrawingTransfer=http_500:0.04,DrawingTransfer=lost_response:0.06,DrawingTransfer=lost_response_500:0.02," +
	"DrawingTransfer=decline:0.03,DrawingTransfer=slow_response:0.01:11s," +
	"ReceivedTransferFinAccount=http_500:0.04,ReceivedTransferFinAccount=lost_response:0.06," +
	"CheckOnDrawingTransfer=http_500:0.15,CheckOnReceivedTransfer=http_500:0.15"

// inquiryOutage makes every inquiry fail: a lost answer in such a window outlives the unknown
// deadline, and its payment waits for an operator.
// More answers are lost meanwhile, so that a small run has some too.
const inquiryOutage = "CheckOnDrawingTransfer=http_500:1,CheckOnReceivedTransfer=http_500:1," +
	"DrawingTransfer=lost_response:0.3,ReceivedTransferFinAccount=lost_response:0.3"

// chaos is the schedule of process kills and restarts, run during the drive.
type chaos struct {
	// root is the run's context: restarts finish after the schedule's own context ends (the
	// drive is over), but not after Ctrl-C.
	root  context.Context
	st    *stack
	w     *workload
	say   func(format string, args ...any)
	rng   *rand.Rand
	grace time.Duration

	mu      sync.Mutex
	windows []window
	counts  map[string]int
	errs    []string
}

func (c *chaos) count(what string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.counts[what]++
}

func (c *chaos) fail(format string, args ...any) {
	// The first line: a process's log tail is in its log file.
	msg := firstLine(fmt.Sprintf(format, args...))
	c.say("chaos: %s", msg)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.errs = append(c.errs, msg)
}

func (c *chaos) addWindow(w window) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.windows = append(c.windows, w)
}

func (c *chaos) setFaults(ctx context.Context, spec string) {
	if err := c.w.admin(ctx, http.MethodPost, "/admin/faults", map[string]string{"spec": spec}, nil); err != nil {
		c.fail("set bank faults: %v", err)
	}
}

// run fires the schedule over the drive, which lasts about d, until ctx ends: a worker SIGKILLed
// every ~15 s (alternately, restarted a few seconds later), two inquiry outages, the broker
// stopped and started, the Temporal server killed -9 and restarted on its file, an API instance
// killed and restarted.
func (c *chaos) run(ctx context.Context, d time.Duration) {
	c.setFaults(ctx, baseFaults)
	var wg sync.WaitGroup
	wg.Go(func() { c.workerKills(ctx) })
	at := func(frac float64) time.Time { return time.Now().Add(time.Duration(frac * float64(d))) }
	events := []struct {
		at time.Time
		do func()
	}{
		{at(0.20), func() { c.outage(ctx, "inquiry outage 1") }},
		{at(0.33), func() { c.restartBroker(ctx) }},
		{at(0.45), func() { c.killTemporal(ctx) }},
		{at(0.60), func() { c.restartAPI(ctx, c.rng.IntN(2)) }},
		{at(0.72), func() { c.outage(ctx, "inquiry outage 2") }},
	}
	for _, e := range events {
		sleep(ctx, time.Until(e.at))
		if ctx.Err() != nil {
			break
		}
		e.do()
	}
	wg.Wait()
}

func (c *chaos) workerKills(ctx context.Context) {
	for i := 0; ; i++ {
		sleep(ctx, 12*time.Second+time.Duration(c.rng.Int64N(int64(6*time.Second))))
		if ctx.Err() != nil {
			return
		}
		p := c.st.workers[i%2]
		c.say("chaos: SIGKILL %s", p.name)
		from := time.Now()
		p.kill9()
		c.count("worker SIGKILLs")
		sleep(c.root, 2*time.Second+time.Duration(c.rng.Int64N(int64(3*time.Second))))
		if err := c.st.startWorker(c.root, i%2); err != nil {
			c.fail("restart %s: %v", p.name, err)
		}
		c.addWindow(window{From: from, To: time.Now().Add(c.grace), Inst: -1, Why: p.name + " killed and restarted", Only503: true})
	}
}

func (c *chaos) outage(ctx context.Context, name string) {
	d := c.st.o.unknownDeadline + 10*time.Second
	c.say("chaos: %s for %s (every CheckOn… answers 500, 30%% of answers lost)", name, d)
	c.setFaults(ctx, inquiryOutage)
	c.count("inquiry outages")
	sleep(ctx, d)
	// Back to the base faults (they replace the outage's).
	c.setFaults(context.Background(), baseFaults)
}

func (c *chaos) restartBroker(ctx context.Context) {
	c.say("chaos: RabbitMQ stop_app")
	if err := c.st.stopBroker(); err != nil {
		c.fail("%v", err)
		return
	}
	c.count("broker restarts")
	sleep(ctx, 8*time.Second)
	if err := c.st.startBroker(); err != nil {
		c.fail("%v", err)
		return
	}
	c.say("chaos: RabbitMQ started again")
}

func (c *chaos) killTemporal(ctx context.Context) {
	c.say("chaos: kill -9 the Temporal server")
	from := time.Now()
	c.st.temporal.kill9()
	c.count("Temporal server kills")
	sleep(c.root, 3*time.Second)
	err := c.st.restartTemporal(c.root)
	c.addWindow(window{From: from, To: time.Now().Add(c.grace), Inst: -1, Why: "Temporal server killed and restarted"})
	if err != nil {
		c.fail("restart the Temporal server: %v", err)
		return
	}
	c.say("chaos: Temporal server back after %.1fs", time.Since(from).Seconds())
}

func (c *chaos) restartAPI(ctx context.Context, i int) {
	p := c.st.apis[i]
	c.say("chaos: SIGKILL %s, then start it again", p.name)
	from := time.Now()
	p.kill9()
	c.count("API restarts")
	sleep(c.root, 3*time.Second)
	err := p.start()
	if err == nil {
		err = c.st.waitAPI(c.root, i, 2*time.Minute)
	}
	c.addWindow(window{From: from, To: time.Now().Add(c.grace), Inst: i, Why: p.name + " killed and restarted"})
	if err != nil {
		c.fail("restart %s: %v", p.name, err)
	}
}

// calm ends the chaos: every process running, the broker up, the bank well again.
func (c *chaos) calm(ctx context.Context) {
	if c.st.brokerStopped {
		if err := c.st.startBroker(); err != nil {
			c.fail("%v", err)
		}
	}
	if !c.st.temporal.running() {
		if err := c.st.restartTemporal(ctx); err != nil {
			c.fail("restart the Temporal server: %v", err)
		}
	}
	for i, p := range c.st.workers {
		if !p.running() {
			if err := c.st.startWorker(ctx, i); err != nil {
				c.fail("restart %s: %v", p.name, err)
			}
		}
	}
	for i, p := range c.st.apis {
		if !p.running() {
			if err := p.start(); err != nil {
				c.fail("restart %s: %v", p.name, err)
			} else if err := c.st.waitAPI(ctx, i, 2*time.Minute); err != nil {
				c.fail("%v", err)
			}
		}
	}
	if err := c.w.admin(ctx, http.MethodDelete, "/admin/faults", nil, nil); err != nil {
		c.fail("clear bank faults: %v", err)
	}
}
