package activities

import (
	"context"
	"log/slog"
	"time"

	"paysaga"
	"paysaga/events"
	"paysaga/nh"
	"paysaga/seal"
	"paysaga/store"
)

// Names of the steps of FinAccountWorkflow, as the worker registers them.
const (
	// OpenFinAccountName sends OpenFinAccountDirect for a PENDING account and stores the Rgno.
	OpenFinAccountName = "OpenFinAccount"
	// CheckFinAccountName asks CheckOpenFinAccountDirect once; the workflow polls it through
	// the activity's retries (ErrTypeInProgress is retryable). Issued → the account is ACTIVE.
	CheckFinAccountName = "CheckFinAccount"
	// FailFinAccountName records a refused or timed-out registration (a local activity).
	FailFinAccountName = "FailFinAccount"
	// PublishAccountEventName publishes account.registered.
	PublishAccountEventName = "PublishAccountEvent"
)

// AccountBank is what the registration needs of the bank; *nh.Client implements it.
type AccountBank interface {
	OpenFinAccountDirect(ctx context.Context, req nh.OpenFinAccountRequest) (*nh.OpenFinAccountResult, error)
	CheckOpenFinAccountDirect(ctx context.Context, rgno, brdtBrno string) (*nh.FinAccountResult, error)
}

// FinAccountInput names the account a registration step works on. Only the ID: the account
// number, the birth date, the Rgno and the fin account stay in the database, sealed where
// secret, and never enter workflow history.
type FinAccountInput struct {
	AccountID string `json:"account_id"`
}

// FailFinAccountInput is why a registration failed: the bank's Rpcd and Rsms, or our own code
// when the bank gave none (a deadline).
type FailFinAccountInput struct {
	AccountID string `json:"account_id"`
	Code      string `json:"code"`
	Message   string `json:"message"`
}

// PublishAccountEventInput is an account event to announce; EventID is stable per workflow run
// so that a retried publish is dropped by consumers as a duplicate.
type PublishAccountEventInput struct {
	EventID    string          `json:"event_id"`
	Type       string          `json:"type"`
	Account    paysaga.Account `json:"account"`
	OccurredAt time.Time       `json:"occurred_at"`
}

// AccountActivities are the steps of FinAccountWorkflow.
type AccountActivities struct {
	Store  *store.DB
	Bank   AccountBank
	Keys   *seal.Keyring
	Events events.Publisher
	Logger *slog.Logger
}

func (a *AccountActivities) log(ctx context.Context, accountID, api string) *slog.Logger {
	args := []any{"account_id", accountID}
	if api != "" {
		args = append(args, "nh_api", api)
	}
	return activityLogger(ctx, a.Logger, args...)
}

// OpenFinAccount asks the bank to register a PENDING account for withdrawals, with the
// holder's own birth date, and stores the registration number. Run again after it succeeded,
// it sends nothing (the Rgno is there). Opening a fin account moves no money, so a lost answer
// is simply asked again.
func (a *AccountActivities) OpenFinAccount(ctx context.Context, in FinAccountInput) error {
	log := a.log(ctx, in.AccountID, nh.APIOpenFinAccountDirect)
	reg, err := a.Store.AccountRegistration(ctx, in.AccountID)
	if paysaga.ErrorCode(err) == paysaga.ECONFLICT {
		if acct, gerr := a.Store.GetAccount(ctx, in.AccountID); gerr == nil && acct.Status != paysaga.AccountPending {
			return newError(ErrTypeNotPending, "account "+in.AccountID+" is "+string(acct.Status), nil, withoutFinAccount(acct))
		}
	}
	if err != nil {
		return storeError(err)
	}
	if reg.Rgno != "" {
		return nil
	}
	number, birth, err := a.secrets(reg)
	if err != nil {
		return err
	}
	res, err := a.Bank.OpenFinAccountDirect(ctx, nh.OpenFinAccountRequest{
		Withdrawal: true, BrdtBrno: birth, Bncd: reg.Account.BankCode, Acno: number,
	})
	if err != nil {
		return inquiryError(log, "fin account registration", err)
	}
	if err := a.Store.SetAccountRgno(ctx, in.AccountID, res.Rgno); err != nil {
		// Retried: the bank registers the same account again under a new Rgno, harmlessly.
		return storeError(err)
	}
	log.Info("fin account requested", "rpcd", res.Header.Rpcd)
	return nil
}

// CheckFinAccount asks the bank once whether the fin account was issued. Issued: it is stored,
// the account becomes ACTIVE and the holder's birth date is forgotten, and the account is
// returned (its fin account never leaves this process: paysaga.Account does not serialize
// it, and it is cleared here as well). Not yet: a retryable ErrTypeInProgress. An account that
// is already ACTIVE is returned as is.
func (a *AccountActivities) CheckFinAccount(ctx context.Context, in FinAccountInput) (paysaga.Account, error) {
	log := a.log(ctx, in.AccountID, nh.APICheckOpenFinAccountDirect)
	acct, err := a.Store.GetAccount(ctx, in.AccountID)
	if err != nil {
		return paysaga.Account{}, storeError(err)
	}
	if acct.Status == paysaga.AccountActive {
		return withoutFinAccount(acct), nil
	}
	if acct.Status != paysaga.AccountPending {
		// Ended already (FAILED, e.g. number_in_use when it was activated; or DELETED): a retry
		// after the write answers with it, as OpenFinAccount does, instead of a conflict.
		return paysaga.Account{}, newError(ErrTypeNotPending, "account "+in.AccountID+" is "+string(acct.Status), nil, withoutFinAccount(acct))
	}
	reg, err := a.Store.AccountRegistration(ctx, in.AccountID)
	if err != nil {
		return paysaga.Account{}, storeError(err)
	}
	if reg.Rgno == "" {
		return paysaga.Account{}, newError(ErrTypeStateConflict, "account "+in.AccountID+" was never opened at the bank", nil)
	}
	birth, err := a.open(reg.Birth, seal.BirthDateAD(in.AccountID))
	if err != nil {
		return paysaga.Account{}, err
	}
	res, err := a.Bank.CheckOpenFinAccountDirect(ctx, reg.Rgno, birth)
	if err != nil {
		return paysaga.Account{}, inquiryError(log, "fin account issuance", err)
	}
	acct, err = a.Store.ActivateAccount(ctx, in.AccountID, res.FinAcno)
	if err != nil {
		return paysaga.Account{}, storeError(err)
	}
	log.Info("fin account issued", "rpcd", res.Header.Rpcd)
	return withoutFinAccount(acct), nil
}

// FailFinAccount makes the account FAILED with the reason and forgets the birth date.
func (a *AccountActivities) FailFinAccount(ctx context.Context, in FailFinAccountInput) (paysaga.Account, error) {
	acct, err := a.Store.FailAccountRegistration(ctx, in.AccountID, in.Code, in.Message)
	if err != nil {
		return paysaga.Account{}, storeError(err)
	}
	a.log(ctx, in.AccountID, "").Info("account registration failed", "rpcd", in.Code)
	return withoutFinAccount(acct), nil
}

// PublishAccountEvent publishes an account event with the stable event ID as message id. Any
// failure is retryable.
func (a *AccountActivities) PublishAccountEvent(ctx context.Context, in PublishAccountEventInput) error {
	acct := in.Account
	acct.FinAccount = ""
	return publish(ctx, a.Events, a.log(ctx, acct.ID, ""), in.EventID, in.Type, in.OccurredAt, acct)
}

// secrets opens the account number and the birth date of a registration.
func (a *AccountActivities) secrets(reg *store.AccountRegistration) (number, birth string, err error) {
	if number, err = a.open(reg.Number, seal.AccountNumberAD(reg.Account.ID)); err != nil {
		return "", "", err
	}
	if birth, err = a.open(reg.Birth, seal.BirthDateAD(reg.Account.ID)); err != nil {
		return "", "", err
	}
	return number, birth, nil
}

// open unseals one secret. A ciphertext that does not open (its key was removed from the
// configuration, or the row was tampered with) cannot be fixed by retrying.
func (a *AccountActivities) open(s store.SealedSecret, ad string) (string, error) {
	plain, err := a.Keys.Open(seal.Sealed{Ciphertext: s.Ciphertext, KeyID: s.KeyID}, ad)
	if err != nil {
		return "", newError(ErrTypeStateConflict, err.Error(), nil)
	}
	return string(plain), nil
}

// withoutFinAccount is the account as it may travel: without its fin account.
func withoutFinAccount(a *paysaga.Account) paysaga.Account {
	out := *a
	out.FinAccount = ""
	return out
}
