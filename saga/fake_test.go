package saga_test

import (
	"context"
	"reflect"
	"sync"

	enumspb "go.temporal.io/api/enums/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
)

// fakeTemporal answers the few calls saga makes with the funcs a test sets, and records what it
// was asked. Any other call panics (the embedded client is nil), so a test shows what is used.
type fakeTemporal struct {
	client.Client
	mu      sync.Mutex
	starts  []client.StartWorkflowOptions // one per Update-with-Start
	updates []client.UpdateWorkflowOptions
	// answer answers an Update (with start or not); nil: the call waits until its context ends.
	answer func(ctx context.Context, o client.UpdateWorkflowOptions) (any, error)
	// describe answers DescribeWorkflowExecution; nil: the workflow runs.
	describe func(wid string) (*workflowservice.DescribeWorkflowExecutionResponse, error)
	// result is the result of the workflow's last run (GetWorkflow).
	result func() (any, error)
}

func (f *fakeTemporal) NewWithStartWorkflowOperation(o client.StartWorkflowOptions, _ any, _ ...any) client.WithStartWorkflowOperation {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.starts = append(f.starts, o)
	return nil
}

func (f *fakeTemporal) UpdateWithStartWorkflow(ctx context.Context, o client.UpdateWithStartWorkflowOptions) (client.WorkflowUpdateHandle, error) {
	return f.UpdateWorkflow(ctx, o.UpdateOptions)
}

func (f *fakeTemporal) UpdateWorkflow(ctx context.Context, o client.UpdateWorkflowOptions) (client.WorkflowUpdateHandle, error) {
	f.mu.Lock()
	f.updates = append(f.updates, o)
	answer := f.answer
	f.mu.Unlock()
	if answer == nil {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	v, err := answer(ctx, o)
	if err != nil {
		return nil, err
	}
	return handle{v}, nil
}

func (f *fakeTemporal) DescribeWorkflowExecution(_ context.Context, wid, _ string) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
	if f.describe != nil {
		return f.describe(wid)
	}
	return running(), nil
}

func (f *fakeTemporal) GetWorkflow(context.Context, string, string) client.WorkflowRun {
	return run{f.result}
}

func (f *fakeTemporal) Starts() []client.StartWorkflowOptions {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]client.StartWorkflowOptions(nil), f.starts...)
}

func (f *fakeTemporal) Updates() []client.UpdateWorkflowOptions {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]client.UpdateWorkflowOptions(nil), f.updates...)
}

func running() *workflowservice.DescribeWorkflowExecutionResponse {
	return &workflowservice.DescribeWorkflowExecutionResponse{WorkflowExecutionInfo: &workflowpb.WorkflowExecutionInfo{
		Status: enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING,
	}}
}

// handle is an Update's handle with its answer.
type handle struct{ v any }

func (handle) WorkflowID() string { return "" }
func (handle) RunID() string      { return "" }
func (handle) UpdateID() string   { return "" }
func (h handle) Get(_ context.Context, out any) error {
	if e, ok := h.v.(error); ok {
		return e
	}
	reflect.ValueOf(out).Elem().Set(reflect.ValueOf(h.v))
	return nil
}

// run is a workflow run whose result is known.
type run struct{ result func() (any, error) }

func (run) GetID() string                  { return "" }
func (run) GetRunID() string               { return "" }
func (run) GetFirstExecutionRunID() string { return "" }
func (r run) Get(_ context.Context, out any) error {
	v, err := r.result()
	if err != nil {
		return err
	}
	if out != nil {
		reflect.ValueOf(out).Elem().Set(reflect.ValueOf(v))
	}
	return nil
}
func (r run) GetWithOptions(ctx context.Context, out any, _ client.WorkflowRunGetOptions) error {
	return r.Get(ctx, out)
}

func (f *fakeTemporal) ExecuteWorkflow(ctx context.Context, o client.StartWorkflowOptions, _ any, args ...any) (client.WorkflowRun, error) {
	f.mu.Lock()
	f.starts = append(f.starts, o)
	f.mu.Unlock()
	if f.answer == nil {
		return run{f.result}, nil
	}
	_, err := f.answer(ctx, client.UpdateWorkflowOptions{WorkflowID: o.ID, Args: args})
	return run{f.result}, err
}
