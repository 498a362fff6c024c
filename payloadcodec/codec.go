// Package payloadcodec encrypts what the engine hands to Temporal — workflow inputs and results,
// update arguments and results, query results, activity inputs and results, memos and (through
// the failure converter) failure messages — so that the Temporal server, its database and its
// Web UI only ever hold ciphertext. Temporal keeps histories and visibility in plaintext and
// shows them to anyone who can reach the frontend or the UI; amounts, descriptions and account
// ids are not theirs to read.
//
// Payloads are sealed with AES-256-GCM under named keys (PAYSAGA_TEMPORAL_PAYLOAD_KEYS, the same
// `id:base64,…` form as PAYSAGA_ACCOUNT_KEYS, parsed by package seal): the first key encrypts,
// every listed key decrypts, so keys rotate without rewriting history. A payload that is not
// encrypted passes through unchanged, so histories recorded before encryption was turned on
// still replay and still show.
//
// Operators read encrypted payloads through the codec server (Handler), which implements
// Temporal's remote codec protocol for the Web UI (`--ui-codec-endpoint`) and the CLI
// (`temporal workflow show --codec-endpoint`).
package payloadcodec

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/proto"

	"paysaga/seal"
)

// Metadata of an encrypted payload. The encoding names the scheme, so that a reader (the codec
// server, a future scheme) knows what it holds without trying to decrypt.
const (
	MetadataEncoding = converter.MetadataEncoding // "encoding"
	MetadataKeyID    = "encryption-key-id"
	// Encoding is the "encoding" of an encrypted payload: its data is the AES-256-GCM sealing
	// (nonce, ciphertext, tag) of the original payload, protobuf-encoded with its metadata.
	Encoding = "binary/encrypted"
)

// additionalData binds every ciphertext to its use: a payload sealed here never opens as an
// account number (package seal's other use), nor the reverse, even under the same key.
const additionalData = "temporal-payload/v1"

// Codec is a converter.PayloadCodec that encrypts with the current key and decrypts with any
// listed one. It is safe for concurrent use.
type Codec struct {
	keys *seal.Keyring
}

var _ converter.PayloadCodec = (*Codec)(nil)

// ErrNoKeys is returned by Parse for an empty specification.
var ErrNoKeys = errors.New("payloadcodec: PAYSAGA_TEMPORAL_PAYLOAD_KEYS is empty")

// Parse builds a Codec from a key specification `id:base64,id:base64,…` (32-byte keys, the
// first one current). The reserved id "hmac" of package seal has no use here and is refused.
func Parse(spec string) (*Codec, error) {
	if strings.TrimSpace(strings.ReplaceAll(spec, ",", "")) == "" {
		return nil, ErrNoKeys
	}
	for _, entry := range strings.Split(spec, ",") {
		if id, _, _ := strings.Cut(strings.TrimSpace(entry), ":"); id == seal.HashKeyID {
			return nil, fmt.Errorf("payloadcodec: the key id %q is reserved", seal.HashKeyID)
		}
	}
	keys, err := seal.Parse(spec)
	if err != nil {
		return nil, fmt.Errorf("payloadcodec: %w", err)
	}
	return &Codec{keys: keys}, nil
}

// GenerateSpec returns a fresh specification with one random key, for `paysaga dev`, tests and
// operators generating a key (`paysaga codec-server --generate-key`).
func GenerateSpec(id string) string {
	var b [seal.KeySize]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("payloadcodec: crypto/rand failed: " + err.Error())
	}
	return id + ":" + base64.StdEncoding.EncodeToString(b[:])
}

// CurrentKeyID is the id of the key new payloads are encrypted with.
func (c *Codec) CurrentKeyID() string { return c.keys.CurrentKeyID() }

// String keeps keys out of any log line a Codec is printed into.
func (c *Codec) String() string {
	return fmt.Sprintf("payloadcodec.Codec{current:%q [redacted]}", c.keys.CurrentKeyID())
}

// Encode encrypts every payload that is not encrypted yet.
func (c *Codec) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if Encrypted(p) {
			out[i] = p
			continue
		}
		plain, err := proto.Marshal(p)
		if err != nil {
			return payloads, fmt.Errorf("payloadcodec: marshal payload: %w", err)
		}
		s, err := c.keys.Seal(plain, additionalData)
		if err != nil {
			return payloads, fmt.Errorf("payloadcodec: %w", err)
		}
		out[i] = &commonpb.Payload{
			Metadata: map[string][]byte{
				MetadataEncoding: []byte(Encoding),
				MetadataKeyID:    []byte(s.KeyID),
			},
			Data: s.Ciphertext,
		}
	}
	return out, nil
}

// Decode decrypts every encrypted payload with the key it names; others pass through (history
// written before encryption). A payload sealed with a key no longer listed is an error that
// names the key id, never silently left encrypted.
func (c *Codec) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if !Encrypted(p) {
			out[i] = p
			continue
		}
		keyID := string(p.GetMetadata()[MetadataKeyID])
		plain, err := c.keys.Open(seal.Sealed{Ciphertext: p.GetData(), KeyID: keyID}, additionalData)
		if err != nil {
			return payloads, fmt.Errorf("payloadcodec: decrypt payload (key %q): %w", keyID, err)
		}
		var orig commonpb.Payload
		if err := proto.Unmarshal(plain, &orig); err != nil {
			return payloads, fmt.Errorf("payloadcodec: unmarshal payload: %w", err)
		}
		out[i] = &orig
	}
	return out, nil
}

// Encrypted reports whether p was encrypted by a Codec.
func Encrypted(p *commonpb.Payload) bool {
	return string(p.GetMetadata()[MetadataEncoding]) == Encoding
}

// DataConverter is the default data converter with c applied to every payload.
func DataConverter(c *Codec) converter.DataConverter {
	return converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), c)
}

// FailureConverter moves failure messages and stack traces into the (encrypted) encoded
// attributes of a failure: a payment's failure message can quote the bank's answer.
func FailureConverter(dc converter.DataConverter) converter.FailureConverter {
	return temporal.NewDefaultFailureConverter(temporal.DefaultFailureConverterOptions{
		DataConverter:          dc,
		EncodeCommonAttributes: true,
	})
}
