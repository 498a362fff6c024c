package nhsim_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paysaga/nh"
	"paysaga/nhsim"
)

const (
	testIscd  = "000123"
	testToken = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
)

// TestPropertyMoneyIsConserved applies thousands of random transfers, under every fault but
// the slow ones, through the real client over loopback, from several goroutines, and then
// checks the invariants of the ledger:
//   - the total never changes;
//   - no (Tsymd, IsTuno) executes twice, however often it is sent;
//   - the client's classification agrees with what the bank executed (success → executed,
//     declined → not executed, unknown → the CheckOn… answer is the truth);
//   - replaying the executed transfers from the opening balances gives every balance.
func TestPropertyMoneyIsConserved(t *testing.T) {
	ops := 2400
	if testing.Short() {
		ops = 400
	}
	const workers = 4

	sim := nhsim.New(nhsim.Config{
		Iscd: testIscd, AccessToken: testToken, Seed: 42,
		FintechAccount: nhsim.Account{Balance: 2_000_000},
		TransferLimit:  25_000,
	})
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(func() { sim.Close(); srv.Close() })
	faults, err := nhsim.ParseFaults("*=http_500:0.05,*=drop:0.05,*=lost_response:0.08,*=lost_response_500:0.05,*=decline:0.03:E4242,*=latency:0.02:1ms")
	require.NoError(t, err)
	for api, list := range faults {
		for _, f := range list {
			require.NoError(t, sim.SetFault(api, f))
		}
	}

	type acct struct {
		nhsim.Account
		fin string
	}
	var accts []acct
	opening := map[nhsim.AccountID]int64{}
	for i := range 12 {
		bank := []string{"011", "012", "004", "088"}[i%4]
		a, err := sim.CreateAccount(nhsim.Account{Bncd: bank, Holder: fmt.Sprintf("고객%d", i), Birth: "19900101", Balance: int64(rand.N(200_000))})
		require.NoError(t, err)
		fin, err := sim.RegisterFinAccount(a.Bncd, a.Acno, i%5 != 0)
		require.NoError(t, err)
		accts = append(accts, acct{a, fin})
	}
	for _, a := range sim.Ledger().Accounts {
		opening[nhsim.AccountID{Bncd: a.Bncd, Acno: a.Acno}] = a.Balance
	}
	total := sim.TotalMoney()

	seq := nh.NewMemorySequencer()
	client, err := nh.New(nh.Config{BaseURL: srv.URL, Iscd: testIscd, AccessToken: testToken}, seq)
	require.NoError(t, err)
	ctx := context.Background()

	// sent records, for every Ref, whether our side believes it executed. Workers report
	// with t.Error, since require may only stop the test's own goroutine.
	type sent struct {
		ref      nh.Ref
		executed bool
	}
	var (
		mu      sync.Mutex
		results []sent
		refs    []nh.Ref
		dupSent int
	)
	worker := func(seed uint64) {
		rng := rand.New(rand.NewPCG(seed, 7))
		for range ops / workers {
			a := accts[rng.IntN(len(accts))]
			amount := int64(1 + rng.IntN(30_000)) // sometimes over the limit
			var ref nh.Ref
			reuse := false
			mu.Lock()
			if len(refs) > 0 && rng.IntN(10) == 0 {
				ref, reuse = refs[rng.IntN(len(refs))], true
				dupSent++
			}
			mu.Unlock()
			if !reuse {
				var err error
				if ref, err = nh.NewRef(ctx, seq, time.Now()); err != nil {
					t.Error(err)
					return
				}
			}

			var callErr error
			var check func() (*nh.CheckResult, error)
			switch op := rng.IntN(4); {
			case op == 0 || op == 1:
				_, callErr = client.DrawingTransfer(ctx, ref, nh.DrawingTransferRequest{FinAcno: a.fin, Tram: amount})
				check = func() (*nh.CheckResult, error) {
					return client.CheckOnDrawingTransfer(ctx, nh.CheckOnDrawingTransferRequest{Original: ref, FinAcno: a.fin, Tram: amount})
				}
			case op == 2:
				_, callErr = client.ReceivedTransferFinAccount(ctx, ref, nh.ReceivedTransferFinAccountRequest{FinAcno: a.fin, Tram: amount})
				check = func() (*nh.CheckResult, error) {
					return client.CheckOnReceivedTransfer(ctx, nh.CheckOnReceivedTransferRequest{Original: ref, FinAcno: a.fin, Tram: amount})
				}
			default:
				if nh.IsNHBank(a.Bncd) {
					_, callErr = client.ReceivedTransferAccountNumber(ctx, ref, nh.ReceivedTransferAccountRequest{Bncd: a.Bncd, Acno: a.Acno, Tram: amount})
				} else {
					_, callErr = client.ReceivedTransferOtherBank(ctx, ref, nh.ReceivedTransferAccountRequest{Bncd: a.Bncd, Acno: a.Acno, Tram: amount})
				}
				check = func() (*nh.CheckResult, error) {
					return client.CheckOnReceivedTransfer(ctx, nh.CheckOnReceivedTransferRequest{Original: ref, Bncd: a.Bncd, Acno: a.Acno, Tram: amount})
				}
			}

			outcome := nh.Classify(callErr)
			if reuse {
				// The duplicate check comes before any fault is drawn, so a reused IsTuno
				// is always refused, whatever happened to its first use.
				if d := (*nh.DeclinedError)(nil); !errors.As(callErr, &d) || d.Rpcd != nhsim.CodeDuplicateIsTuno {
					t.Errorf("reused IsTuno %s: got %v, want a duplicate refusal", ref.IsTuno, callErr)
					return
				}
				continue
			}
			executed := false
			switch outcome {
			case nh.OutcomeSuccess:
				executed = true
			case nh.OutcomeDeclined:
			case nh.OutcomeUnknown:
				// Resolve the way the engine must: ask, retrying the inquiry until it answers.
				for {
					res, err := check()
					if err != nil {
						if nh.Classify(err) != nh.OutcomeTransient {
							t.Errorf("result inquiry classified %s: %v", nh.Classify(err), err)
							return
						}
						continue
					}
					if res.InProgress() {
						continue
					}
					executed = res.Executed()
					break
				}
			default:
				t.Errorf("transfer classified %s: %v", outcome, callErr)
				return
			}
			mu.Lock()
			results = append(results, sent{ref, executed})
			refs = append(refs, ref)
			mu.Unlock()
		}
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() { worker(uint64(w)) })
	}
	wg.Wait()

	require.Equal(t, total, sim.TotalMoney(), "transfers never create or lose money")
	transfers := sim.Transfers()
	byRef := map[nh.Ref]int{}
	balances := map[nhsim.AccountID]int64{}
	for id, b := range opening {
		balances[id] = b
	}
	for _, tr := range transfers {
		byRef[nh.Ref{Tsymd: tr.Tsymd, IsTuno: tr.IsTuno}]++
		balances[tr.From] -= tr.Amount
		balances[tr.To] += tr.Amount
		require.GreaterOrEqual(t, balances[tr.From], int64(0), "no account ever goes below zero")
	}
	for r, n := range byRef {
		require.Equal(t, 1, n, "IsTuno %s executed %d times", r.IsTuno, n)
	}
	executed := 0
	for _, r := range results {
		require.Equal(t, r.executed, byRef[r.ref] == 1, "our view of %s disagrees with the bank", r.ref.IsTuno)
		if r.executed {
			executed++
		}
	}
	require.Equal(t, len(transfers), executed)
	for _, a := range sim.Ledger().Accounts {
		require.Equal(t, balances[nhsim.AccountID{Bncd: a.Bncd, Acno: a.Acno}], a.Balance)
	}
	t.Logf("%d transfers sent, %d executed, %d duplicates refused", len(results), executed, dupSent)
	require.Greater(t, executed, len(results)/4, "the run must move money to prove anything")
	require.Greater(t, dupSent, 0)
}
