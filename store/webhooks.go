package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"paysaga"
	"paysaga/webhook"
)

type webhookEndpointRow struct {
	bun.BaseModel `bun:"table:webhook_endpoints"`

	ID                   string     `bun:"id,pk"`
	MerchantID           string     `bun:"merchant_id"`
	URL                  string     `bun:"url"`
	EventTypes           string     `bun:"event_types"`
	Description          string     `bun:"description"`
	Status               string     `bun:"status"`
	SecretCiphertext     []byte     `bun:"secret_ciphertext"`
	SecretKeyID          string     `bun:"secret_key_id"`
	PrevSecretCiphertext []byte     `bun:"prev_secret_ciphertext"`
	PrevSecretKeyID      string     `bun:"prev_secret_key_id"`
	PrevSecretExpiresAt  *time.Time `bun:"prev_secret_expires_at"`
	FailingSince         *time.Time `bun:"failing_since"`
	CreatedAt            time.Time  `bun:"created_at"`
	UpdatedAt            time.Time  `bun:"updated_at"`
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func (r *webhookEndpointRow) endpoint() *webhook.Endpoint {
	e := &webhook.Endpoint{
		ID: r.ID, MerchantID: r.MerchantID, URL: r.URL, Description: r.Description,
		Status: webhook.EndpointStatus(r.Status), FailingSince: utcPtr(r.FailingSince),
		PreviousSecretExpiresAt: utcPtr(r.PrevSecretExpiresAt),
		CreatedAt:               r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
	}
	_ = json.Unmarshal([]byte(r.EventTypes), &e.EventTypes)
	if e.EventTypes == nil {
		e.EventTypes = []string{}
	}
	return e
}

// CreateWebhookEndpoint stores a merchant's endpoint with its sealed secret (AD
// seal.WebhookSecretAD of its id). Zero times are now; an empty status is enabled.
func (db *DB) CreateWebhookEndpoint(ctx context.Context, e *webhook.Endpoint, secret SealedSecret) error {
	if e.ID == "" || e.MerchantID == "" || e.URL == "" || len(secret.Ciphertext) == 0 {
		return paysaga.Errorf(paysaga.EINVALID, "an endpoint needs an id, a merchant, a URL and its sealed secret")
	}
	if e.Status == "" {
		e.Status = webhook.EndpointEnabled
	}
	now := db.Now()
	e.CreatedAt, e.UpdatedAt = now, now
	types, err := json.Marshal(e.EventTypes)
	if err != nil {
		return err
	}
	row := &webhookEndpointRow{
		ID: e.ID, MerchantID: e.MerchantID, URL: e.URL, EventTypes: string(types), Description: e.Description,
		Status: string(e.Status), SecretCiphertext: secret.Ciphertext, SecretKeyID: secret.KeyID,
		CreatedAt: now, UpdatedAt: now,
	}
	if _, err := db.bun.NewInsert().Model(row).Exec(ctx); err != nil {
		if IsDuplicate(err) {
			return paysaga.Errorf(paysaga.ECONFLICT, "webhook endpoint %s exists", e.ID)
		}
		return fmt.Errorf("create webhook endpoint: %w", err)
	}
	return nil
}

func (db *DB) webhookEndpointRow(ctx context.Context, idb bun.IDB, id string, lock bool) (*webhookEndpointRow, error) {
	var row webhookEndpointRow
	q := idb.NewSelect().Model(&row).Where("id = ?", id).Limit(1)
	if lock && db.dialect == DriverMySQL {
		q = q.For("UPDATE")
	}
	if err := q.Scan(ctx); err != nil {
		if isNoRows(err) {
			return nil, paysaga.Errorf(paysaga.ENOTFOUND, "webhook endpoint not found")
		}
		return nil, fmt.Errorf("get webhook endpoint: %w", err)
	}
	return &row, nil
}

// GetWebhookEndpoint finds an endpoint (deleted ones too: callers decide); ENOTFOUND when none.
func (db *DB) GetWebhookEndpoint(ctx context.Context, id string) (*webhook.Endpoint, error) {
	row, err := db.webhookEndpointRow(ctx, db.bun, id, false)
	if err != nil {
		return nil, err
	}
	return row.endpoint(), nil
}

// WebhookSecrets are an endpoint's sealed signing secrets: the current one, and the previous
// one while a rotation's overlap lasts (Previous nil otherwise, or once it expired at now).
type WebhookSecrets struct {
	Current  SealedSecret
	Previous *SealedSecret
}

// WebhookEndpointSecrets returns the endpoint and the sealed secrets that sign at the store's
// now. A deleted endpoint has none (ENOTFOUND).
func (db *DB) WebhookEndpointSecrets(ctx context.Context, id string) (*webhook.Endpoint, *WebhookSecrets, error) {
	row, err := db.webhookEndpointRow(ctx, db.bun, id, false)
	if err != nil {
		return nil, nil, err
	}
	if row.Status == string(webhook.EndpointDeleted) || len(row.SecretCiphertext) == 0 {
		return row.endpoint(), nil, paysaga.Errorf(paysaga.ENOTFOUND, "webhook endpoint deleted")
	}
	s := &WebhookSecrets{Current: SealedSecret{Ciphertext: row.SecretCiphertext, KeyID: row.SecretKeyID}}
	if len(row.PrevSecretCiphertext) > 0 && row.PrevSecretExpiresAt != nil && db.Now().Before(*row.PrevSecretExpiresAt) {
		s.Previous = &SealedSecret{Ciphertext: row.PrevSecretCiphertext, KeyID: row.PrevSecretKeyID}
	}
	return row.endpoint(), s, nil
}

// WebhookEndpointFilter selects a merchant's endpoints; deleted ones are never listed.
type WebhookEndpointFilter struct {
	MerchantID    string
	Limit         int
	StartingAfter string
}

// WebhookEndpointPage is one page of endpoints, newest first.
type WebhookEndpointPage struct {
	Endpoints []*webhook.Endpoint
	HasMore   bool
}

// ListWebhookEndpoints returns a merchant's endpoints newest first, a page at a time.
func (db *DB) ListWebhookEndpoints(ctx context.Context, f WebhookEndpointFilter) (*WebhookEndpointPage, error) {
	if f.MerchantID == "" {
		return nil, paysaga.Errorf(paysaga.EINVALID, "a merchant is required")
	}
	limit, err := pageLimit(f.Limit)
	if err != nil {
		return nil, err
	}
	var rows []webhookEndpointRow
	q := db.bun.NewSelect().Model(&rows).Where("merchant_id = ?", f.MerchantID).
		Where("status <> ?", string(webhook.EndpointDeleted))
	if f.StartingAfter != "" {
		var err error
		q, err = newestFirstAfter(ctx, q, db.bun.NewSelect().Model((*webhookEndpointRow)(nil)).
			Where("id = ? AND merchant_id = ?", f.StartingAfter, f.MerchantID), "an endpoint", "webhook endpoints")
		if err != nil {
			return nil, err
		}
	}
	if err := q.Order("created_at DESC", "id DESC").Limit(int64(limit + 1)).Scan(ctx); err != nil {
		return nil, fmt.Errorf("list webhook endpoints: %w", err)
	}
	page := &WebhookEndpointPage{Endpoints: make([]*webhook.Endpoint, 0, len(rows))}
	if len(rows) > limit {
		page.HasMore, rows = true, rows[:limit]
	}
	for i := range rows {
		page.Endpoints = append(page.Endpoints, rows[i].endpoint())
	}
	return page, nil
}

// SubscribedWebhookEndpoints returns the merchant's endpoints that receive events of type t
// (enabled or failing, subscribed to t).
func (db *DB) SubscribedWebhookEndpoints(ctx context.Context, merchantID, t string) ([]*webhook.Endpoint, error) {
	var rows []webhookEndpointRow
	err := db.bun.NewSelect().Model(&rows).Where("merchant_id = ?", merchantID).
		Where("status IN (?)", bun.List([]string{string(webhook.EndpointEnabled), string(webhook.EndpointFailing)})).
		Order("created_at", "id").Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("webhook endpoints of %s: %w", merchantID, err)
	}
	var out []*webhook.Endpoint
	for i := range rows {
		if e := rows[i].endpoint(); e.Subscribed(t) {
			out = append(out, e)
		}
	}
	return out, nil
}

// WebhookEndpointUpdate changes an endpoint; nil fields stay.
type WebhookEndpointUpdate struct {
	URL         *string
	EventTypes  []string
	Description *string
	// Enabled turns the endpoint on (enabled) or off (disabled).
	Enabled *bool
}

// UpdateWebhookEndpoint applies u to a live endpoint (ENOTFOUND for a deleted one).
func (db *DB) UpdateWebhookEndpoint(ctx context.Context, id string, u WebhookEndpointUpdate) (*webhook.Endpoint, error) {
	var out *webhook.Endpoint
	err := db.bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		row, err := db.webhookEndpointRow(ctx, tx, id, true)
		if err != nil {
			return err
		}
		if row.Status == string(webhook.EndpointDeleted) {
			return paysaga.Errorf(paysaga.ENOTFOUND, "webhook endpoint not found")
		}
		if u.URL != nil {
			row.URL = *u.URL
		}
		if u.EventTypes != nil {
			b, err := json.Marshal(u.EventTypes)
			if err != nil {
				return err
			}
			row.EventTypes = string(b)
		}
		if u.Description != nil {
			row.Description = *u.Description
		}
		if u.Enabled != nil {
			switch {
			case !*u.Enabled:
				row.Status = string(webhook.EndpointDisabled)
			case row.Status == string(webhook.EndpointDisabled):
				row.Status, row.FailingSince = string(webhook.EndpointEnabled), nil
			}
		}
		row.UpdatedAt = db.Now()
		if _, err := tx.NewUpdate().Model(row).WherePK().
			Column("url", "event_types", "description", "status", "failing_since", "updated_at").Exec(ctx); err != nil {
			return fmt.Errorf("update webhook endpoint: %w", err)
		}
		out = row.endpoint()
		return nil
	})
	return out, err
}

// RotateWebhookSecret makes next the endpoint's secret; the one it replaces keeps signing
// until overlapUntil (none when overlapUntil is not after now). ENOTFOUND for a deleted endpoint.
func (db *DB) RotateWebhookSecret(ctx context.Context, id string, next SealedSecret, overlapUntil time.Time) (*webhook.Endpoint, error) {
	var out *webhook.Endpoint
	err := db.bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		row, err := db.webhookEndpointRow(ctx, tx, id, true)
		if err != nil {
			return err
		}
		if row.Status == string(webhook.EndpointDeleted) {
			return paysaga.Errorf(paysaga.ENOTFOUND, "webhook endpoint not found")
		}
		now := db.Now()
		if overlapUntil.After(now) {
			until := overlapUntil.UTC().Truncate(time.Microsecond)
			row.PrevSecretCiphertext, row.PrevSecretKeyID, row.PrevSecretExpiresAt = row.SecretCiphertext, row.SecretKeyID, &until
		} else {
			row.PrevSecretCiphertext, row.PrevSecretKeyID, row.PrevSecretExpiresAt = nil, "", nil
		}
		row.SecretCiphertext, row.SecretKeyID, row.UpdatedAt = next.Ciphertext, next.KeyID, now
		if _, err := tx.NewUpdate().Model(row).WherePK().Column("secret_ciphertext", "secret_key_id",
			"prev_secret_ciphertext", "prev_secret_key_id", "prev_secret_expires_at", "updated_at").Exec(ctx); err != nil {
			return fmt.Errorf("rotate webhook secret: %w", err)
		}
		out = row.endpoint()
		return nil
	})
	return out, err
}

// DeleteWebhookEndpoint marks the endpoint deleted and erases its secrets; its delivery log
// stays. Deleting twice is not an error.
func (db *DB) DeleteWebhookEndpoint(ctx context.Context, id string) (*webhook.Endpoint, error) {
	now := db.Now()
	res, err := db.bun.NewUpdate().Table("webhook_endpoints").Where("id = ?", id).
		Set("status = ?", string(webhook.EndpointDeleted)).
		Set("secret_ciphertext = ?", []byte{}).Set("secret_key_id = ''").
		Set("prev_secret_ciphertext = NULL").Set("prev_secret_key_id = ''").Set("prev_secret_expires_at = NULL").
		Set("updated_at = ?", now).Exec(ctx)
	if err != nil {
		return nil, fmt.Errorf("delete webhook endpoint: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil, paysaga.Errorf(paysaga.ENOTFOUND, "webhook endpoint not found")
	}
	return db.GetWebhookEndpoint(ctx, id)
}

type webhookEventRow struct {
	bun.BaseModel `bun:"table:webhook_events"`

	ID         string    `bun:"id,pk"`
	Type       string    `bun:"type"`
	MerchantID string    `bun:"merchant_id"`
	OccurredAt time.Time `bun:"occurred_at"`
	Body       []byte    `bun:"body"`
	CreatedAt  time.Time `bun:"created_at"`
}

// RecordWebhookEvent keeps an event's body for its deliveries; recording it again changes
// nothing (the first body stays: every delivery of an event sends the same bytes).
func (db *DB) RecordWebhookEvent(ctx context.Context, ev webhook.Event, merchantID string) error {
	body, err := webhook.Body(ev)
	if err != nil {
		return err
	}
	row := &webhookEventRow{ID: ev.ID, Type: ev.Type, MerchantID: merchantID,
		OccurredAt: ev.OccurredAt.UTC().Truncate(time.Microsecond), Body: body, CreatedAt: db.Now()}
	q := db.bun.NewInsert().Model(row)
	if db.dialect == DriverMySQL {
		q = q.Ignore()
	} else {
		q = q.On("CONFLICT (id) DO NOTHING")
	}
	if _, err := q.Exec(ctx); err != nil {
		return fmt.Errorf("record webhook event %s: %w", ev.ID, err)
	}
	return nil
}

// WebhookEventBody returns the bytes recorded for an event (ENOTFOUND when none).
func (db *DB) WebhookEventBody(ctx context.Context, eventID string) ([]byte, error) {
	var row webhookEventRow
	if err := db.bun.NewSelect().Model(&row).Column("body").Where("id = ?", eventID).Limit(1).Scan(ctx); err != nil {
		if isNoRows(err) {
			return nil, paysaga.Errorf(paysaga.ENOTFOUND, "webhook event not found")
		}
		return nil, fmt.Errorf("webhook event %s: %w", eventID, err)
	}
	return row.Body, nil
}

type webhookDeliveryRow struct {
	bun.BaseModel `bun:"table:webhook_deliveries"`

	ID             string     `bun:"id,pk"`
	EndpointID     string     `bun:"endpoint_id"`
	MerchantID     string     `bun:"merchant_id"`
	EventID        string     `bun:"event_id"`
	EventType      string     `bun:"event_type"`
	Status         string     `bun:"status"`
	Generation     int        `bun:"generation"`
	AttemptCount   int        `bun:"attempt_count"`
	LastStatusCode int        `bun:"last_status_code"`
	LastError      string     `bun:"last_error"`
	CreatedAt      time.Time  `bun:"created_at"`
	UpdatedAt      time.Time  `bun:"updated_at"`
	DeliveredAt    *time.Time `bun:"delivered_at"`
}

func (r *webhookDeliveryRow) delivery() *webhook.Delivery {
	return &webhook.Delivery{
		ID: r.ID, EndpointID: r.EndpointID, MerchantID: r.MerchantID, EventID: r.EventID, EventType: r.EventType,
		Status: webhook.DeliveryStatus(r.Status), Generation: r.Generation, AttemptCount: r.AttemptCount,
		LastStatusCode: r.LastStatusCode, LastError: r.LastError,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(), DeliveredAt: utcPtr(r.DeliveredAt),
	}
}

// CreateWebhookDelivery stores a pending delivery of an event (recorded before) to an
// endpoint, or returns the one stored already for the same endpoint and event.
func (db *DB) CreateWebhookDelivery(ctx context.Context, d *webhook.Delivery) (*webhook.Delivery, error) {
	now := db.Now()
	row := &webhookDeliveryRow{
		ID: d.ID, EndpointID: d.EndpointID, MerchantID: d.MerchantID, EventID: d.EventID, EventType: d.EventType,
		Status: string(webhook.DeliveryPending), CreatedAt: now, UpdatedAt: now,
	}
	q := db.bun.NewInsert().Model(row)
	if db.dialect == DriverMySQL {
		q = q.Ignore()
	} else {
		q = q.On("CONFLICT (endpoint_id, event_id) DO NOTHING")
	}
	if _, err := q.Exec(ctx); err != nil {
		return nil, fmt.Errorf("create webhook delivery: %w", err)
	}
	var got webhookDeliveryRow
	if err := db.bun.NewSelect().Model(&got).Where("endpoint_id = ? AND event_id = ?", d.EndpointID, d.EventID).
		Limit(1).Scan(ctx); err != nil {
		return nil, fmt.Errorf("create webhook delivery: read back: %w", err)
	}
	return got.delivery(), nil
}

// GetWebhookDelivery finds a delivery with its attempts, oldest first; ENOTFOUND when none.
func (db *DB) GetWebhookDelivery(ctx context.Context, id string) (*webhook.Delivery, error) {
	var row webhookDeliveryRow
	if err := db.bun.NewSelect().Model(&row).Where("id = ?", id).Limit(1).Scan(ctx); err != nil {
		if isNoRows(err) {
			return nil, paysaga.Errorf(paysaga.ENOTFOUND, "webhook delivery not found")
		}
		return nil, fmt.Errorf("get webhook delivery: %w", err)
	}
	d := row.delivery()
	attempts, err := db.webhookAttempts(ctx, []string{id})
	if err != nil {
		return nil, err
	}
	d.Attempts = attempts[id]
	return d, nil
}

type webhookAttemptRow struct {
	bun.BaseModel `bun:"table:webhook_attempts"`

	DeliveryID string    `bun:"delivery_id,pk"`
	Generation int       `bun:"generation,pk"`
	Number     int       `bun:"number,pk"`
	At         time.Time `bun:"at"`
	StatusCode int       `bun:"status_code"`
	LatencyMS  int64     `bun:"latency_ms"`
	Error      string    `bun:"error"`
}

func (db *DB) webhookAttempts(ctx context.Context, ids []string) (map[string][]webhook.Attempt, error) {
	out := map[string][]webhook.Attempt{}
	if len(ids) == 0 {
		return out, nil
	}
	var rows []webhookAttemptRow
	if err := db.bun.NewSelect().Model(&rows).Where("delivery_id IN (?)", bun.List(ids)).
		Order("delivery_id", "generation", "number").Scan(ctx); err != nil {
		return nil, fmt.Errorf("webhook attempts: %w", err)
	}
	for _, r := range rows {
		out[r.DeliveryID] = append(out[r.DeliveryID], webhook.Attempt{
			DeliveryID: r.DeliveryID, Generation: r.Generation, Number: r.Number, At: r.At.UTC(),
			StatusCode: r.StatusCode, LatencyMS: r.LatencyMS, Error: r.Error,
		})
	}
	return out, nil
}

// WebhookDeliveryFilter selects deliveries: of an endpoint, or of an event (either or both).
type WebhookDeliveryFilter struct {
	EndpointID    string
	EventID       string
	Limit         int
	StartingAfter string
}

// WebhookDeliveryPage is one page of deliveries, newest first, each with its attempts.
type WebhookDeliveryPage struct {
	Deliveries []*webhook.Delivery
	HasMore    bool
}

// ListWebhookDeliveries returns deliveries newest first, with their attempts.
func (db *DB) ListWebhookDeliveries(ctx context.Context, f WebhookDeliveryFilter) (*WebhookDeliveryPage, error) {
	if f.EndpointID == "" && f.EventID == "" {
		return nil, paysaga.Errorf(paysaga.EINVALID, "an endpoint or an event is required")
	}
	limit, err := pageLimit(f.Limit)
	if err != nil {
		return nil, err
	}
	filter := func(q *bun.SelectQuery) *bun.SelectQuery {
		if f.EndpointID != "" {
			q = q.Where("endpoint_id = ?", f.EndpointID)
		}
		if f.EventID != "" {
			q = q.Where("event_id = ?", f.EventID)
		}
		return q
	}
	var rows []webhookDeliveryRow
	q := filter(db.bun.NewSelect().Model(&rows))
	if f.StartingAfter != "" {
		var err error
		q, err = newestFirstAfter(ctx, q, filter(db.bun.NewSelect().Model((*webhookDeliveryRow)(nil))).
			Where("id = ?", f.StartingAfter), "a delivery", "webhook deliveries")
		if err != nil {
			return nil, err
		}
	}
	if err := q.Order("created_at DESC", "id DESC").Limit(int64(limit + 1)).Scan(ctx); err != nil {
		return nil, fmt.Errorf("list webhook deliveries: %w", err)
	}
	page := &WebhookDeliveryPage{Deliveries: make([]*webhook.Delivery, 0, len(rows))}
	if len(rows) > limit {
		page.HasMore, rows = true, rows[:limit]
	}
	ids := make([]string, 0, len(rows))
	for i := range rows {
		ids = append(ids, rows[i].ID)
	}
	attempts, err := db.webhookAttempts(ctx, ids)
	if err != nil {
		return nil, err
	}
	for i := range rows {
		d := rows[i].delivery()
		d.Attempts = attempts[d.ID]
		page.Deliveries = append(page.Deliveries, d)
	}
	return page, nil
}

// RecordWebhookAttempt logs one attempt of a delivery and keeps the delivery's summary (count,
// last status code and error). Recording the same attempt again changes nothing.
func (db *DB) RecordWebhookAttempt(ctx context.Context, a webhook.Attempt) error {
	if len(a.Error) > 512 {
		a.Error = a.Error[:512]
	}
	return db.bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		row := &webhookAttemptRow{DeliveryID: a.DeliveryID, Generation: a.Generation, Number: a.Number,
			At: a.At.UTC().Truncate(time.Microsecond), StatusCode: a.StatusCode, LatencyMS: a.LatencyMS, Error: a.Error}
		q := tx.NewInsert().Model(row)
		if db.dialect == DriverMySQL {
			q = q.Ignore()
		} else {
			q = q.On("CONFLICT DO NOTHING")
		}
		res, err := q.Exec(ctx)
		if err != nil {
			return fmt.Errorf("record webhook attempt: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		_, err = tx.NewUpdate().Table("webhook_deliveries").Where("id = ?", a.DeliveryID).
			Set("attempt_count = attempt_count + 1").Set("last_status_code = ?", a.StatusCode).
			Set("last_error = ?", a.Error).Set("updated_at = ?", db.Now()).Exec(ctx)
		if err != nil {
			return fmt.Errorf("record webhook attempt: %w", err)
		}
		return nil
	})
}

// FinishWebhookDelivery ends generation gen of a delivery: succeeded (the endpoint is enabled
// again if it was failing), failed (the endpoint becomes failing: reported true when this call
// made it so; failing_since stays the start of the failing spell), or canceled. A newer redelivery's row is not touched (reported by the error
// ECONFLICT), nor a delivery already ended the same way.
func (db *DB) FinishWebhookDelivery(ctx context.Context, id string, gen int, status webhook.DeliveryStatus) (endpointNowFailing bool, err error) {
	err = db.bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		now := db.Now()
		q := tx.NewUpdate().Table("webhook_deliveries").Where("id = ? AND generation = ?", id, gen).
			Where("status = ?", string(webhook.DeliveryPending)).
			Set("status = ?", string(status)).Set("updated_at = ?", now)
		if status == webhook.DeliverySucceeded {
			q = q.Set("delivered_at = ?", now)
		}
		res, err := q.Exec(ctx)
		if err != nil {
			return fmt.Errorf("finish webhook delivery: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil // ended already, or a newer redelivery owns the row
		}
		var d webhookDeliveryRow
		if err := tx.NewSelect().Model(&d).Column("endpoint_id").Where("id = ?", id).Scan(ctx); err != nil {
			return fmt.Errorf("finish webhook delivery: %w", err)
		}
		switch status {
		case webhook.DeliverySucceeded:
			_, err = tx.NewUpdate().Table("webhook_endpoints").Where("id = ? AND status = ?", d.EndpointID, string(webhook.EndpointFailing)).
				Set("status = ?", string(webhook.EndpointEnabled)).Set("failing_since = NULL").Set("updated_at = ?", now).Exec(ctx)
		case webhook.DeliveryFailed:
			var r sql.Result
			r, err = tx.NewUpdate().Table("webhook_endpoints").Where("id = ? AND status IN (?)", d.EndpointID,
				bun.List([]string{string(webhook.EndpointEnabled), string(webhook.EndpointFailing)})).
				Set("status = ?", string(webhook.EndpointFailing)).Set("failing_since = COALESCE(failing_since, ?)", now).
				Set("updated_at = ?", now).Exec(ctx)
			if err == nil {
				n, _ := r.RowsAffected()
				endpointNowFailing = n > 0
			}
		}
		if err != nil {
			return fmt.Errorf("finish webhook delivery: endpoint: %w", err)
		}
		return nil
	})
	return endpointNowFailing, err
}

// RedeliverWebhook starts a new generation of a delivery that ended (same event, same body, a
// new attempt log) and returns it pending. A delivery still pending is returned as it is: its
// current generation is the one to (re)start. ENOTFOUND when none.
func (db *DB) RedeliverWebhook(ctx context.Context, id string) (*webhook.Delivery, error) {
	now := db.Now()
	_, err := db.bun.NewUpdate().Table("webhook_deliveries").Where("id = ? AND status <> ?", id, string(webhook.DeliveryPending)).
		Set("status = ?", string(webhook.DeliveryPending)).Set("generation = generation + 1").
		Set("updated_at = ?", now).Exec(ctx)
	if err != nil {
		return nil, fmt.Errorf("redeliver webhook %s: %w", id, err)
	}
	return db.GetWebhookDelivery(ctx, id)
}
