package activities

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"

	"paysaga"
	"paysaga/events"
	"paysaga/nh"
	"paysaga/seal"
	"paysaga/store"
)

// Names of the steps of RefundWorkflow, as the worker registers them.
const (
	// ReserveRefundName creates the refund PENDING with its amount reserved against the payment
	// (a local activity). Refused: ErrTypeRefundRefused.
	ReserveRefundName = "ReserveRefund"
	// CreditName sends one credit of a refund through a transfer row written before the
	// request (ReceivedTransferFinAccount, …AccountNumber or …OtherBank).
	CreditName = "Credit"
	// CheckCreditName resolves every credit of a refund whose outcome is unknown with
	// CheckOnReceivedTransfer.
	CheckCreditName = "CheckCredit"
	// SettleRefundName ends a refund: SUCCEEDED, FAILED (reservation released) or UNKNOWN (a
	// local activity).
	SettleRefundName = "SettleRefund"
	// PublishRefundEventName publishes refund.succeeded / refund.failed.
	PublishRefundEventName = "PublishRefundEvent"
)

// RefundBank is what the refund steps need of the bank; *nh.Client implements it.
type RefundBank interface {
	ReceivedTransferFinAccount(ctx context.Context, ref nh.Ref, req nh.ReceivedTransferFinAccountRequest) (*nh.TransferResult, error)
	ReceivedTransferAccountNumber(ctx context.Context, ref nh.Ref, req nh.ReceivedTransferAccountRequest) (*nh.TransferResult, error)
	ReceivedTransferOtherBank(ctx context.Context, ref nh.Ref, req nh.ReceivedTransferAccountRequest) (*nh.TransferResult, error)
	CheckOnReceivedTransfer(ctx context.Context, req nh.CheckOnReceivedTransferRequest) (*nh.CheckResult, error)
	InquireDepositor(ctx context.Context, bncd, acno string) (*nh.Depositor, error)
}

// ReserveRefundInput creates (or, for a replay, re-reserves) a refund. Only IDs, the amount
// and the reason: a typed-in destination was saved sealed before the workflow started.
type ReserveRefundInput struct {
	Refund       paysaga.Refund         `json:"refund"`
	Replay       bool                   `json:"replay,omitempty"`
	Cancellation bool                   `json:"cancellation,omitempty"`
	Events       []paysaga.PaymentEvent `json:"events,omitempty"`
}

// CreditInput names the refund to pay out and the transfer to pay it with. The workflow picks
// TransferID (one per attempt and run); the activity reads the amount and the destination from
// the database and allocates the IsTuno.
type CreditInput struct {
	RefundID   string `json:"refund_id"`
	TransferID string `json:"transfer_id"`
}

// CreditResult is the bank's answer to an executed credit.
type CreditResult struct {
	TransferID string `json:"transfer_id"`
	Rpcd       string `json:"rpcd"`
	Rsms       string `json:"rsms"`
}

// CheckCreditInput names a refund some of whose credits have an unknown outcome.
type CheckCreditInput struct {
	RefundID string `json:"refund_id"`
	// SendableFor: see CheckDebitInput.
	SendableFor time.Duration `json:"sendable_for,omitempty"`
}

// CheckCreditResult is what the bank says became of the refund's credits: Executed when one of
// them moved the money (TransferID), otherwise none did.
type CheckCreditResult struct {
	Executed   bool   `json:"executed"`
	TransferID string `json:"transfer_id,omitempty"`
	Rpcd       string `json:"rpcd,omitempty"`
	Rsms       string `json:"rsms,omitempty"`
}

// SettleRefundInput ends a refund (see store.SettleRefund).
type SettleRefundInput struct {
	RefundID       string                 `json:"refund_id"`
	Status         paysaga.RefundStatus   `json:"status"`
	FailureCode    string                 `json:"failure_code,omitempty"`
	FailureMessage string                 `json:"failure_message,omitempty"`
	Events         []paysaga.PaymentEvent `json:"events,omitempty"`
	// ResolveTransfers is an operator's verdict on a refund left UNKNOWN: the refund's credits
	// whose outcome is unknown (SENT, UNKNOWN; at most one, as Credit never sends another
	// meanwhile) get this state (SUCCEEDED or NOT_EXECUTED) before the refund is settled.
	ResolveTransfers paysaga.TransferState `json:"resolve_transfers,omitempty"`
}

// PublishRefundEventInput is a refund's outcome to announce, with the stable id of the history
// row written with it as message id.
type PublishRefundEventInput struct {
	EventID    string         `json:"event_id"`
	Type       string         `json:"type"`
	Refund     paysaga.Refund `json:"refund"`
	OccurredAt time.Time      `json:"occurred_at"`
}

// RefundActivities are the steps of RefundWorkflow.
type RefundActivities struct {
	Store *store.DB
	Bank  RefundBank
	// Keys opens typed-in destinations; refunds to the payment's own account need none.
	Keys   *seal.Keyring
	Events events.Publisher
	Logger *slog.Logger
	// Now is the clock of the transmission date (Tsymd); time.Now when nil.
	Now func() time.Time
}

func (a *RefundActivities) now() time.Time { return clock(a.Now) }

func (a *RefundActivities) log(ctx context.Context, refundID string) *slog.Logger {
	return activityLogger(ctx, a.Logger, "refund_id", refundID)
}

// ReserveRefund creates the refund with its amount reserved, or says why it cannot
// (ErrTypeRefundRefused, non-retryable, with a message for the client).
func (a *RefundActivities) ReserveRefund(ctx context.Context, in ReserveRefundInput) (paysaga.Refund, error) {
	r, err := a.Store.ReserveRefund(ctx, store.RefundReservation{
		Refund: in.Refund, Replay: in.Replay, Cancellation: in.Cancellation, Events: in.Events,
	})
	switch paysaga.ErrorCode(err) {
	case "":
		return *r, nil
	case paysaga.ECONFLICT, paysaga.ENOTFOUND:
		return paysaga.Refund{}, newError(ErrTypeRefundRefused, paysaga.ErrorMessage(err), nil)
	}
	return paysaga.Refund{}, storeError(err)
}

// destination is where a credit goes, opened: a fin account, or a bank code and number. A
// typed-in number also names the payment (paymentID) whose paying account's depositor it must
// share.
type destination struct {
	kind      paysaga.DestinationKind
	finAcno   string
	bncd      string
	acno      string
	paymentID string
	nhAPI     string
	transfer  paysaga.TransferKind
}

// Credit pays a PENDING refund out with the transfer in.TransferID, written (with a freshly
// allocated IsTuno) before the request. Run again for the same transfer, it never sends twice.
// It never sends a second credit for one refund either: a refund with an executed credit is
// answered with that credit, and one with a credit whose outcome is unknown is
// ErrTypeUnknownOutcome (resolve it with CheckCredit). A typed-in account is checked against
// the bank's depositor name first (ErrTypeNameMismatch).
func (a *RefundActivities) Credit(ctx context.Context, in CreditInput) (CreditResult, error) {
	log := a.log(ctx, in.RefundID)
	r, err := a.Store.GetRefund(ctx, in.RefundID)
	if err != nil {
		return CreditResult{}, storeError(err)
	}
	transfers, err := a.Store.ListTransfersByRefund(ctx, r.ID)
	if err != nil {
		return CreditResult{}, err
	}
	if res, done, err := earlierCredit(log, "refund", transfers, in.TransferID); done {
		return res, err
	}
	if r.Status != paysaga.RefundPending {
		return CreditResult{}, newError(ErrTypeStateConflict,
			fmt.Sprintf("refund %s is %s, not PENDING", r.ID, r.Status), nil)
	}
	p, err := a.Store.GetPayment(ctx, r.PaymentID)
	if err != nil {
		return CreditResult{}, storeError(err)
	}
	dest, err := a.destination(ctx, r, p)
	if err != nil {
		return CreditResult{}, err
	}
	if dest.kind != paysaga.DestinationFinAccount {
		if err := a.checkDepositor(ctx, log, dest); err != nil {
			return CreditResult{}, err
		}
	}
	ref, err := nh.NewRef(ctx, a.Store, a.now())
	if err != nil {
		return CreditResult{}, err
	}
	// A cancelled refund sends nothing: the workflow learns of a cancellation through the
	// heartbeat and waits for this activity to end before it gives the reservation back.
	if activity.IsActivity(ctx) {
		activity.RecordHeartbeat(ctx)
	}
	if err := ctx.Err(); err != nil {
		return CreditResult{}, err
	}
	// Written only while the refund is PENDING, under the lock its FAILED settlement takes.
	tr, created, err := a.Store.CreateRefundTransfer(ctx, &paysaga.Transfer{
		ID: in.TransferID, PaymentID: p.ID, RefundID: r.ID, Kind: dest.transfer, Amount: r.Amount,
		Tsymd: ref.Tsymd, IsTuno: ref.IsTuno, State: paysaga.TransferSent,
	})
	if err != nil {
		return CreditResult{}, storeError(err)
	}
	if !created {
		return settledCredit(tr)
	}
	// From here the credit is on its way: a cancellation no longer interrupts it (an
	// interrupted call is an unknown outcome, not a cancelled one). The activity's deadline
	// still bounds the call, so it can no longer execute once that has passed.
	ctx, cancel := sendContext(ctx)
	defer cancel()

	text := passbookText("환불 " + p.Description)
	var res *nh.TransferResult
	switch dest.kind {
	case paysaga.DestinationFinAccount:
		res, err = a.Bank.ReceivedTransferFinAccount(ctx, ref, nh.ReceivedTransferFinAccountRequest{
			FinAcno: dest.finAcno, Tram: r.Amount, DractOtlt: text, MractOtlt: text})
	case paysaga.DestinationAccountNumber:
		res, err = a.Bank.ReceivedTransferAccountNumber(ctx, ref, nh.ReceivedTransferAccountRequest{
			Bncd: dest.bncd, Acno: dest.acno, Tram: r.Amount, DractOtlt: text, MractOtlt: text})
	default:
		res, err = a.Bank.ReceivedTransferOtherBank(ctx, ref, nh.ReceivedTransferAccountRequest{
			Bncd: dest.bncd, Acno: dest.acno, Tram: r.Amount, DractOtlt: text, MractOtlt: text})
	}
	log = log.With("nh_api", dest.nhAPI, "transfer_id", tr.ID, "tsymd", ref.Tsymd, "is_tuno", ref.IsTuno)
	var h nh.Header
	if res != nil {
		h = res.Header
	}
	rpcd, rsms, err := recordAnswer(ctx, a.Store, log, "refund credit", tr.ID, h, err)
	if err != nil {
		return CreditResult{}, err
	}
	return CreditResult{TransferID: tr.ID, Rpcd: rpcd, Rsms: rsms}, nil
}

// CheckCredit asks the bank what became of every credit of the refund whose outcome is
// unknown, and records the answers. Executed when one of the refund's credits moved the money;
// not executed when none did. "Still in progress" and failed inquiries are retryable errors:
// the workflow asks again until its deadline.
func (a *RefundActivities) CheckCredit(ctx context.Context, in CheckCreditInput) (CheckCreditResult, error) {
	log := a.log(ctx, in.RefundID).With("nh_api", nh.APICheckOnReceivedTransfer)
	r, err := a.Store.GetRefund(ctx, in.RefundID)
	if paysaga.ErrorCode(err) == paysaga.ENOTFOUND {
		return CheckCreditResult{}, nil // never reserved, so never sent
	}
	if err != nil {
		return CheckCreditResult{}, err
	}
	transfers, err := a.Store.ListTransfersByRefund(ctx, r.ID)
	if err != nil {
		return CheckCreditResult{}, err
	}
	var dest *destination
	return checkCredits(ctx, a.Store, log, "credit", transfers, in.SendableFor, a.now(),
		func(tr *paysaga.Transfer) (*nh.CheckResult, error, error) {
			if dest == nil {
				p, err := a.Store.GetPayment(ctx, r.PaymentID)
				if err != nil {
					return nil, nil, storeError(err)
				}
				if dest, err = a.destination(ctx, r, p); err != nil {
					return nil, nil, err
				}
			}
			req := nh.CheckOnReceivedTransferRequest{Original: nh.Ref{Tsymd: tr.Tsymd, IsTuno: tr.IsTuno}, Tram: tr.Amount}
			if dest.kind == paysaga.DestinationFinAccount {
				req.FinAcno = dest.finAcno
			} else {
				req.Bncd, req.Acno = dest.bncd, dest.acno
			}
			res, err := a.Bank.CheckOnReceivedTransfer(ctx, req)
			return res, err, nil
		})
}

// SettleRefund ends a refund; a refund that was never reserved is answered with an empty
// Refund (nothing to settle). Giving a reservation back (FAILED) is refused while a credit of
// the refund may have moved money: an executed credit is ErrTypeStateConflict, an unknown one
// ErrTypeUnknownOutcome (resolve it with CheckCredit first).
func (a *RefundActivities) SettleRefund(ctx context.Context, in SettleRefundInput) (paysaga.Refund, error) {
	if in.ResolveTransfers != "" {
		if err := a.resolveTransfers(ctx, in.RefundID, in.ResolveTransfers); err != nil {
			return paysaga.Refund{}, err
		}
	}
	r, _, err := a.Store.SettleRefund(ctx, store.RefundSettlement{
		RefundID: in.RefundID, Status: in.Status, FailureCode: in.FailureCode, FailureMessage: in.FailureMessage, Events: in.Events,
	})
	switch {
	case paysaga.ErrorCode(err) == paysaga.ENOTFOUND:
		// Never reserved (a compensation after a reservation that did not happen): nothing to
		// settle, which the empty refund says.
		return paysaga.Refund{}, nil
	case errors.Is(err, store.ErrCreditExecuted):
		return paysaga.Refund{}, newError(ErrTypeCreditExecuted, paysaga.ErrorMessage(err), nil)
	case errors.Is(err, store.ErrCreditInDoubt):
		return paysaga.Refund{}, newError(ErrTypeUnknownOutcome, paysaga.ErrorMessage(err), nil)
	}
	if err != nil {
		return paysaga.Refund{}, storeError(err)
	}
	a.log(ctx, in.RefundID).Info("refund settled", "status", r.Status, "payment_id", r.PaymentID)
	return *r, nil
}

// resolveTransfers sets the refund's credits whose outcome is unknown to state, as an operator
// said. A credit the bank has answered for meanwhile keeps its answer.
func (a *RefundActivities) resolveTransfers(ctx context.Context, refundID string, state paysaga.TransferState) error {
	if state != paysaga.TransferSucceeded && state != paysaga.TransferNotExecuted {
		return newError(ErrTypeStateConflict,
			fmt.Sprintf("a resolution sets credits SUCCEEDED or NOT_EXECUTED, not %q", state), nil)
	}
	transfers, err := a.Store.ListTransfersByRefund(ctx, refundID)
	if err != nil {
		return err
	}
	for _, tr := range transfers {
		if tr.State != paysaga.TransferSent && tr.State != paysaga.TransferUnknown {
			continue
		}
		err := a.Store.UpdateTransfer(ctx, tr.ID, store.TransferUpdate{State: state, Rpcd: tr.Rpcd, Rsms: tr.Rsms})
		switch {
		case paysaga.ErrorCode(err) == paysaga.ECONFLICT:
			a.log(ctx, refundID).Warn("credit answered by the bank before the operator's verdict", "transfer_id", tr.ID)
		case err != nil:
			return fmt.Errorf("resolve credit %s: %w", tr.ID, err)
		default:
			a.log(ctx, refundID).Info("credit resolved by an operator", "transfer_id", tr.ID, "state", state)
		}
	}
	return nil
}

// PublishRefundEvent publishes a refund's outcome with the event's stable ID as message id.
// Any failure is retryable: the workflow retries until the broker is back.
func (a *RefundActivities) PublishRefundEvent(ctx context.Context, in PublishRefundEventInput) error {
	// The refund with its payment: consumers (customer notifications, alerts) learn from the
	// event alone whose money it is.
	body := struct {
		paysaga.Refund
		Payment *paysaga.Payment `json:"payment,omitempty"`
	}{Refund: in.Refund}
	p, err := a.Store.GetPayment(ctx, in.Refund.PaymentID)
	switch {
	case err == nil:
		body.Payment = p
	case paysaga.ErrorCode(err) != paysaga.ENOTFOUND:
		return storeError(err)
	}
	return publish(ctx, a.Events, a.log(ctx, in.Refund.ID), in.EventID, in.Type, in.OccurredAt, body)
}

// destination opens where the refund's money goes. The numbers stay in this process.
func (a *RefundActivities) destination(ctx context.Context, r *paysaga.Refund, p *paysaga.Payment) (*destination, error) {
	d, err := a.Store.RefundDestinationOf(ctx, r.ID)
	if err != nil {
		return nil, storeError(err)
	}
	switch d.Kind {
	case paysaga.DestinationFinAccount, "":
		acct, err := a.Store.GetAccount(ctx, p.AccountID)
		if paysaga.ErrorCode(err) == paysaga.ENOTFOUND {
			return nil, newError(ErrTypeAccountUnusable, "the payment's account is gone", nil)
		}
		if err != nil {
			return nil, err
		}
		if acct.FinAccount == "" {
			return nil, newError(ErrTypeAccountUnusable, "the payment's account has no fin account", nil)
		}
		return &destination{kind: paysaga.DestinationFinAccount, finAcno: acct.FinAccount,
			nhAPI: nh.APIReceivedTransferFinAccount, transfer: paysaga.TransferCreditFinAccount}, nil
	}
	if a.Keys == nil {
		return nil, newError(ErrTypeStateConflict, "no keys to open a typed-in destination", nil)
	}
	td, err := a.Keys.OpenRefundDestination(r.ID, seal.Sealed{Ciphertext: d.Sealed.Ciphertext, KeyID: d.Sealed.KeyID})
	if err != nil {
		return nil, newError(ErrTypeStateConflict, err.Error(), nil)
	}
	out := &destination{kind: d.Kind, bncd: d.BankCode, acno: td.Number, paymentID: p.ID,
		nhAPI: nh.APIReceivedTransferOtherBank, transfer: paysaga.TransferCreditOtherBank}
	if d.Kind == paysaga.DestinationAccountNumber {
		out.nhAPI, out.transfer = nh.APIReceivedTransferAccountNumber, paysaga.TransferCreditAccountNumber
	}
	return out, nil
}

// checkDepositor asks the bank whose account a typed-in destination is, and whose account the
// payment was paid from, and pays only when the bank names the same depositor for both: a
// refund goes to the paying customer, wherever support types it in. The name compared with is
// the bank's, never one a caller supplied (issue 11, item 1). Nothing is sent yet, so a failed
// inquiry is simply asked again; a refusal is non-retryable (ErrTypeNameMismatch).
func (a *RefundActivities) checkDepositor(ctx context.Context, log *slog.Logger, d *destination) error {
	paying, err := a.payingAccount(ctx, d.paymentID)
	if err != nil {
		return err
	}
	want, err := a.depositor(ctx, log, paying.bncd, paying.acno, "paying account")
	if err != nil {
		return err
	}
	got, err := a.depositor(ctx, log, d.bncd, d.acno, "typed-in account")
	if err != nil {
		return err
	}
	if want == "" || normalizeName(got) != normalizeName(want) {
		log.Warn("typed-in account belongs to someone else than the paying customer; not paying")
		return newError(ErrTypeNameMismatch,
			"the typed-in account's holder is not the paying account's holder", nil)
	}
	return nil
}

// payingAccount opens the number of the account payment paymentID was paid from.
func (a *RefundActivities) payingAccount(ctx context.Context, paymentID string) (*destination, error) {
	acct, err := a.Store.PayingAccountOf(ctx, paymentID)
	if err != nil {
		return nil, storeError(err)
	}
	if a.Keys == nil {
		return nil, newError(ErrTypeStateConflict, "no keys to open the paying account's number", nil)
	}
	number, err := a.Keys.Open(seal.Sealed{Ciphertext: acct.Number.Ciphertext, KeyID: acct.Number.KeyID}, seal.AccountNumberAD(acct.AccountID))
	if err != nil {
		return nil, newError(ErrTypeStateConflict, "the paying account's number cannot be opened: "+err.Error(), nil)
	}
	return &destination{bncd: acct.BankCode, acno: string(number)}, nil
}

// depositor asks the bank for the holder's name of an account (what says which account in the
// log, never the number).
func (a *RefundActivities) depositor(ctx context.Context, log *slog.Logger, bncd, acno, what string) (string, error) {
	dep, err := a.Bank.InquireDepositor(ctx, bncd, acno)
	if err != nil {
		return "", inquiryError(log.With("account", what), "depositor inquiry ("+what+")", err)
	}
	return dep.Dpnm, nil
}

func normalizeName(s string) string { return strings.Join(strings.Fields(s), "") }

// settledCredit answers a Credit for a transfer that already exists, from its row.
func settledCredit(tr *paysaga.Transfer) (CreditResult, error) {
	rpcd, rsms, err := settledTransfer(tr)
	if err != nil {
		return CreditResult{}, err
	}
	return CreditResult{TransferID: tr.ID, Rpcd: rpcd, Rsms: rsms}, nil
}
