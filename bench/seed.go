package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"

	"golang.org/x/sync/errgroup"

	"paysaga"
	"paysaga/nhsim"
	"paysaga/store"
)

// richBalance is what each customer's main account holds: far more than a run can spend, so
// that every payment from it succeeds and a decline can only come from the empty account.
const richBalance = 1_000_000_000

// customer is a signed-up customer with an access token and two registered accounts: one that
// can pay anything and one that holds nothing (its payments are declined by the bank).
type customer struct {
	ID, Token   string
	Rich, Empty bankAccount
}

// bankAccount is an account at the simulated bank registered with paysaga.
type bankAccount struct {
	ID  string // acct_…, what the API knows
	Acn nhsim.AccountID
}

// seeded is the population of a run.
type seeded struct {
	Customers  []customer
	MerchantID string
}

// seed signs up customers through the API (the real path: argon2id hashing, tokens), a merchant,
// and opens and registers their bank accounts the way the end-to-end tests do (registration
// through the API is its own workflow, not what this benchmark measures).
func seed(ctx context.Context, e *env, n int) (*seeded, error) {
	s := &seeded{Customers: make([]customer, n)}
	merchant, err := signup(ctx, e, "merchant")
	if err != nil {
		return nil, err
	}
	if err := e.Parts.DB.SetUserRole(ctx, merchant.email, paysaga.RoleMerchant); err != nil {
		return nil, err
	}
	s.MerchantID = merchant.id

	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4) // password hashing is CPU-bound; more at once only queues on 2 cores
	for i := range s.Customers {
		g.Go(func() error {
			u, err := signup(gctx, e, "customer")
			if err != nil {
				return err
			}
			tok, err := login(gctx, e, u.email)
			if err != nil {
				return err
			}
			c := customer{ID: u.id, Token: tok}
			if c.Rich, err = openAccount(gctx, e, u.id, richBalance); err != nil {
				return err
			}
			if c.Empty, err = openAccount(gctx, e, u.id, 0); err != nil {
				return err
			}
			s.Customers[i] = c
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	return s, nil
}

type newUser struct{ id, email string }

// benchPassword is a throwaway password for throwaway users of a throwaway database.
const benchPassword = "bench-password-not-a-secret"

func signup(ctx context.Context, e *env, kind string) (newUser, error) {
	email := strings.ToLower(paysaga.NewID("bench_"+kind+"_")) + "@example.com"
	var out struct {
		ID string `json:"id"`
	}
	if err := postJSON(ctx, e, "/v1/auth/signup", map[string]string{
		"email": email, "password": benchPassword, "name": "Bench " + kind,
	}, http.StatusCreated, &out); err != nil {
		return newUser{}, fmt.Errorf("signup: %w", err)
	}
	return newUser{id: out.ID, email: email}, nil
}

func login(ctx context.Context, e *env, email string) (string, error) {
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if err := postJSON(ctx, e, "/v1/auth/login", map[string]string{"email": email, "password": benchPassword},
		http.StatusOK, &out); err != nil {
		return "", fmt.Errorf("login: %w", err)
	}
	return out.AccessToken, nil
}

// openAccount opens an account holding balance at the simulated bank, issues its fin account
// and registers it, active, for owner.
func openAccount(ctx context.Context, e *env, owner string, balance int64) (bankAccount, error) {
	acno := fmt.Sprintf("3%012d", rand.Int64N(1e12))
	if _, err := e.Sim.CreateAccount(nhsim.Account{Bncd: "011", Acno: acno, Holder: "김벤치", Birth: "19900101", Balance: balance}); err != nil {
		return bankAccount{}, err
	}
	fin, err := e.Sim.RegisterFinAccount("011", acno, true)
	if err != nil {
		return bankAccount{}, err
	}
	a := &paysaga.Account{
		ID: paysaga.NewID(paysaga.PrefixAccount), OwnerID: owner, BankCode: "011",
		MaskedNumber: paysaga.MaskAccountNumber(acno), Status: paysaga.AccountActive, FinAccount: fin,
	}
	// The payment path never opens the sealed number, so a placeholder stands in for it.
	if err := e.Parts.DB.CreateAccount(ctx, a, store.SealedAccountNumber{
		Ciphertext: []byte("bench-not-a-real-ciphertext"), KeyID: "bench", Hash: "bench-" + a.ID,
	}); err != nil {
		return bankAccount{}, err
	}
	return bankAccount{ID: a.ID, Acn: nhsim.AccountID{Bncd: "011", Acno: acno}}, nil
}

func postJSON(ctx context.Context, e *env, path string, body any, want int, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.APIURL+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		return fmt.Errorf("POST %s: %d %s", path, resp.StatusCode, raw)
	}
	return json.Unmarshal(raw, out)
}
