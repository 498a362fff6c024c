// Package paysaga is the domain of the payment engine: payments, refunds, bank accounts, users,
// money, the statuses each can be in and the transitions allowed between them, and the domain
// errors every layer speaks. It imports nothing heavier than the standard library, so that every
// other package (store, nh, workflows, api) can depend on it without dragging the others in.
package paysaga

import (
	"crypto/rand"
	"encoding/base32"
	"strconv"
	"strings"
	"time"
)

// MaxAmount is the largest amount the engine accepts: 15 digits of won.
const MaxAmount int64 = 999_999_999_999_999

// ValidateAmount checks an amount in won (KRW has no minor unit, so int64 won is exact).
func ValidateAmount(amount int64) error {
	if amount <= 0 {
		return Errorf(EINVALID, "amount must be a positive number of won")
	}
	if amount > MaxAmount {
		return Errorf(EINVALID, "amount must have at most 15 digits")
	}
	return nil
}

// FormatWon writes an amount of won with thousands separators, as people read it: "1,234,567".
func FormatWon(amount int64) string {
	digits := strconv.FormatInt(amount, 10)
	sign := ""
	if amount < 0 {
		sign, digits = "-", digits[1:]
	}
	for i := len(digits) - 3; i > 0; i -= 3 {
		digits = digits[:i] + "," + digits[i:]
	}
	return sign + digits
}

// ID prefixes: public IDs are opaque strings with a type prefix.
const (
	PrefixUser     = "usr_"
	PrefixPayment  = "pay_"
	PrefixRefund   = "ref_"
	PrefixAccount  = "acct_"
	PrefixTransfer = "trf_"
	PrefixEvent    = "evt_"
)

var idEncoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// NewID returns a fresh random ID with the given prefix. It reads crypto/rand, so workflow code
// must never call it: IDs reach workflows as input.
func NewID(prefix string) string {
	var b [15]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("paysaga: crypto/rand failed: " + err.Error())
	}
	return prefix + idEncoding.EncodeToString(b[:])
}

// HasPrefix reports whether id looks like an ID of the kind prefix names.
func HasPrefix(id, prefix string) bool {
	return strings.HasPrefix(id, prefix) && len(id) > len(prefix) && len(id) <= 64
}

// MaskAccountNumber shows only the last four digits of an account number: "****1234".
func MaskAccountNumber(number string) string {
	digits := make([]byte, 0, len(number))
	for i := 0; i < len(number); i++ {
		if number[i] >= '0' && number[i] <= '9' {
			digits = append(digits, number[i])
		}
	}
	if len(digits) <= 4 {
		return "****"
	}
	return "****" + string(digits[len(digits)-4:])
}

// Role is what a user may do. Customers sign up; merchants and operators are granted.
type Role string

const (
	RoleCustomer Role = "customer"
	RoleMerchant Role = "merchant"
	RoleOperator Role = "operator"
)

// Valid reports whether r is a known role.
func (r Role) Valid() bool {
	return r == RoleCustomer || r == RoleMerchant || r == RoleOperator
}

// User is a person or a service that logs in.
type User struct {
	ID           string    `json:"id"`
	Email        string    `json:"email"`
	Name         string    `json:"name"`
	Role         Role      `json:"role"`
	PasswordHash string    `json:"-"`
	CreatedAt    time.Time `json:"created_at"`
}
