// Package nhsim is a simulator of NH NongHyup's Open API, faithful enough that every flow of
// the engine, and every way the bank fails, runs and is tested on one machine. It serves the
// same HTTP contract as the bank (POST /{ApiNm}.nh, see docs/nh.md) from an in-memory ledger
// in which transfers only move money, never create or lose it (the fintech's own account is
// part of the ledger), and it can inject faults per call with a seed for repeatable runs. An
// admin API under /admin/, and the same operations as Go methods, create accounts, read the
// ledger and the executed transfers, and set faults at run time.
//
// Refusals use these codes (only 00000 and A0017 are NH's; NH publishes no others, so the
// E codes are the project's own and the client never depends on them):
//
//	Rpcd   Rsms                                             when
//	00000  정상처리 되었습니다.                               success
//	A0017  핀어카운트 발급 처리중입니다.                       fin-account issuance still in progress
//	E0001  필수 입력값이 누락되었습니다.                       a required field is missing or empty
//	E0002  입력값이 올바르지 않습니다.                         wrong length, format, digit or date; a non-string value
//	E0003  기관코드가 올바르지 않습니다.                       Iscd is not the simulator's
//	E0004  인증정보가 올바르지 않습니다.                       AccessToken is not the simulator's
//	E0005  중복된 기관거래고유번호입니다. 다시 확인바랍니다.     IsTuno already used on this Tsymd
//	E0006  API명이 올바르지 않습니다.                          Header.ApiNm differs from the URL
//	E1001  잔액이 부족합니다.                                  the paying account holds less than Tram
//	E1002  등록되지 않은 핀어카운트입니다.                      no such fin account (or not issued yet)
//	E1003  출금이체 등록이 되지 않은 핀어카운트입니다.           DrawingTransfer from a fin account with DrtrRgyn=N
//	E1004  이체한도를 초과하였습니다.                          Tram over the per-transfer limit
//	E1005  계좌정보가 존재하지 않습니다.                        no account with this Bncd and Acno
//	E1006  생년월일이 일치하지 않습니다.                        BrdtBrno differs from the holder's
//	E1007  등록번호가 존재하지 않습니다.                        unknown Rgno
//	E1008  은행코드가 올바르지 않습니다.                        Bncd not allowed for this call
//	E1009  조회기간이 올바르지 않습니다.                        history period reversed, over 3 months or over a year back
//	E1010  원거래 정보가 일치하지 않습니다.                     CheckOn… names an original of another kind, account or amount
//	E9999  처리중 오류가 발생하였습니다.                        forced decline (fault injection, default code)
//
// The table itself is Codes; a test keeps this comment and docs/nh.md in step with it.
package nhsim

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"paysaga/nh"
)

// Config sets up a simulator.
type Config struct {
	// Iscd and AccessToken are what requests must carry; others are refused. Empty ones take
	// DefaultIscd and DefaultAccessToken.
	Iscd        string
	AccessToken string
	// FintechAccount is the fintech's own account: withdrawals land in it, deposits come from
	// it. Defaults: NH bank, account 3020000000001, holder 페이사가, balance 0.
	FintechAccount Account
	// IssueDelay is how long a fin account takes to issue: CheckOpenFinAccountDirect answers
	// A0017 until it has passed on Clock.
	IssueDelay time.Duration
	// TransferLimit caps one transfer's amount (E1004 above it); 1,000,000,000 won when zero.
	TransferLimit int64
	// Faults in force from the start, by API (see ParseFaults).
	Faults map[string][]Fault
	// Seed makes fault draws repeatable.
	Seed uint64
	// Clock is the simulator's time; time.Now when nil.
	Clock func() time.Time
	// AdminToken, when set, must be sent as "Authorization: Bearer …" to /admin/.
	AdminToken string
}

// Credentials the simulator expects when Config leaves them empty, so that a development
// setup and tests need not invent any. Not NH's.
const (
	DefaultIscd        = "000001"
	DefaultAccessToken = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a"
)

// Validate reports a Config that New would refuse, for commands that build one from flags.
func (c Config) Validate() error {
	if c.Iscd != "" && len(c.Iscd) != 6 {
		return fmt.Errorf("nhsim: Iscd must be 6 characters")
	}
	if c.AccessToken != "" && !hex64(c.AccessToken) {
		return fmt.Errorf("nhsim: AccessToken must be 64 hexadecimal characters")
	}
	if c.IssueDelay < 0 || c.TransferLimit < 0 {
		return fmt.Errorf("nhsim: IssueDelay and TransferLimit must not be negative")
	}
	f := c.FintechAccount
	if (f.Bncd != "" && !digits(f.Bncd, 3, 3)) || (f.Acno != "" && !digits(f.Acno, 6, 16)) ||
		(f.Birth != "" && !validBirth(f.Birth)) || f.Balance < 0 {
		return fmt.Errorf("nhsim: FintechAccount needs a 3-digit bank code, a 6-16 digit number, a valid birth date or business number, and a balance ≥ 0")
	}
	for api, list := range c.Faults {
		if api != AllAPIs && !slices.Contains(nh.APIs, api) {
			return fmt.Errorf("nhsim: unknown API %q", api)
		}
		for _, f := range list {
			if err := f.validate(); err != nil {
				return err
			}
		}
	}
	return nil
}

func hex64(s string) bool {
	if len(s) != 64 {
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

// ClientConfig returns the part of an nh.Config that talks to this simulator at baseURL.
func (s *Sim) ClientConfig(baseURL string) nh.Config {
	return nh.Config{BaseURL: baseURL, Iscd: s.cfg.Iscd, AccessToken: s.cfg.AccessToken}
}

// DefaultTransferLimit is the per-transfer limit when Config.TransferLimit is zero.
const DefaultTransferLimit int64 = 1_000_000_000

// Account is one bank account of the ledger.
type Account struct {
	Bncd    string `json:"bank_code"`
	Acno    string `json:"account_number"`
	Holder  string `json:"holder"`
	Birth   string `json:"birth_date"` // YYYYMMDD, or a 10-digit business number
	Balance int64  `json:"balance"`
}

// AccountID names an account in the ledger.
type AccountID struct {
	Bncd string `json:"bank_code"`
	Acno string `json:"account_number"`
}

// Transfer is one executed money movement.
type Transfer struct {
	API    string    `json:"api"`
	Tsymd  string    `json:"tsymd"`
	IsTuno string    `json:"is_tuno"`
	From   AccountID `json:"from"`
	To     AccountID `json:"to"`
	Amount int64     `json:"amount"`
	Tuno   string    `json:"tuno"` // the bank's transaction number
	At     time.Time `json:"at"`
}

// Ledger is a snapshot of every account.
type Ledger struct {
	Fintech  Account   `json:"fintech"`
	Accounts []Account `json:"accounts"` // every account, the fintech's included, sorted
	Total    int64     `json:"total"`
}

type account struct {
	Account
	fin     *finAccount
	history []historyRow
}

type historyRow struct {
	at      time.Time
	deposit bool
	amount  int64
	after   int64
	summary string
	tuno    string
	text    string
}

type finAccount struct {
	finAcno    string
	acct       *account
	withdrawal bool
	issueAt    time.Time
}

type registration struct {
	fin   *finAccount
	birth string
}

type reqState int

const (
	reqInFlight reqState = iota
	reqExecuted
	reqNotExecuted
)

// seenReq is the simulator's record of one (Tsymd, IsTuno): the duplicate check and the
// memory CheckOn… answers from.
type seenReq struct {
	api   string
	state reqState
	fin   string
	to    AccountID
	tram  int64
}

// Sim is a simulated bank. It is safe for concurrent use.
type Sim struct {
	cfg   Config
	clock func() time.Time
	done  chan struct{}
	close sync.Once

	mu       sync.Mutex
	accounts map[AccountID]*account
	fintech  *account
	fins     map[string]*finAccount
	regs     map[string]*registration
	seen     map[string]*seenReq // Tsymd+IsTuno
	stats    map[string]*CallStats
	executed []Transfer
	nextFin  int64
	nextRgno int64
	nextTuno int64
	nextAcno int64

	faultMu sync.Mutex
	faults  map[string][]Fault
	rng     *rand.Rand
}

// New builds a simulator. It panics on a Config that Validate refuses, a programming error of
// the caller; commands should call Validate (and ParseFaults) first.
func New(cfg Config) *Sim {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	if cfg.Iscd == "" {
		cfg.Iscd = DefaultIscd
	}
	if cfg.AccessToken == "" {
		cfg.AccessToken = DefaultAccessToken
	}
	if cfg.TransferLimit == 0 {
		cfg.TransferLimit = DefaultTransferLimit
	}
	f := &cfg.FintechAccount
	if f.Bncd == "" {
		f.Bncd = nh.BankNH
	}
	if f.Acno == "" {
		f.Acno = "3020000000001"
	}
	if f.Holder == "" {
		f.Holder = "페이사가"
	}
	if f.Birth == "" {
		f.Birth = "1234567890"
	}
	s := &Sim{
		cfg:      cfg,
		clock:    cfg.Clock,
		done:     make(chan struct{}),
		accounts: map[AccountID]*account{},
		fins:     map[string]*finAccount{},
		regs:     map[string]*registration{},
		seen:     map[string]*seenReq{},
		stats:    map[string]*CallStats{},
		faults:   map[string][]Fault{},
		rng:      rand.New(rand.NewPCG(cfg.Seed, 0x9e3779b97f4a7c15)),
	}
	if s.clock == nil {
		s.clock = time.Now
	}
	fintech, err := s.CreateAccount(*f)
	if err != nil {
		panic(fmt.Sprintf("nhsim: fintech account: %v", err))
	}
	s.fintech = s.accounts[AccountID{fintech.Bncd, fintech.Acno}]
	for api, list := range cfg.Faults {
		for _, fault := range list {
			if err := s.SetFault(api, fault); err != nil {
				panic(err)
			}
		}
	}
	return s
}

// Close stops injected delays early, so that a test ends promptly; requests still waiting are
// dropped. The simulator keeps answering other requests.
func (s *Sim) Close() { s.close.Do(func() { close(s.done) }) }

// CreateAccount adds an account with an opening balance (admin money: the only way money
// enters the ledger). An empty Acno gets a fresh number, an empty Bncd is NH bank.
func (s *Sim) CreateAccount(a Account) (Account, error) {
	if a.Bncd == "" {
		a.Bncd = nh.BankNH
	}
	if !digits(a.Bncd, 3, 3) {
		return Account{}, fmt.Errorf("nhsim: bank code must be 3 digits")
	}
	if a.Acno != "" && !digits(a.Acno, 6, 16) {
		return Account{}, fmt.Errorf("nhsim: account number must be 6 to 16 digits")
	}
	if strings.TrimSpace(a.Holder) == "" {
		return Account{}, fmt.Errorf("nhsim: holder name is required")
	}
	if !validBirth(a.Birth) {
		return Account{}, fmt.Errorf("nhsim: birth date must be YYYYMMDD or a 10-digit business number")
	}
	if a.Balance < 0 {
		return Account{}, fmt.Errorf("nhsim: balance must not be negative")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if a.Acno == "" {
		for {
			s.nextAcno++
			a.Acno = fmt.Sprintf("351%09d", s.nextAcno)
			if _, taken := s.accounts[AccountID{a.Bncd, a.Acno}]; !taken {
				break
			}
		}
	}
	id := AccountID{a.Bncd, a.Acno}
	if _, exists := s.accounts[id]; exists {
		return Account{}, fmt.Errorf("nhsim: account already exists")
	}
	s.accounts[id] = &account{Account: a}
	return a, nil
}

// RegisterFinAccount issues a fin account for an existing account at once, skipping the
// two-call dance and the issuance delay, for tests that need a ready one.
func (s *Sim) RegisterFinAccount(bncd, acno string, withdrawal bool) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.accounts[AccountID{bncd, acno}]
	if !ok {
		return "", fmt.Errorf("nhsim: no such account")
	}
	fin := s.newFin(a, withdrawal, s.clock())
	return fin.finAcno, nil
}

// newFin issues (or re-registers) the fin account of a; callers hold mu. One account has one
// fin account; registering again only widens it to withdrawals when asked.
func (s *Sim) newFin(a *account, withdrawal bool, issueAt time.Time) *finAccount {
	if f := a.fin; f != nil {
		f.withdrawal = f.withdrawal || withdrawal
		return f
	}
	s.nextFin++
	f := &finAccount{finAcno: fmt.Sprintf("00820100%016d", s.nextFin), acct: a, withdrawal: withdrawal, issueAt: issueAt}
	s.fins[f.finAcno] = f
	a.fin = f
	return f
}

// Account returns an account.
func (s *Sim) Account(bncd, acno string) (Account, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.accounts[AccountID{bncd, acno}]
	if !ok {
		return Account{}, false
	}
	return a.Account, true
}

// Balance returns an account's balance (0 for an unknown account).
func (s *Sim) Balance(bncd, acno string) int64 {
	a, _ := s.Account(bncd, acno)
	return a.Balance
}

// FinAccountBalance returns the balance behind a fin account.
func (s *Sim) FinAccountBalance(finAcno string) (int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.fins[finAcno]
	if !ok {
		return 0, false
	}
	return f.acct.Balance, true
}

// Fintech returns the fintech's own account.
func (s *Sim) Fintech() Account {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fintech.Account
}

// TotalMoney is the sum of every balance. Only CreateAccount changes it.
func (s *Sim) TotalMoney() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var total int64
	for _, a := range s.accounts {
		total += a.Balance
	}
	return total
}

// Ledger returns every account, sorted by bank code and number, and their total.
func (s *Sim) Ledger() Ledger {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := Ledger{Fintech: s.fintech.Account, Accounts: make([]Account, 0, len(s.accounts))}
	for _, a := range s.accounts {
		l.Accounts = append(l.Accounts, a.Account)
		l.Total += a.Balance
	}
	slices.SortFunc(l.Accounts, func(x, y Account) int {
		return strings.Compare(x.Bncd+x.Acno, y.Bncd+y.Acno)
	})
	return l
}

// Transfers returns every executed transfer, oldest first.
func (s *Sim) Transfers() []Transfer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.executed)
}

// DepositorName returns the holder of an account, as the depositor inquiries answer.
func (s *Sim) DepositorName(bncd, acno string) (string, bool) {
	a, ok := s.Account(bncd, acno)
	return a.Holder, ok
}

// CallStats counts what happened to the requests of one call, so that a test can tell a fault
// actually fired.
type CallStats struct {
	Requests int               `json:"requests"`
	Answered map[string]int    `json:"answered"` // by Rpcd
	Faults   map[FaultKind]int `json:"faults"`
}

func (s *Sim) count(api string, f func(*CallStats)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats[api]
	if st == nil {
		st = &CallStats{Answered: map[string]int{}, Faults: map[FaultKind]int{}}
		s.stats[api] = st
	}
	f(st)
}

// Stats returns the counters of every call that was requested.
func (s *Sim) Stats() map[string]CallStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]CallStats, len(s.stats))
	for api, st := range s.stats {
		out[api] = CallStats{Requests: st.Requests, Answered: maps.Clone(st.Answered), Faults: maps.Clone(st.Faults)}
	}
	return out
}
