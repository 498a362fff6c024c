package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"paysaga"
	"paysaga/activities"
)

// TaskQueue is the task queue of every paysaga workflow and activity.
const TaskQueue = "paysaga"

// Names callers use to start and talk to a payment workflow.
const (
	// PaymentWorkflowName is the registered workflow type.
	PaymentWorkflowName = "PaymentWorkflow"
	// UpdateOutcome waits until the payment leaves PENDING/PROCESSING and returns it
	// (paysaga.Payment). The API sends it with Update-with-Start and waits a few seconds on it.
	UpdateOutcome = "outcome"
	// UpdateResolve is an operator's resolution of an UNKNOWN payment (Resolution in,
	// paysaga.Payment out). Refused unless the payment waits for one.
	UpdateResolve = "resolve"
	// QueryStatus returns a PaymentView.
	QueryStatus = "status"
	// UpdateCapture and UpdateCancel are the merchant's decision on an AUTHORIZED
	// manual-capture payment (CaptureDecision in, paysaga.Payment out): capture makes it
	// SUCCEEDED; cancel refunds the customer through RefundWorkflow and makes it CANCELED.
	// Refused unless the payment waits for a decision.
	UpdateCapture = "capture"
	UpdateCancel  = "cancel"
	// UpdateReplayCancel is an operator's replay of a cancellation whose refund failed
	// (CaptureDecision in: the operator and why; paysaga.Payment out, once the replayed refund
	// has ended). Refused unless the payment waits for one. payctl refund replay sends it.
	UpdateReplayCancel = "replay-cancel"
)

// PaymentWorkflowID is the workflow ID of a payment: only the opaque payment id, never
// personal data.
func PaymentWorkflowID(paymentID string) string { return "payment:" + paymentID }

// PaymentInput starts a payment. It carries IDs and the amount only: the fin account, the
// account number and the birth date never enter workflow history.
type PaymentInput struct {
	PaymentID   string              `json:"payment_id"`
	CustomerID  string              `json:"customer_id"`
	MerchantID  string              `json:"merchant_id"`
	AccountID   string              `json:"account_id"`
	Amount      int64               `json:"amount"`
	Description string              `json:"description,omitempty"`
	CaptureMode paysaga.CaptureMode `json:"capture_mode,omitempty"`
	// CaptureBy is when an uncaptured manual-capture payment is canceled; zero: CreatedAt +
	// PaymentConfig.CaptureDeadline.
	CaptureBy time.Time `json:"capture_by,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// PaymentView is the answer to QueryStatus.
type PaymentView struct {
	Payment            paysaga.Payment `json:"payment"`
	NeedsAttention     bool            `json:"needs_attention"`
	AwaitingResolution bool            `json:"awaiting_resolution"`
	DebitAttempts      int             `json:"debit_attempts"`
	AwaitingCapture    bool            `json:"awaiting_capture,omitempty"`
	UnpublishedEvents  int             `json:"unpublished_events"`
}

// History events of manual capture.
const (
	EventAuthorized   = "payment.authorized"    // debited, waiting for capture
	EventCanceled     = "payment.canceled"      // canceled and refunded
	EventCancelFailed = "payment.cancel_failed" // the cancellation's refund failed; an operator replays it
	// EventStalled: the payment's store writes keep failing (it keeps retrying); an alert.
	EventStalled = "payment.stalled"
)

// History event types (payment_events.type). The outcome ones are also the routing keys of
// the events published to RabbitMQ.
const (
	EventCreated        = "payment.created"
	EventProcessing     = "payment.processing"
	EventSucceeded      = "payment.succeeded"
	EventFailed         = "payment.failed"
	EventUnknown        = "payment.unknown"
	EventDebitUnknown   = "debit.outcome_unknown"
	EventDebitNotExecut = "debit.not_executed"
)

// PaymentConfig holds the deadlines of the payment saga. Zero fields take the defaults of
// DefaultPaymentConfig. Changing them changes activity options only, never the commands a
// workflow emits, so running workflows keep replaying.
type PaymentConfig struct {
	// BankCallTimeout bounds one attempt of a bank activity (it should exceed the nh client's
	// own timeout).
	BankCallTimeout time.Duration
	// DebitDeadline bounds the retries of one debit attempt that fail before the request is
	// sent (a database outage); past it the outcome is checked like a lost answer.
	DebitDeadline time.Duration
	// UnknownDeadline is how long the bank is asked about a lost answer before the payment
	// becomes UNKNOWN and waits for an operator.
	UnknownDeadline time.Duration
	// MaxDebitAttempts is how many transfers (each with its own IsTuno) are tried when the bank
	// says a transfer did not execute, before the payment fails.
	MaxDebitAttempts int
	// RetryDelay is the pause before a new transfer after one that did not execute.
	RetryDelay time.Duration
	// CaptureDeadline is how long an AUTHORIZED manual-capture payment waits for its capture
	// before it is canceled and refunded (unless the payment says otherwise, CaptureBy).
	CaptureDeadline time.Duration
	// StoreAttentionAfter is how long store writes may keep failing before the run says it
	// needs attention (NeedsAttention, an alert event); it keeps retrying regardless.
	StoreAttentionAfter time.Duration
	// SendMargin is added to BankCallTimeout before the bank's "not executed" for a transfer
	// whose answer was lost is trusted: until then the attempt that recorded it may still send
	// it (clocks of different workers, a request the bank receives late).
	SendMargin time.Duration
}

// DefaultPaymentConfig returns the deadlines used when none are configured.
func DefaultPaymentConfig() PaymentConfig {
	return PaymentConfig{
		BankCallTimeout:  30 * time.Second,
		DebitDeadline:    2 * time.Minute,
		UnknownDeadline:  10 * time.Minute,
		MaxDebitAttempts: 3,
		RetryDelay:       2 * time.Second,
		CaptureDeadline:  7 * 24 * time.Hour,

		StoreAttentionAfter: defaultStoreAttentionAfter,
		SendMargin:          5 * time.Second,
	}
}

func (c PaymentConfig) withDefaults() PaymentConfig {
	d := DefaultPaymentConfig()
	orDefault(&c.BankCallTimeout, d.BankCallTimeout)
	orDefault(&c.DebitDeadline, d.DebitDeadline)
	orDefault(&c.UnknownDeadline, d.UnknownDeadline)
	orDefault(&c.MaxDebitAttempts, d.MaxDebitAttempts)
	orDefault(&c.RetryDelay, d.RetryDelay)
	orDefault(&c.CaptureDeadline, d.CaptureDeadline)
	orDefault(&c.SendMargin, d.SendMargin)
	orDefault(&c.StoreAttentionAfter, d.StoreAttentionAfter)
	return c
}

// Payments runs payment workflows with a configuration; the worker registers its
// PaymentWorkflow method under PaymentWorkflowName.
type Payments struct {
	cfg PaymentConfig
}

// NewPayments returns the payment workflows with cfg (zero fields take the defaults).
func NewPayments(cfg PaymentConfig) *Payments { return &Payments{cfg: cfg.withDefaults()} }

// PaymentWorkflow is the payment saga with the default configuration. Callers may pass it to
// the client instead of PaymentWorkflowName; the worker registers a configured one under the
// same name.
func PaymentWorkflow(ctx workflow.Context, in PaymentInput) (paysaga.Payment, error) {
	return NewPayments(PaymentConfig{}).PaymentWorkflow(ctx, in)
}

// PaymentWorkflow debits a customer at most once and records, announces and exposes the
// outcome: record PENDING → debit (resolving lost answers with the bank, never resending) →
// SUCCEEDED | FAILED | UNKNOWN (then an operator's resolution) → publish.
func (w *Payments) PaymentWorkflow(ctx workflow.Context, in PaymentInput) (paysaga.Payment, error) {
	if in.PaymentID == "" || in.CustomerID == "" || in.AccountID == "" || in.Amount <= 0 {
		return paysaga.Payment{}, temporal.NewNonRetryableApplicationError("incomplete payment input", paysaga.EINVALID, nil)
	}
	s := newPaymentRun(w.cfg, in, workflow.Now(ctx))
	if err := s.setHandlers(ctx); err != nil {
		return s.p, err
	}
	// Money is moving: a cancellation request must not leave the payment half done, so the saga
	// runs to its end (operators resolve, they do not cancel).
	ctx, _ = workflow.NewDisconnectedContext(ctx)
	workflow.Go(ctx, func(ctx workflow.Context) {
		publishLoop(ctx, &s.outbox, activities.PublishPaymentEventName, func(in activities.PublishPaymentEventInput) []any {
			return []any{"payment_id", s.p.ID, "event_id", in.EventID}
		})
	})

	err := s.run(ctx)
	for errors.Is(err, errStoreRefused) {
		err = s.repair(ctx)
	}
	if err != nil {
		return s.p, err
	}
	// Every outcome event is out and every update has been answered before the run ends.
	err = workflow.Await(ctx, func() bool { return len(s.outbox) == 0 && workflow.AllHandlersFinished(ctx) })
	return s.p, err
}

// paymentRun is the state of one payment workflow run.
type paymentRun struct {
	cfg            PaymentConfig
	in             PaymentInput
	p              paysaga.Payment
	needsAttention bool
	awaiting       bool             // UNKNOWN and waiting for an operator
	resolution     *Resolution      // the operator's verdict, once accepted
	awaitCapture   bool             // AUTHORIZED and waiting for the merchant
	decision       *CaptureDecision // the merchant's capture or cancel, once accepted
	attempts       int              // transfers tried
	mayHaveMoved   bool             // a debit was sent, or may have been
	transferID     string           // the last transfer tried
	replayCancel   *CaptureDecision // an operator's replay of a failed cancellation, once accepted
	awaitReplay    bool             // the cancellation's refund failed; waiting for its replay
	eventSeq       int              // history events written
	outbox         []activities.PublishPaymentEventInput
}

func newPaymentRun(cfg PaymentConfig, in PaymentInput, now time.Time) *paymentRun {
	if in.CaptureMode == "" {
		in.CaptureMode = paysaga.CaptureAutomatic
	}
	if in.CreatedAt.IsZero() {
		in.CreatedAt = now
	}
	return &paymentRun{
		cfg: cfg,
		in:  in,
		p: paysaga.Payment{
			ID:          in.PaymentID,
			CustomerID:  in.CustomerID,
			MerchantID:  in.MerchantID,
			AccountID:   in.AccountID,
			Amount:      in.Amount,
			Currency:    "KRW",
			Description: in.Description,
			Status:      paysaga.PaymentPending,
			CaptureMode: in.CaptureMode,
			CreatedAt:   in.CreatedAt,
			UpdatedAt:   in.CreatedAt,
		},
	}
}

func (s *paymentRun) setHandlers(ctx workflow.Context) error {
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (PaymentView, error) {
		return PaymentView{
			Payment:            s.p,
			NeedsAttention:     s.needsAttention,
			AwaitingResolution: s.awaiting && s.resolution == nil,
			DebitAttempts:      s.attempts,
			AwaitingCapture:    s.awaitCapture && s.decision == nil,
			UnpublishedEvents:  len(s.outbox),
		}, nil
	}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandler(ctx, UpdateOutcome, func(ctx workflow.Context) (paysaga.Payment, error) {
		err := workflow.Await(ctx, func() bool {
			return s.p.Status != paysaga.PaymentPending && s.p.Status != paysaga.PaymentProcessing
		})
		return s.p, err
	}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateResolve,
		func(ctx workflow.Context, r Resolution) (paysaga.Payment, error) {
			mine := &r
			s.resolution = mine
			// Answered once the verdict is recorded — or refused by the store (repair then
			// waits for another verdict and s.resolution is no longer this one).
			err := workflow.Await(ctx, func() bool { return s.p.Status != paysaga.PaymentUnknown || s.resolution != mine })
			if err == nil && s.p.Status == paysaga.PaymentUnknown {
				err = temporal.NewApplicationError(fmt.Sprintf(
					"the store refused to record the resolution of payment %s; repair its row and resolve it again", s.p.ID), paysaga.ECONFLICT)
			}
			return s.p, err
		},
		workflow.UpdateHandlerOptions{Validator: s.validateResolution},
	); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateReplayCancel,
		func(ctx workflow.Context, d CaptureDecision) (paysaga.Payment, error) {
			s.replayCancel = &d
			err := workflow.Await(ctx, func() bool { return !s.awaitReplay || s.replayCancel != &d })
			if err == nil && s.replayCancel == &d {
				// The replay ended: CANCELED, or AUTHORIZED again waiting for another replay.
				err = workflow.Await(ctx, func() bool { return s.p.Status == paysaga.PaymentCanceled || s.awaitReplay })
			}
			return s.p, err
		},
		workflow.UpdateHandlerOptions{Validator: s.validateReplayCancel},
	); err != nil {
		return err
	}
	for _, u := range []struct {
		name   string
		cancel bool
	}{{UpdateCapture, false}, {UpdateCancel, true}} {
		name, cancel := u.name, u.cancel
		if err := workflow.SetUpdateHandlerWithOptions(ctx, name,
			func(ctx workflow.Context, d CaptureDecision) (paysaga.Payment, error) {
				d.cancel = cancel
				s.decision = &d
				err := workflow.Await(ctx, func() bool { return s.p.Status != paysaga.PaymentAuthorized || s.needsAttention })
				return s.p, err
			},
			workflow.UpdateHandlerOptions{Validator: s.validateDecision},
		); err != nil {
			return err
		}
	}
	return nil
}

// run is the saga itself.
func (s *paymentRun) run(ctx workflow.Context) error {
	created := s.event(ctx, EventCreated, paysaga.PaymentPending)
	manual := s.in.CaptureMode != paysaga.CaptureAutomatic &&
		workflow.GetVersion(ctx, manualCaptureChange, workflow.DefaultVersion, 1) == 1
	if s.in.CaptureMode != paysaga.CaptureAutomatic && !manual {
		// Manual capture comes with the refund path (AUTHORIZED, capture/cancel Updates). Until
		// then such a payment fails before anything is sent.
		failed := s.event(ctx, EventFailed, paysaga.PaymentFailed)
		failed.Reason = "manual capture is not available yet"
		if err := s.record(ctx, step{create: true, status: paysaga.PaymentFailed, failureCode: FailureUnsupported,
			failureMessage: failed.Reason, events: []paysaga.PaymentEvent{created, failed}}); err != nil {
			return err
		}
		s.announce(failed)
		return nil
	}

	// Record the payment and its history, PROCESSING from here on: the debit goes out next.
	if err := s.record(ctx, step{create: true, status: paysaga.PaymentProcessing,
		events: []paysaga.PaymentEvent{created, s.event(ctx, EventProcessing, paysaga.PaymentProcessing)}}); err != nil {
		return err
	}

	out, err := s.debit(ctx)
	if err != nil {
		return err
	}
	if manual && out.status == paysaga.PaymentSucceeded {
		out.status = paysaga.PaymentAuthorized
	}
	final := s.event(ctx, out.eventType(), out.status)
	final.Rpcd, final.Rsms = out.rpcd, out.rsms
	if err := s.record(ctx, step{status: out.status, failureCode: out.failureCode, failureMessage: out.failureMessage,
		needsAttention: out.status == paysaga.PaymentUnknown, events: []paysaga.PaymentEvent{final}}); err != nil {
		return err
	}
	s.announce(final)
	switch out.status {
	case paysaga.PaymentAuthorized:
		return s.awaitCaptureDecision(ctx)
	case paysaga.PaymentUnknown:
		if err := s.awaitResolution(ctx, out.transferID, manual); err != nil {
			return err
		}
		if s.p.Status == paysaga.PaymentAuthorized {
			return s.awaitCaptureDecision(ctx)
		}
	}
	return nil
}

// debitOutcome is where the debit ended.
type debitOutcome struct {
	status                      paysaga.PaymentStatus // SUCCEEDED, FAILED or UNKNOWN
	rpcd, rsms                  string
	failureCode, failureMessage string
	transferID                  string
}

func (o debitOutcome) eventType() string {
	switch o.status {
	case paysaga.PaymentSucceeded:
		return EventSucceeded
	case paysaga.PaymentUnknown:
		return EventUnknown
	case paysaga.PaymentAuthorized:
		return EventAuthorized
	}
	return EventFailed
}

// debit sends transfers until one executes, the bank declines, the outcome stays unknown past
// the deadline, or MaxDebitAttempts transfers certainly did not execute. A transfer whose
// answer was lost is never sent again: CheckDebit asks the bank what became of it.
func (s *paymentRun) debit(ctx workflow.Context) (debitOutcome, error) {
	logger := workflow.GetLogger(ctx)
	for {
		s.attempts++
		tid := transferID(s.p.ID, s.attempts)
		s.mayHaveMoved, s.transferID = true, tid
		var res activities.DebitResult
		err := workflow.ExecuteActivity(sendOptions(ctx, s.cfg.BankCallTimeout, s.cfg.DebitDeadline, false), activities.DebitName,
			activities.DebitInput{PaymentID: s.p.ID, TransferID: tid}).Get(ctx, &res)
		if err == nil {
			return debitOutcome{status: paysaga.PaymentSucceeded, rpcd: res.Rpcd, rsms: res.Rsms, transferID: tid}, nil
		}
		if f, ok := failureOf(err, "debited"); ok {
			return failedDebit(f, tid), nil
		}
		if errType(err) != activities.ErrTypeNotExecuted { // else certainly not sent: a new transfer is safe
			// Lost answer, or the debit could not finish: the money may have moved. Ask the bank.
			logger.Warn("debit outcome unknown; checking with the bank", "payment_id", s.p.ID)
			if err := s.record(ctx, step{status: paysaga.PaymentProcessing,
				events: []paysaga.PaymentEvent{s.event(ctx, EventDebitUnknown, paysaga.PaymentProcessing)}}); err != nil {
				return debitOutcome{}, err
			}
			var chk activities.CheckDebitResult
			err := workflow.ExecuteActivity(checkOptions(ctx, s.cfg.BankCallTimeout, s.cfg.UnknownDeadline), activities.CheckDebitName,
				activities.CheckDebitInput{PaymentID: s.p.ID, TransferID: tid, SendableFor: s.cfg.BankCallTimeout + s.cfg.SendMargin}).Get(ctx, &chk)
			if err != nil {
				if errType(err) == activities.ErrTypeDeclined {
					f, _ := failureOf(err, "debited")
					return failedDebit(f, tid), nil
				}
				return debitOutcome{status: paysaga.PaymentUnknown, transferID: tid}, nil
			}
			if chk.Executed {
				return debitOutcome{status: paysaga.PaymentSucceeded, rpcd: chk.Rpcd, rsms: chk.Rsms, transferID: tid}, nil
			}
		}
		ev := s.event(ctx, EventDebitNotExecut, paysaga.PaymentProcessing)
		if err := s.record(ctx, step{status: paysaga.PaymentProcessing, events: []paysaga.PaymentEvent{ev}}); err != nil {
			return debitOutcome{}, err
		}
		if s.attempts >= s.cfg.MaxDebitAttempts {
			return debitOutcome{status: paysaga.PaymentFailed, failureCode: FailureNotExecuted,
				failureMessage: fmt.Sprintf("the bank did not execute the debit (%d attempts)", s.attempts), transferID: tid}, nil
		}
		logger.Info("debit not executed; sending a new transfer", "payment_id", s.p.ID, "attempt", s.attempts+1)
		if err := workflow.Sleep(ctx, s.cfg.RetryDelay*time.Duration(s.attempts)); err != nil {
			return debitOutcome{}, err
		}
	}
}

// failedDebit is a debit the bank, or the activity before sending, refused for good.
func failedDebit(f failure, tid string) debitOutcome {
	return debitOutcome{status: paysaga.PaymentFailed, rpcd: f.rpcd, rsms: f.rsms,
		failureCode: f.code, failureMessage: f.message, transferID: tid}
}
