package sim

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"paysaga"
	"paysaga/activities"
	"paysaga/worker"
	"paysaga/workflows"
)

// errCompletionLost is what an activity whose worker "died" after the activity ran returns:
// a retryable error, as the timeout of a lost completion is to Temporal.
var errCompletionLost = errors.New("sim: the worker died after the activity ran; its completion was lost")

// activityFaults wraps the real activities: some completions are lost after the activity ran
// (a worker restart), and some refunds have their workflow cancelled while their credit is
// being sent.
type activityFaults struct {
	seed     uint64
	permille int
	tr       *trace
	// cancelInCredit names the refunds whose workflow gets a cancellation request while the
	// credit activity runs; cancel sends it.
	cancelInCredit map[string]bool
	cancel         func(workflowID string)

	// refusePermille is the chance that the store refuses (as a conflict) to record a
	// payment's or refund's outcome once money may have moved; at most once per payment or
	// refund.
	refusePermille int

	mu      sync.Mutex
	counts  map[string]int
	lost    int
	refused map[string]bool
}

// refuse reports whether the store refuses this write (the injected refusal takes the place
// of the write: nothing is written).
func (f *activityFaults) refuse(kind, id string, status string) error {
	if f.refusePermille == 0 || int(hash(f.seed, "store-refusal", kind, id, status)%1000) >= f.refusePermille {
		return nil
	}
	f.mu.Lock()
	done := f.refused[kind+id]
	f.refused[kind+id] = true
	f.mu.Unlock()
	if done {
		return nil
	}
	f.tr.add("store: refuses to record %s %s as %s (an injected conflict)", kind, id, status)
	return temporal.NewNonRetryableApplicationError(
		fmt.Sprintf("sim: the store refuses to record %s %s as %s (injected conflict)", kind, id, status), activities.ErrTypeStateConflict, nil)
}

func (f *activityFaults) recordPayment(fn func(context.Context, activities.RecordPaymentInput) error) func(context.Context, activities.RecordPaymentInput) error {
	return func(ctx context.Context, in activities.RecordPaymentInput) error {
		switch in.Status {
		case paysaga.PaymentSucceeded, paysaga.PaymentFailed, paysaga.PaymentUnknown, paysaga.PaymentAuthorized:
			if err := f.refuse("payment", in.PaymentID, string(in.Status)); err != nil {
				return err
			}
		}
		return fn(ctx, in)
	}
}

func (f *activityFaults) settleRefund(fn func(context.Context, activities.SettleRefundInput) (paysaga.Refund, error)) func(context.Context, activities.SettleRefundInput) (paysaga.Refund, error) {
	return func(ctx context.Context, in activities.SettleRefundInput) (paysaga.Refund, error) {
		if in.Status == paysaga.RefundSucceeded {
			if err := f.refuse("refund", in.RefundID, string(in.Status)); err != nil {
				return paysaga.Refund{}, err
			}
		}
		return fn(ctx, in)
	}
}

// lose reports whether this run of the activity loses its completion: a function of the seed,
// the activity and its input, and how many times it ran before.
func (f *activityFaults) lose(name, key string) bool {
	if f.permille == 0 {
		return false
	}
	f.mu.Lock()
	k := f.counts[name+"|"+key]
	f.counts[name+"|"+key]++
	f.mu.Unlock()
	if int(hash(f.seed, "lost-completion", name, key, k)%1000) >= f.permille {
		return false
	}
	f.mu.Lock()
	f.lost++
	f.mu.Unlock()
	f.tr.add("worker: %s(%s) ran; its completion is lost (run #%d)", name, key, k+1)
	return true
}

func wrapErr[I any](f *activityFaults, name string, key func(I) string, fn func(context.Context, I) error) func(context.Context, I) error {
	return func(ctx context.Context, in I) error {
		err := fn(ctx, in)
		if err == nil && f.lose(name, key(in)) {
			return errCompletionLost
		}
		return err
	}
}

func wrapOut[I, O any](f *activityFaults, name string, key func(I) string, fn func(context.Context, I) (O, error)) func(context.Context, I) (O, error) {
	return func(ctx context.Context, in I) (O, error) {
		out, err := fn(ctx, in)
		if err == nil && f.lose(name, key(in)) {
			var zero O
			return zero, errCompletionLost
		}
		return out, err
	}
}

// credit sends the planned cancellation request of a refund's workflow while its credit
// runs: after the activity has read the refund (PENDING) and before the transfer row is written
// and the request sent — when the activity reads the paying account, or at the latest as the
// request leaves — and lets the workflow act on it before the credit goes on (an activity that
// does not heartbeat never learns of a cancellation).
func (f *activityFaults) credit(fn func(context.Context, activities.CreditInput) (activities.CreditResult, error)) func(context.Context, activities.CreditInput) (activities.CreditResult, error) {
	return func(ctx context.Context, in activities.CreditInput) (activities.CreditResult, error) {
		f.mu.Lock()
		cancel := f.cancelInCredit[in.RefundID]
		delete(f.cancelInCredit, in.RefundID)
		f.mu.Unlock()
		if cancel {
			id := workflows.RefundWorkflowID(in.RefundID)
			ctx = context.WithValue(ctx, inFlightKey{}, &inFlightHook{fn: func() {
				f.tr.add("api: a cancellation request of %s is sent while its credit runs", id)
				f.cancel(id)
				time.Sleep(150 * time.Millisecond)
			}})
		}
		return fn(ctx, in)
	}
}

// inFlightHook runs once, from the database or the bank call of the activity whose context
// carries it.
type inFlightHook struct {
	once sync.Once
	fn   func()
}

type inFlightKey struct{}

func fireInFlight(ctx context.Context) {
	if h, ok := ctx.Value(inFlightKey{}).(*inFlightHook); ok {
		h.once.Do(h.fn)
	}
}

type registry interface {
	RegisterActivityWithOptions(a any, options activity.RegisterOptions)
}

// register registers the real activities, wrapped, under the names the workflows call.
func (f *activityFaults) register(r registry, a *activities.Activities, ra *activities.RefundActivities) {
	// The real registrations first, so that an activity added to the workers later is there
	// too; then the wrapped ones in their place.
	worker.RegisterActivities(r, worker.Activities{Payments: a, Refunds: ra})
	reg := func(name string, fn any) {
		r.RegisterActivityWithOptions(fn, activity.RegisterOptions{Name: name, DisableAlreadyRegisteredCheck: true})
	}
	reg(activities.RecordPaymentName, f.recordPayment(wrapErr(f, activities.RecordPaymentName,
		func(in activities.RecordPaymentInput) string { return in.PaymentID + " " + string(in.Status) }, a.RecordPayment)))
	reg(activities.DebitName, wrapOut(f, activities.DebitName,
		func(in activities.DebitInput) string { return in.TransferID }, a.Debit))
	reg(activities.CheckDebitName, wrapOut(f, activities.CheckDebitName,
		func(in activities.CheckDebitInput) string { return in.TransferID }, a.CheckDebit))
	reg(activities.PublishPaymentEventName, wrapErr(f, activities.PublishPaymentEventName,
		func(in activities.PublishPaymentEventInput) string { return in.EventID }, a.PublishPaymentEvent))
	reg(activities.ReserveRefundName, wrapOut(f, activities.ReserveRefundName,
		func(in activities.ReserveRefundInput) string { return in.Refund.ID }, ra.ReserveRefund))
	reg(activities.CreditName, f.credit(wrapOut(f, activities.CreditName,
		func(in activities.CreditInput) string { return in.RefundID + " " + lastPart(in.TransferID) }, ra.Credit)))
	reg(activities.CheckCreditName, wrapOut(f, activities.CheckCreditName,
		func(in activities.CheckCreditInput) string { return in.RefundID }, ra.CheckCredit))
	reg(activities.SettleRefundName, f.settleRefund(wrapOut(f, activities.SettleRefundName,
		func(in activities.SettleRefundInput) string { return in.RefundID + " " + string(in.Status) }, ra.SettleRefund)))
	reg(activities.PublishRefundEventName, wrapErr(f, activities.PublishRefundEventName,
		func(in activities.PublishRefundEventInput) string { return in.Refund.ID + " " + in.Type }, ra.PublishRefundEvent))
}

// lastPart is the attempt number at the end of a transfer ID (the run tag before it differs
// from run to run, so it cannot key a seeded draw).
func lastPart(id string) string {
	for i := len(id) - 1; i >= 0; i-- {
		if id[i] == '_' {
			return id[i+1:]
		}
	}
	return id
}
