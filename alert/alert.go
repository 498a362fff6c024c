// Package alert tells the team when money did not move as it should: a payment or refund that
// failed or ended unknown, a compensation that failed. It turns such events into a
// Slack-compatible incoming-webhook message and posts it. It runs as an events.Consumer
// handler, which retries with back-off and dead-letters what cannot be delivered.
//
// An alert says which payment, whose, how much, what status and what the bank answered — ids,
// never an account number, fin account, token or birth date: the message is built from a fixed
// list of fields, never by forwarding the event, and long digit runs in the bank's free text
// are masked.
package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"paysaga"
	"paysaga/events"
)

// Patterns are the routing keys an alert queue is bound to.
var Patterns = []string{
	events.PaymentFailed, events.PaymentUnknown, events.PaymentCancelFailed,
	events.RefundFailed, events.RefundUnknown,
	events.SettlementFailed, events.SettlementUnknown,
	"*.stalled", "*.compensation_failed",
}

// Wanted reports whether an event of this type raises an alert.
func Wanted(eventType string) bool {
	switch eventType {
	case events.PaymentFailed, events.PaymentUnknown, events.PaymentCancelFailed, events.RefundFailed, events.RefundUnknown,
		events.SettlementFailed, events.SettlementUnknown:
		return true
	}
	return strings.HasSuffix(eventType, ".compensation_failed") || strings.HasSuffix(eventType, ".stalled")
}

// Payload is an incoming-webhook message: text for notifications and clients without blocks,
// and blocks for the layout.
type Payload struct {
	Text   string  `json:"text"`
	Blocks []Block `json:"blocks,omitempty"`
}

// Block is a Block Kit block (section or context).
type Block struct {
	Type     string       `json:"type"`
	Text     *TextObject  `json:"text,omitempty"`
	Fields   []TextObject `json:"fields,omitempty"`
	Elements []TextObject `json:"elements,omitempty"`
}

// TextObject is Block Kit text.
type TextObject struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// facts are the only parts of an event an alert may show.
type facts struct {
	ID             string `json:"id"`
	PaymentID      string `json:"payment_id"`
	CustomerID     string `json:"customer_id"`
	MerchantID     string `json:"merchant_id"`
	AccountID      string `json:"account_id"`
	Status         string `json:"status"`
	Amount         int64  `json:"amount"`
	Currency       string `json:"currency"`
	FailureCode    string `json:"failure_code"`
	FailureMessage string `json:"failure_message"`
	Payment        *struct {
		ID         string `json:"id"`
		CustomerID string `json:"customer_id"`
		MerchantID string `json:"merchant_id"`
	} `json:"payment"`
}

var headlines = map[string]string{
	events.PaymentFailed:  "Payment failed",
	events.PaymentUnknown: "Payment outcome UNKNOWN — needs an operator",
	events.RefundFailed:   "Refund failed",
	events.RefundUnknown:  "Refund outcome UNKNOWN — needs an operator",

	events.SettlementFailed:  "Settlement payout failed — retry it with payctl settlements retry",
	events.SettlementUnknown: "Settlement payout outcome UNKNOWN — needs an operator",

	events.PaymentCancelFailed: "Cancellation refund failed — the customer is still debited; replay it",
	"payment.stalled":          "Payment store writes failing — retrying, needs attention",
	"refund.stalled":           "Refund store writes failing — retrying, needs attention",
}

// Message builds the alert for ev.
func Message(ev events.Event) Payload {
	var f facts
	_ = json.Unmarshal(ev.Data, &f) // an unreadable body still alerts, with the type and id
	if f.Payment != nil {
		f.PaymentID = firstOf(f.PaymentID, f.Payment.ID)
		f.CustomerID = firstOf(f.CustomerID, f.Payment.CustomerID)
		f.MerchantID = firstOf(f.MerchantID, f.Payment.MerchantID)
	}
	if f.PaymentID == "" && strings.HasPrefix(f.ID, paysaga.PrefixPayment) {
		f.PaymentID = f.ID
	}
	headline, ok := headlines[ev.Type]
	if !ok {
		headline = "Compensation failed (" + ev.Type + ")"
	}
	subject := firstOf(f.ID, f.PaymentID, ev.ID)

	var fields []TextObject
	add := func(label, value string) {
		if value != "" {
			fields = append(fields, TextObject{Type: "mrkdwn", Text: "*" + label + "*\n" + escape(value)})
		}
	}
	if f.ID != "" && f.ID != f.PaymentID {
		add("Id", f.ID)
	}
	add("Payment", f.PaymentID)
	add("Status", f.Status)
	if f.Amount != 0 {
		add("Amount", formatAmount(f.Amount, firstOf(f.Currency, "KRW")))
	}
	add("Customer", f.CustomerID)
	add("Merchant", f.MerchantID)
	add("Account", f.AccountID)
	if f.FailureCode != "" || f.FailureMessage != "" {
		add("Bank answer", strings.TrimSpace(f.FailureCode+" "+mask(f.FailureMessage)))
	}

	text := fmt.Sprintf("%s: %s", headline, subject)
	if f.Amount != 0 {
		text += ", " + formatAmount(f.Amount, firstOf(f.Currency, "KRW"))
	}
	if f.FailureCode != "" {
		text += ", bank " + f.FailureCode
	}
	blocks := []Block{{Type: "section", Text: &TextObject{Type: "mrkdwn", Text: "*" + escape(headline) + "*: `" + escape(subject) + "`"}}}
	if len(fields) > 0 {
		blocks = append(blocks, Block{Type: "section", Fields: fields})
	}
	blocks = append(blocks, Block{Type: "context", Elements: []TextObject{{Type: "mrkdwn",
		Text: escape(ev.Type) + " · event " + escape(ev.ID) + " · " + ev.OccurredAt.UTC().Format(time.RFC3339)}}})
	return Payload{Text: escape(text), Blocks: blocks}
}

func firstOf(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// escape makes a value safe inside Slack mrkdwn (its only three control characters).
func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// longDigits are runs that could be an account number, a card number or a birth date.
var longDigits = regexp.MustCompile(`\d[\d\- ]{4,}\d`)

// mask hides long digit runs in free text (the bank's message) but keeps the last four.
func mask(s string) string {
	return longDigits.ReplaceAllStringFunc(s, func(m string) string {
		digits := strings.NewReplacer("-", "", " ", "").Replace(m)
		if len(digits) < 6 {
			return m
		}
		return "****" + digits[len(digits)-4:]
	})
}

func formatAmount(v int64, currency string) string {
	s := strconv.FormatInt(v, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String() + " " + currency
	}
	return b.String() + " " + currency
}

// Config says where alerts go.
type Config struct {
	// WebhookURL is the incoming-webhook URL. It holds a secret (Slack's URLs do): it is never
	// logged nor put in an error.
	WebhookURL string
	// Timeout bounds one delivery attempt (default 5s).
	Timeout time.Duration
	Client  *http.Client
	Logger  *slog.Logger
}

// Alerter posts alerts to the webhook.
type Alerter struct {
	cfg Config
}

// New returns an Alerter; the URL must be http(s).
func New(cfg Config) (*Alerter, error) {
	u, err := url.Parse(cfg.WebhookURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, errors.New("alert: the webhook URL must be an http(s) URL")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Alerter{cfg: cfg}, nil
}

// Handle posts the alert for ev, once; events that raise no alert are ignored. The error of a
// failed delivery is retryable unless the webhook refused the message itself (a 4xx other
// than 408 and 429), which is Permanent: it goes to the dead letters at once.
func (a *Alerter) Handle(ctx context.Context, ev events.Event) error {
	if !Wanted(ev.Type) {
		return nil
	}
	body, err := json.Marshal(Message(ev))
	if err != nil {
		return events.Permanent(fmt.Errorf("alert: encode %s: %w", ev.ID, err))
	}
	ctx, cancel := context.WithTimeout(ctx, a.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.cfg.WebhookURL, bytes.NewReader(body))
	if err != nil {
		return events.Permanent(errors.New("alert: cannot build the webhook request"))
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.cfg.Client.Do(req)
	if err != nil {
		// *url.Error quotes the URL, and the URL is a secret: keep only the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("alert: post %s: %w", ev.ID, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		a.cfg.Logger.InfoContext(ctx, "alert delivered", "event_id", ev.ID, "event_type", ev.Type)
		return nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode >= 500:
		return fmt.Errorf("alert: post %s: webhook answered %d", ev.ID, resp.StatusCode)
	default:
		return events.Permanent(fmt.Errorf("alert: post %s: webhook refused the message with %d", ev.ID, resp.StatusCode))
	}
}
