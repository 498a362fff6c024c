package ctl

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"paysaga"
	"paysaga/nh"
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
				err = rep.print(s.env.Stdout)
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

func (s *session) reconcile(ctx context.Context, day time.Time, window time.Duration) (*Report, error) {
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
	return Reconcile(date, records, transfers, window), nil
}

// Direction of money on the fintech's account.
const (
	DirectionIn  = "in"  // a customer's debit arriving (DrawingTransfer)
	DirectionOut = "out" // a refund or payout leaving (ReceivedTransfer…)
)

// BankLine is one row of the bank's statement, as reconcile reports it.
type BankLine struct {
	At        time.Time `json:"at"`
	Direction string    `json:"direction"`
	Amount    int64     `json:"amount"`
	Tuno      string    `json:"bank_tuno"`
	Summary   string    `json:"summary,omitempty"`
	date      string
}

// TransferLine is one of our transfers, as reconcile reports it.
type TransferLine struct {
	ID        string    `json:"id"`
	PaymentID string    `json:"payment_id"`
	RefundID  string    `json:"refund_id,omitempty"`
	Kind      string    `json:"kind"`
	Direction string    `json:"direction"`
	Amount    int64     `json:"amount"`
	Tsymd     string    `json:"tsymd"`
	IsTuno    string    `json:"is_tuno"`
	State     string    `json:"state"`
	CreatedAt time.Time `json:"created_at"`
}

// Mismatch pairs a transfer with what the bank says of it (nothing, when Bank is nil).
type Mismatch struct {
	Transfer TransferLine `json:"transfer"`
	Bank     *BankLine    `json:"bank,omitempty"`
	Problem  string       `json:"problem"`
}

// Report is the outcome of a reconciliation.
type Report struct {
	Date       string         `json:"date"`
	BankRows   int            `json:"bank_rows"`
	Cancelled  int            `json:"cancelled_bank_rows"`
	Transfers  int            `json:"transfers"`
	Matched    int            `json:"matched"`
	Missing    []BankLine     `json:"missing"`
	Extra      []TransferLine `json:"extra"`
	Mismatched []Mismatch     `json:"mismatched"`
}

// Differs reports whether the bank and our records disagree.
func (r *Report) Differs() bool {
	return len(r.Missing)+len(r.Extra)+len(r.Mismatched) > 0
}

func direction(k paysaga.TransferKind) string {
	if k == paysaga.TransferDebit {
		return DirectionIn
	}
	return DirectionOut
}

// Reconcile compares the bank's statement of the fintech account (records, which may run into
// the next day) with our transfers of date. Each bank row is paired with an unpaired transfer
// of the same direction and amount created within window of it, preferring transfers we hold as
// executed, then those whose outcome we do not know, then the closest in time; what is left
// over on either side, and pairs whose two sides disagree, are the differences.
func Reconcile(date string, records []nh.HistoryRecord, transfers []*paysaga.Transfer, window time.Duration) *Report {
	rep := &Report{Date: date, Transfers: len(transfers), Missing: []BankLine{}, Extra: []TransferLine{}, Mismatched: []Mismatch{}}
	var lines []BankLine
	for _, rec := range records {
		if rec.Cancelled() {
			rep.Cancelled++
			continue
		}
		at, err := time.ParseInLocation("20060102150405", rec.Trdd+rec.Txtm, nh.KST)
		if err != nil {
			at = time.Time{}
		}
		dir := DirectionOut
		if rec.Deposit() {
			dir = DirectionIn
		}
		l := BankLine{At: at.UTC(), Direction: dir, Amount: rec.Tram, Tuno: rec.Tuno, Summary: rec.Smr, date: rec.Trdd}
		if l.date == date {
			rep.BankRows++
		}
		lines = append(lines, l)
	}
	slices.SortStableFunc(lines, func(a, b BankLine) int { return a.At.Compare(b.At) })

	ours := make([]TransferLine, 0, len(transfers))
	for _, t := range transfers {
		ours = append(ours, TransferLine{ID: t.ID, PaymentID: t.PaymentID, RefundID: t.RefundID, Kind: string(t.Kind),
			Direction: direction(t.Kind), Amount: t.Amount, Tsymd: t.Tsymd, IsTuno: t.IsTuno, State: string(t.State),
			CreatedAt: t.CreatedAt.UTC()})
	}
	paired := make([]bool, len(ours))
	near := func(l BankLine, t TransferLine) (time.Duration, bool) {
		d := l.At.Sub(t.CreatedAt).Abs()
		return d, d <= window
	}
	// pick returns the best unpaired transfer for l, or -1.
	pick := func(l BankLine, sameAmount bool) int {
		best, bestRank, bestDist := -1, 0, time.Duration(0)
		for i, t := range ours {
			if paired[i] || t.Direction != l.Direction || (t.Amount == l.Amount) != sameAmount {
				continue
			}
			d, ok := near(l, t)
			if !ok {
				continue
			}
			rank := stateRank(paysaga.TransferState(t.State))
			if best < 0 || rank < bestRank || (rank == bestRank && d < bestDist) {
				best, bestRank, bestDist = i, rank, d
			}
		}
		return best
	}

	var unpaired []BankLine
	for _, l := range lines {
		i := pick(l, true)
		if i < 0 {
			unpaired = append(unpaired, l)
			continue
		}
		paired[i] = true
		switch st := paysaga.TransferState(ours[i].State); st {
		case paysaga.TransferSucceeded:
			rep.Matched++
		case paysaga.TransferSent, paysaga.TransferUnknown:
			rep.Mismatched = append(rep.Mismatched, Mismatch{Transfer: ours[i], Bank: &l,
				Problem: fmt.Sprintf("the bank executed it; we hold it as %s: resolve the payment as succeeded", st)})
		default:
			rep.Mismatched = append(rep.Mismatched, Mismatch{Transfer: ours[i], Bank: &l,
				Problem: fmt.Sprintf("the bank executed it; we recorded %s", st)})
		}
	}
	// A row left over may be one of our transfers with another amount.
	for _, l := range unpaired {
		if i := pick(l, false); i >= 0 && paysaga.TransferState(ours[i].State) != paysaga.TransferDeclined &&
			paysaga.TransferState(ours[i].State) != paysaga.TransferNotExecuted {
			paired[i] = true
			rep.Mismatched = append(rep.Mismatched, Mismatch{Transfer: ours[i], Bank: &l,
				Problem: fmt.Sprintf("amounts differ: we sent %s, the bank moved %s", won(ours[i].Amount), won(l.Amount))})
			continue
		}
		if l.date == date {
			rep.Missing = append(rep.Missing, l)
		}
	}
	for i, t := range ours {
		if paired[i] {
			continue
		}
		switch st := paysaga.TransferState(t.State); st {
		case paysaga.TransferSucceeded:
			rep.Extra = append(rep.Extra, t)
		case paysaga.TransferSent, paysaga.TransferUnknown:
			rep.Mismatched = append(rep.Mismatched, Mismatch{Transfer: t,
				Problem: fmt.Sprintf("we hold it as %s; the bank's statement does not show it (not executed?)", st)})
		}
	}
	slices.SortStableFunc(rep.Mismatched, func(a, b Mismatch) int {
		return cmp.Or(a.Transfer.CreatedAt.Compare(b.Transfer.CreatedAt), cmp.Compare(a.Transfer.ID, b.Transfer.ID))
	})
	return rep
}

// stateRank orders the transfers a bank row most plausibly belongs to.
func stateRank(s paysaga.TransferState) int {
	switch s {
	case paysaga.TransferSucceeded:
		return 0
	case paysaga.TransferUnknown, paysaga.TransferSent:
		return 1
	}
	return 2
}

func (r *Report) print(w io.Writer) error {
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
