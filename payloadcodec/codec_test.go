package payloadcodec_test

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"

	"paysaga/payloadcodec"
)

type paymentInput struct {
	AccountID   string `json:"account_id"`
	Amount      int64  `json:"amount"`
	Description string `json:"description"`
}

var secret = paymentInput{AccountID: "acct_7Q2secret", Amount: 987_654_321, Description: "birthday present"}

func mustParse(t *testing.T, spec string) *payloadcodec.Codec {
	t.Helper()
	c, err := payloadcodec.Parse(spec)
	require.NoError(t, err)
	return c
}

func TestEncryptsAndDecrypts(t *testing.T) {
	c := mustParse(t, payloadcodec.GenerateSpec("k1"))
	dc := payloadcodec.DataConverter(c)
	p, err := dc.ToPayload(secret)
	require.NoError(t, err)
	require.True(t, payloadcodec.Encrypted(p))
	require.Equal(t, "k1", string(p.Metadata[payloadcodec.MetadataKeyID]))
	raw, _ := p.Marshal()
	for _, s := range []string{"acct_7Q2secret", "987654321", "birthday"} {
		require.NotContains(t, string(raw), s, "the encoded payload shows %q", s)
	}
	var got paymentInput
	require.NoError(t, dc.FromPayload(p, &got))
	require.Equal(t, secret, got)
}

// Histories written before encryption was turned on hold plain JSON payloads: they still decode.
func TestPlainPayloadsPassThrough(t *testing.T) {
	plain, err := converter.GetDefaultDataConverter().ToPayload(secret)
	require.NoError(t, err)
	dc := payloadcodec.DataConverter(mustParse(t, payloadcodec.GenerateSpec("k1")))
	var got paymentInput
	require.NoError(t, dc.FromPayload(plain, &got))
	require.Equal(t, secret, got)
}

// Rotation: a new key goes first and encrypts; the old one, listed after it, still decrypts what
// it encrypted. Once it is retired (removed), its payloads no longer open, with an error that
// names the key.
func TestKeyRotation(t *testing.T) {
	k1, k2 := payloadcodec.GenerateSpec("k1"), payloadcodec.GenerateSpec("k2")
	before := payloadcodec.DataConverter(mustParse(t, k1))
	old, err := before.ToPayload(secret)
	require.NoError(t, err)

	rotated := payloadcodec.DataConverter(mustParse(t, k2+","+k1))
	fresh, err := rotated.ToPayload(secret)
	require.NoError(t, err)
	require.Equal(t, "k2", string(fresh.Metadata[payloadcodec.MetadataKeyID]), "the first key encrypts")
	for _, p := range []*commonpb.Payload{old, fresh} {
		var got paymentInput
		require.NoError(t, rotated.FromPayload(p, &got))
		require.Equal(t, secret, got)
	}

	retired := payloadcodec.DataConverter(mustParse(t, k2))
	var got paymentInput
	err = retired.FromPayload(old, &got)
	require.Error(t, err)
	require.Contains(t, err.Error(), `key "k1"`)
	require.NoError(t, retired.FromPayload(fresh, &got))
}

func TestTamperedPayloadIsRefused(t *testing.T) {
	c := mustParse(t, payloadcodec.GenerateSpec("k1"))
	out, err := c.Encode([]*commonpb.Payload{{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(`1`)}})
	require.NoError(t, err)
	out[0].Data[len(out[0].Data)-1] ^= 1
	_, err = c.Decode(out)
	require.Error(t, err)
}

func TestParseRefusesBadSpecs(t *testing.T) {
	for name, spec := range map[string]string{
		"empty":    " , ",
		"short":    "k1:c2hvcnQ=",
		"no id":    "bm90IGEga2V5IGJ1dCBsb25nIGVub3VnaCB0byBwYXNzISE=",
		"reserved": strings.Replace(payloadcodec.GenerateSpec("hmac"), "hmac", "hmac", 1),
	} {
		_, err := payloadcodec.Parse(spec)
		require.Error(t, err, name)
	}
	_, err := payloadcodec.Parse("")
	require.True(t, errors.Is(err, payloadcodec.ErrNoKeys))
	c := mustParse(t, payloadcodec.GenerateSpec("k1"))
	require.NotContains(t, c.String(), "=", "a codec never prints a key")
}

// The codec server speaks Temporal's remote codec protocol: what the SDK's remote codec
// encodes through it, the local codec decodes, and the reverse; the Web UI's preflight gets
// its CORS answer; without the operator's authorization nothing is decoded.
func TestCodecServer(t *testing.T) {
	c := mustParse(t, payloadcodec.GenerateSpec("k1"))
	const origin = "http://localhost:8233"
	srv := httptest.NewServer(payloadcodec.Handler(c, payloadcodec.ServerOptions{
		AllowedOrigins: []string{origin},
		Authorize: func(r *http.Request) error {
			if r.Header.Get("Authorization") != "Bearer operator" {
				return errors.New("not an operator")
			}
			return nil
		},
	}))
	defer srv.Close()

	remote := payloadcodec.RemoteCodec(srv.URL, "Bearer operator")
	plain, err := converter.GetDefaultDataConverter().ToPayload(secret)
	require.NoError(t, err)
	enc, err := remote.Encode([]*commonpb.Payload{plain})
	require.NoError(t, err)
	require.True(t, payloadcodec.Encrypted(enc[0]))
	dec, err := c.Decode(enc)
	require.NoError(t, err)
	require.Equal(t, plain.Data, dec[0].Data)

	local, err := c.Encode([]*commonpb.Payload{plain})
	require.NoError(t, err)
	dec, err = remote.Decode(local)
	require.NoError(t, err)
	require.Equal(t, plain.Data, dec[0].Data)

	_, err = payloadcodec.RemoteCodec(srv.URL, "Bearer customer").Decode(local)
	require.Error(t, err, "decoded for a caller without the operator's token")

	req, _ := http.NewRequest(http.MethodOptions, srv.URL+"/decode", nil)
	req.Header.Set("Origin", origin)
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "content-type,x-namespace,authorization")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusNoContent, res.StatusCode)
	require.Equal(t, origin, res.Header.Get("Access-Control-Allow-Origin"))
	require.Equal(t, "true", res.Header.Get("Access-Control-Allow-Credentials"))
	require.Contains(t, res.Header.Get("Access-Control-Allow-Headers"), "X-Namespace")

	req, _ = http.NewRequest(http.MethodPost, srv.URL+"/decode", bytes.NewReader([]byte(`{"payloads":[]}`)))
	req.Header.Set("Origin", "http://evil.example")
	req.Header.Set("Authorization", "Bearer operator")
	res, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	require.Empty(t, res.Header.Get("Access-Control-Allow-Origin"), "another origin is not allowed")
}
