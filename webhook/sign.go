package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"
)

// Headers of a delivery.
const (
	SignatureHeader = "Paysaga-Signature"
	EventIDHeader   = "Paysaga-Event-Id"
	EventTypeHeader = "Paysaga-Event-Type"
)

// DefaultTolerance is how old a signature's timestamp may be (and how far in the future) for
// Verify to accept it: a captured request cannot be replayed later than that.
const DefaultTolerance = 5 * time.Minute

// Sign returns the Paysaga-Signature header value for body sent at t, with one v1 per secret
// (the current one first; during a rotation's overlap the previous one too).
func Sign(body []byte, t time.Time, secrets ...string) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	var b strings.Builder
	b.WriteString("t=")
	b.WriteString(ts)
	for _, s := range secrets {
		b.WriteString(",v1=")
		b.WriteString(signature(s, ts, body))
	}
	return b.String()
}

func signature(secret, ts string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// Errors of Verify.
var (
	ErrNoSignature = errors.New("webhook: no valid Paysaga-Signature header")
	ErrTimestamp   = errors.New("webhook: signature timestamp outside the tolerance")
	ErrSignature   = errors.New("webhook: no signature matches the body")
)

// Verify checks a delivery as a receiver would: header is the Paysaga-Signature value, body
// the raw bytes received, secret the endpoint's secret. It accepts when the timestamp is
// within DefaultTolerance of now and one of the v1 signatures is the body's.
func Verify(body []byte, header, secret string) error {
	return VerifyAt(body, header, secret, time.Now(), DefaultTolerance)
}

// VerifyAt is Verify with a clock and a tolerance of the caller's.
func VerifyAt(body []byte, header, secret string, now time.Time, tolerance time.Duration) error {
	var ts string
	var sigs []string
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		switch k {
		case "t":
			ts = v
		case "v1":
			sigs = append(sigs, v)
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return ErrNoSignature
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return ErrTimestamp
	}
	want := []byte(signature(secret, ts, body))
	for _, s := range sigs {
		if hmac.Equal([]byte(s), want) {
			return nil
		}
	}
	return ErrSignature
}
