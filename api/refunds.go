package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"paysaga"
	"paysaga/nh"
	"paysaga/seal"
	"paysaga/store"
	"paysaga/workflows"
)

// RefundStore is what the refund routes read and write directly: the refunds themselves are
// written by the workflow; the API only keeps a typed-in destination, sealed, for it.
type RefundStore interface {
	GetRefund(ctx context.Context, id string) (*paysaga.Refund, error)
	ListRefunds(ctx context.Context, f store.RefundFilter) (*store.RefundPage, error)
	SaveRefundDestination(ctx context.Context, refundID string, d store.SealedDestination) error
}

// RefundStarter starts refund workflows and sends the merchant's capture or cancel to a
// payment workflow. saga.Payments implements it.
type RefundStarter interface {
	// StartRefund starts the refund's workflow (or joins the running one) and waits up to wait
	// for its outcome: the refund, (nil, nil) when it is not known in time, or an ECONFLICT
	// error saying why the refund was refused.
	StartRefund(ctx context.Context, in workflows.RefundInput, wait time.Duration) (*paysaga.Refund, error)
	// DecidePayment sends UpdateCapture or UpdateCancel and waits up to wait for the payment
	// to leave AUTHORIZED; (nil, nil) when it has not in time.
	DecidePayment(ctx context.Context, paymentID, update string, d workflows.CaptureDecision, wait time.Duration) (*paysaga.Payment, error)
}

type refundHandlers struct {
	*paymentHandlers
	refunds RefundStore
	starter RefundStarter
}

// registerRefunds adds the refund, capture and cancel routes. They use the payment routes'
// store and starter when those can serve refunds (store.DB and saga.Payments can); else
// they answer 503.
func (s *Server) registerRefunds(h *paymentHandlers) {
	r := &refundHandlers{paymentHandlers: h}
	r.refunds, _ = h.Store.(RefundStore)
	r.starter, _ = h.Starter.(RefundStarter)
	g := s.v1.Group("", r.available)
	merchant := RequireRole(paysaga.RoleMerchant, paysaga.RoleOperator)
	g.POST("/payments/:id/refunds", merchant, r.create)
	g.GET("/payments/:id/refunds", r.list)
	g.GET("/refunds/:id", r.get)
	g.POST("/payments/:id/capture", merchant, r.decide(workflows.UpdateCapture))
	g.POST("/payments/:id/cancel", merchant, r.decide(workflows.UpdateCancel))
}

func (h *refundHandlers) available(c *gin.Context) {
	if h.Store == nil || h.refunds == nil || h.starter == nil {
		Problem(c, paysaga.Errorf(paysaga.EUNAVAILABLE, "refunds are not available on this server"))
	}
}

// destinationRequest is an account an operator types in for a refund (support's action when
// the paying account is closed). There is no holder name: whose account it must be is asked of
// the bank for the account that paid, never taken from the request (issue 11, item 1).
type destinationRequest struct {
	BankCode      string `json:"bank_code" binding:"required,len=3,numeric"`
	AccountNumber string `json:"account_number" binding:"required,max=32"`
}

type createRefundRequest struct {
	Amount      int64               `json:"amount" binding:"required"`
	Reason      string              `json:"reason" binding:"max=500"`
	Destination *destinationRequest `json:"destination"`
}

// loadDecidable returns the payment named in the path if the caller may refund, capture or
// cancel it: its merchant or an operator. Anyone else gets the same 404 as for a payment that
// does not exist.
func (h *refundHandlers) loadDecidable(c *gin.Context) (*paysaga.Payment, bool) {
	p, ok := h.loadVisible(c)
	if !ok {
		return nil, false
	}
	if u := UserFrom(c); u.Role != paysaga.RoleOperator && p.MerchantID != u.UserID {
		Problem(c, paysaga.Errorf(paysaga.ENOTFOUND, "no such payment"))
		return nil, false
	}
	return p, true
}

func (h *refundHandlers) create(c *gin.Context) {
	ctx := c.Request.Context()
	user := UserFrom(c)
	var req createRefundRequest
	key, ok := bindKeyed(c, &req)
	if !ok || !validAmount(c, req.Amount) {
		return
	}
	var number string
	if d := req.Destination; d != nil {
		if user.Role != paysaga.RoleOperator {
			// A merchant refunds to the account that paid, always: sending a customer's money
			// to an account of one's choosing is a support action, an operator's.
			Problem(c, paysaga.Errorf(paysaga.EFORBIDDEN, "only an operator may send a refund to another account than the one that paid"))
			return
		}
		number = seal.NormalizeAccountNumber(d.AccountNumber)
		if len(number) < 6 || len(number) > 16 || strings.Trim(number, "0123456789") != "" {
			Problem(c, &ValidationError{Message: "the account number must be 6 to 16 digits",
				Fields: []FieldError{{Field: "destination.account_number", Message: "6 to 16 digits"}}})
			return
		}
		if h.Keys == nil {
			Problem(c, paysaga.Errorf(paysaga.EUNAVAILABLE, "refunds to a typed-in account are not available on this server"))
			return
		}
	}
	p, ok := h.loadDecidable(c)
	if !ok {
		return
	}

	// The fingerprint of the request must not make the account number guessable: it is
	// hashed with the keyed MAC, not in clear.
	fp := req
	if fp.Destination != nil {
		d := *fp.Destination
		d.AccountNumber = h.Keys.MAC("refund-destination", d.BankCode, number)
		fp.Destination = &d
	}
	route := "/v1/payments/" + p.ID + "/refunds"
	hash := requestHash(http.MethodPost, route, fp)
	scope := "refunds:" + user.UserID
	rec, created, handled := claimKey(c, h.Store, scope, key, hash, paysaga.PrefixRefund, h.IdempotencyTTL,
		func(rec *store.IdempotencyRecord) string {
			if rec.ResponseStatus < 400 || rec.ResponseStatus == http.StatusPaymentRequired {
				return "/v1/refunds/" + rec.ResourceID
			}
			if rec.ResponseStatus == http.StatusConflict {
				// A refused refund is readable at its URL, with its refusal (refused before
				// that was so: no row, no Location).
				if _, err := h.refunds.GetRefund(ctx, rec.ResourceID); err == nil {
					return "/v1/refunds/" + rec.ResourceID
				}
			}
			return ""
		})
	if handled {
		return
	}
	if !created {
		// A refund the key created that has ended (its answer was not stored, or its key had
		// expired) is the answer: its workflow is not asked again (it may be long gone, and a
		// new run would publish its outcome a second time).
		if r, err := h.refunds.GetRefund(ctx, rec.ResourceID); err == nil && r.Status.Final() {
			if r.FailureCode == store.RefundRefused {
				h.refundRefused(c, scope, key, r.ID, paysaga.Errorf(paysaga.ECONFLICT, "%s", r.FailureMessage))
			} else {
				h.refundDone(c, scope, key, r)
			}
			return
		}
	}
	if d := req.Destination; d != nil {
		if err := h.saveDestination(ctx, rec.ResourceID, d, number); err != nil {
			if created {
				_ = h.Store.DeleteIdempotencyKey(context.WithoutCancel(ctx), scope, key)
			}
			Problem(c, err)
			return
		}
	}
	in := workflows.RefundInput{
		RefundID: rec.ResourceID, PaymentID: p.ID, CustomerID: p.CustomerID, MerchantID: p.MerchantID,
		Amount: req.Amount, Reason: req.Reason, Actor: user.UserID, CreatedAt: rec.CreatedAt,
	}
	r, err := h.starter.StartRefund(ctx, in, h.SyncWait)
	if paysaga.ErrorCode(err) == paysaga.ECONFLICT {
		// Refused (more than is left to refund, a payment that cannot be refunded): nothing
		// was reserved or sent, and the same request gets the same answer. The workflow
		// recorded the refused refund (FAILED, failure code "refused"): it is readable at its
		// URL, and the answer points there.
		h.refundRefused(c, scope, key, in.RefundID, err)
		return
	}
	if err != nil {
		if paysaga.ErrorCode(err) == paysaga.EUNAVAILABLE {
			err = WithRetryAfter(err, time.Second)
		}
		Problem(c, err)
		return
	}
	if r == nil || !r.Status.Final() {
		h.refundPending(c, in)
		return
	}
	h.refundDone(c, scope, key, r)
}

// refundRefused answers 409 for a refund refused when it was asked for, pointing at the
// refused refund when it is recorded, and stores the answer for the key.
func (h *refundHandlers) refundRefused(c *gin.Context, scope, key, refundID string, refusal error) {
	ctx := c.Request.Context()
	pd, _ := problemFor(c, refusal)
	if _, err := h.refunds.GetRefund(ctx, refundID); err == nil {
		c.Header("Location", "/v1/refunds/"+refundID)
	}
	body, _ := json.Marshal(pd)
	if err := h.Store.CompleteIdempotencyKey(context.WithoutCancel(ctx), scope, key, pd.Status, body, refundID); err != nil {
		Logger(c).WarnContext(ctx, "store idempotent answer", "refund_id", refundID, "error", err.Error())
	}
	writeAnswer(c, pd.Status, body)
}

// refundDone answers with a settled refund and stores the answer for the key.
func (h *refundHandlers) refundDone(c *gin.Context, scope, key string, r *paysaga.Refund) {
	ctx := c.Request.Context()
	status, body := refundAnswer(c, r)
	if err := h.Store.CompleteIdempotencyKey(context.WithoutCancel(ctx), scope, key, status, body, r.ID); err != nil {
		Logger(c).WarnContext(ctx, "store idempotent answer", "refund_id", r.ID, "error", err.Error())
	}
	c.Header("Location", "/v1/refunds/"+r.ID)
	writeAnswer(c, status, body)
}

// saveDestination seals a typed-in account for the refund's workflow to find. The workflow's
// credit step pays it only if the bank names the same depositor for it as for the account
// that paid; the refund's history records it (masked) with the operator who typed it.
func (h *refundHandlers) saveDestination(ctx context.Context, refundID string, d *destinationRequest, number string) error {
	sealed, err := h.Keys.SealRefundDestination(refundID, seal.RefundDestination{Number: number})
	if err != nil {
		return err
	}
	kind := paysaga.DestinationOtherBank
	if nh.IsNHBank(d.BankCode) {
		kind = paysaga.DestinationAccountNumber
	}
	return h.refunds.SaveRefundDestination(ctx, refundID, store.SealedDestination{
		Kind: kind, BankCode: d.BankCode, Masked: paysaga.MaskAccountNumber(number),
		Sealed: store.SealedSecret{Ciphertext: sealed.Ciphertext, KeyID: sealed.KeyID},
	})
}

// refundAnswer is the answer for a settled refund: 200 with the refund, or 402 problem+json
// with the bank's code and message when it failed (its reservation given back).
func refundAnswer(c *gin.Context, r *paysaga.Refund) (int, []byte) {
	if r.Status != paysaga.RefundFailed {
		b, _ := json.Marshal(r)
		return http.StatusOK, b
	}
	detail := r.FailureMessage
	if detail == "" {
		detail = r.FailureCode
	}
	pd, _ := problemFor(c, paysaga.Errorf(paysaga.EDECLINED, "the refund failed: %s", detail))
	b, _ := json.Marshal(struct {
		ProblemDetails
		FailureCode    string          `json:"failure_code,omitempty"`
		FailureMessage string          `json:"failure_message,omitempty"`
		Refund         *paysaga.Refund `json:"refund"`
	}{pd, r.FailureCode, r.FailureMessage, r})
	return pd.Status, b
}

// refundPending answers 202: the refund runs and its outcome is not known yet — but only once
// its workflow has recorded it, so that the poll URL answers. Before that the answer is 503,
// and the client retries with the same key (joining the same refund).
func (h *refundHandlers) refundPending(c *gin.Context, in workflows.RefundInput) {
	r, err := h.refunds.GetRefund(c.Request.Context(), in.RefundID)
	if err != nil {
		Problem(c, WithRetryAfter(errors.Join(paysaga.Errorf(paysaga.EUNAVAILABLE,
			"the refund is not recorded yet; retry with the same Idempotency-Key"), err), time.Second))
		return
	}
	c.Header("Location", "/v1/refunds/"+r.ID)
	c.Header("Retry-After", "1")
	c.JSON(http.StatusAccepted, gin.H{"refund": r, "status": r.Status, "poll_url": "/v1/refunds/" + r.ID})
}

func (h *refundHandlers) get(c *gin.Context) {
	id := c.Param("id")
	notFound := paysaga.Errorf(paysaga.ENOTFOUND, "no such refund")
	if !paysaga.HasPrefix(id, paysaga.PrefixRefund) {
		Problem(c, notFound)
		return
	}
	r, err := h.refunds.GetRefund(c.Request.Context(), id)
	if paysaga.ErrorCode(err) == paysaga.ENOTFOUND {
		Problem(c, notFound)
		return
	}
	if err != nil {
		Problem(c, err)
		return
	}
	p, err := h.Store.GetPayment(c.Request.Context(), r.PaymentID)
	if err != nil || !visible(UserFrom(c), p) {
		Problem(c, notFound)
		return
	}
	c.JSON(http.StatusOK, r)
}

func (h *refundHandlers) list(c *gin.Context) {
	p, ok := h.loadVisible(c)
	if !ok {
		return
	}
	f := store.RefundFilter{PaymentID: p.ID, StartingAfter: c.Query("starting_after")}
	if f.Limit, ok = listLimit(c); !ok {
		return
	}
	page, err := h.refunds.ListRefunds(c.Request.Context(), f)
	if err != nil {
		Problem(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"data": page.Refunds, "has_more": page.HasMore})
}

type decisionRequest struct {
	Reason string `json:"reason" binding:"max=500"`
}

// decide serves capture and cancel of an AUTHORIZED manual-capture payment. A retry of the
// same decision gets the same answer; the other decision afterwards is 409.
func (h *refundHandlers) decide(update string) gin.HandlerFunc {
	return func(c *gin.Context) {
		var req decisionRequest
		if c.Request.ContentLength != 0 {
			if err := BindJSON(c, &req); err != nil {
				Problem(c, err)
				return
			}
		}
		p, ok := h.loadDecidable(c)
		if !ok {
			return
		}
		d := workflows.CaptureDecision{Actor: UserFrom(c).UserID, Reason: req.Reason}
		got, err := h.starter.DecidePayment(c.Request.Context(), p.ID, update, d, h.SyncWait)
		if err != nil {
			Problem(c, err)
			return
		}
		if got == nil {
			if got, err = h.Store.GetPayment(c.Request.Context(), p.ID); err != nil {
				Problem(c, err)
				return
			}
			c.Header("Retry-After", "1")
			c.JSON(http.StatusAccepted, gin.H{"payment": got, "status": got.Status, "poll_url": "/v1/payments/" + got.ID})
			return
		}
		c.JSON(http.StatusOK, got)
	}
}
