package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"paysaga"
	"paysaga/events"
	"paysaga/nh"
	"paysaga/seal"
	"paysaga/settlement"
	"paysaga/store"
)

// Names of the steps of the settlement workflows, as registered by SettlementActivities.Register.
const (
	// ListSettlementMerchantsName lists the merchants a day's run has work for.
	ListSettlementMerchantsName = "ListSettlementMerchants"
	// PrepareSettlementName computes and stores a merchant's settlement of a day, once.
	PrepareSettlementName = "PrepareSettlement"
	// ReopenSettlementName makes a FAILED or UNKNOWN settlement PENDING for an operator's retry.
	ReopenSettlementName = "ReopenSettlement"
	// PayoutName sends one payout (ReceivedTransferAccountNumber / …OtherBank) through a
	// transfer row written before the request.
	PayoutName = "Payout"
	// CheckPayoutName resolves the payouts whose outcome is unknown with CheckOnReceivedTransfer.
	CheckPayoutName = "CheckPayout"
	// FinishSettlementName records PAID, FAILED or UNKNOWN.
	FinishSettlementName = "FinishSettlement"
	// PublishSettlementEventName publishes settlement.paid / .failed / .unknown.
	PublishSettlementEventName = "PublishSettlementEvent"
)

// SettlementActivities are the steps of the settlement workflows. A payout goes through the
// same machinery as a refund's credit: the transfer row before the call (recordAnswer classifies
// the answer), a lost answer asked about with CheckOnReceivedTransfer, never sent twice.
type SettlementActivities struct {
	Store *store.DB
	Bank  RefundBank
	// Keys open the merchants' settlement account numbers.
	Keys   *seal.Keyring
	Events events.Publisher
	Logger *slog.Logger
	// DefaultFeeBPS is the fee rate of a merchant without one of its own.
	DefaultFeeBPS int64
	// Now is the clock of the transmission date (Tsymd); time.Now when nil.
	Now func() time.Time
}

// Register registers the settlement steps under their names on r (a Temporal worker).
func (a *SettlementActivities) Register(r interface {
	RegisterActivityWithOptions(a any, options activity.RegisterOptions)
}) {
	for name, fn := range map[string]any{
		ListSettlementMerchantsName: a.ListSettlementMerchants,
		PrepareSettlementName:       a.PrepareSettlement,
		ReopenSettlementName:        a.ReopenSettlement,
		PayoutName:                  a.Payout,
		CheckPayoutName:             a.CheckPayout,
		FinishSettlementName:        a.FinishSettlement,
		PublishSettlementEventName:  a.PublishSettlementEvent,
	} {
		r.RegisterActivityWithOptions(fn, activity.RegisterOptions{Name: name})
	}
}

func (a *SettlementActivities) now() time.Time { return clock(a.Now) }

func (a *SettlementActivities) log(ctx context.Context, settlementID string) *slog.Logger {
	return activityLogger(ctx, a.Logger, "settlement_id", settlementID)
}

// PrepareSettlementInput names a merchant's day.
type PrepareSettlementInput struct {
	MerchantID string `json:"merchant_id"`
	Day        string `json:"day"`
}

// PayoutInput names the settlement to pay out and the transfer to pay it with (one per
// attempt and run, picked by the workflow).
type PayoutInput struct {
	SettlementID string `json:"settlement_id"`
	TransferID   string `json:"transfer_id"`
}

// CheckPayoutInput names a settlement some of whose payouts have an unknown outcome.
type CheckPayoutInput struct {
	SettlementID string `json:"settlement_id"`
	// SendableFor: see CheckDebitInput.
	SendableFor time.Duration `json:"sendable_for,omitempty"`
}

// FinishSettlementInput ends a settlement (see store.FinishSettlement).
type FinishSettlementInput struct {
	SettlementID   string            `json:"settlement_id"`
	Status         settlement.Status `json:"status"`
	TransferID     string            `json:"transfer_id,omitempty"`
	FailureCode    string            `json:"failure_code,omitempty"`
	FailureMessage string            `json:"failure_message,omitempty"`
}

// PublishSettlementEventInput is a settlement's outcome to announce; EventID is stable per run.
type PublishSettlementEventInput struct {
	EventID    string                `json:"event_id"`
	Type       string                `json:"type"`
	Settlement settlement.Settlement `json:"settlement"`
	OccurredAt time.Time             `json:"occurred_at"`
}

// ListSettlementMerchants lists the merchants the run of day has work for.
func (a *SettlementActivities) ListSettlementMerchants(ctx context.Context, day string) ([]string, error) {
	ids, err := a.Store.SettlementMerchants(ctx, day)
	if err != nil {
		return nil, storeError(err)
	}
	return ids, nil
}

// PrepareSettlement returns the merchant's settlement of the day, computed and stored the first
// time; an empty settlement (no ID) when there is nothing to settle. Lines stay in the
// database: the workflow history carries the totals only.
func (a *SettlementActivities) PrepareSettlement(ctx context.Context, in PrepareSettlementInput) (settlement.Settlement, error) {
	s, created, err := a.Store.PrepareSettlement(ctx, in.MerchantID, in.Day, a.DefaultFeeBPS)
	if err != nil {
		return settlement.Settlement{}, storeError(err)
	}
	if s == nil {
		return settlement.Settlement{}, nil
	}
	if created {
		a.log(ctx, s.ID).Info("settlement computed", "merchant_id", s.MerchantID, "day", s.Day, "status", s.Status,
			"payments", s.PaymentCount, "refunds", s.RefundCount)
	}
	s.Lines = nil
	return *s, nil
}

// ReopenSettlement makes a FAILED or UNKNOWN settlement PENDING again for an operator's retry.
func (a *SettlementActivities) ReopenSettlement(ctx context.Context, settlementID string) (settlement.Settlement, error) {
	s, err := a.Store.ReopenSettlement(ctx, settlementID)
	if err != nil {
		return settlement.Settlement{}, storeError(err)
	}
	return *s, nil
}

// payee is a merchant's settlement account, opened (and as sealed, to record with a payout).
type payee struct {
	bncd, acno string
	nhAPI      string
	transfer   paysaga.TransferKind
	sealed     store.SealedAccountNumber
}

// SettlementAccountAD is the additional data a merchant's settlement account number is sealed
// with: it opens only as that merchant's.
func SettlementAccountAD(merchantID string) string { return settlement.AccountAD(merchantID) }

// payee opens the merchant's settlement account; none (or one that cannot be opened) is
// ErrTypeAccountUnusable: nothing is sent.
func (a *SettlementActivities) payee(ctx context.Context, merchantID string) (*payee, error) {
	acct, err := a.Store.SettlementAccountOf(ctx, merchantID)
	if paysaga.ErrorCode(err) == paysaga.ENOTFOUND || (err == nil && !acct.HasAccount()) {
		return nil, temporal.NewNonRetryableApplicationError("the merchant has no settlement account", ErrTypeAccountUnusable, nil)
	}
	if err != nil {
		return nil, err
	}
	if a.Keys == nil {
		return nil, temporal.NewNonRetryableApplicationError("no keys to open the settlement account", ErrTypeStateConflict, nil)
	}
	return a.open(merchantID, acct.BankCode, acct.Number)
}

// open opens a settlement account number sealed as merchantID's.
func (a *SettlementActivities) open(merchantID, bankCode string, sealed store.SealedAccountNumber) (*payee, error) {
	if a.Keys == nil {
		return nil, temporal.NewNonRetryableApplicationError("no keys to open the settlement account", ErrTypeStateConflict, nil)
	}
	number, err := a.Keys.Open(seal.Sealed{Ciphertext: sealed.Ciphertext, KeyID: sealed.KeyID}, SettlementAccountAD(merchantID))
	if err != nil {
		return nil, temporal.NewNonRetryableApplicationError("the settlement account cannot be opened: "+err.Error(), ErrTypeAccountUnusable, nil)
	}
	p := &payee{bncd: bankCode, acno: string(number), nhAPI: nh.APIReceivedTransferOtherBank, transfer: paysaga.TransferCreditOtherBank,
		sealed: store.SealedAccountNumber{Ciphertext: sealed.Ciphertext, KeyID: sealed.KeyID}}
	if nh.IsNHBank(bankCode) {
		p.nhAPI, p.transfer = nh.APIReceivedTransferAccountNumber, paysaga.TransferCreditAccountNumber
	}
	return p, nil
}

// sentTo is where the settlement's last payout went (the account the merchant had then), or its
// current account for a settlement that recorded none.
func (a *SettlementActivities) sentTo(ctx context.Context, s *settlement.Settlement) (*payee, error) {
	d, err := a.Store.PayoutDestinationOf(ctx, s.ID)
	if paysaga.ErrorCode(err) == paysaga.ENOTFOUND {
		return a.payee(ctx, s.MerchantID)
	}
	if err != nil {
		return nil, err
	}
	return a.open(s.MerchantID, d.BankCode, d.Number)
}

// Payout pays a PENDING settlement's net to the merchant's settlement account with the
// transfer in.TransferID, written (with a freshly allocated IsTuno) before the request. Run
// again for the same transfer it never sends twice, and it never sends a second payout for a
// settlement: one that executed is the answer, one whose outcome is unknown is
// ErrTypeUnknownOutcome (resolve it with CheckPayout). The bank must name the merchant (its
// registered name) as the account's holder first (ErrTypeNameMismatch).
func (a *SettlementActivities) Payout(ctx context.Context, in PayoutInput) (CreditResult, error) {
	log := a.log(ctx, in.SettlementID)
	s, err := a.Store.GetSettlement(ctx, in.SettlementID, false)
	if err != nil {
		return CreditResult{}, storeError(err)
	}
	payouts, err := a.Store.ListPayouts(ctx, s.ID)
	if err != nil {
		return CreditResult{}, err
	}
	for _, tr := range payouts {
		if tr.ID == in.TransferID {
			return settledCredit(tr)
		}
	}
	for _, tr := range payouts {
		switch tr.State {
		case paysaga.TransferSucceeded:
			log.Warn("settlement already paid out; not sending again", "transfer_id", tr.ID)
			return CreditResult{TransferID: tr.ID, Rpcd: tr.Rpcd, Rsms: tr.Rsms}, nil
		case paysaga.TransferSent, paysaga.TransferUnknown:
			return CreditResult{}, temporal.NewNonRetryableApplicationError(
				"payout "+tr.ID+" of this settlement has an unknown outcome", ErrTypeUnknownOutcome, nil)
		}
	}
	if s.Status != settlement.Pending || s.Payout <= 0 {
		return CreditResult{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("settlement %s is %s with nothing to pay out", s.ID, s.Status), ErrTypeStateConflict, nil)
	}
	to, err := a.payee(ctx, s.MerchantID)
	if err != nil {
		return CreditResult{}, err
	}
	if err := a.checkHolder(ctx, log, s.MerchantID, to); err != nil {
		return CreditResult{}, err
	}
	ref, err := nh.NewRef(ctx, a.Store, a.now())
	if err != nil {
		return CreditResult{}, err
	}
	if activity.IsActivity(ctx) {
		activity.RecordHeartbeat(ctx)
	}
	if err := ctx.Err(); err != nil {
		return CreditResult{}, err
	}
	tr, created, err := a.Store.CreatePayoutTransfer(ctx, s.ID, &paysaga.Transfer{
		ID: in.TransferID, Kind: to.transfer, Amount: s.Payout, Tsymd: ref.Tsymd, IsTuno: ref.IsTuno,
	}, store.PayoutDestination{BankCode: to.bncd, Number: to.sealed})
	if err != nil {
		return CreditResult{}, storeError(err)
	}
	if !created {
		return settledCredit(tr)
	}
	// From here the payout is on its way (see Credit).
	ctx, cancel := sendContext(ctx)
	defer cancel()
	text := passbookText("paysaga 정산 " + s.Day)
	req := nh.ReceivedTransferAccountRequest{Bncd: to.bncd, Acno: to.acno, Tram: s.Payout, DractOtlt: text, MractOtlt: text}
	var res *nh.TransferResult
	if to.transfer == paysaga.TransferCreditAccountNumber {
		res, err = a.Bank.ReceivedTransferAccountNumber(ctx, ref, req)
	} else {
		res, err = a.Bank.ReceivedTransferOtherBank(ctx, ref, req)
	}
	log = log.With("nh_api", to.nhAPI, "transfer_id", tr.ID, "tsymd", ref.Tsymd, "is_tuno", ref.IsTuno)
	var h nh.Header
	if res != nil {
		h = res.Header
	}
	rpcd, rsms, err := recordAnswer(ctx, a.Store, log, "settlement payout", tr.ID, h, err)
	if err != nil {
		return CreditResult{}, err
	}
	return CreditResult{TransferID: tr.ID, Rpcd: rpcd, Rsms: rsms}, nil
}

// checkHolder asks the bank whose account the settlement account is, and pays only when it
// names the merchant as registered with us: a settlement goes to the merchant, whatever account
// was typed in.
func (a *SettlementActivities) checkHolder(ctx context.Context, log *slog.Logger, merchantID string, to *payee) error {
	m, err := a.Store.UserByID(ctx, merchantID)
	if err != nil {
		return storeError(err)
	}
	got, err := (&RefundActivities{Bank: a.Bank}).depositor(ctx, log, to.bncd, to.acno, "settlement account")
	if err != nil {
		return err
	}
	if normalizeName(m.Name) == "" || normalizeName(got) != normalizeName(m.Name) {
		log.Warn("settlement account's holder is not the merchant; not paying")
		return temporal.NewNonRetryableApplicationError(
			"the settlement account's holder is not the merchant's registered name", ErrTypeNameMismatch, nil)
	}
	return nil
}

// CheckPayout asks the bank what became of every payout of the settlement whose outcome is
// unknown, and records the answers (see CheckCredit).
func (a *SettlementActivities) CheckPayout(ctx context.Context, in CheckPayoutInput) (CheckCreditResult, error) {
	log := a.log(ctx, in.SettlementID).With("nh_api", nh.APICheckOnReceivedTransfer)
	s, err := a.Store.GetSettlement(ctx, in.SettlementID, false)
	if err != nil {
		return CheckCreditResult{}, storeError(err)
	}
	payouts, err := a.Store.ListPayouts(ctx, s.ID)
	if err != nil {
		return CheckCreditResult{}, err
	}
	var to *payee
	return checkCredits(ctx, a.Store, log, "payout", payouts, in.SendableFor, a.now(),
		func(tr *paysaga.Transfer) (*nh.CheckResult, error, error) {
			if to == nil {
				// The account the payout went to, not one registered since.
				if to, err = a.sentTo(ctx, s); err != nil {
					return nil, nil, err
				}
			}
			res, err := a.Bank.CheckOnReceivedTransfer(ctx, nh.CheckOnReceivedTransferRequest{
				Original: nh.Ref{Tsymd: tr.Tsymd, IsTuno: tr.IsTuno}, Tram: tr.Amount, Bncd: to.bncd, Acno: to.acno})
			return res, err, nil
		})
}

// FinishSettlement records how a settlement ended. FAILED is refused while a payout executed
// (ErrTypeCreditExecuted) or may have (ErrTypeUnknownOutcome): ask the bank first.
func (a *SettlementActivities) FinishSettlement(ctx context.Context, in FinishSettlementInput) (settlement.Settlement, error) {
	s, err := a.Store.FinishSettlement(ctx, store.SettlementOutcome{ID: in.SettlementID, Status: in.Status,
		TransferID: in.TransferID, FailureCode: in.FailureCode, FailureMessage: in.FailureMessage})
	switch {
	case errors.Is(err, store.ErrPayoutExecuted):
		return settlement.Settlement{}, temporal.NewNonRetryableApplicationError(paysaga.ErrorMessage(err), ErrTypeCreditExecuted, nil)
	case errors.Is(err, store.ErrPayoutInDoubt):
		return settlement.Settlement{}, temporal.NewNonRetryableApplicationError(paysaga.ErrorMessage(err), ErrTypeUnknownOutcome, nil)
	case err != nil:
		return settlement.Settlement{}, storeError(err)
	}
	a.log(ctx, s.ID).Info("settlement finished", "status", s.Status, "merchant_id", s.MerchantID, "day", s.Day)
	return *s, nil
}

// PublishSettlementEvent publishes a settlement's outcome with its stable event ID as message
// id. The body is the settlement (merchant_id included, for webhooks), without its lines.
func (a *SettlementActivities) PublishSettlementEvent(ctx context.Context, in PublishSettlementEventInput) error {
	in.Settlement.Lines = nil
	data, err := json.Marshal(in.Settlement)
	if err != nil {
		return temporal.NewNonRetryableApplicationError("encode event: "+err.Error(), ErrTypeStateConflict, nil)
	}
	if a.Events == nil {
		return nil
	}
	if err := a.Events.Publish(ctx, events.Event{ID: in.EventID, Type: in.Type, OccurredAt: in.OccurredAt, Data: data}); err != nil {
		a.log(ctx, in.Settlement.ID).Warn("event not published", "event_id", in.EventID, "error", err)
		return err
	}
	return nil
}

// SealSettlementAccount seals a merchant's settlement account number.
func SealSettlementAccount(keys *seal.Keyring, merchantID, number string) (seal.Sealed, error) {
	return keys.Seal([]byte(number), SettlementAccountAD(merchantID))
}
