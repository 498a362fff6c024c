package nh

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptrace"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// maxBody bounds what is read of an answer; NH's largest (a page of 100 history rows) is far
// smaller.
const maxBody = 1 << 20

// call sends one request and classifies its answer. ref must be set for money-moving calls;
// otherwise a zero ref gets a fresh IsTuno. On success the decoded answer is returned; every
// failure is one of the error types of this package, or a sequencer error.
func (c *Client) call(ctx context.Context, api string, ref Ref, fields map[string]string) (*response, error) {
	now := c.now()
	if ref.IsZero() {
		if MoneyMoving(api) {
			return nil, &InvalidRequestError{API: api, Reason: "a money-moving call needs the Ref recorded with its transfer"}
		}
		var err error
		if ref, err = NewRef(ctx, c.seq, now); err != nil {
			return nil, err
		}
	}
	if err := ref.validate(); err != nil {
		return nil, &InvalidRequestError{API: api, Reason: err.Error()}
	}
	h := Header{
		ApiNm: api, Tsymd: ref.Tsymd, Trtm: Trtm(now), Iscd: c.cfg.Iscd,
		FintechApsno: c.cfg.FintechApsno, ApiSvcCd: c.svc[api], IsTuno: ref.IsTuno,
		AccessToken: c.cfg.AccessToken,
	}
	body, err := encodeRequest(h, fields)
	if err != nil {
		return nil, &InvalidRequestError{API: api, Reason: "cannot encode request"}
	}

	// One span per call, named after the API (the HTTP exchange is its child when the HTTP
	// client is instrumented): ids and codes only, never an account or an amount.
	ctx, span := tracer().Start(ctx, "nh "+api, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("nh.api", api), attribute.String("nh.tsymd", ref.Tsymd), attribute.String("nh.is_tuno", ref.IsTuno)))
	defer span.End()
	start := time.Now()
	resp, err := c.send(ctx, api, body)
	elapsed := time.Since(start)
	outcome, rpcd := Classify(err), rpcdOf(resp, err)
	observeCall(api, outcome, rpcd, elapsed)
	span.SetAttributes(attribute.String("nh.outcome", outcome.String()), attribute.String("nh.rpcd", rpcd))
	if err != nil && outcome != OutcomeDeclined {
		// A decline is an answer, not a failed call.
		span.SetStatus(codes.Error, outcome.String())
	}
	c.log(ctx, api, ref, rpcd, err, elapsed)
	return resp, err
}

func tracer() trace.Tracer { return otel.Tracer("paysaga/nh") }

// rpcdOf is the bank's response code of an answer or a classified error ("" without one).
func rpcdOf(r *response, err error) string {
	var d *DeclinedError
	var t *TransportError
	var p *InProgressError
	switch {
	case r != nil:
		return r.Header.Rpcd
	case errors.As(err, &d):
		return d.Rpcd
	case errors.As(err, &p):
		return p.Rpcd
	case errors.As(err, &t):
		return t.Rpcd
	}
	return ""
}

func (c *Client) send(ctx context.Context, api string, body []byte) (*response, error) {
	// A request that never left (the context was already done, the bank refused the
	// connection) cannot have moved money, so it is merely transient even on a money call.
	if err := ctx.Err(); err != nil {
		return nil, &TransportError{API: api, Cause: err}
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout(api))
	defer cancel()
	var wrote atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteHeaders: func() { wrote.Store(true) },
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint+"/"+api+".nh", bytes.NewReader(body))
	if err != nil {
		return nil, &InvalidRequestError{API: api, Reason: "cannot build HTTP request"}
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("Accept", "application/json")

	failed := func(cause error) error {
		if MoneyMoving(api) && wrote.Load() {
			return &UnknownOutcomeError{API: api, Cause: cause}
		}
		return &TransportError{API: api, Cause: cause}
	}
	res, err := c.http.Do(req)
	if err != nil {
		return nil, failed(err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, maxBody))
	if err != nil {
		return nil, failed(fmt.Errorf("read answer: %w", err))
	}
	if res.StatusCode != http.StatusOK {
		return nil, failed(fmt.Errorf("HTTP status %d", res.StatusCode))
	}
	r, err := decodeResponse(raw)
	if err != nil {
		return nil, failed(fmt.Errorf("decode answer: %w", err))
	}
	switch r.Header.Rpcd {
	case RpcdOK:
		return r, nil
	case RpcdInProgress:
		return nil, &InProgressError{API: api, Rpcd: r.Header.Rpcd, Rsms: r.Header.Rsms}
	}
	if api == APICheckOnDrawingTransfer || api == APICheckOnReceivedTransfer {
		// NH-API.md: a refused result inquiry says nothing about the original transfer; the
		// inquiry itself is to be retried.
		return nil, &TransportError{API: api, Rpcd: r.Header.Rpcd, Rsms: r.Header.Rsms}
	}
	return nil, &DeclinedError{API: api, Rpcd: r.Header.Rpcd, Rsms: r.Header.Rsms}
}

func (c *Client) log(ctx context.Context, api string, ref Ref, rpcd string, err error, elapsed time.Duration) {
	if c.cfg.Logger == nil {
		return
	}
	outcome := Classify(err)
	// A failed call is logged once, by its caller, which knows what it means and at which
	// level (a declined debit is an answer, a transport error is retried, a malformed request
	// is our bug): the activities log every bank answer with the payment or refund it belongs
	// to, the balance service its failed inquiries. Here it is only a DEBUG line; the call
	// that succeeded is INFO.
	level := slog.LevelInfo
	if err != nil {
		level = slog.LevelDebug
	}
	args := []any{"nh_api", api, "tsymd", ref.Tsymd, "is_tuno", ref.IsTuno, "outcome", outcome.String(), "elapsed", elapsed}
	if rpcd != "" {
		args = append(args, "rpcd", rpcd)
	}
	if err != nil {
		args = append(args, "error", err.Error())
	}
	c.cfg.Logger.Log(ctx, level, "nh call", args...)
}
