package seal_test

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"paysaga/seal"
)

func key(b byte) string {
	return base64.StdEncoding.EncodeToString([]byte(strings.Repeat(string(rune(b)), seal.KeySize)))
}

func TestSealOpenRoundTrip(t *testing.T) {
	k := seal.NewDevKeyring()
	s, err := k.Seal([]byte("3021234567891"), seal.AccountNumberAD("acct_1"))
	require.NoError(t, err)
	require.Equal(t, "k1", s.KeyID)
	require.NotContains(t, string(s.Ciphertext), "3021234567891")

	out, err := k.Open(s, seal.AccountNumberAD("acct_1"))
	require.NoError(t, err)
	require.Equal(t, "3021234567891", string(out))

	again, err := k.Seal([]byte("3021234567891"), seal.AccountNumberAD("acct_1"))
	require.NoError(t, err)
	require.NotEqual(t, s.Ciphertext, again.Ciphertext, "a fresh nonce every time")

	_, err = k.Open(s, seal.AccountNumberAD("acct_2"))
	require.ErrorIs(t, err, seal.ErrOpen, "a ciphertext moved to another row does not open")
	tampered := seal.Sealed{Ciphertext: append([]byte(nil), s.Ciphertext...), KeyID: s.KeyID}
	tampered.Ciphertext[len(tampered.Ciphertext)-1] ^= 1
	_, err = k.Open(tampered, seal.AccountNumberAD("acct_1"))
	require.ErrorIs(t, err, seal.ErrOpen)
	_, err = k.Open(seal.Sealed{Ciphertext: []byte{1, 2}, KeyID: "k1"}, "")
	require.ErrorIs(t, err, seal.ErrOpen)
}

func TestRotation(t *testing.T) {
	old, err := seal.Parse("k0:" + key('a'))
	require.NoError(t, err)
	sealedOld, err := old.Seal([]byte("19900101"), seal.BirthDateAD("acct_1"))
	require.NoError(t, err)
	hashBefore := old.AccountNumberHash("011", "302-1234-5678-91")

	rotated, err := seal.Parse("k1:" + key('b') + ", k0:" + key('a'))
	require.NoError(t, err)
	require.Equal(t, "k1", rotated.CurrentKeyID())
	out, err := rotated.Open(sealedOld, seal.BirthDateAD("acct_1"))
	require.NoError(t, err, "old ciphertexts still open after a rotation")
	require.Equal(t, "19900101", string(out))
	require.True(t, rotated.NeedsReseal(sealedOld.KeyID))
	sealedNew, err := rotated.Seal(out, seal.BirthDateAD("acct_1"))
	require.NoError(t, err)
	require.Equal(t, "k1", sealedNew.KeyID)
	require.Equal(t, hashBefore, rotated.AccountNumberHash("011", "30212345678 91"),
		"the hash key (derived from the oldest key) survives the rotation, so duplicates are still found")

	dropped, err := seal.Parse("k1:" + key('b'))
	require.NoError(t, err)
	_, err = dropped.Open(sealedOld, seal.BirthDateAD("acct_1"))
	require.ErrorIs(t, err, seal.ErrOpen)

	explicit, err := seal.Parse("k1:" + key('b') + ",hmac:" + key('h'))
	require.NoError(t, err)
	explicit2, err := seal.Parse("k2:" + key('c') + ",k1:" + key('b') + ",hmac:" + key('h'))
	require.NoError(t, err)
	require.Equal(t, explicit.AccountNumberHash("011", "1234567"), explicit2.AccountNumberHash("011", "1234567"))
}

func TestHash(t *testing.T) {
	k := seal.NewDevKeyring()
	h := k.AccountNumberHash("011", "3021234567891")
	require.Len(t, h, 64)
	require.Equal(t, h, k.AccountNumberHash("011", "302-1234-5678-91"))
	require.NotEqual(t, h, k.AccountNumberHash("012", "3021234567891"), "per bank code")
	require.NotEqual(t, h, seal.NewDevKeyring().AccountNumberHash("011", "3021234567891"), "keyed: another key, another hash")
	require.NotEqual(t, k.MAC("ab", "c"), k.MAC("a", "bc"))
	require.Equal(t, "****7891", seal.Mask("302-1234-5678-91"))
}

func TestParseRefusesBadSpecs(t *testing.T) {
	for name, spec := range map[string]string{
		"empty":       "",
		"no id":       key('a'),
		"short key":   "k1:" + base64.StdEncoding.EncodeToString([]byte("short")),
		"not base64":  "k1:!!!!",
		"duplicate":   "k1:" + key('a') + ",k1:" + key('b'),
		"bad id":      "k 1:" + key('a'),
		"only hmac":   "hmac:" + key('a'),
		"double hmac": "k1:" + key('a') + ",hmac:" + key('b') + ",hmac:" + key('c'),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := seal.Parse(spec)
			require.Error(t, err)
			require.NotContains(t, err.Error(), key('a'), "a key never appears in an error")
		})
	}
	// URL-safe and unpadded keys are accepted.
	raw := []byte(strings.Repeat("\xfb", seal.KeySize))
	_, err := seal.Parse("k1:" + base64.RawURLEncoding.EncodeToString(raw))
	require.NoError(t, err)
}

func TestKeyringNeverPrintsKeys(t *testing.T) {
	spec := seal.GenerateSpec()
	k, err := seal.Parse(spec)
	require.NoError(t, err)
	for _, s := range []string{fmt.Sprint(k), fmt.Sprintf("%v %+v %#v %s", k, k, k, k)} {
		for _, entry := range strings.Split(spec, ",") {
			_, b64, _ := strings.Cut(entry, ":")
			require.NotContains(t, s, b64)
		}
	}
	var err2 error = fmt.Errorf("wrapped: %w", seal.ErrOpen)
	require.True(t, errors.Is(err2, seal.ErrOpen))
}
