package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"paysaga"
	"paysaga/auth"
	"paysaga/seal"
	"paysaga/store"
	"paysaga/workflows"
)

// PaymentStore is what the payment handlers read and write directly. The API writes a payment's
// row, PENDING, before it starts the payment's workflow: the row is the authority the workflow's
// steps check their input against (the Temporal frontend is not trusted), and the payment is
// readable at its URL before any 2xx names it. Everything after is written by the workflow.
type PaymentStore interface {
	CreatePayment(ctx context.Context, p *paysaga.Payment) (*paysaga.Payment, bool, error)
	GetPayment(ctx context.Context, id string) (*paysaga.Payment, error)
	ListPayments(ctx context.Context, f store.PaymentFilter) (*store.PaymentPage, error)
	ListPaymentEvents(ctx context.Context, paymentID string) ([]*paysaga.PaymentEvent, error)
	GetAccount(ctx context.Context, id string) (*paysaga.Account, error)
	UserByID(ctx context.Context, id string) (*paysaga.User, error)
	IdempotencyStore
}

// IdempotencyStore keeps Idempotency-Key records (store.DB implements it).
type IdempotencyStore interface {
	ClaimIdempotencyKeyFor(ctx context.Context, scope, key, requestHash, resourceID string, ttl time.Duration) (*store.IdempotencyRecord, bool, error)
	CompleteIdempotencyKey(ctx context.Context, scope, key string, status int, body []byte, resourceID string) error
	DeleteIdempotencyKey(ctx context.Context, scope, key string) error
}

// PaymentStarter starts a payment workflow, or joins the one already running for the same
// payment, and waits up to wait for its outcome. It returns (nil, nil) when the outcome is not
// known in time: the payment goes on, and the client polls. saga.Payments implements it.
type PaymentStarter interface {
	StartPayment(ctx context.Context, in workflows.PaymentInput, wait time.Duration) (*paysaga.Payment, error)
}

// PaymentDeps configures the payment routes.
type PaymentDeps struct {
	Store   PaymentStore
	Starter PaymentStarter
	// SyncWait is how long POST /v1/payments waits for the outcome before answering 202.
	SyncWait time.Duration
	// IdempotencyTTL is how long an Idempotency-Key is remembered (at least 24h; default 24h).
	IdempotencyTTL time.Duration
	// Keys seals the account numbers support types in for refunds; without them such refunds
	// are refused (refunds to the payment's own account need none).
	Keys *seal.Keyring
	// Admission turns payments away past this instance's bounds (nil: no bound).
	Admission *Admission
}

type paymentHandlers struct {
	PaymentDeps
}

// registerPayments adds the payment routes to the authenticated /v1 group.
func (s *Server) registerPayments(d PaymentDeps) {
	if d.SyncWait <= 0 {
		d.SyncWait = 5 * time.Second
	}
	if d.IdempotencyTTL < 24*time.Hour {
		d.IdempotencyTTL = 24 * time.Hour
	}
	h := &paymentHandlers{d}
	g := s.v1.Group("/payments", h.available)
	g.POST("", RequireRole(paysaga.RoleCustomer), h.create)
	g.GET("", h.list)
	g.GET("/:id", h.get)
	g.GET("/:id/events", h.events)
	s.registerRefunds(h)
}

func (h *paymentHandlers) available(c *gin.Context) {
	if h.Store == nil || h.Starter == nil {
		Problem(c, paysaga.Errorf(paysaga.EUNAVAILABLE, "payments are not available on this server"))
	}
}

type createPaymentRequest struct {
	AccountID   string `json:"account_id" binding:"required,max=64"`
	Amount      int64  `json:"amount" binding:"required"`
	MerchantID  string `json:"merchant_id" binding:"required,max=64"`
	Description string `json:"description" binding:"max=200"`
	Capture     string `json:"capture" binding:"omitempty,oneof=automatic manual"`
	// CaptureWithin is how many seconds an uncaptured manual-capture payment waits before it
	// is canceled and refunded (the server's capture deadline when absent).
	CaptureWithin int64 `json:"capture_within" binding:"omitempty,min=1,max=2592000"`
}

// requestHash fingerprints a request so that a key reused with another body is recognised.
func requestHash(method, route string, body any) string {
	b, _ := json.Marshal(body) // a struct of strings and ints: cannot fail
	sum := sha256.Sum256(append([]byte(method+" "+route+"\n"), b...))
	return hex.EncodeToString(sum[:])
}

// bindKeyed reads what a creating POST starts with: its Idempotency-Key, then its JSON body into
// req. When either is wrong it answers the problem and returns false.
func bindKeyed(c *gin.Context, req any) (key string, ok bool) {
	key, err := idempotencyKey(c)
	if err == nil {
		err = BindJSON(c, req)
	}
	if err != nil {
		Problem(c, err)
		return "", false
	}
	return key, true
}

// validAmount answers 422 for an amount out of the domain's bounds and returns false.
func validAmount(c *gin.Context, amount int64) bool {
	if err := paysaga.ValidateAmount(amount); err != nil {
		Problem(c, &ValidationError{Message: paysaga.ErrorMessage(err), Fields: []FieldError{{Field: "amount", Message: paysaga.ErrorMessage(err)}}})
		return false
	}
	return true
}

func (h *paymentHandlers) create(c *gin.Context) {
	ctx := c.Request.Context()
	user := UserFrom(c)
	var req createPaymentRequest
	key, ok := bindKeyed(c, &req)
	if !ok || !validAmount(c, req.Amount) {
		return
	}
	if req.Capture == "" {
		// Omitted and explicit "automatic" are the same request, also to the idempotency check.
		req.Capture = string(paysaga.CaptureAutomatic)
	}
	if req.CaptureWithin != 0 && req.Capture != string(paysaga.CaptureManual) {
		Problem(c, &ValidationError{Message: "capture_within is for manual capture",
			Fields: []FieldError{{Field: "capture_within", Message: "needs \"capture\": \"manual\""}}})
		return
	}
	// Admission before anything is written: a payment turned away has claimed no key and
	// started nothing.
	release, err := h.Admission.admit(user.UserID, key)
	if err != nil {
		Problem(c, err)
		return
	}
	handedOff := false
	defer func() {
		if !handedOff {
			release()
		}
	}()

	// One key, one payment: the payment ID is chosen by whoever claims the key first, and
	// every retry with the key joins that payment's workflow instead of starting another.
	scope := "payments:" + user.UserID
	rec, created, handled := claimKey(c, h.Store, scope, key, requestHash(http.MethodPost, "/v1/payments", req),
		paysaga.PrefixPayment, h.IdempotencyTTL, func(rec *store.IdempotencyRecord) string { return "/v1/payments/" + rec.ResourceID })
	if handled {
		return
	}
	// A payment the key created is the answer when it has ended, and is joined while it runs,
	// whatever became of its account since (its workflow checks the account before any debit).
	var recorded *paysaga.Payment
	if !created {
		if recorded, err = h.Store.GetPayment(ctx, rec.ResourceID); paysaga.ErrorCode(err) == paysaga.ENOTFOUND {
			recorded = nil
		} else if err != nil {
			Problem(c, err)
			return
		} else if recorded.Status.Final() {
			h.answer(c, scope, key, recorded)
			return
		}
	}
	// Otherwise every caller checks the request against the current state, the first and the
	// joiners alike: a joiner may be the one that (re)starts the workflow if the first caller
	// died before it recorded the payment.
	if recorded == nil {
		if err := h.checkPayable(ctx, user.UserID, req); err != nil {
			if created {
				// Nothing was started: the key is free again for a corrected retry.
				_ = h.Store.DeleteIdempotencyKey(context.WithoutCancel(ctx), scope, key)
			}
			Problem(c, err)
			return
		}
	}
	in := workflows.PaymentInput{
		PaymentID:   rec.ResourceID,
		CustomerID:  user.UserID,
		MerchantID:  req.MerchantID,
		AccountID:   req.AccountID,
		Amount:      req.Amount,
		Description: req.Description,
		CaptureMode: paysaga.CaptureAutomatic,
		CreatedAt:   rec.CreatedAt,
	}
	if req.Capture == string(paysaga.CaptureManual) {
		in.CaptureMode = paysaga.CaptureManual
		if req.CaptureWithin > 0 {
			in.CaptureBy = rec.CreatedAt.Add(time.Duration(req.CaptureWithin) * time.Second)
		}
	}
	// The row first, idempotently on the payment's ID (a retry finds it): no workflow runs for
	// a payment the API did not record, and no 2xx names a payment that cannot be read.
	stored, _, err := h.Store.CreatePayment(ctx, &paysaga.Payment{
		ID: in.PaymentID, CustomerID: in.CustomerID, MerchantID: in.MerchantID, AccountID: in.AccountID,
		Amount: in.Amount, Currency: "KRW", Description: in.Description, Status: paysaga.PaymentPending,
		CaptureMode: in.CaptureMode, CreatedAt: in.CreatedAt,
	})
	if err != nil {
		if created && paysaga.ErrorCode(err) != paysaga.ECONFLICT {
			// Nothing was recorded or started: the key is free again.
			_ = h.Store.DeleteIdempotencyKey(context.WithoutCancel(ctx), scope, key)
		}
		Problem(c, err)
		return
	}
	if stored.Status.Final() {
		// A retry of a payment that has ended (its answer was not stored, or its key had
		// expired): the row is the answer; nothing is started again.
		h.answer(c, scope, key, stored)
		return
	}
	p, err := h.Starter.StartPayment(ctx, in, h.SyncWait)
	if err != nil {
		if paysaga.ErrorCode(err) == paysaga.EUNAVAILABLE {
			// The payment is recorded (PENDING) and may or may not be running: the same key
			// joins it, never starts another.
			err = WithRetryAfter(err, time.Second)
		}
		Problem(c, err)
		return
	}
	if p == nil {
		// Still running: the payment keeps its slot until the engine has finished with it,
		// not only while this request waited.
		handedOff = true
		h.Admission.hold(release, func(ctx context.Context) (bool, error) { return h.settled(ctx, in.PaymentID) })
		h.processing(c, in)
		return
	}
	h.answer(c, scope, key, p)
}

// settled reports whether the engine has finished working on payment id: final, or waiting for
// a person (AUTHORIZED: its merchant; UNKNOWN: an operator).
func (h *paymentHandlers) settled(ctx context.Context, id string) (bool, error) {
	p, err := h.Store.GetPayment(ctx, id)
	if err != nil {
		return false, err
	}
	return p.Status.Final() || p.Status == paysaga.PaymentAuthorized || p.Status == paysaga.PaymentUnknown, nil
}

// answer answers with payment p, then stores the answer for the key when it is final. The
// client is answered first: until the answer is stored, a retry with the key finds the key
// pending and the payment final, and is answered from the payment's row — the same answer
// (create) — so storing it is no reason to keep the client waiting.
func (h *paymentHandlers) answer(c *gin.Context, scope, key string, p *paysaga.Payment) {
	ctx := c.Request.Context()
	status, body := paymentAnswer(c, p)
	c.Header("Location", "/v1/payments/"+p.ID)
	writeAnswer(c, status, body)
	if !p.Status.Final() {
		// Only a final outcome is replayed as is; anything else is asked again on a retry
		// (which re-reads the payment: see create).
		return
	}
	c.Writer.Flush()
	if err := h.Store.CompleteIdempotencyKey(context.WithoutCancel(ctx), scope, key, status, body, p.ID); err != nil {
		Logger(c).WarnContext(ctx, "store idempotent answer", "payment_id", p.ID, "error", err.Error())
	}
}

// checkPayable refuses a payment from an account that is not the customer's own and active,
// or to someone who is not a merchant. Another customer's account is "not found", like one
// that does not exist.
func (h *paymentHandlers) checkPayable(ctx context.Context, customerID string, req createPaymentRequest) error {
	acct, err := h.Store.GetAccount(ctx, req.AccountID)
	if paysaga.ErrorCode(err) == paysaga.ENOTFOUND || (err == nil && acct.OwnerID != customerID) {
		return &ValidationError{Message: "no such account", Fields: []FieldError{{Field: "account_id", Message: "not an account of yours"}}}
	}
	if err != nil {
		return err
	}
	if acct.Status != paysaga.AccountActive {
		return &ValidationError{Message: "the account cannot be used for payments", Fields: []FieldError{{Field: "account_id", Message: "account is " + string(acct.Status)}}}
	}
	m, err := h.Store.UserByID(ctx, req.MerchantID)
	if paysaga.ErrorCode(err) == paysaga.ENOTFOUND || (err == nil && m.Role != paysaga.RoleMerchant) {
		return &ValidationError{Message: "no such merchant", Fields: []FieldError{{Field: "merchant_id", Message: "not a merchant"}}}
	}
	return err
}

// paymentAnswer is the answer for a payment whose outcome is known: 200 with the payment, or
// 402 problem+json with the bank's code and message when the bank declined it.
func paymentAnswer(c *gin.Context, p *paysaga.Payment) (int, []byte) {
	if p.Status != paysaga.PaymentFailed {
		b, _ := json.Marshal(p)
		return http.StatusOK, b
	}
	pd, _ := problemFor(c, paysaga.Errorf(paysaga.EDECLINED, "the payment failed: %s", declineDetail(p)))
	b, _ := json.Marshal(struct {
		ProblemDetails
		BankCode    string           `json:"bank_code,omitempty"`
		BankMessage string           `json:"bank_message,omitempty"`
		Payment     *paysaga.Payment `json:"payment"`
	}{pd, p.FailureCode, p.FailureMessage, p})
	return pd.Status, b
}

func declineDetail(p *paysaga.Payment) string {
	if p.FailureMessage != "" {
		return p.FailureMessage
	}
	return p.FailureCode
}

// processing answers 202: the payment is running and its outcome is not known yet. It is
// readable at its URL (the API recorded it before starting it); if it cannot be read now, the
// answer is 503 and the client retries with the same key.
func (h *paymentHandlers) processing(c *gin.Context, in workflows.PaymentInput) {
	p, err := h.Store.GetPayment(c.Request.Context(), in.PaymentID)
	if err != nil {
		Problem(c, WithRetryAfter(errors.Join(paysaga.Errorf(paysaga.EUNAVAILABLE,
			"the payment's state cannot be read now; retry with the same Idempotency-Key"), err), time.Second))
		return
	}
	if !p.Status.Final() && p.Status != paysaga.PaymentUnknown && p.Status != paysaga.PaymentAuthorized {
		p.Status = paysaga.PaymentProcessing
	}
	c.Header("Location", "/v1/payments/"+p.ID)
	c.Header("Retry-After", "1")
	c.JSON(http.StatusAccepted, gin.H{
		"payment":  p,
		"status":   p.Status,
		"poll_url": "/v1/payments/" + p.ID,
	})
}

// visible reports whether user may see payment p: its customer, its merchant, or an operator.
func visible(user *auth.Claims, p *paysaga.Payment) bool {
	switch user.Role {
	case paysaga.RoleOperator:
		return true
	case paysaga.RoleMerchant:
		return p.MerchantID == user.UserID
	default:
		return p.CustomerID == user.UserID
	}
}

// loadVisible returns the payment named in the path if the caller may see it; anyone else gets
// the same 404 as for a payment that does not exist.
func (h *paymentHandlers) loadVisible(c *gin.Context) (*paysaga.Payment, bool) {
	id := c.Param("id")
	notFound := paysaga.Errorf(paysaga.ENOTFOUND, "no such payment")
	if !paysaga.HasPrefix(id, paysaga.PrefixPayment) {
		Problem(c, notFound)
		return nil, false
	}
	p, err := h.Store.GetPayment(c.Request.Context(), id)
	if paysaga.ErrorCode(err) == paysaga.ENOTFOUND {
		// The same words as for someone else's payment, or the detail would tell them apart.
		Problem(c, notFound)
		return nil, false
	}
	if err != nil {
		Problem(c, err)
		return nil, false
	}
	if !visible(UserFrom(c), p) {
		Problem(c, notFound)
		return nil, false
	}
	return p, true
}

func (h *paymentHandlers) get(c *gin.Context) {
	if p, ok := h.loadVisible(c); ok {
		c.JSON(http.StatusOK, p)
	}
}

// events answers a payment's history, oldest first. Who did what (actor: an operator's or a
// merchant's user ID) and the reasons written with it (an operator's resolution note, a
// merchant's refund reason, an engine's internal cause) are for the people who act on the
// payment — its merchant and operators. Its customer sees what happened, when, and the bank's
// own code and message, but not who acted nor their notes: operator IDs are internal, and
// notes are written for support, not for the customer.
func (h *paymentHandlers) events(c *gin.Context) {
	p, ok := h.loadVisible(c)
	if !ok {
		return
	}
	evs, err := h.Store.ListPaymentEvents(c.Request.Context(), p.ID)
	if err != nil {
		Problem(c, err)
		return
	}
	if role := UserFrom(c).Role; role != paysaga.RoleMerchant && role != paysaga.RoleOperator {
		shown := make([]*paysaga.PaymentEvent, len(evs))
		for i, e := range evs {
			e := *e
			e.Actor, e.Reason = "", ""
			shown[i] = &e
		}
		evs = shown
	}
	c.JSON(http.StatusOK, gin.H{"data": evs})
}

func (h *paymentHandlers) list(c *gin.Context) {
	user := UserFrom(c)
	f := store.PaymentFilter{
		Status:        paysaga.PaymentStatus(c.Query("status")),
		StartingAfter: c.Query("starting_after"),
	}
	var ok bool
	if f.Limit, ok = listLimit(c); !ok {
		return
	}
	switch user.Role {
	case paysaga.RoleOperator:
		f.CustomerID, f.MerchantID = c.Query("customer_id"), c.Query("merchant_id")
	case paysaga.RoleMerchant:
		f.MerchantID = user.UserID
	default:
		f.CustomerID = user.UserID
	}
	page, err := h.Store.ListPayments(c.Request.Context(), f)
	if err != nil {
		Problem(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"data": page.Payments, "has_more": page.HasMore})
}
