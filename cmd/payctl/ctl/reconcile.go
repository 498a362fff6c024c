package ctl

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"paysaga/nh"
	"paysaga/reconcile"
)

// Settings of the fintech's own account, whose statement reconcile reads. The number is a
// secret like any account number: it is sent to the bank and never printed.
const (
	envFintechBankCode = "PAYSAGA_NH_FINTECH_BANK_CODE"
	envFintechAccount  = "PAYSAGA_NH_FINTECH_ACCOUNT"
)

func reconcileCmd(s *session) *cobra.Command {
	var date string
	var window time.Duration
	cmd := &cobra.Command{
		Use:   "reconcile --date YYYYMMDD",
		Short: "Compare the bank's transaction history of the fintech account with bank_transfers for a day",
		Long: `reconcile reads the NH transaction history (InquireTransactionHistory) of the fintech's own
account (PAYSAGA_NH_FINTECH_BANK_CODE, PAYSAGA_NH_FINTECH_ACCOUNT) for --date and compares it
with the transfers whose Tsymd is that day:

  missing     on the bank's statement, but no transfer of ours explains it
  extra       recorded SUCCEEDED by us, but not on the bank's statement
  mismatched  paired, but the two disagree: the bank executed a transfer we hold as UNKNOWN,
              SENT, NOT_EXECUTED or DECLINED; an UNKNOWN/SENT transfer the bank never executed;
              or the amounts differ

The bank's rows carry no IsTuno, so a row is paired with a transfer of the same direction and
amount sent within --window of it. Exit code 3 when anything differs.`,
		Example: `  payctl reconcile --date 20261125
  payctl reconcile --date 20261125 -o json | jq '.missing'`,
		Args: args(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			day, err := time.ParseInLocation("20060102", date, nh.KST)
			if err != nil || len(date) != 8 {
				return usageErrorf("--date must be a day as YYYYMMDD")
			}
			if window <= 0 {
				return usageErrorf("--window must be positive")
			}
			ctx := cmd.Context()
			rep, err := s.reconcile(ctx, day, window)
			if err != nil {
				return err
			}
			if s.output == "json" {
				err = printJSON(s.env.Stdout, rep)
			} else {
				err = printReconcile(s.env.Stdout, rep)
			}
			if err != nil {
				return err
			}
			if rep.Differs() {
				return refusedErrorf("%s: %d missing, %d extra, %d mismatched", rep.Date, len(rep.Missing), len(rep.Extra), len(rep.Mismatched))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&date, "date", "", "the day (Tsymd), YYYYMMDD, Korea time")
	cmd.Flags().DurationVar(&window, "window", 5*time.Minute, "how far apart a bank row and our transfer may be to pair")
	_ = cmd.MarkFlagRequired("date")
	return cmd
}

func (s *session) reconcile(ctx context.Context, day time.Time, window time.Duration) (*reconcile.Report, error) {
	acno := s.setting(envFintechAccount)
	if acno == "" {
		return nil, fmt.Errorf("%s is not set: reconcile needs the fintech account's number", envFintechAccount)
	}
	bank, err := s.bank(ctx)
	if err != nil {
		return nil, err
	}
	db, err := s.database(ctx)
	if err != nil {
		return nil, err
	}
	date := day.Format("20060102")
	// A transfer sent just before midnight may execute just after: read the next day too
	// (when it has begun), and report only the asked day's rows as missing.
	to := date
	if next := day.AddDate(0, 0, 1); !next.After(s.env.Now().In(nh.KST)) {
		to = next.Format("20060102")
	}
	records, err := bank.AllTransactionHistory(ctx, nh.HistoryRequest{
		Bncd: s.setting(envFintechBankCode), Acno: acno, From: date, To: to,
		Kind: nh.HistoryAll, Order: nh.HistoryAscending,
	})
	if err != nil {
		// The error names the API and the bank's code, never the account.
		return nil, fmt.Errorf("read the bank's transaction history for %s: %w", date, err)
	}
	transfers, err := db.ListTransfersByTsymd(ctx, date)
	if err != nil {
		return nil, err
	}
	return reconcile.Compare(date, records, transfers, window), nil
}

// printReconcile writes a reconciliation's report as tables.
func printReconcile(w io.Writer, r *reconcile.Report) error {
	fmt.Fprintf(w, "reconcile %s: %d bank transactions, %d transfers: %d matched, %d missing, %d extra, %d mismatched\n",
		r.Date, r.BankRows, r.Transfers, r.Matched, len(r.Missing), len(r.Extra), len(r.Mismatched))
	if len(r.Missing) > 0 {
		fmt.Fprintln(w, "\nMISSING — on the bank's statement, no transfer of ours:")
		t := newTable(w, "  BANK TIME", "DIRECTION", "AMOUNT", "BANK TUNO", "SUMMARY")
		for _, l := range r.Missing {
			t.row("  "+when(l.At), l.Direction, won(l.Amount), l.Tuno, l.Summary)
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	if len(r.Extra) > 0 {
		fmt.Fprintln(w, "\nEXTRA — recorded SUCCEEDED by us, not on the bank's statement:")
		t := newTable(w, "  TRANSFER", "PAYMENT", "KIND", "AMOUNT", "TSYMD", "ISTUNO", "CREATED")
		for _, x := range r.Extra {
			t.row("  "+x.ID, x.PaymentID, x.Kind, won(x.Amount), x.Tsymd, x.IsTuno, when(x.CreatedAt))
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	if len(r.Mismatched) > 0 {
		fmt.Fprintln(w, "\nMISMATCHED:")
		t := newTable(w, "  TRANSFER", "PAYMENT", "AMOUNT", "OUR STATE", "BANK TIME", "BANK AMOUNT", "BANK TUNO", "PROBLEM")
		for _, m := range r.Mismatched {
			bt, ba, tuno := "", "", ""
			if m.Bank != nil {
				bt, ba, tuno = when(m.Bank.At), won(m.Bank.Amount), m.Bank.Tuno
			}
			t.row("  "+m.Transfer.ID, m.Transfer.PaymentID, won(m.Transfer.Amount), m.Transfer.State, bt, ba, tuno, m.Problem)
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	return nil
}
