package main

import (
	"context"
	"fmt"

	"golang.org/x/sync/errgroup"

	"paysaga"
	"paysaga/nhsim"
	"paysaga/store"
)

// ledgerCheck is the money check after a run: what the bank (the simulator) executed must be
// exactly what the engine says happened.
type ledgerCheck struct {
	Payments, Succeeded, Failed int
	Debits                      int   // DrawingTransfers the bank executed during the run
	Debited                     int64 // their total
	Accounts                    int   // accounts compared
	MoneyBefore, MoneyAfter     int64
	Problems                    []string
}

func (l *ledgerCheck) OK() bool { return len(l.Problems) == 0 }

func (l *ledgerCheck) problem(format string, args ...any) {
	// A broken run could list thousands; the first ones say what is wrong.
	if len(l.Problems) < 20 {
		l.Problems = append(l.Problems, fmt.Sprintf(format, args...))
	} else if len(l.Problems) == 20 {
		l.Problems = append(l.Problems, "… (more problems not listed)")
	}
}

// bankSnapshot is the simulator's state before the payments: money is only ever moved by a
// transfer, so its total must not change, and debits are counted from here.
type bankSnapshot struct {
	Money     int64
	Transfers int
}

func snapshotBank(sim *nhsim.Sim) bankSnapshot {
	return bankSnapshot{Money: sim.TotalMoney(), Transfers: len(sim.Transfers())}
}

type txKey struct{ tsymd, isTuno string }

// checkLedger compares the bank with the engine, payment by payment and account by account:
//   - every payment the engine holds (from the store, so that one the client lost track of is
//     counted too) is final, and the client saw the same status;
//   - a SUCCEEDED payment has exactly one executed debit (matched through its transfer rows'
//     Tsymd and IsTuno), from its account, of its amount; a FAILED one has none;
//   - every debit the bank executed belongs to a payment;
//   - each account was debited exactly as many times, and as much, as its succeeded payments;
//   - the bank's total money is unchanged.
func checkLedger(ctx context.Context, e *env, pop *seeded, payments []*payment, before bankSnapshot) *ledgerCheck {
	l := &ledgerCheck{MoneyBefore: before.Money, MoneyAfter: e.Sim.TotalMoney()}
	if l.MoneyAfter != l.MoneyBefore {
		l.problem("the bank's total money changed by %d won", l.MoneyAfter-l.MoneyBefore)
	}

	// The bank's debits during the run.
	executed := map[txKey]nhsim.Transfer{}
	for _, tr := range e.Sim.Transfers()[before.Transfers:] {
		if tr.API != "DrawingTransfer" {
			continue
		}
		executed[txKey{tr.Tsymd, tr.IsTuno}] = tr
		l.Debits++
		l.Debited += tr.Amount
	}

	// Which account is whose, to name accounts by their paysaga ID (never by number).
	accountID := map[nhsim.AccountID]string{}
	for _, c := range pop.Customers {
		accountID[c.Rich.Acn], accountID[c.Empty.Acn] = c.Rich.ID, c.Empty.ID
	}
	seen := map[string]*payment{}
	for _, p := range payments {
		switch {
		case p.ID != "":
			seen[p.ID] = p
		case !p.ShedAt.IsZero():
			// Turned away (429) before anything was written: it has no payment, and every
			// payment the store holds below must be one that was answered, so a shed one
			// that was started after all would show up as unexplained there.
		default:
			l.problem("payment #%d never got an answer (%s)", p.Seq, p.Err)
		}
	}

	// Every payment the store holds for the run's customers.
	var all []*paysaga.Payment
	for _, c := range pop.Customers {
		ps, err := listPayments(ctx, e.Parts.DB, c.ID)
		if err != nil {
			l.problem("list payments: %v", err)
			return l
		}
		all = append(all, ps...)
	}
	l.Payments = len(all)
	inStore := make(map[string]bool, len(all))
	for _, p := range all {
		inStore[p.ID] = true
	}
	for _, p := range payments {
		if p.ID != "" && !inStore[p.ID] {
			// Accepted (202) but never recorded: its workflow had not run its first step by the
			// end of the drain, so nothing can be said of its money yet.
			l.problem("payment %s was accepted but is not in the store after the drain", p.ID)
		}
	}

	// Their transfer rows, read concurrently: one query per payment.
	transfers := make([][]*paysaga.Transfer, len(all))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i, p := range all {
		g.Go(func() (err error) {
			transfers[i], err = e.Parts.DB.ListTransfersByPayment(gctx, p.ID)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		l.problem("list transfers: %v", err)
		return l
	}

	type tally struct {
		n   int
		sum int64
	}
	wantByAccount := map[string]tally{}
	matched := map[txKey]bool{}
	for i, p := range all {
		if cp, ok := seen[p.ID]; !ok {
			l.problem("payment %s is in the store but the client never learned its id", p.ID)
		} else if cp.final() && cp.Status != p.Status {
			l.problem("payment %s: the client saw %s, the store says %s", p.ID, cp.Status, p.Status)
		}
		var debits []nhsim.Transfer
		for _, t := range transfers[i] {
			k := txKey{t.Tsymd, t.IsTuno}
			if tr, ok := executed[k]; ok {
				debits = append(debits, tr)
				matched[k] = true
			}
		}
		switch p.Status {
		case paysaga.PaymentSucceeded:
			l.Succeeded++
			w := wantByAccount[p.AccountID]
			wantByAccount[p.AccountID] = tally{w.n + 1, w.sum + p.Amount}
			if len(debits) != 1 {
				l.problem("payment %s SUCCEEDED with %d debits at the bank", p.ID, len(debits))
				continue
			}
			if d := debits[0]; d.Amount != p.Amount || accountID[d.From] != p.AccountID {
				l.problem("payment %s: the debit is of %d won from %s, the payment of %d won from %s",
					p.ID, d.Amount, accountID[d.From], p.Amount, p.AccountID)
			}
		case paysaga.PaymentFailed:
			l.Failed++
			if len(debits) != 0 {
				l.problem("payment %s FAILED but the bank executed %d debits", p.ID, len(debits))
			}
		default:
			l.problem("payment %s is still %s after the drain", p.ID, p.Status)
		}
	}
	for k, tr := range executed {
		if !matched[k] {
			l.problem("a debit of %d won from %s matches no payment's transfer", tr.Amount, accountID[tr.From])
		}
	}

	// Account by account, straight from the bank's list.
	gotByAccount := map[string]tally{}
	for _, tr := range executed {
		g := gotByAccount[accountID[tr.From]]
		gotByAccount[accountID[tr.From]] = tally{g.n + 1, g.sum + tr.Amount}
	}
	for _, c := range pop.Customers {
		for _, a := range []bankAccount{c.Rich, c.Empty} {
			l.Accounts++
			if got, want := gotByAccount[a.ID], wantByAccount[a.ID]; got != want {
				l.problem("account %s: %d debits (%d won) at the bank, %d succeeded payments (%d won)",
					a.ID, got.n, got.sum, want.n, want.sum)
			}
		}
	}
	return l
}

// listPayments returns every payment of a customer, page by page.
func listPayments(ctx context.Context, db *store.DB, customerID string) ([]*paysaga.Payment, error) {
	var out []*paysaga.Payment
	f := store.PaymentFilter{CustomerID: customerID, Limit: store.MaxListLimit}
	for {
		page, err := db.ListPayments(ctx, f)
		if err != nil {
			return nil, err
		}
		out = append(out, page.Payments...)
		if !page.HasMore || len(page.Payments) == 0 {
			return out, nil
		}
		f.StartingAfter = page.Payments[len(page.Payments)-1].ID
	}
}
