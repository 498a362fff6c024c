package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"paysaga"
	"paysaga/store"
)

// Claims is what a valid access token says about its bearer.
type Claims struct {
	UserID    string
	Role      paysaga.Role
	TokenID   string // jti
	IssuedAt  time.Time
	ExpiresAt time.Time
}

// jwtClaims is the token's JSON: the registered claims plus the role.
type jwtClaims struct {
	Role string `json:"role"`
	jwt.RegisteredClaims
}

var errBadAccessToken = paysaga.Errorf(paysaga.EUNAUTHORIZED, "invalid or expired access token")

// accessToken signs an access token for u.
func (s *Service) accessToken(u *paysaga.User) (string, error) {
	now := s.cfg.Now()
	claims := jwtClaims{
		Role: string(u.Role),
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    s.cfg.Issuer,
			Subject:   u.ID,
			Audience:  jwt.ClaimStrings{s.cfg.Audience},
			ExpiresAt: jwt.NewNumericDate(now.Add(s.cfg.AccessTTL)),
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ID:        paysaga.NewID("jti_"),
		},
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(s.cfg.Secret)
}

// Verify checks an access token: signed HS256 with our secret (any other algorithm, "none"
// included, is refused), by our issuer, for our audience, not expired, with a known role.
func (s *Service) Verify(accessToken string) (*Claims, error) {
	var c jwtClaims
	_, err := jwt.ParseWithClaims(accessToken, &c,
		func(*jwt.Token) (any, error) { return s.cfg.Secret, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(s.cfg.Issuer),
		jwt.WithAudience(s.cfg.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(s.cfg.Now),
	)
	if err != nil {
		return nil, errBadAccessToken
	}
	role := paysaga.Role(c.Role)
	if c.Subject == "" || !role.Valid() {
		return nil, errBadAccessToken
	}
	out := &Claims{UserID: c.Subject, Role: role, TokenID: c.ID, ExpiresAt: c.ExpiresAt.UTC()}
	if c.IssuedAt != nil {
		out.IssuedAt = c.IssuedAt.UTC()
	}
	return out, nil
}

var errBadRefreshToken = paysaga.Errorf(paysaga.EUNAUTHORIZED, "invalid or expired refresh token")

// newRefreshToken returns a fresh opaque token (32 random bytes, base64url) and its hash.
func newRefreshToken() (token, hash string) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("auth: crypto/rand failed: " + err.Error())
	}
	token = base64.RawURLEncoding.EncodeToString(b[:])
	return token, hashRefreshToken(token)
}

// hashRefreshToken is how a refresh token is stored and looked up: SHA-256, hex. The token has
// 256 bits of entropy, so a fast hash is enough.
func hashRefreshToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

func newFamilyID() string { return paysaga.NewID("rtf_") }

// issue signs an access token for u and stores a new refresh token in family.
func (s *Service) issue(ctx context.Context, u *paysaga.User, family string) (*TokenPair, error) {
	rt := s.newStoredToken(u.ID, family)
	if err := s.db.CreateRefreshToken(ctx, rt.row); err != nil {
		return nil, err
	}
	return s.pair(u, rt.token)
}

type storedToken struct {
	token string
	row   *store.RefreshToken
}

func (s *Service) newStoredToken(userID, family string) storedToken {
	token, hash := newRefreshToken()
	now := s.cfg.Now()
	return storedToken{token: token, row: &store.RefreshToken{
		ID: paysaga.NewID("rt_"), UserID: userID, FamilyID: family, TokenHash: hash,
		ExpiresAt: now.Add(s.cfg.RefreshTTL), CreatedAt: now,
	}}
}

func (s *Service) pair(u *paysaga.User, refresh string) (*TokenPair, error) {
	access, err := s.accessToken(u)
	if err != nil {
		return nil, err
	}
	return &TokenPair{
		AccessToken: access, TokenType: "Bearer",
		ExpiresIn: int64(s.cfg.AccessTTL / time.Second), RefreshToken: refresh,
	}, nil
}

// Refresh exchanges a refresh token for a new pair. The presented token is marked used and a
// new one issued in its family. Presenting a token already used (an old one, perhaps stolen)
// revokes the whole family: both the thief and the user must log in again.
func (s *Service) Refresh(ctx context.Context, refreshToken string) (*TokenPair, error) {
	if refreshToken == "" || len(refreshToken) > 128 {
		return nil, errBadRefreshToken
	}
	old, err := s.db.RefreshTokenByHash(ctx, hashRefreshToken(refreshToken))
	switch {
	case paysaga.ErrorCode(err) == paysaga.ENOTFOUND:
		return nil, errBadRefreshToken
	case err != nil:
		return nil, err
	}
	if old.RevokedAt != nil || !s.cfg.Now().Before(old.ExpiresAt) {
		return nil, errBadRefreshToken
	}
	if old.UsedAt != nil {
		return nil, s.reused(ctx, old)
	}
	u, err := s.db.UserByID(ctx, old.UserID)
	switch {
	case paysaga.ErrorCode(err) == paysaga.ENOTFOUND:
		return nil, errBadRefreshToken
	case err != nil:
		return nil, err
	}
	next := s.newStoredToken(u.ID, old.FamilyID)
	if err := s.db.RotateRefreshToken(ctx, old.ID, next.row); err != nil {
		if paysaga.ErrorCode(err) == paysaga.ECONFLICT {
			// Another refresh used it first (or it was revoked or expired meanwhile): the same
			// token presented twice is reuse.
			return nil, s.reused(ctx, old)
		}
		return nil, err
	}
	return s.pair(u, next.token)
}

func (s *Service) reused(ctx context.Context, old *store.RefreshToken) error {
	if _, err := s.db.RevokeRefreshTokenFamily(ctx, old.FamilyID); err != nil {
		return err
	}
	return errBadRefreshToken
}

// Logout revokes the refresh token's whole family (the session it belongs to). Logging out
// twice is fine; an unknown token is EUNAUTHORIZED.
func (s *Service) Logout(ctx context.Context, refreshToken string) error {
	if refreshToken == "" || len(refreshToken) > 128 {
		return errBadRefreshToken
	}
	rt, err := s.db.RefreshTokenByHash(ctx, hashRefreshToken(refreshToken))
	if err != nil {
		if paysaga.ErrorCode(err) == paysaga.ENOTFOUND {
			return errBadRefreshToken
		}
		return err
	}
	if _, err := s.db.RevokeRefreshTokenFamily(ctx, rt.FamilyID); err != nil {
		return err
	}
	return nil
}
