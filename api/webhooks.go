package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"paysaga"
	"paysaga/seal"
	"paysaga/store"
	"paysaga/webhook"
)

// WebhookStore is what the webhook-endpoint routes read and write (*store.DB).
type WebhookStore interface {
	CreateWebhookEndpoint(ctx context.Context, e *webhook.Endpoint, secret store.SealedSecret) error
	GetWebhookEndpoint(ctx context.Context, id string) (*webhook.Endpoint, error)
	WebhookEndpointSecrets(ctx context.Context, id string) (*webhook.Endpoint, *store.WebhookSecrets, error)
	ListWebhookEndpoints(ctx context.Context, f store.WebhookEndpointFilter) (*store.WebhookEndpointPage, error)
	UpdateWebhookEndpoint(ctx context.Context, id string, u store.WebhookEndpointUpdate) (*webhook.Endpoint, error)
	RotateWebhookSecret(ctx context.Context, id string, next store.SealedSecret, overlapUntil time.Time) (*webhook.Endpoint, error)
	DeleteWebhookEndpoint(ctx context.Context, id string) (*webhook.Endpoint, error)
	ListWebhookDeliveries(ctx context.Context, f store.WebhookDeliveryFilter) (*store.WebhookDeliveryPage, error)
	GetWebhookDelivery(ctx context.Context, id string) (*webhook.Delivery, error)
	RedeliverWebhook(ctx context.Context, id string) (*webhook.Delivery, error)
	IdempotencyStore
}

// WebhookDeps configures /v1/webhook-endpoints. Without Store, Keys and Starter the routes
// answer 503.
type WebhookDeps struct {
	Store WebhookStore
	// Keys seal the endpoints' secrets at rest (as account numbers are).
	Keys *seal.Keyring
	// Starter starts redeliveries (saga.WebhookDeliveries).
	Starter webhook.Starter
	// Policy refuses URLs a delivery must not go to (https only, no internal address).
	Policy webhook.Policy
	// IdempotencyTTL is how long an Idempotency-Key is remembered (at least 24h).
	IdempotencyTTL time.Duration
	// Now is the clock of rotations (time.Now when nil).
	Now func() time.Time
}

// Bounds of an endpoint.
const (
	maxEventTypes  = 20
	maxDescription = 255
	defaultOverlap = 24 * time.Hour
	maxOverlap     = 7 * 24 * time.Hour
)

type webhookHandlers struct {
	WebhookDeps
}

// registerWebhooks adds the webhook-endpoint routes: a merchant's own endpoints only; another
// merchant's answer as if they did not exist.
func (s *Server) registerWebhooks(d WebhookDeps) {
	if d.IdempotencyTTL < 24*time.Hour {
		d.IdempotencyTTL = 24 * time.Hour
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	h := &webhookHandlers{d}
	g := s.v1.Group("/webhook-endpoints", RequireRole(paysaga.RoleMerchant), h.available)
	g.POST("", h.create)
	g.GET("", h.list)
	g.GET("/:id", h.get)
	g.PATCH("/:id", h.update)
	g.DELETE("/:id", h.remove)
	g.POST("/:id/rotate-secret", h.rotate)
	g.GET("/:id/deliveries", h.deliveries)
	g.POST("/:id/deliveries/:delivery_id/redeliver", h.redeliver)
}

func (h *webhookHandlers) available(c *gin.Context) {
	if h.Store == nil || h.Keys == nil || h.Starter == nil {
		Problem(c, paysaga.Errorf(paysaga.EUNAVAILABLE, "webhooks are not available on this server"))
	}
}

type createEndpointRequest struct {
	URL         string   `json:"url" binding:"required"`
	EventTypes  []string `json:"event_types" binding:"required"`
	Description string   `json:"description"`
}

// endpointWithSecret is an endpoint as its creation and a rotation answer it: with the secret,
// the only time it is shown.
type endpointWithSecret struct {
	*webhook.Endpoint
	Secret string `json:"secret"`
}

// checkEventTypes validates a subscription list and returns it without duplicates.
func checkEventTypes(types []string) ([]string, *FieldError) {
	if len(types) == 0 || len(types) > maxEventTypes {
		return nil, &FieldError{Field: "event_types", Message: "1 to 20 event types"}
	}
	out := make([]string, 0, len(types))
	for _, t := range types {
		if !webhook.ValidEventType(t) {
			return nil, &FieldError{Field: "event_types", Message: "unknown event type " + quote(t) +
				"; one of " + strings.Join(webhook.EventTypes, ", ") + ", a family (payment.*, refund.*, settlement.*) or *"}
		}
		dup := false
		for _, o := range out {
			dup = dup || o == t
		}
		if !dup {
			out = append(out, t)
		}
	}
	return out, nil
}

func quote(s string) string {
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	b, _ := json.Marshal(s)
	return string(b)
}

func (h *webhookHandlers) checkURL(c *gin.Context, u string) *FieldError {
	if err := h.Policy.CheckURL(c.Request.Context(), u); err != nil {
		return &FieldError{Field: "url", Message: err.Error()}
	}
	return nil
}

func (h *webhookHandlers) create(c *gin.Context) {
	ctx := c.Request.Context()
	user := UserFrom(c)
	key, err := idempotencyKey(c)
	if err != nil {
		Problem(c, err)
		return
	}
	var req createEndpointRequest
	if err := BindJSON(c, &req); err != nil {
		Problem(c, err)
		return
	}
	var fields []FieldError
	types, fe := checkEventTypes(req.EventTypes)
	if fe != nil {
		fields = append(fields, *fe)
	}
	if utf8.RuneCountInString(req.Description) > maxDescription {
		fields = append(fields, FieldError{Field: "description", Message: "at most 255 characters"})
	}
	if fe := h.checkURL(c, req.URL); fe != nil {
		fields = append(fields, *fe)
	}
	if len(fields) > 0 {
		Problem(c, &ValidationError{Message: "some fields are invalid", Fields: fields})
		return
	}

	scope := "webhook-endpoints:" + user.UserID
	fingerprint := requestHash(http.MethodPost, "/v1/webhook-endpoints", []any{req.URL, types, req.Description})
	rec, created, err := h.Store.ClaimIdempotencyKeyFor(ctx, scope, key, fingerprint, webhook.NewEndpointID(), h.IdempotencyTTL)
	if err != nil {
		Problem(c, err)
		return
	}
	if !created && rec.RequestHash != fingerprint {
		Problem(c, paysaga.Errorf(paysaga.EIDEMPOTENCY, "this Idempotency-Key was used for a different request"))
		return
	}
	if !created && rec.Completed() {
		// The stored answer has no secret (the idempotency table is not a place for one): a
		// replay opens it again for the caller who made the endpoint.
		c.Header("Idempotent-Replayed", "true")
		h.answerWithSecret(c, http.StatusCreated, rec.ResourceID)
		return
	}
	e := &webhook.Endpoint{ID: rec.ResourceID, MerchantID: user.UserID, URL: req.URL, EventTypes: types, Description: req.Description}
	secret := webhook.NewSecret()
	sealed, err := h.Keys.Seal([]byte(secret), webhook.SecretAD(e.ID))
	if err != nil {
		Problem(c, err)
		return
	}
	err = h.Store.CreateWebhookEndpoint(ctx, e, store.SealedSecret{Ciphertext: sealed.Ciphertext, KeyID: sealed.KeyID})
	if paysaga.ErrorCode(err) == paysaga.ECONFLICT {
		// A concurrent duplicate of this request created it first: answer as its replay.
		h.answerWithSecret(c, http.StatusCreated, e.ID)
		return
	}
	if err != nil {
		if created {
			_ = h.Store.DeleteIdempotencyKey(context.WithoutCancel(ctx), scope, key)
		}
		Problem(c, err)
		return
	}
	body, _ := json.Marshal(e)
	if err := h.Store.CompleteIdempotencyKey(context.WithoutCancel(ctx), scope, key, http.StatusCreated, body, e.ID); err != nil {
		Logger(c).WarnContext(ctx, "store idempotent answer", "endpoint_id", e.ID, "error", err.Error())
	}
	c.Header("Location", "/v1/webhook-endpoints/"+e.ID)
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusCreated, endpointWithSecret{e, secret})
}

// answerWithSecret answers the caller's endpoint id with its current secret opened.
func (h *webhookHandlers) answerWithSecret(c *gin.Context, status int, id string) {
	e, secrets, err := h.Store.WebhookEndpointSecrets(c.Request.Context(), id)
	if err == nil && e.MerchantID != UserFrom(c).UserID {
		err = paysaga.Errorf(paysaga.ENOTFOUND, "no such webhook endpoint")
	}
	if err != nil {
		Problem(c, err)
		return
	}
	secret, err := h.Keys.Open(seal.Sealed{Ciphertext: secrets.Current.Ciphertext, KeyID: secrets.Current.KeyID}, webhook.SecretAD(e.ID))
	if err != nil {
		Problem(c, err)
		return
	}
	c.Header("Location", "/v1/webhook-endpoints/"+e.ID)
	c.Header("Cache-Control", "no-store")
	c.JSON(status, endpointWithSecret{e, string(secret)})
}

// loadOwned returns the endpoint named in the path if it is the caller's and not deleted;
// anything else is the same 404.
func (h *webhookHandlers) loadOwned(c *gin.Context) (*webhook.Endpoint, bool) {
	notFound := paysaga.Errorf(paysaga.ENOTFOUND, "no such webhook endpoint")
	id := c.Param("id")
	if !paysaga.HasPrefix(id, webhook.PrefixEndpoint) {
		Problem(c, notFound)
		return nil, false
	}
	e, err := h.Store.GetWebhookEndpoint(c.Request.Context(), id)
	if paysaga.ErrorCode(err) == paysaga.ENOTFOUND || (err == nil && (e.MerchantID != UserFrom(c).UserID || e.Status == webhook.EndpointDeleted)) {
		Problem(c, notFound)
		return nil, false
	}
	if err != nil {
		Problem(c, err)
		return nil, false
	}
	return e, true
}

func (h *webhookHandlers) get(c *gin.Context) {
	if e, ok := h.loadOwned(c); ok {
		c.JSON(http.StatusOK, e)
	}
}

func (h *webhookHandlers) list(c *gin.Context) {
	f := store.WebhookEndpointFilter{MerchantID: UserFrom(c).UserID, StartingAfter: c.Query("starting_after")}
	var ok bool
	if f.Limit, ok = listLimit(c); !ok {
		return
	}
	page, err := h.Store.ListWebhookEndpoints(c.Request.Context(), f)
	if err != nil {
		Problem(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"data": page.Endpoints, "has_more": page.HasMore})
}

type updateEndpointRequest struct {
	URL         *string  `json:"url"`
	EventTypes  []string `json:"event_types"`
	Description *string  `json:"description"`
	Enabled     *bool    `json:"enabled"`
}

func (h *webhookHandlers) update(c *gin.Context) {
	var req updateEndpointRequest
	if err := BindJSON(c, &req); err != nil {
		Problem(c, err)
		return
	}
	var fields []FieldError
	u := store.WebhookEndpointUpdate{URL: req.URL, Description: req.Description, Enabled: req.Enabled}
	if req.EventTypes != nil {
		types, fe := checkEventTypes(req.EventTypes)
		if fe != nil {
			fields = append(fields, *fe)
		}
		u.EventTypes = types
	}
	if req.Description != nil && utf8.RuneCountInString(*req.Description) > maxDescription {
		fields = append(fields, FieldError{Field: "description", Message: "at most 255 characters"})
	}
	if req.URL != nil {
		if fe := h.checkURL(c, *req.URL); fe != nil {
			fields = append(fields, *fe)
		}
	}
	if len(fields) > 0 {
		Problem(c, &ValidationError{Message: "some fields are invalid", Fields: fields})
		return
	}
	e, ok := h.loadOwned(c)
	if !ok {
		return
	}
	e, err := h.Store.UpdateWebhookEndpoint(c.Request.Context(), e.ID, u)
	if err != nil {
		Problem(c, err)
		return
	}
	c.JSON(http.StatusOK, e)
}

func (h *webhookHandlers) remove(c *gin.Context) {
	e, ok := h.loadOwned(c)
	if !ok {
		return
	}
	e, err := h.Store.DeleteWebhookEndpoint(c.Request.Context(), e.ID)
	if err != nil {
		Problem(c, err)
		return
	}
	c.JSON(http.StatusOK, e)
}

type rotateRequest struct {
	// OverlapSeconds is how long the previous secret keeps signing beside the new one
	// (default 24h, at most 7 days; 0 ends it at once).
	OverlapSeconds *int64 `json:"overlap_seconds"`
}

func (h *webhookHandlers) rotate(c *gin.Context) {
	var req rotateRequest
	if c.Request.ContentLength != 0 {
		if err := BindJSON(c, &req); err != nil {
			Problem(c, err)
			return
		}
	}
	overlap := defaultOverlap
	if req.OverlapSeconds != nil {
		if *req.OverlapSeconds < 0 || *req.OverlapSeconds > int64(maxOverlap/time.Second) {
			Problem(c, &ValidationError{Message: "overlap_seconds must be 0 to 604800 (7 days)",
				Fields: []FieldError{{Field: "overlap_seconds", Message: "0 to 604800"}}})
			return
		}
		overlap = time.Duration(*req.OverlapSeconds) * time.Second
	}
	e, ok := h.loadOwned(c)
	if !ok {
		return
	}
	secret := webhook.NewSecret()
	sealed, err := h.Keys.Seal([]byte(secret), webhook.SecretAD(e.ID))
	if err != nil {
		Problem(c, err)
		return
	}
	e, err = h.Store.RotateWebhookSecret(c.Request.Context(), e.ID,
		store.SealedSecret{Ciphertext: sealed.Ciphertext, KeyID: sealed.KeyID}, h.Now().Add(overlap))
	if err != nil {
		Problem(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, endpointWithSecret{e, secret})
}

func (h *webhookHandlers) deliveries(c *gin.Context) {
	e, ok := h.loadOwned(c)
	if !ok {
		return
	}
	f := store.WebhookDeliveryFilter{EndpointID: e.ID, EventID: c.Query("event_id"), StartingAfter: c.Query("starting_after")}
	if f.Limit, ok = listLimit(c); !ok {
		return
	}
	page, err := h.Store.ListWebhookDeliveries(c.Request.Context(), f)
	if err != nil {
		Problem(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"data": page.Deliveries, "has_more": page.HasMore})
}

// redeliver sends an event to the endpoint again: same event id and body, a new generation of
// attempts. A delivery still being tried is answered as it is (its workflow ensured running).
func (h *webhookHandlers) redeliver(c *gin.Context) {
	e, ok := h.loadOwned(c)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	d, err := h.Store.GetWebhookDelivery(ctx, c.Param("delivery_id"))
	if paysaga.ErrorCode(err) == paysaga.ENOTFOUND || (err == nil && d.EndpointID != e.ID) {
		Problem(c, paysaga.Errorf(paysaga.ENOTFOUND, "no such delivery"))
		return
	}
	if err != nil {
		Problem(c, err)
		return
	}
	if !e.Status.Receives() {
		Problem(c, paysaga.Errorf(paysaga.ECONFLICT, "the endpoint is %s; enable it first", e.Status))
		return
	}
	if d, err = h.Store.RedeliverWebhook(ctx, d.ID); err != nil {
		Problem(c, err)
		return
	}
	if err := h.Starter.StartDelivery(ctx, d); err != nil {
		Problem(c, WithRetryAfter(paysaga.Errorf(paysaga.EUNAVAILABLE, "the redelivery could not be started; try again"), 2*time.Second))
		return
	}
	c.JSON(http.StatusAccepted, d)
}
