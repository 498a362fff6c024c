package workflows

import (
	"fmt"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"paysaga"
	"paysaga/activities"
)

// refundResolveChange versions an operator's resolution of an UNKNOWN refund. Its marker is the
// first command of a resolution, written when the verdict is acted on: a refund that is never
// resolved emits the same commands as before (a timer, then CheckCredit, once per
// UnknownDeadline), so recorded histories and refunds already waiting in UNKNOWN replay, and
// the latter can be resolved too.
const refundResolveChange = "refund-resolve"

// refundOpenUnknownChange versions a refund left UNKNOWN by its compensation: the run stays
// open (asking the bank, open to an operator) instead of ending.
const refundOpenUnknownChange = "refund-open-while-unknown"

// validateResolution refuses a resolution unless the refund is UNKNOWN and waiting for one
// (see paymentRun.validateResolution). Its errors carry a paysaga error code as their type.
func (s *refundRun) validateResolution(_ workflow.Context, r Resolution) error {
	return checkVerdict("refund", s.r.ID, string(s.r.Status), s.r.Status == paysaga.RefundUnknown && s.awaiting && s.resolution == nil, r)
}

// awaitUnknown records UNKNOWN (the reservation stays: the money may have left) and keeps
// asking the bank, once per UnknownDeadline, until it can say; then settles accordingly. An
// operator's verdict (the resolve Update), accepted meanwhile, ends the wait instead: the
// pending timer or CheckCredit is abandoned and the verdict settles the refund.
func (s *refundRun) awaitUnknown(ctx workflow.Context) error {
	if err := s.settle(ctx, creditOutcome{status: paysaga.RefundUnknown}); err != nil {
		return err
	}
	return s.waitUnknown(ctx)
}

// waitUnknown is awaitUnknown once the refund is recorded UNKNOWN.
func (s *refundRun) waitUnknown(ctx workflow.Context) error {
	s.awaiting = true
	defer func() { s.awaiting = false }()
	workflow.GetLogger(ctx).Warn("refund outcome unknown; asking the bank, or waiting for an operator", "refund_id", s.r.ID)
	for {
		// The same commands as workflow.Sleep, unless a verdict cancels the timer.
		tctx, cancelTimer := workflow.WithCancel(ctx)
		timer := workflow.NewTimer(tctx, s.cfg.UnknownDeadline)
		if err := workflow.Await(ctx, func() bool { return timer.IsReady() || s.resolution != nil }); err != nil {
			cancelTimer()
			return err
		}
		if s.resolution != nil {
			return s.resolve(ctx, cancelTimer)
		}
		cancelTimer()
		if err := timer.Get(ctx, nil); err != nil {
			return err
		}

		// The same commands as s.check, unless a verdict cancels the activity.
		cctx, cancelCheck := workflow.WithCancel(ctx)
		fut := workflow.ExecuteActivity(checkOptions(cctx, s.cfg.BankCallTimeout, s.cfg.UnknownDeadline), activities.CheckCreditName,
			activities.CheckCreditInput{RefundID: s.r.ID, SendableFor: s.cfg.BankCallTimeout + s.cfg.SendMargin})
		if err := workflow.Await(ctx, func() bool { return fut.IsReady() || s.resolution != nil }); err != nil {
			cancelCheck()
			return err
		}
		if s.resolution != nil {
			return s.resolve(ctx, cancelCheck)
		}
		cancelCheck()
		var chk activities.CheckCreditResult
		err := fut.Get(ctx, &chk)
		if temporal.IsCanceledError(err) {
			return err
		}
		if err != nil {
			continue
		}
		if chk.Executed {
			return s.settle(ctx, creditOutcome{status: paysaga.RefundSucceeded, rpcd: chk.Rpcd, rsms: chk.Rsms})
		}
		s.failure = creditOutcome{status: paysaga.RefundFailed, failureCode: FailureNotExecuted,
			failureMessage: "the bank did not execute the credit"}
		return errCreditFailed
	}
}

// resolve settles an UNKNOWN refund as the operator said, after abandoning the pending timer or
// check (abandon): succeeded → SUCCEEDED, its credit in doubt marked SUCCEEDED; failed → FAILED
// with the reservation given back, its credit in doubt marked NOT_EXECUTED. The history event
// carries the operator and the reason. Should the bank have answered meanwhile that the credit
// executed, the refund SUCCEEDED whatever the verdict: money that left is never given back.
func (s *refundRun) resolve(ctx workflow.Context, abandon workflow.CancelFunc) error {
	// The first command of a resolution; there is one version so far.
	_ = workflow.GetVersion(ctx, refundResolveChange, workflow.DefaultVersion, 1)
	abandon()
	r := *s.resolution
	workflow.GetLogger(ctx).Info("refund resolved by an operator", "refund_id", s.r.ID, "as", r.As, "actor", r.Actor)
	out := creditOutcome{status: paysaga.RefundSucceeded, actor: r.Actor, reason: r.Reason, transfers: paysaga.TransferSucceeded}
	if r.As == ResolveFailed {
		out = creditOutcome{status: paysaga.RefundFailed, failureCode: FailureOperator, failureMessage: r.Reason,
			actor: r.Actor, reason: r.Reason, transfers: paysaga.TransferNotExecuted}
	}
	err := s.settle(ctx, out)
	if errType(err) != activities.ErrTypeCreditExecuted {
		return err
	}
	workflow.GetLogger(ctx).Warn("operator said failed, but the bank says the credit executed", "refund_id", s.r.ID)
	chk, err := s.check(ctx)
	if err != nil {
		return err
	}
	return s.settle(ctx, creditOutcome{status: paysaga.RefundSucceeded, rpcd: chk.Rpcd, rsms: chk.Rsms})
}

// keepOpenWhileUnknown reports whether a refund left UNKNOWN after the saga's course keeps its
// run open (since refundOpenUnknownChange; before it the run ended).
func (s *refundRun) keepOpenWhileUnknown(ctx workflow.Context) bool {
	return workflow.GetVersion(ctx, refundOpenUnknownChange, workflow.DefaultVersion, 1) == 1
}

// storeStalled: see paymentRun.storeStalled.
func (s *refundRun) storeStalled(ctx workflow.Context) { s.needsPerson(ctx, EventRefundStalled) }

// needsPerson sets NeedsAttention and announces an alert event of type typ.
func (s *refundRun) needsPerson(ctx workflow.Context, typ string) {
	s.needsAttention = true
	if err := workflow.UpsertTypedSearchAttributes(ctx, SearchNeedsAttention.ValueSet(true)); err != nil {
		workflow.GetLogger(ctx).Error("needs-attention flag not set", "refund_id", s.r.ID, "error", err)
	}
	ev := s.event(ctx, typ)
	s.outbox = append(s.outbox, activities.PublishRefundEventInput{EventID: ev.ID, Type: ev.Type, Refund: s.r, OccurredAt: ev.CreatedAt})
}

// storeRefused turns a settlement the store refused, after a credit may have been sent, into
// an UNKNOWN refund waiting for an operator (see paymentRun.storeRefused).
func (s *refundRun) storeRefused(ctx workflow.Context, out creditOutcome, err error) error {
	workflow.GetLogger(ctx).Error("the store refused to settle a refund after a credit may have been sent; needs an operator",
		"refund_id", s.r.ID, "status", out.status, "error", err)
	s.r.Status = paysaga.RefundUnknown
	s.r.UpdatedAt = workflow.Now(ctx)
	s.needsAttention, s.settled = true, true
	if uerr := workflow.UpsertTypedSearchAttributes(ctx,
		SearchPaymentStatus.ValueSet(string(paysaga.RefundUnknown)), SearchNeedsAttention.ValueSet(true)); uerr != nil {
		return uerr
	}
	ev := s.event(ctx, EventRefundUnknown)
	ev.Reason = fmt.Sprintf("the store refused to record the refund as %s; an operator must check the bank and resolve it", out.status)
	s.outbox = append(s.outbox, activities.PublishRefundEventInput{EventID: ev.ID, Type: ev.Type, Refund: s.r, OccurredAt: ev.CreatedAt})
	return errStoreRefused
}

// repair waits for an operator's verdict on a refund whose settlement the store refused, and
// settles it so; refused again, it waits for another.
func (s *refundRun) repair(ctx workflow.Context) error {
	s.awaiting, s.resolution = true, nil
	defer func() { s.awaiting = false }()
	if err := workflow.Await(ctx, func() bool { return s.resolution != nil }); err != nil {
		return err
	}
	return s.resolve(ctx, func() {})
}
