// Package auth signs users up and in: argon2id password hashes, short-lived HS256 JWT access
// tokens, opaque rotating refresh tokens stored hashed (reuse of an old one revokes its whole
// family), and login rate limits kept in Redis. The HTTP layer calls it; it speaks SQL only
// through package store.
package auth

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"

	"paysaga"
	"paysaga/store"
)

// Config configures the Service. Zero values take the defaults noted.
type Config struct {
	// Secret signs access tokens (HS256). Outside DevMode it must be at least 32 bytes; in
	// DevMode an empty secret is replaced by a random one (tokens die with the process).
	Secret   []byte
	Issuer   string // default "paysaga"
	Audience string // default "paysaga-api"
	// AccessTTL is the lifetime of access tokens (default 15m); RefreshTTL of refresh tokens
	// (default 30 days).
	AccessTTL  time.Duration
	RefreshTTL time.Duration
	DevMode    bool

	// Login rate limits (see limiter in ratelimit.go), within RateWindow (default 15m):
	// MaxFailuresPerAccount free failures per email and client address (default 5), after
	// which that pair waits LockoutBase (default 1s), doubling with each further failure up to
	// MaxLockout (default 15m); MaxFailuresPerAddress failures per client address across all
	// emails (default 20) and MaxFailuresPerEmail per email across all addresses (default
	// 100), neither of which applies to an address the email logged in from within KnownTTL
	// (default 30 days).
	MaxFailuresPerAccount int
	MaxFailuresPerAddress int
	MaxFailuresPerEmail   int
	RateWindow            time.Duration
	LockoutBase           time.Duration
	MaxLockout            time.Duration
	KnownTTL              time.Duration
	// KeyPrefix prefixes every Redis key (default "paysaga:auth:").
	KeyPrefix string

	// Password is the argon2id cost (default DefaultPasswordParams).
	Password PasswordParams
	// Now is the clock (default time.Now); tests inject one to expire tokens.
	Now func() time.Time
}

// MinSecretLen is the shortest signing secret accepted outside dev mode.
const MinSecretLen = 32

// Validate reports a configuration the service must not start with.
func (c Config) Validate() error {
	if !c.DevMode {
		if len(c.Secret) == 0 {
			return errors.New("auth: a token signing secret is required outside dev mode")
		}
		if len(c.Secret) < MinSecretLen {
			return fmt.Errorf("auth: the token signing secret must be at least %d bytes outside dev mode", MinSecretLen)
		}
	}
	if c.AccessTTL < 0 || c.RefreshTTL < 0 || c.RateWindow < 0 || c.LockoutBase < 0 || c.MaxLockout < 0 || c.KnownTTL < 0 {
		return errors.New("auth: durations must not be negative")
	}
	if c.MaxFailuresPerAccount < 0 || c.MaxFailuresPerAddress < 0 || c.MaxFailuresPerEmail < 0 {
		return errors.New("auth: rate limits must not be negative")
	}
	return nil
}

func (c *Config) setDefaults() error {
	if len(c.Secret) == 0 && c.DevMode {
		c.Secret = make([]byte, MinSecretLen)
		if _, err := rand.Read(c.Secret); err != nil {
			return err
		}
	}
	if c.Issuer == "" {
		c.Issuer = "paysaga"
	}
	if c.Audience == "" {
		c.Audience = "paysaga-api"
	}
	if c.AccessTTL == 0 {
		c.AccessTTL = 15 * time.Minute
	}
	if c.RefreshTTL == 0 {
		c.RefreshTTL = 30 * 24 * time.Hour
	}
	if c.MaxFailuresPerAccount == 0 {
		c.MaxFailuresPerAccount = 5
	}
	if c.MaxFailuresPerAddress == 0 {
		c.MaxFailuresPerAddress = 20
	}
	if c.MaxFailuresPerEmail == 0 {
		c.MaxFailuresPerEmail = 100
	}
	if c.RateWindow == 0 {
		c.RateWindow = 15 * time.Minute
	}
	if c.LockoutBase == 0 {
		c.LockoutBase = time.Second
	}
	if c.MaxLockout == 0 {
		c.MaxLockout = 15 * time.Minute
	}
	if c.KnownTTL == 0 {
		c.KnownTTL = 30 * 24 * time.Hour
	}
	if c.KeyPrefix == "" {
		c.KeyPrefix = "paysaga:auth:"
	}
	if c.Password == (PasswordParams{}) {
		c.Password = DefaultPasswordParams
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// Service is the authentication service.
type Service struct {
	cfg     Config
	db      *store.DB
	limiter *limiter
	// dummyHash is verified against when the email is unknown, so that an unknown email costs
	// as much time as a wrong password and timing does not reveal who has an account.
	dummyHash string
}

// NewService checks cfg and builds the service.
func NewService(cfg Config, db *store.DB, rdb redis.UniversalClient) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if db == nil || rdb == nil {
		return nil, errors.New("auth: a store and a Redis client are required")
	}
	cfg.Secret = append([]byte(nil), cfg.Secret...)
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	var pw [24]byte
	_, _ = rand.Read(pw[:])
	dummy, err := HashPassword(string(pw[:]), cfg.Password)
	if err != nil {
		return nil, err
	}
	return &Service{
		cfg: cfg,
		db:  db.WithClock(cfg.Now),
		limiter: &limiter{rdb: rdb, prefix: cfg.KeyPrefix, window: cfg.RateWindow,
			perPair: cfg.MaxFailuresPerAccount, perAddress: cfg.MaxFailuresPerAddress, perEmail: cfg.MaxFailuresPerEmail,
			base: cfg.LockoutBase, maxDelay: cfg.MaxLockout, knownTTL: cfg.KnownTTL},
		dummyHash: dummy,
	}, nil
}

// TokenPair is the OAuth 2.0 token response of login and refresh.
type TokenPair struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
}

// Password and field limits.
const (
	MinPasswordLen = 10  // characters
	MaxPasswordLen = 256 // bytes: argon2 hashes anything, but nobody needs more
	maxNameLen     = 200 // characters
	maxEmailLen    = 254
)

// NormalizeEmail is how emails are compared: trimmed and lower-cased.
func NormalizeEmail(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

// Signup creates a customer. EINVALID for a malformed email, a password shorter than
// MinPasswordLen or an empty name; ECONFLICT when the email is taken.
func (s *Service) Signup(ctx context.Context, email, password, name string) (*paysaga.User, error) {
	email = NormalizeEmail(email)
	name = strings.TrimSpace(name)
	if !validEmail(email) {
		return nil, paysaga.Errorf(paysaga.EINVALID, "email is not a valid address")
	}
	if utf8.RuneCountInString(password) < MinPasswordLen {
		return nil, paysaga.Errorf(paysaga.EINVALID, "password must be at least %d characters", MinPasswordLen)
	}
	if len(password) > MaxPasswordLen {
		return nil, paysaga.Errorf(paysaga.EINVALID, "password must be at most %d bytes", MaxPasswordLen)
	}
	if name == "" || utf8.RuneCountInString(name) > maxNameLen {
		return nil, paysaga.Errorf(paysaga.EINVALID, "name must be 1 to %d characters", maxNameLen)
	}
	hash, err := HashPassword(password, s.cfg.Password)
	if err != nil {
		return nil, err
	}
	u := &paysaga.User{
		ID: paysaga.NewID(paysaga.PrefixUser), Email: email, Name: name,
		Role: paysaga.RoleCustomer, PasswordHash: hash,
	}
	if err := s.db.CreateUser(ctx, u); err != nil {
		return nil, err
	}
	return u, nil
}

func validEmail(email string) bool {
	if email == "" || len(email) > maxEmailLen {
		return false
	}
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Address != email || addr.Name != "" {
		return false
	}
	at := strings.LastIndexByte(email, '@')
	return at > 0 && strings.Contains(email[at+1:], ".")
}

var errBadCredentials = paysaga.Errorf(paysaga.EUNAUTHORIZED, "invalid email or password")

// Login checks a password and opens a session: a new refresh-token family. An unknown email
// and a wrong password give the same EUNAUTHORIZED error in about the same time. Too many
// failures give ERATELIMITED (a *RateLimitError): see limiter for which, and whose.
func (s *Service) Login(ctx context.Context, email, password, clientAddr string) (*TokenPair, error) {
	email = NormalizeEmail(email)
	if err := s.limiter.attempt(ctx, email, clientAddr); err != nil {
		return nil, err
	}
	if len(password) > MaxPasswordLen {
		// No stored password is longer; keep the hashing cost bounded.
		password = password[:MaxPasswordLen+1]
	}
	u, err := s.db.UserByEmail(ctx, email)
	switch {
	case paysaga.ErrorCode(err) == paysaga.ENOTFOUND:
		_ = VerifyPassword(password, s.dummyHash)
		return nil, errBadCredentials
	case err != nil:
		return nil, err
	}
	if !VerifyPassword(password, u.PasswordHash) {
		return nil, errBadCredentials
	}
	if err := s.limiter.succeeded(ctx, email, clientAddr); err != nil {
		return nil, err
	}
	return s.issue(ctx, u, newFamilyID())
}

// Grant gives the user with this email a role (merchants and operators are granted, never
// self-assigned). ENOTFOUND for an unknown email, EINVALID for an unknown role.
func (s *Service) Grant(ctx context.Context, email string, role paysaga.Role) error {
	if !role.Valid() {
		return paysaga.Errorf(paysaga.EINVALID, "unknown role %q", role)
	}
	return s.db.SetUserRole(ctx, NormalizeEmail(email), role)
}
