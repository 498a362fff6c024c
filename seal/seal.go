// Package seal keeps customers' secrets (bank account numbers, birth dates) unreadable at rest:
// AES-256-GCM with a named key, so that keys can rotate (new data is sealed with the current
// key, old data still opens with the key it names), and HMAC-SHA256 keyed hashes, so that
// "this account number is registered already" can be checked without decrypting anything and
// without a hash anyone could brute-force (account numbers have few digits).
//
// Keys come from one configuration string (PAYSAGA_ACCOUNT_KEYS), see Parse. Nothing in this
// package ever prints a key or a plaintext: a Keyring formats as "[redacted]".
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"paysaga"
)

// KeySize is the size of every key: AES-256 and a 256-bit HMAC key.
const KeySize = 32

// HashKeyID is the reserved key id of the HMAC key in a key specification.
const HashKeyID = "hmac"

// Sealed is a secret as the database keeps it: the ciphertext (nonce, then the AES-GCM output
// with its tag) and the id of the key that sealed it.
type Sealed struct {
	Ciphertext []byte
	KeyID      string
}

// ErrOpen is returned when a ciphertext does not open: a wrong or unknown key, a ciphertext
// that was changed, or one moved to another row (the additional data differs).
var ErrOpen = errors.New("seal: cannot open ciphertext")

// Keyring holds the sealing keys and the hash key. It is safe for concurrent use.
type Keyring struct {
	current string
	aeads   map[string]cipher.AEAD
	ids     []string // in the order of the specification, current first
	hashKey []byte
}

// Parse reads a key specification: comma-separated `id:key` entries, each key 32 bytes in
// standard or URL-safe base64 (padded or not). The first entry is the current key, which seals
// new data; the others only open data sealed before a rotation. Ids are 1 to 32 characters of
// [A-Za-z0-9_-].
//
// The entry with the reserved id "hmac" is the key of the duplicate-detection hash. It must
// stay the same for as long as hashes are stored (changing it means rehashing every account),
// so set it explicitly in production. Without it, the hash key is derived from the LAST
// sealing key listed, which therefore stays the same through rotations as long as the oldest
// key is kept at the end of the list.
//
// Example: "k2:<base64>,k1:<base64>,hmac:<base64>".
func Parse(spec string) (*Keyring, error) {
	k := &Keyring{aeads: map[string]cipher.AEAD{}}
	var lastRaw []byte
	for _, entry := range strings.Split(spec, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		id, b64, ok := strings.Cut(entry, ":")
		if !ok || !validID(id) {
			return nil, fmt.Errorf("seal: each key must be written id:base64 with an id of 1 to 32 letters, digits, _ or -")
		}
		raw, err := decodeKey(b64)
		if err != nil {
			// Never echo the value: it is a key.
			return nil, fmt.Errorf("seal: key %q is not %d bytes of base64", id, KeySize)
		}
		if id == HashKeyID {
			if k.hashKey != nil {
				return nil, fmt.Errorf("seal: key %q is listed twice", id)
			}
			k.hashKey = raw
			continue
		}
		if _, dup := k.aeads[id]; dup {
			return nil, fmt.Errorf("seal: key %q is listed twice", id)
		}
		block, err := aes.NewCipher(raw)
		if err != nil {
			return nil, fmt.Errorf("seal: key %q: %w", id, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("seal: key %q: %w", id, err)
		}
		k.aeads[id] = aead
		k.ids = append(k.ids, id)
		lastRaw = raw
	}
	if len(k.ids) == 0 {
		return nil, fmt.Errorf("seal: no sealing key (want id:base64[,id:base64…])")
	}
	k.current = k.ids[0]
	if k.hashKey == nil {
		m := hmac.New(sha256.New, lastRaw)
		m.Write([]byte("paysaga seal: hash key v1"))
		k.hashKey = m.Sum(nil)
	}
	return k, nil
}

// GenerateSpec returns a fresh random specification with one sealing key "k1" and an explicit
// hash key, for development and tests. Store it somewhere safe if sealed data must outlive
// the process.
func GenerateSpec() string {
	return "k1:" + randomKey() + "," + HashKeyID + ":" + randomKey()
}

// NewDevKeyring returns a keyring of random keys (GenerateSpec): what is sealed with it can
// only be opened by the same process. For development and tests only.
func NewDevKeyring() *Keyring {
	k, err := Parse(GenerateSpec())
	if err != nil {
		panic("seal: generated specification does not parse: " + err.Error())
	}
	return k
}

func randomKey() string {
	var b [KeySize]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("seal: crypto/rand failed: " + err.Error())
	}
	return base64.StdEncoding.EncodeToString(b[:])
}

func decodeKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if raw, err := enc.DecodeString(s); err == nil {
			if len(raw) != KeySize {
				return nil, errors.New("wrong size")
			}
			return raw, nil
		}
	}
	return nil, errors.New("not base64")
}

func validID(id string) bool {
	if id == "" || len(id) > 32 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// String keeps keys out of any log line a Keyring is printed into.
func (k *Keyring) String() string {
	return fmt.Sprintf("seal.Keyring{current:%q keys:%d [redacted]}", k.current, len(k.ids))
}

// GoString is String, for %#v.
func (k *Keyring) GoString() string { return k.String() }

// CurrentKeyID is the id of the key new data is sealed with.
func (k *Keyring) CurrentKeyID() string { return k.current }

// NeedsReseal reports whether data sealed with keyID should be sealed again with the current
// key (a rotation in progress).
func (k *Keyring) NeedsReseal(keyID string) bool { return keyID != k.current }

// Seal encrypts plaintext with the current key. additionalData binds the ciphertext to where it
// belongs (e.g. "account-number:acct_…"): it does not open under any other.
func (k *Keyring) Seal(plaintext []byte, additionalData string) (Sealed, error) {
	aead := k.aeads[k.current]
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return Sealed{}, fmt.Errorf("seal: nonce: %w", err)
	}
	return Sealed{Ciphertext: aead.Seal(nonce, nonce, plaintext, []byte(additionalData)), KeyID: k.current}, nil
}

// Open decrypts s with the key it names. Any failure is ErrOpen (wrapped with the key id).
func (k *Keyring) Open(s Sealed, additionalData string) ([]byte, error) {
	aead, ok := k.aeads[s.KeyID]
	if !ok {
		return nil, fmt.Errorf("%w: unknown key %q", ErrOpen, s.KeyID)
	}
	if len(s.Ciphertext) < aead.NonceSize()+aead.Overhead() {
		return nil, fmt.Errorf("%w: too short", ErrOpen)
	}
	nonce, body := s.Ciphertext[:aead.NonceSize()], s.Ciphertext[aead.NonceSize():]
	out, err := aead.Open(nil, nonce, body, []byte(additionalData))
	if err != nil {
		return nil, fmt.Errorf("%w: key %q", ErrOpen, s.KeyID)
	}
	return out, nil
}

// MAC is the keyed hash (HMAC-SHA256, hex) of parts, each length-prefixed so that ("ab","c")
// and ("a","bc") differ. Use it wherever a fingerprint of a secret is stored.
func (k *Keyring) MAC(parts ...string) string {
	m := hmac.New(sha256.New, k.hashKey)
	for _, p := range parts {
		fmt.Fprintf(m, "%d:", len(p))
		m.Write([]byte(p))
	}
	return hex.EncodeToString(m.Sum(nil))
}

// AccountNumberHash is the duplicate-detection hash of an account number at a bank: 64 hex
// characters, the same for the same (bank code, normalized number) under one hash key.
func (k *Keyring) AccountNumberHash(bankCode, number string) string {
	return k.MAC("account-number", bankCode, NormalizeAccountNumber(number))
}

// NormalizeAccountNumber drops the separators customers type (hyphens, spaces), keeping the
// digits the bank expects.
func NormalizeAccountNumber(number string) string {
	var b strings.Builder
	for i := 0; i < len(number); i++ {
		if c := number[i]; c != '-' && c != ' ' {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// Mask shows only the last four digits of an account number: "****1234".
func Mask(number string) string { return paysaga.MaskAccountNumber(number) }

// AccountNumberAD is the additional data an account's number is sealed with: the ciphertext
// opens only as the number of that account.
func AccountNumberAD(accountID string) string { return "account-number:" + accountID }

// BirthDateAD is the additional data an account holder's birth date is sealed with.
func BirthDateAD(accountID string) string { return "birth-date:" + accountID }
