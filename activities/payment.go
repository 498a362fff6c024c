package activities

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"go.temporal.io/sdk/activity"

	"paysaga"
	"paysaga/events"
	"paysaga/nh"
	"paysaga/store"
)

// Bank is what the payment activities need of the bank; *nh.Client implements it.
type Bank interface {
	DrawingTransfer(ctx context.Context, ref nh.Ref, req nh.DrawingTransferRequest) (*nh.DrawingTransferResult, error)
	CheckOnDrawingTransfer(ctx context.Context, req nh.CheckOnDrawingTransferRequest) (*nh.CheckResult, error)
}

// Activities are the steps of the payment saga. The worker registers its methods under the
// …Name constants (each method is named like its constant).
type Activities struct {
	Store  *store.DB
	Bank   Bank
	Events events.Publisher
	Logger *slog.Logger
	// Now is the clock of the transmission date (Tsymd); time.Now when nil.
	Now func() time.Time
}

func (a *Activities) now() time.Time { return clock(a.Now) }

// log returns the logger with the payment's and the workflow's IDs.
func (a *Activities) log(ctx context.Context, paymentID string) *slog.Logger {
	return activityLogger(ctx, a.Logger, "payment_id", paymentID)
}

// RecordPayment writes one step of a payment (see RecordPaymentInput) in one transaction.
// Every part is idempotent. A state the rules forbid is a non-retryable ErrTypeStateConflict.
//
// The first step (Create set) creates nothing: the API wrote the payment's row before it
// started the workflow, and that row — not the workflow's input, which anyone who reaches the
// Temporal frontend can write — is the authority. The step checks that the row exists with the
// input's customer, account, merchant and amount, and refuses (ErrTypeStateConflict, nothing
// sent) otherwise. A workflow started by older code, whose first step created the row, finds
// it and compares alike. Only the payment's own workflow writes it: a workflow started under
// another ID with a real payment's details cannot move that payment's status.
func (a *Activities) RecordPayment(ctx context.Context, in RecordPaymentInput) error {
	if err := fromPaymentWorkflow(ctx, in.PaymentID); err != nil {
		return err
	}
	ch := store.PaymentChange{
		Expect:         in.Create,
		PaymentID:      in.PaymentID,
		Status:         in.Status,
		FailureCode:    in.FailureCode,
		FailureMessage: in.FailureMessage,
		Events:         in.Events,
	}
	if in.Transfer != nil {
		ch.Transfer = &store.TransferStateChange{TransferID: in.Transfer.TransferID, State: in.Transfer.State}
	}
	if err := a.Store.RecordPaymentChange(ctx, ch); err != nil {
		return storeError(err)
	}
	return nil
}

// Debit sends the payment's debit with the transfer in.TransferID, written (with a freshly
// allocated IsTuno) before the request. Run again for the same transfer, it never sends
// twice: it answers from the transfer row, and a row still SENT means the first run's outcome
// is unknown (ErrTypeUnknownOutcome: resolve it with CheckDebit).
//
// It moves money only as the payment's row says (its account, of its customer, its amount),
// only for the payment's own workflow ("payment:<id>"), and only while the row is PROCESSING
// (the workflow's first step checked it against its input): anything else is a non-retryable
// ErrTypeStateConflict with nothing sent.
func (a *Activities) Debit(ctx context.Context, in DebitInput) (DebitResult, error) {
	log := a.log(ctx, in.PaymentID)
	if err := fromPaymentWorkflow(ctx, in.PaymentID); err != nil {
		return DebitResult{}, err
	}
	p, acct, err := a.Store.PaymentToDebit(ctx, in.PaymentID)
	if err != nil {
		return DebitResult{}, storeError(err)
	}
	if tr, err := a.Store.GetTransfer(ctx, in.TransferID); err == nil {
		if tr.PaymentID != p.ID || tr.Kind != paysaga.TransferDebit {
			return DebitResult{}, newError(ErrTypeStateConflict, "transfer "+tr.ID+" is not a debit of this payment", nil)
		}
		return settledDebit(tr)
	} else if paysaga.ErrorCode(err) != paysaga.ENOTFOUND {
		return DebitResult{}, err
	}
	if p.Status != paysaga.PaymentProcessing {
		log.Warn("debit refused: the payment is not PROCESSING", "status", p.Status)
		return DebitResult{}, newError(ErrTypeStateConflict,
			fmt.Sprintf("payment %s is %s, not PROCESSING: nothing is debited", p.ID, p.Status), nil)
	}
	if err := usableAccount(p, acct); err != nil {
		return DebitResult{}, err
	}
	ref, err := nh.NewRef(ctx, a.Store, a.now())
	if err != nil {
		return DebitResult{}, err
	}
	tr, created, err := a.Store.CreateTransfer(ctx, &paysaga.Transfer{
		ID: in.TransferID, PaymentID: p.ID, Kind: paysaga.TransferDebit, Amount: p.Amount,
		Tsymd: ref.Tsymd, IsTuno: ref.IsTuno, State: paysaga.TransferSent,
	})
	if err != nil {
		return DebitResult{}, storeError(err)
	}
	if !created {
		// Another run of this activity wrote the row first: its outcome is the answer.
		return settledDebit(tr)
	}

	res, err := a.Bank.DrawingTransfer(ctx, ref, nh.DrawingTransferRequest{
		FinAcno: acct.FinAccount, Tram: p.Amount, DractOtlt: passbookText(p.Description),
	})
	log = log.With("nh_api", nh.APIDrawingTransfer, "transfer_id", tr.ID, "tsymd", ref.Tsymd, "is_tuno", ref.IsTuno)
	var h nh.Header
	if res != nil {
		h = res.Header
	}
	rpcd, rsms, err := recordAnswer(ctx, a.Store, log, "debit", tr.ID, h, err)
	if err != nil {
		return DebitResult{}, err
	}
	return DebitResult{TransferID: tr.ID, Tsymd: ref.Tsymd, IsTuno: ref.IsTuno, Rpcd: rpcd, Rsms: rsms}, nil
}

// CheckDebit asks the bank what became of a transfer whose outcome is unknown, and records the
// answer on the transfer row. "Still in progress" and a failed inquiry are retryable errors:
// the workflow asks again until its deadline.
func (a *Activities) CheckDebit(ctx context.Context, in CheckDebitInput) (CheckDebitResult, error) {
	log := a.log(ctx, in.PaymentID).With("nh_api", nh.APICheckOnDrawingTransfer, "transfer_id", in.TransferID)
	tr, err := a.Store.GetTransfer(ctx, in.TransferID)
	if paysaga.ErrorCode(err) == paysaga.ENOTFOUND {
		// Never recorded, so never sent.
		return CheckDebitResult{Executed: false}, nil
	}
	if err != nil {
		return CheckDebitResult{}, err
	}
	if tr.PaymentID != in.PaymentID {
		return CheckDebitResult{}, newError(ErrTypeStateConflict, "transfer of another payment", nil)
	}
	switch tr.State {
	case paysaga.TransferSucceeded:
		return CheckDebitResult{Executed: true, Rpcd: tr.Rpcd, Rsms: tr.Rsms}, nil
	case paysaga.TransferNotExecuted:
		return CheckDebitResult{Executed: false}, nil
	case paysaga.TransferDeclined:
		return CheckDebitResult{}, declinedError(tr.Rpcd, tr.Rsms)
	}
	p, err := a.Store.GetPayment(ctx, in.PaymentID)
	if err != nil {
		return CheckDebitResult{}, storeError(err)
	}
	acct, err := a.Store.GetAccount(ctx, p.AccountID)
	if err != nil {
		return CheckDebitResult{}, storeError(err)
	}
	res, err := a.Bank.CheckOnDrawingTransfer(ctx, nh.CheckOnDrawingTransferRequest{
		Original: nh.Ref{Tsymd: tr.Tsymd, IsTuno: tr.IsTuno}, FinAcno: acct.FinAccount, Tram: tr.Amount,
	})
	c, err := recordCheck(ctx, a.Store, log, "debit", tr, in.SendableFor, a.now(), res, err)
	if err != nil {
		return CheckDebitResult{}, err
	}
	return CheckDebitResult{Executed: c.executed, Rpcd: c.rpcd, Rsms: c.rsms}, nil
}

// PublishPaymentEvent publishes a payment's outcome with the event's stable ID as message id.
// Any failure is retryable: the workflow retries until the broker is back.
func (a *Activities) PublishPaymentEvent(ctx context.Context, in PublishPaymentEventInput) error {
	return publish(ctx, a.Events, a.log(ctx, in.Payment.ID), in.EventID, in.Type, in.OccurredAt, in.Payment)
}

// PaymentWorkflowPrefix starts the ID of every payment's workflow: "payment:<payment id>"
// (workflows.PaymentWorkflowID; a test keeps the two in step).
const PaymentWorkflowPrefix = "payment:"

// fromPaymentWorkflow refuses a call from any workflow but payment paymentID's own: a workflow
// started under another ID (by someone who reached the Temporal frontend) moves no money. A
// call outside any activity (a test, a tool in this process) has no workflow to check.
func fromPaymentWorkflow(ctx context.Context, paymentID string) error {
	if !activity.IsActivity(ctx) {
		return nil
	}
	if id := activity.GetInfo(ctx).WorkflowExecution.ID; id != PaymentWorkflowPrefix+paymentID {
		return newError(ErrTypeStateConflict,
			"payment "+paymentID+" is debited only by its own workflow, not by "+id, nil)
	}
	return nil
}

// usableAccount refuses the payment's account (nil: not found) unless it can be debited:
// active, the customer's own, with a fin account. The fin account stays in this process.
func usableAccount(p *paysaga.Payment, acct *paysaga.Account) error {
	if acct == nil {
		return newError(ErrTypeAccountUnusable, "account not found", nil)
	}
	if acct.OwnerID != p.CustomerID || acct.Status != paysaga.AccountActive || acct.FinAccount == "" {
		return newError(ErrTypeAccountUnusable, "account cannot be debited", nil)
	}
	return nil
}

// settledDebit answers a Debit for a transfer that already exists, from its row.
func settledDebit(tr *paysaga.Transfer) (DebitResult, error) {
	rpcd, rsms, err := settledTransfer(tr)
	if err != nil {
		return DebitResult{}, err
	}
	return DebitResult{TransferID: tr.ID, Tsymd: tr.Tsymd, IsTuno: tr.IsTuno, Rpcd: rpcd, Rsms: rsms}, nil
}

// passbookText is what the customer's passbook shows: the description, cut to the bank's 25
// characters.
func passbookText(description string) string {
	r := []rune(description)
	if len(r) == 0 {
		return "paysaga"
	}
	if len(r) > 25 {
		r = r[:25]
	}
	return string(r)
}
