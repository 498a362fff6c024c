package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"paysaga"
	"paysaga/balance"
	"paysaga/nh"
	"paysaga/seal"
	"paysaga/store"
	"paysaga/workflows"
)

// AccountStore is what the account handlers read and write directly. Registration outcomes
// (ACTIVE, FAILED) are written by FinAccountWorkflow, never here.
type AccountStore interface {
	GetAccount(ctx context.Context, id string) (*paysaga.Account, error)
	ListAccounts(ctx context.Context, f store.AccountFilter) (*store.AccountPage, error)
	RegisterAccount(ctx context.Context, a *paysaga.Account, number store.SealedAccountNumber, birth store.SealedSecret) (*paysaga.Account, bool, error)
	RestartAccountRegistration(ctx context.Context, id string, birth store.SealedSecret) (*paysaga.Account, error)
	SetAccountNickname(ctx context.Context, id, nickname string) (*paysaga.Account, error)
	DeleteAccount(ctx context.Context, id string) (*paysaga.Account, error)
	IdempotencyStore
}

// AccountStarter starts the registration workflow of a PENDING account, or joins the one
// running, and waits up to wait for its outcome: the account ACTIVE or FAILED, or (nil, nil)
// when the bank has not issued the fin account in time (the client polls). saga.Accounts
// implements it.
type AccountStarter interface {
	StartRegistration(ctx context.Context, in workflows.FinAccountInput, wait time.Duration) (*paysaga.Account, error)
}

// BalanceReader answers balances (*balance.Service).
type BalanceReader interface {
	Get(ctx context.Context, acct *paysaga.Account, refresh bool) (balance.Balance, error)
}

// AccountDeps configures the account routes. Without Store, Starter and Keys they answer 503;
// without Balances, only the balance route does.
type AccountDeps struct {
	Store    AccountStore
	Starter  AccountStarter
	Keys     *seal.Keyring
	Balances BalanceReader
	// SyncWait is how long POST /v1/accounts waits for the bank before answering 202.
	SyncWait time.Duration
	// IdempotencyTTL is how long an Idempotency-Key is remembered (at least 24h; default 24h).
	IdempotencyTTL time.Duration
	// Now is the clock birth dates are checked against; time.Now when nil.
	Now func() time.Time
}

// BankCodes are the banks whose accounts can be registered (NH-API.md).
var BankCodes = []string{"011", "012", "004", "088", "081", "003", "020"}

type accountHandlers struct {
	AccountDeps
}

// registerAccounts adds the account routes to the authenticated /v1 group. Every route works
// on the caller's own accounts only; anyone else's is answered like one that does not exist.
func (s *Server) registerAccounts(d AccountDeps) {
	if d.SyncWait <= 0 {
		d.SyncWait = 5 * time.Second
	}
	if d.IdempotencyTTL < 24*time.Hour {
		d.IdempotencyTTL = 24 * time.Hour
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	h := &accountHandlers{d}
	g := s.v1.Group("/accounts", h.available)
	g.POST("", RequireRole(paysaga.RoleCustomer), h.create)
	g.GET("", h.list)
	g.GET("/:id", h.get)
	g.PATCH("/:id", h.update)
	g.DELETE("/:id", h.remove)
	g.GET("/:id/balance", h.balance)
}

func (h *accountHandlers) available(c *gin.Context) {
	if h.Store == nil || h.Starter == nil || h.Keys == nil {
		Problem(c, paysaga.Errorf(paysaga.EUNAVAILABLE, "accounts are not available on this server"))
	}
}

type createAccountRequest struct {
	BankCode      string `json:"bank_code" binding:"required"`
	AccountNumber string `json:"account_number" binding:"required,max=32"`
	BirthDate     string `json:"birth_date" binding:"required"`
	Nickname      string `json:"nickname"`
}

// maxNickname is the longest nickname, in characters.
const maxNickname = 50

// check validates what the binding tags cannot, and returns the account number without
// separators. Messages never quote the number or the birth date.
func (r *createAccountRequest) check(now time.Time) (string, error) {
	var fields []FieldError
	if !slices.Contains(BankCodes, r.BankCode) {
		fields = append(fields, FieldError{Field: "bank_code", Message: "must be one of: " + fmt.Sprint(BankCodes)})
	}
	number := seal.NormalizeAccountNumber(r.AccountNumber)
	if len(number) < 6 || len(number) > 16 || !onlyDigits(number) {
		fields = append(fields, FieldError{Field: "account_number", Message: "must be 6 to 16 digits (hyphens allowed)"})
	}
	if msg := checkBirthDate(r.BirthDate, now); msg != "" {
		fields = append(fields, FieldError{Field: "birth_date", Message: msg})
	}
	if utf8.RuneCountInString(r.Nickname) > maxNickname {
		fields = append(fields, FieldError{Field: "nickname", Message: "must be at most 50 characters long"})
	}
	if len(fields) > 0 {
		return "", &ValidationError{Message: "some fields are invalid", Fields: fields}
	}
	return number, nil
}

// checkBirthDate accepts a real calendar date YYYYMMDD, in the past (Korea time), not before 1900.
func checkBirthDate(s string, now time.Time) string {
	if len(s) != 8 || !onlyDigits(s) {
		return "must be a date written YYYYMMDD"
	}
	d, err := time.ParseInLocation("20060102", s, nh.KST)
	if err != nil {
		return "must be a real date"
	}
	if d.Year() < 1900 {
		return "must be after 1900"
	}
	if today, _ := time.ParseInLocation("20060102", nh.Today(now), nh.KST); !d.Before(today) {
		return "must be in the past"
	}
	return ""
}

func onlyDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func (h *accountHandlers) create(c *gin.Context) {
	ctx := c.Request.Context()
	user := UserFrom(c)
	var req createAccountRequest
	key, ok := bindKeyed(c, &req)
	if !ok {
		return
	}
	number, err := req.check(h.Now())
	if err != nil {
		Problem(c, err)
		return
	}

	// The fingerprint of the request is keyed: a plain hash of a short account number and a
	// birth date would be reversible by brute force from the idempotency table.
	numberHash := h.Keys.AccountNumberHash(req.BankCode, number)
	fingerprint := requestHash(http.MethodPost, "/v1/accounts", []string{
		req.BankCode, numberHash, h.Keys.MAC("birth-date", req.BirthDate), req.Nickname,
	})
	scope := "accounts:" + user.UserID
	rec, created, handled := claimKey(c, h.Store, scope, key, fingerprint, paysaga.PrefixAccount, h.IdempotencyTTL,
		func(rec *store.IdempotencyRecord) string { return "/v1/accounts/" + rec.ResourceID })
	if handled {
		return
	}
	forget := func() {
		if created {
			// Nothing was started: the key is free again for a corrected retry.
			_ = h.Store.DeleteIdempotencyKey(context.WithoutCancel(ctx), scope, key)
		}
	}

	acct, fresh, err := h.registerOrFind(ctx, rec.ResourceID, user.UserID, req, number, numberHash)
	if err != nil {
		forget()
		Problem(c, err)
		return
	}
	if acct.Status == paysaga.AccountPending {
		out, err := h.Starter.StartRegistration(ctx, workflows.FinAccountInput{AccountID: acct.ID, OwnerID: user.UserID}, h.SyncWait)
		if err != nil {
			if paysaga.ErrorCode(err) == paysaga.EUNAVAILABLE {
				// Not started, or not confirmed: the PENDING account waits for the retry with
				// the same Idempotency-Key, which starts it.
				err = WithRetryAfter(err, 2*time.Second)
			}
			Problem(c, err)
			return
		}
		if out == nil {
			h.pending(c, acct)
			return
		}
		acct = out
	}
	status, body := accountAnswer(c, acct, fresh)
	if err := h.Store.CompleteIdempotencyKey(context.WithoutCancel(ctx), scope, key, status, body, acct.ID); err != nil {
		Logger(c).WarnContext(ctx, "store idempotent answer", "account_id", acct.ID, "error", err.Error())
	}
	c.Header("Location", "/v1/accounts/"+acct.ID)
	writeAnswer(c, status, body)
}

// registerOrFind stores the account PENDING under id, or finds the caller's own account with
// the same number at the same bank: returned (ACTIVE or PENDING) or registered again (FAILED
// or DELETED). fresh is false when the answer is an account the caller had registered before
// this request.
//
// Another customer's account with the number is never looked at here: every registration goes
// to the bank, and only one the bank verifies can take a number nobody holds ACTIVE
// (store.FailureNumberRegistered). A stranger typing someone's number with a wrong birth date
// gets the bank's refusal, exactly as for a number never registered here, and blocks nobody.
func (h *accountHandlers) registerOrFind(ctx context.Context, id, owner string, req createAccountRequest, number, numberHash string) (*paysaga.Account, bool, error) {
	sealedNumber, err := h.Keys.Seal([]byte(number), seal.AccountNumberAD(id))
	if err != nil {
		return nil, false, err
	}
	sealedBirth, err := h.Keys.Seal([]byte(req.BirthDate), seal.BirthDateAD(id))
	if err != nil {
		return nil, false, err
	}
	acct, created, err := h.Store.RegisterAccount(ctx,
		&paysaga.Account{ID: id, OwnerID: owner, BankCode: req.BankCode, MaskedNumber: seal.Mask(number), Nickname: req.Nickname},
		store.SealedAccountNumber{Ciphertext: sealedNumber.Ciphertext, KeyID: sealedNumber.KeyID, Hash: numberHash},
		store.SealedSecret{Ciphertext: sealedBirth.Ciphertext, KeyID: sealedBirth.KeyID})
	if err != nil {
		return nil, false, err
	}
	if created {
		return acct, true, nil
	}
	if acct.OwnerID != owner { // the store returns the caller's own only
		return nil, false, fmt.Errorf("register account %s: the store returned another owner's account", id)
	}
	fresh := acct.ID == id // a retry of this very request
	if acct.Status == paysaga.AccountFailed || acct.Status == paysaga.AccountDeleted {
		if fresh {
			return acct, true, nil // this request's own failed registration: its answer stands
		}
		birth, err := h.Keys.Seal([]byte(req.BirthDate), seal.BirthDateAD(acct.ID))
		if err != nil {
			return nil, false, err
		}
		if acct, err = h.Store.RestartAccountRegistration(ctx, acct.ID, store.SealedSecret{Ciphertext: birth.Ciphertext, KeyID: birth.KeyID}); err != nil {
			return nil, false, err
		}
	}
	return acct, fresh, nil
}

// accountAnswer is the answer for a registration that ended: 201 with the new account, 200
// with the caller's account registered before, or 422 problem+json with code "declined" and
// the bank's code and message when the bank refused (or did not issue in time).
func accountAnswer(c *gin.Context, a *paysaga.Account, fresh bool) (int, []byte) {
	if a.Status != paysaga.AccountFailed {
		b, _ := json.Marshal(a)
		if fresh {
			return http.StatusCreated, b
		}
		return http.StatusOK, b
	}
	reason := a.FailureMessage
	if reason == "" {
		reason = a.FailureCode
	}
	pd, _ := problemFor(c, paysaga.Errorf(paysaga.EDECLINED, "the bank did not register the account: %s", reason))
	// Not 402: no payment is involved. The request, as it is, cannot succeed.
	pd.Status, pd.Title = http.StatusUnprocessableEntity, "Registration refused by the bank"
	b, _ := json.Marshal(struct {
		ProblemDetails
		BankCode    string           `json:"bank_code,omitempty"`
		BankMessage string           `json:"bank_message,omitempty"`
		Account     *paysaga.Account `json:"account"`
	}{pd, a.FailureCode, a.FailureMessage, a})
	return pd.Status, b
}

// pending answers 202: the bank is still issuing the fin account. 202 promises that the poll
// URL answers: the account is read back first, and when it cannot be, the answer is 503 (retry
// with the same Idempotency-Key) rather than a URL that might answer 404.
func (h *accountHandlers) pending(c *gin.Context, a *paysaga.Account) {
	cur, err := h.Store.GetAccount(c.Request.Context(), a.ID)
	if err != nil {
		Problem(c, WithRetryAfter(errors.Join(
			paysaga.Errorf(paysaga.EUNAVAILABLE, "the registration could not be confirmed; retry with the same Idempotency-Key"), err), 2*time.Second))
		return
	}
	a = cur
	c.Header("Location", "/v1/accounts/"+a.ID)
	c.Header("Retry-After", "2")
	c.JSON(http.StatusAccepted, gin.H{"account": a, "status": a.Status, "poll_url": "/v1/accounts/" + a.ID})
}

// loadOwned returns the account named in the path if it is the caller's; anyone else gets the
// same 404 as for an account that does not exist.
func (h *accountHandlers) loadOwned(c *gin.Context) (*paysaga.Account, bool) {
	id := c.Param("id")
	notFound := paysaga.Errorf(paysaga.ENOTFOUND, "no such account")
	if !paysaga.HasPrefix(id, paysaga.PrefixAccount) {
		Problem(c, notFound)
		return nil, false
	}
	a, err := h.Store.GetAccount(c.Request.Context(), id)
	if paysaga.ErrorCode(err) == paysaga.ENOTFOUND {
		err = notFound // the store's own words would tell the two cases apart
	}
	if err != nil {
		Problem(c, err)
		return nil, false
	}
	if a.OwnerID != UserFrom(c).UserID {
		Problem(c, notFound)
		return nil, false
	}
	return a, true
}

func (h *accountHandlers) get(c *gin.Context) {
	if a, ok := h.loadOwned(c); ok {
		c.JSON(http.StatusOK, a)
	}
}

func (h *accountHandlers) list(c *gin.Context) {
	f := store.AccountFilter{
		OwnerID:       UserFrom(c).UserID,
		Status:        paysaga.AccountStatus(c.Query("status")),
		StartingAfter: c.Query("starting_after"),
	}
	var ok bool
	if f.Limit, ok = listLimit(c); !ok {
		return
	}
	page, err := h.Store.ListAccounts(c.Request.Context(), f)
	if err != nil {
		Problem(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"data": page.Accounts, "has_more": page.HasMore})
}

type updateAccountRequest struct {
	Nickname *string `json:"nickname" binding:"required"`
}

func (h *accountHandlers) update(c *gin.Context) {
	var req updateAccountRequest
	if err := BindJSON(c, &req); err != nil {
		Problem(c, err)
		return
	}
	if utf8.RuneCountInString(*req.Nickname) > maxNickname {
		Problem(c, &ValidationError{Message: "some fields are invalid", Fields: []FieldError{{Field: "nickname", Message: "must be at most 50 characters long"}}})
		return
	}
	a, ok := h.loadOwned(c)
	if !ok {
		return
	}
	a, err := h.Store.SetAccountNickname(c.Request.Context(), a.ID, *req.Nickname)
	if err != nil {
		Problem(c, err)
		return
	}
	c.JSON(http.StatusOK, a)
}

func (h *accountHandlers) remove(c *gin.Context) {
	a, ok := h.loadOwned(c)
	if !ok {
		return
	}
	a, err := h.Store.DeleteAccount(c.Request.Context(), a.ID)
	if err != nil {
		Problem(c, err)
		return
	}
	c.JSON(http.StatusOK, a)
}

func (h *accountHandlers) balance(c *gin.Context) {
	if h.Balances == nil {
		Problem(c, paysaga.Errorf(paysaga.EUNAVAILABLE, "balances are not available on this server"))
		return
	}
	var refresh bool
	switch c.Query("refresh") {
	case "", "false":
	case "true":
		refresh = true
	default:
		Problem(c, &ValidationError{Message: "refresh must be true or false", Fields: []FieldError{{Field: "refresh", Message: "true or false"}}})
		return
	}
	a, ok := h.loadOwned(c)
	if !ok {
		return
	}
	b, err := h.Balances.Get(c.Request.Context(), a, refresh)
	if err != nil {
		Problem(c, err)
		return
	}
	// How old the figure is (RFC 9111 Age, whole seconds): a refresh asked again within a few
	// seconds is answered with the balance just fetched (balance.Config.RefreshEvery).
	if age := h.Now().Sub(b.AsOf); !b.AsOf.IsZero() && age > 0 {
		c.Header("Age", strconv.FormatInt(int64(age/time.Second), 10))
	} else {
		c.Header("Age", "0")
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, b)
}
