package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"paysaga/internal/app"
	"paysaga/internal/cpuuse"
	"paysaga/workflows"
)

// The baseline is the bare minimum Temporal must do for a workflow of the payment's shape: the
// same activities and local activities, in the same order, doing nothing. It runs on the same
// dev server, on a task queue and worker of its own, so that the engine's throughput can be
// read as a ratio of it — a ratio drifts far less than absolute figures on a shared machine.
const (
	baselineTaskQueue = "paysaga-bench-baseline"
	baselineWorkflow  = "BenchBaseline"
	baselineActivity  = "BenchNoop"
	// The baseline with what a payment asks of Temporal besides its steps (-baseline-shape payment).
	shapedBaselineWorkflow = "BenchBaselinePaymentShaped"
)

// BaselineWorkflow runs steps in order: 'A' an activity, 'L' a local activity, both no-ops.
func BaselineWorkflow(ctx workflow.Context, steps string) error {
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 30 * time.Second})
	lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{StartToCloseTimeout: 10 * time.Second})
	for _, s := range steps {
		var f workflow.Future
		if s == 'A' {
			f = workflow.ExecuteActivity(actx, baselineActivity)
		} else {
			f = workflow.ExecuteLocalActivity(lctx, Noop)
		}
		if err := f.Get(ctx, nil); err != nil {
			return err
		}
	}
	return nil
}

// PaymentShapedBaselineWorkflow is BaselineWorkflow with what a payment asks of Temporal besides
// its steps, all with no-op steps: it is started by Update-with-Start with the payment's search
// attributes, its "outcome" Update answers once all steps but the last have run, after one
// search-attribute upsert (the final status), and the last step runs after it (the publish).
// The ceiling it measures is what Temporal alone can do for payments on this machine.
func PaymentShapedBaselineWorkflow(ctx workflow.Context, steps string) error {
	done := false
	if err := workflow.SetUpdateHandler(ctx, workflows.UpdateOutcome, func(ctx workflow.Context) (string, error) {
		return "done", workflow.Await(ctx, func() bool { return done })
	}); err != nil {
		return err
	}
	last := len(steps) - 1
	if last < 0 {
		return fmt.Errorf("no steps")
	}
	if err := BaselineWorkflow(ctx, steps[:last]); err != nil {
		return err
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, workflows.SearchPaymentStatus.ValueSet("SUCCEEDED")); err != nil {
		return err
	}
	done = true
	if err := BaselineWorkflow(ctx, steps[last:]); err != nil {
		return err
	}
	return workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) })
}

// Noop is the baseline's activity.
func Noop(context.Context) error { return nil }

// startBaselineWorker starts a worker for the baseline with the engine worker's options.
func startBaselineWorker(c client.Client, o sdkworker.Options) (sdkworker.Worker, error) {
	// The engine's worker settings (eager activities bounded alike): the same worker, bare.
	w := sdkworker.New(c, baselineTaskQueue, app.WorkerOptions(o))
	w.RegisterWorkflowWithOptions(BaselineWorkflow, workflow.RegisterOptions{Name: baselineWorkflow})
	w.RegisterWorkflowWithOptions(PaymentShapedBaselineWorkflow, workflow.RegisterOptions{Name: shapedBaselineWorkflow})
	w.RegisterActivityWithOptions(Noop, activity.RegisterOptions{Name: baselineActivity})
	return w, w.Start()
}

// baselineResult is what the baseline run measured.
type baselineResult struct {
	Mode       string // "max" or "rate"
	Steps      string
	Window     Window
	Completed  int // workflows completed in the window
	Latency    Durations
	Errors     Counter
	WorkflowID []string   // completed ones, for the history sample
	CPU        cpuuse.Use // the CPU each process used in the window
}

// runBaseline drives the baseline workflow for warmup+duration. In "max" mode a fixed number
// of clients each start a workflow, wait for its result and start the next (a closed loop: the
// server's ceiling for this shape on this machine); in "rate" mode workflows are started at the
// payments' arrival rate (an open model, like the payments).
func runBaseline(ctx context.Context, c client.Client, steps string, o options) *baselineResult {
	start := time.Now()
	r := &baselineResult{
		Mode:   o.baseline,
		Steps:  steps,
		Window: Window{From: start.Add(o.baselineWarmup), To: start.Add(o.baselineWarmup + o.baselineDuration)},
	}
	runCtx, cancel := context.WithDeadline(ctx, r.Window.To.Add(o.drain))
	defer cancel()
	cpu := watchWindow(ctx, r.Window, "")
	prefix := fmt.Sprintf("bench-baseline-%x-", start.UnixNano())
	var mu sync.Mutex
	one := func(n int, scheduled time.Time) {
		id := fmt.Sprint(prefix, n)
		if err := runBaselineOnce(runCtx, c, id, steps, o.baselineShape); err != nil {
			if runCtx.Err() == nil {
				r.Errors.Inc("workflow")
			}
			return
		}
		done := time.Now()
		if !r.Window.Contains(done) {
			return
		}
		r.Latency.Add(done.Sub(scheduled))
		mu.Lock()
		r.Completed++
		r.WorkflowID = append(r.WorkflowID, id)
		mu.Unlock()
	}

	var wg sync.WaitGroup
	if o.baseline == "rate" {
		schedule(ctx, start, o.rate, int((o.baselineWarmup+o.baselineDuration).Seconds()*o.rate), func(n int, at time.Time) {
			wg.Go(func() { one(n, at) })
		})
	} else {
		var next sync.Mutex
		n := 0
		for range o.baselineClients {
			wg.Go(func() {
				for ctx.Err() == nil && time.Now().Before(r.Window.To) {
					next.Lock()
					n++
					i := n
					next.Unlock()
					one(i, time.Now())
				}
			})
		}
	}
	wg.Wait()
	r.CPU, _ = cpu()
	return r
}

// runBaselineOnce runs one baseline workflow to its end: started and awaited as a bare workflow
// ("bare"), or started by Update-with-Start with the payment's search attributes and answered
// by its outcome Update, as the API starts a payment ("payment").
func runBaselineOnce(ctx context.Context, c client.Client, id, steps, shape string) error {
	if shape != "payment" {
		run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: baselineTaskQueue}, baselineWorkflow, steps)
		if err != nil {
			return err
		}
		return run.Get(ctx, nil)
	}
	in := workflows.PaymentInput{CustomerID: "usr_bench", MerchantID: "usr_bench_merchant"}
	handle, err := c.UpdateWithStartWorkflow(ctx, client.UpdateWithStartWorkflowOptions{
		StartWorkflowOperation: c.NewWithStartWorkflowOperation(client.StartWorkflowOptions{
			ID: id, TaskQueue: baselineTaskQueue,
			WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
			TypedSearchAttributes:    workflows.SearchAttributesForStart(in),
		}, shapedBaselineWorkflow, steps),
		UpdateOptions: client.UpdateWorkflowOptions{
			UpdateID: workflows.UpdateOutcome, UpdateName: workflows.UpdateOutcome,
			WaitForStage: client.WorkflowUpdateStageCompleted,
		},
	})
	if err != nil {
		return err
	}
	var answer string
	return handle.Get(ctx, &answer)
}
