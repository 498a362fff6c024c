package workflows

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"paysaga"
	"paysaga/activities"
)

// RefundWorkflowName is the registered type of the refund saga.
const RefundWorkflowName = "RefundWorkflow"

// UpdateResolveRefund is an operator's resolution of a refund left UNKNOWN (Resolution in,
// paysaga.Refund out): the same name as a payment's UpdateResolve. Refused unless the refund is
// UNKNOWN and waiting for one.
const UpdateResolveRefund = UpdateResolve

// creditWaitsChange versions a cancellation during a credit: the run waits for the credit in
// flight to end before it compensates.
const creditWaitsChange = "credit-waits-for-cancellation"

// RefundWorkflowID is the workflow ID of a refund: only the opaque refund id. An operator's
// replay is a new run under the same ID.
func RefundWorkflowID(refundID string) string { return "refund:" + refundID }

// History event types of refunds (payment_events.type, with the refund's id). The outcome ones
// are also the routing keys of the events published to RabbitMQ.
const (
	EventRefundCreated   = "refund.created"
	EventRefundReplayed  = "refund.replayed"
	EventRefundSucceeded = "refund.succeeded"
	EventRefundFailed    = "refund.failed"
	EventRefundUnknown   = "refund.unknown"
	// EventRefundStalled: the refund's store writes keep failing (it keeps retrying); an alert.
	EventRefundStalled = "refund.stalled"
	// EventRefundCompensationFailed: giving a refund's reservation back failed; an alert.
	EventRefundCompensationFailed = "refund.compensation_failed"
)

// RefundInput starts (or replays) a refund. IDs, the amount and the reason only: a typed-in
// destination is saved sealed in the database before the workflow starts.
type RefundInput struct {
	RefundID   string `json:"refund_id"`
	PaymentID  string `json:"payment_id"`
	CustomerID string `json:"customer_id"`
	MerchantID string `json:"merchant_id"`
	Amount     int64  `json:"amount"`
	Reason     string `json:"reason,omitempty"`
	// Actor is who asked: the merchant, an operator, or the payment workflow canceling.
	Actor string `json:"actor"`
	// Replay is an operator's new run of a FAILED refund: reserved again, credited with a new
	// transfer and IsTuno. Refused if the refund succeeded.
	Replay bool `json:"replay,omitempty"`
	// Cancellation refunds an AUTHORIZED manual-capture payment in full (its cancellation).
	Cancellation bool      `json:"cancellation,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
}

// RefundView is the answer to QueryStatus on a refund workflow.
type RefundView struct {
	Refund         paysaga.Refund `json:"refund"`
	Refused        string         `json:"refused,omitempty"`
	NeedsAttention bool           `json:"needs_attention"`
	CreditAttempts int            `json:"credit_attempts"`
	// AwaitingResolution: UNKNOWN, still asking the bank, and open to an operator's verdict.
	AwaitingResolution bool `json:"awaiting_resolution"`
}

// SearchAttributesForRefund returns the search attributes a refund workflow is started with.
// PaymentStatus carries the refund's status (WorkflowType tells them apart).
func SearchAttributesForRefund(in RefundInput) temporal.SearchAttributes {
	return temporal.NewSearchAttributes(
		SearchPaymentStatus.ValueSet(string(paysaga.RefundPending)),
		SearchCustomerID.ValueSet(in.CustomerID),
		SearchMerchantID.ValueSet(in.MerchantID),
		SearchAmountKRW.ValueSet(in.Amount),
		SearchNeedsAttention.ValueSet(false),
	)
}

// RefundConfig holds the deadlines of the refund saga. Zero fields take the defaults of
// DefaultRefundConfig. Changing them changes activity options and timers only, never the
// commands a workflow emits, so running workflows keep replaying.
type RefundConfig struct {
	// BankCallTimeout bounds one attempt of a bank activity (it should exceed the nh client's
	// own timeout).
	BankCallTimeout time.Duration
	// CreditDeadline bounds the retries of one credit attempt that fail before the request is
	// sent (a database outage, a failed depositor inquiry); past it the outcome is checked like
	// a lost answer.
	CreditDeadline time.Duration
	// UnknownDeadline is how long the bank is asked about a lost answer before the refund
	// becomes UNKNOWN, and then how long it waits between two inquiries.
	UnknownDeadline time.Duration
	// MaxCreditAttempts is how many transfers (each with its own IsTuno) are tried when the
	// bank says a credit did not execute, before the refund fails.
	MaxCreditAttempts int
	// RetryDelay is the pause before a new transfer after one that did not execute.
	RetryDelay time.Duration
	// StoreAttentionAfter: see PaymentConfig.StoreAttentionAfter.
	StoreAttentionAfter time.Duration
	// SendMargin: see PaymentConfig.SendMargin.
	SendMargin time.Duration
}

// DefaultRefundConfig returns the deadlines used when none are configured.
func DefaultRefundConfig() RefundConfig {
	return RefundConfig{
		BankCallTimeout:     30 * time.Second,
		CreditDeadline:      2 * time.Minute,
		UnknownDeadline:     10 * time.Minute,
		MaxCreditAttempts:   3,
		RetryDelay:          2 * time.Second,
		StoreAttentionAfter: defaultStoreAttentionAfter,
		SendMargin:          5 * time.Second,
	}
}

func (c RefundConfig) withDefaults() RefundConfig {
	d := DefaultRefundConfig()
	orDefault(&c.BankCallTimeout, d.BankCallTimeout)
	orDefault(&c.CreditDeadline, d.CreditDeadline)
	orDefault(&c.UnknownDeadline, d.UnknownDeadline)
	orDefault(&c.MaxCreditAttempts, d.MaxCreditAttempts)
	orDefault(&c.RetryDelay, d.RetryDelay)
	orDefault(&c.StoreAttentionAfter, d.StoreAttentionAfter)
	orDefault(&c.SendMargin, d.SendMargin)
	return c
}

// Refunds runs refund workflows with a configuration; the worker registers its RefundWorkflow
// method under RefundWorkflowName.
type Refunds struct {
	cfg RefundConfig
}

// NewRefunds returns the refund workflows with cfg (zero fields take the defaults).
func NewRefunds(cfg RefundConfig) *Refunds { return &Refunds{cfg: cfg.withDefaults()} }

// RefundWorkflow is the refund saga with the default configuration.
func RefundWorkflow(ctx workflow.Context, in RefundInput) (paysaga.Refund, error) {
	return NewRefunds(RefundConfig{}).RefundWorkflow(ctx, in)
}

// errCreditFailed ends the saga's forward steps when the credit failed for good: the
// compensation runs, and the workflow completes with the FAILED refund.
var errCreditFailed = errors.New("credit failed")

// RefundWorkflow gives back all or part of a payment, at most once: reserve the amount against
// the payment (refused when more than is left) → credit the customer (resolving lost answers
// with the bank, never resending) → SUCCEEDED; a permanent failure or a cancellation gives the
// reservation back (the compensation, registered before the reservation and run in a
// disconnected context) → FAILED. A refused reservation fails the workflow with an
// application error of type paysaga.ECONFLICT whose message says why.
func (w *Refunds) RefundWorkflow(ctx workflow.Context, in RefundInput) (paysaga.Refund, error) {
	if in.RefundID == "" || in.PaymentID == "" || in.Amount <= 0 || in.Actor == "" {
		return paysaga.Refund{}, temporal.NewNonRetryableApplicationError("incomplete refund input", paysaga.EINVALID, nil)
	}
	s := newRefundRun(w.cfg, in, workflow.Now(ctx), runTag(ctx))
	if err := s.setHandlers(ctx); err != nil {
		return s.r, err
	}
	// Events go out and updates are answered even after a cancellation.
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	workflow.Go(dctx, func(ctx workflow.Context) {
		publishLoop(ctx, &s.outbox, activities.PublishRefundEventName, func(in activities.PublishRefundEventInput) []any {
			return []any{"refund_id", s.r.ID, "event_id", in.EventID}
		})
	})

	err := s.run(ctx)
	for {
		if errors.Is(err, errStoreRefused) {
			// The store refused to settle after a credit was sent: an operator decides.
			err = s.repair(dctx)
			continue
		}
		if s.r.Status == paysaga.RefundUnknown && s.keepOpenWhileUnknown(dctx) {
			// Left UNKNOWN by the compensation (a cancellation, a failed check): the money may
			// have left, so the run stays open, asking the bank and open to an operator.
			err = s.waitUnknown(dctx)
			if errors.Is(err, errCreditFailed) {
				if rerr := s.release(dctx); rerr != nil {
					err = rerr
				}
			}
			continue
		}
		break
	}
	if errors.Is(err, errCreditFailed) {
		err = nil
	}
	if werr := workflow.Await(dctx, func() bool { return len(s.outbox) == 0 && workflow.AllHandlersFinished(dctx) }); err == nil {
		err = werr
	}
	if err == nil && s.refused != "" {
		err = temporal.NewNonRetryableApplicationError(s.refused, paysaga.ECONFLICT, nil)
	}
	return s.r, err
}

// refundRun is the state of one run of a refund workflow.
type refundRun struct {
	cfg            RefundConfig
	in             RefundInput
	tag            string // distinguishes this run's transfers and events from a replay's
	r              paysaga.Refund
	refused        string // why the reservation was refused
	settled        bool   // the refund reached SUCCEEDED, FAILED or UNKNOWN in this run
	needsAttention bool
	failure        creditOutcome // why the compensation runs
	attempts       int
	awaiting       bool        // UNKNOWN and open to an operator's verdict
	resolution     *Resolution // the operator's verdict, once accepted
	mayHaveMoved   bool        // a credit was sent, or may have been
	eventSeq       int
	outbox         []activities.PublishRefundEventInput
}

func newRefundRun(cfg RefundConfig, in RefundInput, now time.Time, tag string) *refundRun {
	if in.CreatedAt.IsZero() {
		in.CreatedAt = now
	}
	return &refundRun{cfg: cfg, in: in, tag: tag, r: paysaga.Refund{
		ID: in.RefundID, PaymentID: in.PaymentID, Amount: in.Amount, Reason: in.Reason,
		Status: paysaga.RefundPending, CreatedBy: in.Actor, CreatedAt: in.CreatedAt, UpdatedAt: in.CreatedAt,
	}}
}

// runTag is a short stable name of this run: a replay (a new run) gets new transfer IDs, hence
// new IsTunos, and new event IDs.
func runTag(ctx workflow.Context) string {
	sum := sha256.Sum256([]byte(workflow.GetInfo(ctx).WorkflowExecution.RunID))
	return hex.EncodeToString(sum[:4])
}

func (s *refundRun) setHandlers(ctx workflow.Context) error {
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (RefundView, error) {
		return RefundView{Refund: s.r, Refused: s.refused, NeedsAttention: s.needsAttention, CreditAttempts: s.attempts,
			AwaitingResolution: s.awaiting && s.resolution == nil}, nil
	}); err != nil {
		return err
	}
	// Registering a handler emits no command: the verdict is acted on (and versioned) in
	// awaitUnknown. Answered once the refund has left UNKNOWN.
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateResolveRefund,
		func(ctx workflow.Context, r Resolution) (paysaga.Refund, error) {
			mine := &r
			s.resolution = mine
			dctx, _ := workflow.NewDisconnectedContext(ctx)
			if err := workflow.Await(dctx, func() bool {
				return s.r.Status != paysaga.RefundUnknown || !s.awaiting || s.resolution != mine
			}); err != nil {
				return s.r, err
			}
			if s.r.Status == paysaga.RefundUnknown {
				return s.r, temporal.NewApplicationError(
					fmt.Sprintf("the resolution of refund %s could not be recorded", s.r.ID), paysaga.EINTERNAL)
			}
			return s.r, nil
		},
		workflow.UpdateHandlerOptions{Validator: s.validateResolution},
	); err != nil {
		return err
	}
	// The API's Update-with-Start waits on it: refused at once, or the refund once settled.
	return workflow.SetUpdateHandler(ctx, UpdateOutcome, func(ctx workflow.Context) (paysaga.Refund, error) {
		// Answered even when the workflow is cancelled: the compensation settles the refund.
		dctx, _ := workflow.NewDisconnectedContext(ctx)
		if err := workflow.Await(dctx, func() bool { return s.refused != "" || s.settled }); err != nil {
			return s.r, err
		}
		if s.refused != "" {
			return s.r, temporal.NewNonRetryableApplicationError(s.refused, paysaga.ECONFLICT, nil)
		}
		return s.r, nil
	})
}

// run is the saga. On an error (a cancellation included) the registered compensations run in
// a disconnected context.
func (s *refundRun) run(ctx workflow.Context) (err error) {
	var compensations []func(workflow.Context) error
	defer func() {
		if err == nil || errors.Is(err, errStoreRefused) {
			return
		}
		if s.failure.status == "" {
			s.failure = creditOutcome{failureCode: FailureCanceled, failureMessage: "the refund was stopped before the customer was credited"}
			if !temporal.IsCanceledError(err) {
				s.failure = creditOutcome{failureCode: FailureInternal, failureMessage: "the refund could not complete"}
				workflow.GetLogger(ctx).Error("refund step failed; compensating", "refund_id", s.r.ID, "error", err)
			}
		}
		dctx, _ := workflow.NewDisconnectedContext(ctx)
		for i := len(compensations) - 1; i >= 0; i-- {
			if cerr := compensations[i](dctx); cerr != nil {
				workflow.GetLogger(ctx).Error("refund compensation failed", "refund_id", s.r.ID, "error", cerr)
				if errors.Is(cerr, errStoreRefused) {
					err = cerr
					continue
				}
				err = errors.Join(err, cerr)
				s.needsPerson(dctx, EventRefundCompensationFailed) // an alert: the compensation could not finish
			}
		}
	}()

	// Registered before the reservation it undoes: the reservation may be written even when
	// its answer never arrives. Giving back a reservation that was never made is a no-op.
	compensations = append(compensations, s.release)
	if err := s.reserve(ctx); err != nil {
		return err
	}
	if s.refused != "" {
		return nil // nothing was reserved
	}

	out, err := s.credit(ctx)
	if err != nil {
		return err
	}
	switch out.status {
	case paysaga.RefundSucceeded:
		return s.settle(ctx, out)
	case paysaga.RefundUnknown:
		return s.awaitUnknown(ctx)
	}
	s.failure = out
	return errCreditFailed
}

// reserve creates the refund PENDING with its amount reserved (for a replay: reserves again).
func (s *refundRun) reserve(ctx workflow.Context) error {
	typ := EventRefundCreated
	if s.in.Replay {
		typ = EventRefundReplayed
	}
	ev := s.event(ctx, typ)
	ev.Actor, ev.Reason = s.in.Actor, s.in.Reason
	var r paysaga.Refund
	// A database outage delays the reservation (the refund is then readable at its URL only
	// once it is written; the API answers 503 until then), it does not end the refund.
	err := persist(ctx, s.cfg.StoreAttentionAfter, s.storeStalled, activities.ReserveRefundName, activities.ReserveRefundInput{
		Refund: s.r, Replay: s.in.Replay, Cancellation: s.in.Cancellation, Events: []paysaga.PaymentEvent{ev},
	}, &r)
	if errType(err) == activities.ErrTypeRefundRefused {
		var appErr *temporal.ApplicationError
		errors.As(err, &appErr)
		s.refused = appErr.Message()
		workflow.GetLogger(ctx).Info("refund refused", "refund_id", s.r.ID, "reason", s.refused)
		return nil
	}
	if err != nil {
		return fmt.Errorf("reserve refund %s: %w", s.r.ID, err)
	}
	s.r = r
	return nil
}

// creditOutcome is where the credit ended.
type creditOutcome struct {
	status                      paysaga.RefundStatus // SUCCEEDED, FAILED or UNKNOWN
	rpcd, rsms                  string
	failureCode, failureMessage string
	// An operator's verdict: who and why (in the history event), and the state its credits
	// with an unknown outcome get.
	actor, reason string
	transfers     paysaga.TransferState
}

// credit sends transfers until one executes, the bank declines, the outcome stays unknown past
// the deadline, or MaxCreditAttempts transfers certainly did not execute. A transfer whose
// answer was lost is never sent again: CheckCredit asks the bank.
func (s *refundRun) credit(ctx workflow.Context) (creditOutcome, error) {
	logger := workflow.GetLogger(ctx)
	// Before creditWaitsChange a cancellation abandoned the credit in flight. The marker costs
	// two history events per refund (the marker and the TemporalChangeVersion upsert).
	waits := workflow.GetVersion(ctx, creditWaitsChange, workflow.DefaultVersion, 1) == 1
	for {
		s.attempts++
		tid := refundTransferID(s.r.ID, s.tag, s.attempts)
		s.mayHaveMoved = true
		var res activities.CreditResult
		err := workflow.ExecuteActivity(sendOptions(ctx, s.cfg.BankCallTimeout, s.cfg.CreditDeadline, waits), activities.CreditName,
			activities.CreditInput{RefundID: s.r.ID, TransferID: tid}).Get(ctx, &res)
		if err == nil {
			return creditOutcome{status: paysaga.RefundSucceeded, rpcd: res.Rpcd, rsms: res.Rsms}, nil
		}
		if temporal.IsCanceledError(err) {
			return creditOutcome{}, err
		}
		if f, ok := failureOf(err, "credited"); ok {
			return failedCredit(f), nil
		}
		switch errType(err) {
		case activities.ErrTypeStateConflict:
			return creditOutcome{}, err
		case activities.ErrTypeNotExecuted:
			// Certainly not sent: a new transfer is safe.
		default:
			logger.Warn("credit outcome unknown; checking with the bank", "refund_id", s.r.ID)
			chk, err := s.check(ctx)
			if err != nil {
				if temporal.IsCanceledError(err) {
					return creditOutcome{}, err
				}
				return creditOutcome{status: paysaga.RefundUnknown}, nil
			}
			if chk.Executed {
				return creditOutcome{status: paysaga.RefundSucceeded, rpcd: chk.Rpcd, rsms: chk.Rsms}, nil
			}
		}
		if s.attempts >= s.cfg.MaxCreditAttempts {
			return creditOutcome{status: paysaga.RefundFailed, failureCode: FailureNotExecuted,
				failureMessage: fmt.Sprintf("the bank did not execute the credit (%d attempts)", s.attempts)}, nil
		}
		if err := workflow.Sleep(ctx, s.cfg.RetryDelay*time.Duration(s.attempts)); err != nil {
			return creditOutcome{}, err
		}
	}
}

// failedCredit is a credit the bank, or the activity before sending, refused for good.
func failedCredit(f failure) creditOutcome {
	return creditOutcome{status: paysaga.RefundFailed, rpcd: f.rpcd, rsms: f.rsms, failureCode: f.code, failureMessage: f.message}
}

// release is the compensation of the reservation: the refund FAILED, its amount given back to
// the payment. It never gives back money that may have left: a credit with an unknown outcome
// is asked about first (executed → the refund SUCCEEDED after all; still unknown → UNKNOWN,
// the reservation kept).
func (s *refundRun) release(ctx workflow.Context) error {
	for {
		err := s.settle(ctx, creditOutcome{status: paysaga.RefundFailed, rpcd: s.failure.rpcd, rsms: s.failure.rsms,
			failureCode: s.failure.failureCode, failureMessage: s.failure.failureMessage})
		switch errType(err) {
		case activities.ErrTypeCreditExecuted:
			chk, cerr := s.check(ctx)
			if cerr != nil {
				return cerr
			}
			return s.settle(ctx, creditOutcome{status: paysaga.RefundSucceeded, rpcd: chk.Rpcd, rsms: chk.Rsms})
		case activities.ErrTypeUnknownOutcome:
			chk, cerr := s.check(ctx)
			if cerr != nil {
				if s.r.Status == paysaga.RefundUnknown {
					return nil
				}
				return s.settle(ctx, creditOutcome{status: paysaga.RefundUnknown})
			}
			if chk.Executed {
				return s.settle(ctx, creditOutcome{status: paysaga.RefundSucceeded, rpcd: chk.Rpcd, rsms: chk.Rsms})
			}
			continue // every credit certainly failed: give the reservation back
		}
		return err
	}
}
