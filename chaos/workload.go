package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"paysaga/nhsim"
)

// Amounts identify money movements at the bank without asking the engine: payment n is of
// paymentBase+n won, and every partial refund has an amount of its own below paymentBase. A
// debit or credit the bank executed is thus traced to its payment from the bank's record alone.
const (
	paymentBase     = 100_000
	smallRefundBase = 1_000  // one partial refund: 1,000 + k won
	largeRefundBase = 45_000 // three of these at once exceed any payment: at most two may succeed
	customerBalance = 1_000_000_000
	password        = "chaos-password-chaos"
)

type user struct {
	ID, Email, Token string
}

type customer struct {
	user
	AccountID string
	Bank      nhsim.AccountID
}

// payment is one payment as the client drove it: the plan drawn from the seed, and every answer
// it got.
type payment struct {
	Seq      int
	Cust     int
	Merch    int
	Amount   int64
	Manual   bool
	Decision string // manual capture: capture, cancel, deadline
	Dup      string // "", sequential, concurrent: the POST re-sent with the same key
	Refund   string // "", partial, two, full, over, dupe
	Key      string

	mu         sync.Mutex
	IDs        map[string]int // ids the key was answered with
	ID         string
	Status     string // last status the client saw
	Refused    string // a definitive 4xx without an id: its code
	Unanswered bool   // no definitive answer
	Refunds    []*refundReq
	Decided    int // HTTP status of the capture/cancel
}

func (p *payment) sawID(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.IDs == nil {
		p.IDs = map[string]int{}
	}
	p.IDs[id]++
	if p.ID == "" {
		p.ID = id
	}
}

// refundReq is one refund request (one key) of a payment.
type refundReq struct {
	Key    string
	Amount int64
	Kind   string

	mu         sync.Mutex
	IDs        map[string]int
	ID         string
	Status     string
	HTTP       int
	Code       string
	Unanswered bool
}

func (r *refundReq) sawID(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.IDs == nil {
		r.IDs = map[string]int{}
	}
	r.IDs[id]++
	if r.ID == "" {
		r.ID = id
	}
}

// workload is the run's population and what it did.
type workload struct {
	o         options
	runID     string
	api       *apiClient
	simURL    string
	customers []*customer
	merchants []*user
	payments  []*payment
	refundSeq atomic.Int64
	say       func(format string, args ...any)

	mu sync.Mutex
	// Unreadable lists ids a 2xx answer named that the other instance could not read at once.
	Unreadable []string
}

// plan draws every payment's scenario from the seed.
func (w *workload) plan() {
	for i := 1; i <= w.o.payments; i++ {
		r := rand.New(rand.NewPCG(w.o.seed, uint64(i)))
		p := &payment{Seq: i, Amount: int64(paymentBase + i), Key: fmt.Sprintf("chaos-%s-pay-%d", w.runID, i),
			Cust: r.IntN(len(w.customers)), Merch: r.IntN(len(w.merchants))}
		if r.Float64() < 0.15 {
			p.Manual = true
			switch x := r.Float64(); {
			case x < 0.5:
				p.Decision = "capture"
			case x < 0.8:
				p.Decision = "cancel"
			default:
				p.Decision = "deadline"
			}
		}
		switch x := r.Float64(); {
		case x < 0.10:
			p.Dup = "sequential"
		case x < 0.20:
			p.Dup = "concurrent"
		}
		if !p.Manual || p.Decision == "capture" {
			switch x := r.Float64(); {
			case x < 0.12:
				p.Refund = "partial"
			case x < 0.18:
				p.Refund = "two"
			case x < 0.26:
				p.Refund = "full"
			case x < 0.31:
				p.Refund = "over"
			case x < 0.36:
				p.Refund = "dupe"
			}
		}
		w.payments = append(w.payments, p)
	}
}

// ---- seeding ----

func (w *workload) admin(ctx context.Context, method, path string, body, out any) error {
	var rd *strings.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = strings.NewReader(string(b))
	} else {
		rd = strings.NewReader("")
	}
	req, err := http.NewRequestWithContext(ctx, method, w.simURL+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("nhsim %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		var e map[string]string
		_ = json.NewDecoder(resp.Body).Decode(&e)
		return fmt.Errorf("nhsim %s %s: %d %s", method, path, resp.StatusCode, e["error"])
	}
	if out != nil {
		return json.NewDecoder(resp.Body).Decode(out)
	}
	return nil
}

func (w *workload) signup(ctx context.Context, inst int, name string) (*user, error) {
	email := fmt.Sprintf("%s-%s@chaos.example", name, w.runID)
	a, _ := w.api.send(ctx, inst, http.MethodPost, "/v1/auth/signup", "", map[string]string{"email": email, "password": password, "name": "Chaos " + name}, time.Minute)
	if a.Status != http.StatusCreated {
		return nil, fmt.Errorf("signup %s: %d %s %s", name, a.Status, a.Code, a.Err)
	}
	return &user{ID: a.str("id"), Email: email}, nil
}

func (w *workload) login(ctx context.Context, inst int, u *user) error {
	a, _ := w.api.send(ctx, inst, http.MethodPost, "/v1/auth/login", "", map[string]string{"email": u.Email, "password": password}, time.Minute)
	if a.Status != http.StatusOK || a.str("access_token") == "" {
		return fmt.Errorf("login %s: %d %s %s", u.Email, a.Status, a.Code, a.Err)
	}
	u.Token = a.str("access_token")
	return nil
}

// seed opens the customers' accounts at the bank, signs customers and merchants up through the
// API (merchants are granted their role with payctl, as an operator would), and registers each
// customer's account through the API.
func (w *workload) seed(ctx context.Context, grant func(email, role string) error) error {
	for i := range w.o.merchants {
		u, err := w.signup(ctx, i%2, fmt.Sprintf("merchant%d", i))
		if err != nil {
			return err
		}
		if err := grant(u.Email, "merchant"); err != nil {
			return err
		}
		if err := w.login(ctx, i%2, u); err != nil {
			return err
		}
		w.merchants = append(w.merchants, u)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, w.o.customers)
	sem := make(chan struct{}, 4)
	for i := range w.o.customers {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			c, err := w.seedCustomer(ctx, i)
			if err != nil {
				errs <- err
				return
			}
			mu.Lock()
			w.customers = append(w.customers, c)
			mu.Unlock()
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	return nil
}

func (w *workload) seedCustomer(ctx context.Context, i int) (*customer, error) {
	inst := i % 2
	acno := fmt.Sprintf("3%05d%07d", time.Now().UnixNano()%100000, i)
	bank := nhsim.AccountID{Bncd: "011", Acno: acno}
	if err := w.admin(ctx, http.MethodPost, "/admin/accounts", nhsim.Account{Bncd: "011", Acno: acno, Holder: "김카오스",
		Birth: "19900101", Balance: customerBalance}, nil); err != nil {
		return nil, err
	}
	u, err := w.signup(ctx, inst, fmt.Sprintf("customer%d", i))
	if err != nil {
		return nil, err
	}
	if err := w.login(ctx, inst, u); err != nil {
		return nil, err
	}
	a, _ := w.api.send(ctx, inst, http.MethodPost, "/v1/accounts", u.Token,
		map[string]string{"bank_code": "011", "account_number": acno, "birth_date": "19900101", "nickname": "chaos"},
		2*time.Minute, "Idempotency-Key", "chaos-"+w.runID+"-acct-"+acno)
	if a.Status != http.StatusCreated && a.Status != http.StatusAccepted && a.Status != http.StatusOK {
		return nil, fmt.Errorf("register an account: %d %s %s", a.Status, a.Code, a.Err)
	}
	id := a.ID
	for status := a.str("status"); status != "ACTIVE"; {
		if status == "FAILED" || ctx.Err() != nil {
			return nil, fmt.Errorf("account %s registration: %s", id, status)
		}
		sleep(ctx, 500*time.Millisecond)
		g := w.api.get(ctx, inst, "/v1/accounts/"+id, u.Token)
		status = g.str("status")
	}
	return &customer{user: *u, AccountID: id, Bank: bank}, nil
}

// ---- driving ----

// drive starts the payments at the given rate and returns when every scenario has ended.
func (w *workload) drive(ctx context.Context, rate float64) {
	var wg sync.WaitGroup
	start := time.Now()
	sem := make(chan struct{}, w.o.inFlight)
	for i, p := range w.payments {
		at := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
		sleep(ctx, time.Until(at))
		if ctx.Err() != nil {
			break
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			w.scenario(ctx, p)
		})
		if (i+1)%100 == 0 {
			w.say("  %d payments sent", i+1)
		}
	}
	wg.Wait()
}

// scenario runs one payment's plan.
func (w *workload) scenario(ctx context.Context, p *payment) {
	c, m := w.customers[p.Cust], w.merchants[p.Merch]
	inst := p.Seq % 2
	body := map[string]any{"account_id": c.AccountID, "amount": p.Amount, "merchant_id": m.ID, "description": "chaos"}
	if p.Manual {
		body["capture"] = "manual"
		if p.Decision == "deadline" {
			body["capture_within"] = 15
		}
	}
	post := func(inst int) answer {
		a, _ := w.api.send(ctx, inst, http.MethodPost, "/v1/payments", c.Token, body, w.o.giveUp, "Idempotency-Key", p.Key)
		w.notePaymentAnswer(ctx, p, a, c.Token)
		return a
	}
	var first answer
	switch p.Dup {
	case "concurrent":
		var wg sync.WaitGroup
		answers := make([]answer, 3)
		for k := range answers {
			wg.Go(func() { answers[k] = post((inst + k) % 2) })
		}
		wg.Wait()
		first = answers[0]
	case "sequential":
		first = post(inst)
		sleep(ctx, 500*time.Millisecond)
		post(1 - inst)
	default:
		first = post(inst)
	}
	if p.ID == "" {
		p.mu.Lock()
		if !first.definitive() {
			p.Unanswered = true
		} else {
			p.Refused = fmt.Sprintf("%d %s", first.Status, first.Code)
		}
		p.mu.Unlock()
		return
	}
	status := w.awaitPayment(ctx, p, c.Token, w.o.giveUp, "AUTHORIZED")
	if p.Manual && status == "AUTHORIZED" && p.Decision != "deadline" {
		a, _ := w.api.send(ctx, 1-inst, http.MethodPost, "/v1/payments/"+p.ID+"/"+p.Decision, m.Token,
			map[string]string{"reason": "chaos " + p.Decision}, w.o.giveUp)
		p.mu.Lock()
		p.Decided = a.Status
		p.mu.Unlock()
	}
	if p.Manual {
		// A cancellation whose refund failed leaves the payment AUTHORIZED for an operator's
		// replay, after the drive: a minute past the deadline is enough to see how it went.
		status = w.awaitPayment(ctx, p, c.Token, 75*time.Second)
	}
	if status == "SUCCEEDED" && p.Refund != "" {
		w.refunds(ctx, p, m)
	}
}

// notePaymentAnswer keeps the id an answer names and checks that the other instance can read it.
func (w *workload) notePaymentAnswer(ctx context.Context, p *payment, a answer, token string) {
	if a.ID == "" || !a.definitive() {
		return
	}
	p.sawID(a.ID)
	if a.Status >= 200 && a.Status < 300 {
		g := w.api.get(ctx, 1-a.Inst, "/v1/payments/"+a.ID, token)
		if g.Status == http.StatusNotFound {
			w.mu.Lock()
			w.Unreadable = append(w.Unreadable, fmt.Sprintf("%s (answered %d by api-%d, GET on api-%d: 404)", a.ID, a.Status, a.Inst+1, 2-a.Inst))
			w.mu.Unlock()
		}
	}
}

// paymentWaits are the statuses after which a payment needs someone: the merchant or an operator.
var paymentWaits = map[string]bool{"SUCCEEDED": true, "FAILED": true, "PARTIALLY_REFUNDED": true, "REFUNDED": true,
	"CANCELED": true, "UNKNOWN": true}

// awaitPayment polls the payment until it is final, UNKNOWN, or in one of also, or patience
// runs out; it returns the last status seen.
func (w *workload) awaitPayment(ctx context.Context, p *payment, token string, patience time.Duration, also ...string) string {
	deadline := time.Now().Add(patience)
	var missing time.Time
	for i := 0; ; i++ {
		g := w.api.get(ctx, i%2, "/v1/payments/"+p.ID, token)
		st := g.str("status")
		if g.Status == http.StatusNotFound {
			// Answered for, yet not there (reported as unreadable): give it a minute, no more.
			if missing.IsZero() {
				missing = time.Now()
			} else if time.Since(missing) > time.Minute {
				return st
			}
		}
		if st != "" {
			p.mu.Lock()
			p.Status = st
			p.mu.Unlock()
		}
		if paymentWaits[st] || contains(also, st) || time.Now().After(deadline) || ctx.Err() != nil {
			return st
		}
		sleep(ctx, time.Second)
	}
}

// refunds runs the payment's refund plan, as its merchant.
func (w *workload) refunds(ctx context.Context, p *payment, m *user) {
	small := func() int64 { return smallRefundBase + w.refundSeq.Add(1) }
	var reqs [][]*refundReq // groups sent at once
	switch p.Refund {
	case "partial":
		reqs = [][]*refundReq{{{Amount: small(), Kind: "partial"}}}
	case "two":
		reqs = [][]*refundReq{{{Amount: small(), Kind: "partial"}}, {{Amount: small(), Kind: "partial"}}}
	case "full":
		reqs = [][]*refundReq{{{Amount: p.Amount, Kind: "full"}}}
	case "over":
		var g []*refundReq
		for range 3 {
			g = append(g, &refundReq{Amount: largeRefundBase + w.refundSeq.Add(1), Kind: "over"})
		}
		reqs = [][]*refundReq{g}
	case "dupe":
		reqs = [][]*refundReq{{{Amount: small(), Kind: "dupe"}}}
	}
	for gi, group := range reqs {
		var wg sync.WaitGroup
		for ri, r := range group {
			r.Key = fmt.Sprintf("chaos-%s-ref-%d-%d-%d", w.runID, p.Seq, gi, ri)
			p.mu.Lock()
			p.Refunds = append(p.Refunds, r)
			p.mu.Unlock()
			copies := 1
			if r.Kind == "dupe" {
				copies = 2
			}
			for k := range copies {
				wg.Go(func() { w.refund(ctx, p, m, r, (p.Seq+ri+k)%2) })
			}
		}
		wg.Wait()
		for _, r := range group {
			if r.ID != "" {
				w.awaitRefund(ctx, r, m.Token)
			}
		}
	}
}

func (w *workload) refund(ctx context.Context, p *payment, m *user, r *refundReq, inst int) {
	body := map[string]any{"amount": r.Amount, "reason": "chaos " + r.Kind}
	a, _ := w.api.send(ctx, inst, http.MethodPost, "/v1/payments/"+p.ID+"/refunds", m.Token, body, w.o.giveUp, "Idempotency-Key", r.Key)
	r.mu.Lock()
	r.HTTP, r.Code = a.Status, a.Code
	if !a.definitive() {
		r.Unanswered = true
	}
	r.mu.Unlock()
	if a.ID == "" || !a.definitive() {
		return
	}
	r.sawID(a.ID)
	if a.Status >= 200 && a.Status < 300 {
		g := w.api.get(ctx, 1-a.Inst, "/v1/refunds/"+a.ID, m.Token)
		if g.Status == http.StatusNotFound {
			w.mu.Lock()
			w.Unreadable = append(w.Unreadable, fmt.Sprintf("%s (answered %d by api-%d, GET on api-%d: 404)", a.ID, a.Status, a.Inst+1, 2-a.Inst))
			w.mu.Unlock()
		}
	}
}

func (w *workload) awaitRefund(ctx context.Context, r *refundReq, token string) {
	deadline := time.Now().Add(w.o.giveUp)
	for i := 0; ; i++ {
		g := w.api.get(ctx, i%2, "/v1/refunds/"+r.ID, token)
		st := g.str("status")
		if st != "" {
			r.mu.Lock()
			r.Status = st
			r.mu.Unlock()
		}
		if st == "SUCCEEDED" || st == "FAILED" || st == "UNKNOWN" || time.Now().After(deadline) || ctx.Err() != nil {
			return
		}
		sleep(ctx, time.Second)
	}
}

// decideAuthorized has the merchants capture or cancel (as planned; cancel when the plan was to
// let the deadline pass) the manual-capture payments still AUTHORIZED after the drive: one
// resolved by an operator as debited waits for its capture like any other. A payment whose
// cancellation's refund failed is left to the operator's replay.
func (w *workload) decideAuthorized(ctx context.Context, all map[string]*finalPayment) (n int) {
	for _, p := range w.payments {
		fp := all[p.ID]
		if fp == nil || fp.Status != "AUTHORIZED" {
			continue
		}
		failedCancel := false
		for _, r := range fp.Refunds {
			failedCancel = failedCancel || r.ID == "ref_"+strings.TrimPrefix(p.ID, "pay_") && r.Status == "FAILED"
		}
		if failedCancel {
			continue
		}
		decision := p.Decision
		if decision != "capture" {
			decision = "cancel"
		}
		a, _ := w.api.send(ctx, 0, http.MethodPost, "/v1/payments/"+p.ID+"/"+decision, w.merchants[p.Merch].Token,
			map[string]string{"reason": "chaos " + decision + " after the drive"}, w.o.giveUp)
		p.mu.Lock()
		p.Decided = a.Status
		p.mu.Unlock()
		n++
	}
	return n
}

// resend sends again, once the chaos is over, every payment and refund request that never got
// a definitive answer — with the same key, as a client would.
func (w *workload) resend(ctx context.Context) (n int) {
	for _, p := range w.payments {
		if !p.Unanswered {
			continue
		}
		n++
		p.Unanswered = false
		c := w.customers[p.Cust]
		body := map[string]any{"account_id": c.AccountID, "amount": p.Amount, "merchant_id": w.merchants[p.Merch].ID, "description": "chaos"}
		if p.Manual {
			body["capture"] = "manual"
			if p.Decision == "deadline" {
				body["capture_within"] = 15
			}
		}
		a, _ := w.api.send(ctx, 0, http.MethodPost, "/v1/payments", c.Token, body, w.o.giveUp, "Idempotency-Key", p.Key)
		w.notePaymentAnswer(ctx, p, a, c.Token)
		switch {
		case !a.definitive():
			p.Unanswered = true
		case p.ID == "":
			p.Refused = fmt.Sprintf("%d %s", a.Status, a.Code)
		}
	}
	for _, p := range w.payments {
		for _, r := range p.Refunds {
			if r.Unanswered && r.ID == "" {
				n++
				r.Unanswered = false
				w.refund(ctx, p, w.merchants[p.Merch], r, 0)
			}
		}
	}
	return n
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
