// Package nh is the client of NH NongHyup's Open API, the bank behind every money movement of
// the engine. It is the only package that speaks to the bank: it builds the request envelope
// (header in Korea time, every value a string), allocates institution transaction numbers
// (IsTuno) through a Sequencer, decodes answers tolerantly, and classifies every outcome once,
// here at the edge, so that callers never have to interpret bank codes or transport errors
// themselves: see Classify.
//
// The access token, account numbers, fin accounts and birth dates never appear in an error
// string or a log line written by this package.
package nh

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// KST is Korea Standard Time. A fixed zone, so that no tzdata is needed on the machine; Korea
// has no daylight saving time.
var KST = time.FixedZone("KST", 9*3600)

// Today returns the transmission date (Tsymd, YYYYMMDD) of now in Korea time.
func Today(now time.Time) string { return now.In(KST).Format("20060102") }

// Trtm returns the transmission time (HHMMSS, 24-hour clock) of now in Korea time. The seed
// project used a 12-hour clock here, which made afternoon requests look like morning ones.
func Trtm(now time.Time) string { return now.In(KST).Format("150405") }

// ParseTsymd parses a YYYYMMDD date as midnight in Korea time.
func ParseTsymd(s string) (time.Time, error) {
	if len(s) != 8 || !isDigits(s) {
		return time.Time{}, fmt.Errorf("nh: date must be YYYYMMDD")
	}
	return time.ParseInLocation("20060102", s, KST)
}

// Ref identifies one request at the bank: IsTuno is unique per institution per Tsymd. The
// caller of a money-moving call allocates it and records it with the transfer before sending,
// so that the transfer can always be looked up again with a CheckOn… call.
type Ref struct {
	Tsymd  string `json:"tsymd"`
	IsTuno string `json:"is_tuno"`
}

// IsZero reports whether r was left empty.
func (r Ref) IsZero() bool { return r.Tsymd == "" && r.IsTuno == "" }

func (r Ref) validate() error {
	if len(r.Tsymd) != 8 || !isDigits(r.Tsymd) {
		return fmt.Errorf("the reference date Tsymd must be 8 digits")
	}
	if len(r.IsTuno) == 0 || len(r.IsTuno) > 20 || !isDigits(r.IsTuno) {
		return fmt.Errorf("the reference number IsTuno must be 1 to 20 digits")
	}
	return nil
}

// Sequencer allocates IsTunos. The store implements it from the database; an IsTuno is never
// handed out twice for the same Tsymd, even across restarts.
type Sequencer interface {
	NextIsTuno(ctx context.Context, tsymd string) (string, error)
}

// FormatIsTuno builds the IsTuno of the seq-th request of day tsymd: the date and a 12-digit
// zero-padded sequence, 20 digits in all. Stores that implement Sequencer use it so that every
// IsTuno has the same shape.
func FormatIsTuno(tsymd string, seq int64) string {
	return fmt.Sprintf("%s%012d", tsymd, seq)
}

// NewRef allocates a fresh Ref for now from seq.
func NewRef(ctx context.Context, seq Sequencer, now time.Time) (Ref, error) {
	tsymd := Today(now)
	no, err := seq.NextIsTuno(ctx, tsymd)
	if err != nil {
		return Ref{}, fmt.Errorf("nh: allocate IsTuno: %w", err)
	}
	return Ref{Tsymd: tsymd, IsTuno: no}, nil
}

// MemorySequencer is a Sequencer that forgets everything on restart: for tests and for
// callers without a database, which must then never talk to a real bank twice on one day.
type MemorySequencer struct {
	mu   sync.Mutex
	next map[string]int64
}

// NewMemorySequencer returns an in-memory Sequencer starting at 1 each day.
func NewMemorySequencer() *MemorySequencer {
	return &MemorySequencer{next: make(map[string]int64)}
}

// NextIsTuno implements Sequencer.
func (m *MemorySequencer) NextIsTuno(_ context.Context, tsymd string) (string, error) {
	if len(tsymd) != 8 || !isDigits(tsymd) {
		return "", fmt.Errorf("nh: Tsymd must be 8 digits")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.next[tsymd]++
	return FormatIsTuno(tsymd, m.next[tsymd]), nil
}

// DefaultTimeout bounds a call whose API has no entry in Config.Timeouts (nor a "*" entry).
const DefaultTimeout = 10 * time.Second

// Config says where the bank is and who we are to it.
type Config struct {
	// BaseURL is the bank's address, e.g. https://developers.nonghyup.com or the simulator's.
	BaseURL string
	// Iscd is the 6-character institution code issued with the contract.
	Iscd string
	// FintechApsno is the fintech app serial number; "001" when empty.
	FintechApsno string
	// AccessToken is the 64-hex-character token issued with the contract. A secret.
	AccessToken string
	// SvcCodes maps an ApiNm to its ApiSvcCd; missing entries take DefaultSvcCodes.
	SvcCodes map[string]string
	// Timeouts maps an ApiNm to the time one attempt may take; the "*" entry, or
	// DefaultTimeout, applies to the others.
	Timeouts map[string]time.Duration
	// HTTPClient sends the requests; a fresh client when nil. Its own Timeout should be zero
	// or longer than any entry of Timeouts.
	HTTPClient *http.Client
	// Now is the clock used for the header; time.Now when nil.
	Now func() time.Time
	// Logger, when set, receives one line per call with stable keys (nh_api, tsymd, is_tuno,
	// rpcd, outcome, elapsed); never a secret or an account.
	Logger *slog.Logger
}

// String keeps the access token out of any log line a Config is printed into.
func (c Config) String() string {
	return fmt.Sprintf("nh.Config{BaseURL:%q Iscd:%q FintechApsno:%q AccessToken:[redacted]}", c.BaseURL, c.Iscd, c.FintechApsno)
}

// Client calls the NH Open API. It is safe for concurrent use.
type Client struct {
	endpoint string // BaseURL without a trailing slash
	cfg      Config
	seq      Sequencer
	http     *http.Client
	now      func() time.Time
	svc      map[string]string
}

// New checks cfg and returns a client that allocates IsTunos from seq.
func New(cfg Config, seq Sequencer) (*Client, error) {
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("nh: BaseURL must be an http or https URL")
	}
	if len(cfg.Iscd) != 6 {
		return nil, fmt.Errorf("nh: Iscd must be 6 characters")
	}
	if cfg.FintechApsno == "" {
		cfg.FintechApsno = "001"
	}
	if len(cfg.FintechApsno) != 3 {
		return nil, fmt.Errorf("nh: FintechApsno must be 3 characters")
	}
	if !isHex(cfg.AccessToken, 64) {
		return nil, fmt.Errorf("nh: AccessToken must be 64 hexadecimal characters")
	}
	if seq == nil {
		return nil, fmt.Errorf("nh: a Sequencer is required")
	}
	svc := DefaultSvcCodes()
	for api, code := range cfg.SvcCodes {
		if code == "" || len(code) > 20 {
			return nil, fmt.Errorf("nh: ApiSvcCd of %s must be 1 to 20 characters", api)
		}
		svc[api] = code
	}
	for api, d := range cfg.Timeouts {
		if d <= 0 {
			return nil, fmt.Errorf("nh: timeout of %s must be positive", api)
		}
	}
	c := &Client{
		endpoint: strings.TrimRight(cfg.BaseURL, "/"),
		cfg:      cfg,
		seq:      seq,
		http:     cfg.HTTPClient,
		now:      cfg.Now,
		svc:      svc,
	}
	if c.http == nil {
		c.http = &http.Client{}
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c, nil
}

func (c *Client) timeout(api string) time.Duration {
	if d, ok := c.cfg.Timeouts[api]; ok {
		return d
	}
	if d, ok := c.cfg.Timeouts["*"]; ok {
		return d
	}
	return DefaultTimeout
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}
