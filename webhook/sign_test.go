package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSignMatchesTheDocumentedScheme(t *testing.T) {
	body := []byte(`{"id":"evt_1","type":"payment.succeeded"}`)
	at := time.Unix(1733100000, 0)
	// Computed by hand, as a receiver following the README would.
	m := hmac.New(sha256.New, []byte("whsec_test"))
	fmt.Fprintf(m, "%d.%s", at.Unix(), body)
	want := "t=1733100000,v1=" + hex.EncodeToString(m.Sum(nil))
	require.Equal(t, want, Sign(body, at, "whsec_test"))
}

func TestVerify(t *testing.T) {
	body := []byte(`{"id":"evt_1","type":"payment.succeeded","data":{"amount":15000}}`)
	now := time.Unix(1733100000, 0)
	cur, prev := NewSecret(), NewSecret()
	require.True(t, strings.HasPrefix(cur, SecretPrefix))
	require.NotEqual(t, cur, prev)
	signed := Sign(body, now, cur)
	rotating := Sign(body, now, cur, prev)

	for _, tc := range []struct {
		name   string
		body   []byte
		header string
		secret string
		now    time.Time
		want   error
	}{
		{"valid", body, signed, cur, now, nil},
		{"valid at the edge of the tolerance", body, signed, cur, now.Add(DefaultTolerance), nil},
		{"too old", body, signed, cur, now.Add(DefaultTolerance + time.Second), ErrTimestamp},
		{"from the future", body, signed, cur, now.Add(-DefaultTolerance - time.Second), ErrTimestamp},
		{"tampered body", []byte(strings.Replace(string(body), "15000", "150000", 1)), signed, cur, now, ErrSignature},
		{"another secret", body, signed, prev, now, ErrSignature},
		{"timestamp changed", body, strings.Replace(signed, "t=1733100000", "t=1733100001", 1), cur, now, ErrSignature},
		{"rotation overlap: the new secret verifies", body, rotating, cur, now, nil},
		{"rotation overlap: the old secret verifies", body, rotating, prev, now, nil},
		{"no header", body, "", cur, now, ErrNoSignature},
		{"no v1", body, "t=1733100000", cur, now, ErrNoSignature},
		{"only another scheme", body, strings.Replace(signed, "v1=", "v0=", 1), cur, now, ErrNoSignature},
		{"garbage timestamp", body, strings.Replace(signed, "t=1733100000", "t=soon", 1), cur, now, ErrNoSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := VerifyAt(tc.body, tc.header, tc.secret, tc.now, DefaultTolerance)
			if tc.want == nil {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, tc.want)
			}
		})
	}
	require.Equal(t, 2, strings.Count(rotating, "v1="))
}

func TestVerifyUsesTheWallClock(t *testing.T) {
	body := []byte(`{}`)
	require.NoError(t, Verify(body, Sign(body, time.Now(), "s"), "s"))
	require.ErrorIs(t, Verify(body, Sign(body, time.Now().Add(-time.Hour), "s"), "s"), ErrTimestamp)
}

func TestEventTypes(t *testing.T) {
	e := &Endpoint{EventTypes: []string{"payment.succeeded", "refund.*"}}
	require.True(t, e.Subscribed("payment.succeeded"))
	require.False(t, e.Subscribed("payment.failed"))
	require.True(t, e.Subscribed("refund.failed"))
	require.False(t, e.Subscribed("account.registered"))
	all := &Endpoint{EventTypes: []string{"*"}}
	require.True(t, all.Subscribed("settlement.paid"))
	// Engine-internal events never go to merchants, whatever they subscribed to.
	require.False(t, all.Subscribed("account.registered"))
	require.False(t, all.Subscribed("webhook_endpoint.failing"))
	require.False(t, all.Subscribed("payment."))
	for _, p := range []string{"*", "payment.*", "settlement.paid"} {
		require.True(t, ValidEventType(p), p)
	}
	for _, p := range []string{"", "account.*", "payment.everything", "webhook_endpoint.failing", "pay*"} {
		require.False(t, ValidEventType(p), p)
	}
}

func TestMerchantOf(t *testing.T) {
	require.Equal(t, "usr_m", MerchantOf([]byte(`{"id":"pay_1","merchant_id":"usr_m"}`)))
	require.Equal(t, "usr_m", MerchantOf([]byte(`{"id":"ref_1","payment":{"merchant_id":"usr_m"}}`)))
	require.Equal(t, "", MerchantOf([]byte(`{"id":"acct_1","owner_id":"usr_c"}`)))
	require.Equal(t, "", MerchantOf([]byte(`not json`)))
}
