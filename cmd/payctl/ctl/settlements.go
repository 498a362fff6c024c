package ctl

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"paysaga"
	"paysaga/saga"
	"paysaga/settlement"
	"paysaga/store"
	"paysaga/workflows"
)

func settlementsCmd(s *session) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "settlements",
		Short: "Merchants' daily settlements: list, show, retry a failed payout, backfill days, set fees",
	}
	cmd.AddCommand(settlementsListCmd(s), settlementsShowCmd(s), settlementsRetryCmd(s), settlementsBackfillCmd(s), settlementsFeeCmd(s))
	return cmd
}

func settlementsListCmd(s *session) *cobra.Command {
	var f store.SettlementFilter
	var status string
	cmd := &cobra.Command{
		Use:   "list [--merchant usr_…] [--status FAILED]",
		Short: "Settlements, newest first",
		Example: `  payctl settlements list --status FAILED
  payctl settlements list --merchant usr_123 -o json`,
		Args: args(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			f.Status = settlement.Status(status)
			if status != "" && !f.Status.Valid() {
				return usageErrorf("--status must be PENDING, PAID, CARRIED_OVER, FAILED or UNKNOWN")
			}
			if f.Limit < 1 || f.Limit > store.MaxListLimit {
				return usageErrorf("--limit must be 1 to %d", store.MaxListLimit)
			}
			db, err := s.database(cmd.Context())
			if err != nil {
				return err
			}
			page, err := db.ListSettlements(cmd.Context(), f)
			if err != nil {
				return err
			}
			if s.output == "json" {
				return printJSON(s.env.Stdout, page.Settlements)
			}
			t := newTable(s.env.Stdout, "ID", "DAY", "MERCHANT", "STATUS", "PAYMENTS", "REFUNDS", "FEES", "NET", "PAYOUT", "FAILURE")
			for _, x := range page.Settlements {
				t.row(x.ID, x.Day, x.MerchantID, string(x.Status), won(x.PaymentAmount), won(x.RefundAmount), won(x.FeeAmount),
					won(x.Net), won(x.Payout), x.FailureCode)
			}
			return t.flush()
		},
	}
	cmd.Flags().StringVar(&f.MerchantID, "merchant", "", "one merchant's settlements")
	cmd.Flags().StringVar(&status, "status", "", "only settlements in this status")
	cmd.Flags().IntVar(&f.Limit, "limit", 50, "at most this many")
	return cmd
}

// settlementDetail is a settlement with its lines and payouts.
type settlementDetail struct {
	*settlement.Settlement
	Payouts []*paysaga.Transfer `json:"payouts"`
}

func settlementsShowCmd(s *session) *cobra.Command {
	return &cobra.Command{
		Use:   "show <stl id>",
		Short: "One settlement: its totals, lines (payments, refunds, fees) and payout transfers",
		Args:  args(1),
		RunE: func(cmd *cobra.Command, a []string) error {
			if !paysaga.HasPrefix(a[0], settlement.PrefixSettlement) {
				return usageErrorf("%q is not a settlement id (stl_…)", a[0])
			}
			db, err := s.database(cmd.Context())
			if err != nil {
				return err
			}
			x, err := db.GetSettlement(cmd.Context(), a[0], true)
			if err != nil {
				return err
			}
			payouts, err := db.ListPayouts(cmd.Context(), x.ID)
			if err != nil {
				return err
			}
			if s.output == "json" {
				return printJSON(s.env.Stdout, settlementDetail{Settlement: x, Payouts: payouts})
			}
			w := s.env.Stdout
			fmt.Fprintf(w, "%s  merchant %s  day %s  %s\n", x.ID, x.MerchantID, x.Day, x.Status)
			fmt.Fprintf(w, "payments %s (%d)  refunds %s (%d)  fees %s (%d bps)  carry-in %s  net %s  payout %s  carry-out %s\n",
				won(x.PaymentAmount), x.PaymentCount, won(x.RefundAmount), x.RefundCount, won(x.FeeAmount), x.FeeBPS,
				won(x.CarryIn), won(x.Net), won(x.Payout), won(x.CarryOut))
			if x.FailureCode != "" {
				fmt.Fprintf(w, "failure: %s %s\n", x.FailureCode, x.FailureMessage)
			}
			fmt.Fprintln(w)
			t := newTable(w, "KIND", "PAYMENT", "REFUND", "AMOUNT", "FEE", "AT")
			for _, l := range x.Lines {
				t.row(string(l.Kind), l.PaymentID, l.RefundID, won(l.Amount), won(l.Fee), when(l.At))
			}
			if err := t.flush(); err != nil {
				return err
			}
			fmt.Fprintln(w)
			t = newTable(w, "PAYOUT", "KIND", "AMOUNT", "TSYMD", "ISTUNO", "STATE", "RPCD", "AT")
			for _, tr := range payouts {
				t.row(tr.ID, string(tr.Kind), won(tr.Amount), tr.Tsymd, tr.IsTuno, string(tr.State), tr.Rpcd, when(tr.CreatedAt))
			}
			return t.flush()
		},
	}
}

func settlementsRetryCmd(s *session) *cobra.Command {
	var actor string
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "retry <stl id>",
		Short: "Retry the payout of a FAILED or UNKNOWN settlement",
		Long: `retry starts a new run of the merchant's settlement workflow (settlement:<merchant>:<day>) that
reopens the settlement, asks the bank about any payout whose answer was lost (CheckOnReceivedTransfer)
and pays out with a new transfer only when none executed. A PAID or CARRIED_OVER settlement is
refused (exit 3): a settlement is paid at most once. Fix the cause first (the merchant's
settlement account, the bank), see docs/operations.md "Retrying a failed payout".`,
		Example: `  payctl settlements retry stl_123 --actor kim`,
		Args:    args(1),
		RunE: func(cmd *cobra.Command, a []string) error {
			if !paysaga.HasPrefix(a[0], settlement.PrefixSettlement) {
				return usageErrorf("%q is not a settlement id (stl_…)", a[0])
			}
			ctx := cmd.Context()
			db, err := s.database(ctx)
			if err != nil {
				return err
			}
			x, err := db.GetSettlement(ctx, a[0], false)
			if err != nil {
				return err
			}
			if !x.Status.Retryable() {
				return refusedErrorf("settlement %s is %s: only FAILED or UNKNOWN settlements are retried", x.ID, x.Status)
			}
			c, err := s.client(ctx)
			if err != nil {
				return err
			}
			run, err := saga.Settlements{Client: c}.Retry(ctx, x.MerchantID, x.Day, actor)
			if err != nil {
				return fmt.Errorf("start the retry (is a run of it still going? payctl settlements show %s): %w", x.ID, err)
			}
			wctx, cancel := context.WithTimeout(ctx, wait)
			defer cancel()
			var out settlement.Settlement
			if err := run.Get(wctx, &out); err != nil {
				if errors.Is(err, context.DeadlineExceeded) {
					fmt.Fprintf(s.env.Stdout, "%s: retry running (workflow %s); check again with payctl settlements show\n", x.ID, run.GetID())
					return nil
				}
				return err
			}
			if s.output == "json" {
				return printJSON(s.env.Stdout, out)
			}
			fmt.Fprintf(s.env.Stdout, "%s: %s\n", out.ID, out.Status)
			if !out.Status.Final() {
				return refusedErrorf("settlement %s is still %s: %s", out.ID, out.Status, out.FailureMessage)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&actor, "actor", "payctl", "who retries, in the workflow's log")
	cmd.Flags().DurationVar(&wait, "wait", time.Minute, "how long to wait for the outcome")
	return cmd
}

// maxBackfillDays bounds one backfill.
const maxBackfillDays = 92

func settlementsBackfillCmd(s *session) *cobra.Command {
	var from, to string
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "backfill --from YYYY-MM-DD --to YYYY-MM-DD",
		Short: "Settle days the Schedule missed, in order, one day at a time",
		Long: `backfill runs the day settlement (workflow settlement-day:<day>) for each Korea day from --from to
--to, oldest first, waiting for each: a negative net carries over to the next day in order. A day
settled already pays nobody again (what it settled is not settled twice), so a backfill over
settled days changes nothing.`,
		Example: `  payctl settlements backfill --from 2026-11-25 --to 2026-11-30`,
		Args:    args(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			days, err := settlement.Days(from, to, maxBackfillDays)
			if err != nil {
				return usageErrorf("%s", paysaga.ErrorMessage(err))
			}
			ctx := cmd.Context()
			c, err := s.client(ctx)
			if err != nil {
				return err
			}
			var results []workflows.SettlementDayResult
			t := newTable(s.env.Stdout, "DAY", "MERCHANTS", "PAID", "CARRIED_OVER", "FAILED", "UNKNOWN", "BUSY", "ERRORS")
			for _, day := range days {
				run, err := saga.Settlements{Client: c}.SettleDay(ctx, day)
				if err != nil {
					return fmt.Errorf("start the settlement of %s: %w", day, err)
				}
				wctx, cancel := context.WithTimeout(ctx, wait)
				var res workflows.SettlementDayResult
				err = run.Get(wctx, &res)
				cancel()
				if err != nil {
					return fmt.Errorf("settlement of %s (workflow %s): %w", day, run.GetID(), err)
				}
				results = append(results, res)
				t.row(day, fmt.Sprint(res.Merchants), fmt.Sprint(res.ByStatus["PAID"]), fmt.Sprint(res.ByStatus["CARRIED_OVER"]),
					fmt.Sprint(res.ByStatus["FAILED"]), fmt.Sprint(res.ByStatus["UNKNOWN"]), fmt.Sprint(res.Busy), fmt.Sprint(res.Errors))
			}
			if s.output == "json" {
				return printJSON(s.env.Stdout, results)
			}
			if err := t.flush(); err != nil {
				return err
			}
			for _, r := range results {
				if r.ByStatus["FAILED"]+r.ByStatus["UNKNOWN"]+r.Errors > 0 {
					return refusedErrorf("some payouts need an operator: payctl settlements list --status FAILED (and UNKNOWN)")
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "first day, YYYY-MM-DD (Korea time)")
	cmd.Flags().StringVar(&to, "to", "", "last day, YYYY-MM-DD (Korea time)")
	cmd.Flags().DurationVar(&wait, "wait", 10*time.Minute, "how long to wait for each day")
	_ = cmd.MarkFlagRequired("from")
	_ = cmd.MarkFlagRequired("to")
	return cmd
}

func settlementsFeeCmd(s *session) *cobra.Command {
	var bps int64
	var def bool
	cmd := &cobra.Command{
		Use:   "fee <merchant usr id> (--bps N | --default)",
		Short: "Set a merchant's fee rate in basis points (per payment, rounded down), or back to the default",
		Example: `  payctl settlements fee usr_123 --bps 180
  payctl settlements fee usr_123 --default`,
		Args: args(1),
		RunE: func(cmd *cobra.Command, a []string) error {
			set := cmd.Flags().Changed("bps")
			if set == def {
				return usageErrorf("give either --bps or --default")
			}
			var rate *int64
			if set {
				if err := settlement.ValidateFeeBPS(bps); err != nil {
					return usageErrorf("--bps must be 0 to %d", settlement.MaxFeeBPS)
				}
				rate = &bps
			}
			db, err := s.database(cmd.Context())
			if err != nil {
				return err
			}
			if err := db.SetMerchantFee(cmd.Context(), a[0], rate); err != nil {
				return err
			}
			if rate == nil {
				fmt.Fprintf(s.env.Stdout, "%s: default fee rate (PAYSAGA_SETTLEMENT_FEE_BPS) from the next settlement\n", a[0])
			} else {
				fmt.Fprintf(s.env.Stdout, "%s: %d bps from the next settlement\n", a[0], *rate)
			}
			return nil
		},
	}
	cmd.Flags().Int64Var(&bps, "bps", 0, "fee rate in basis points (250 = 2.5%)")
	cmd.Flags().BoolVar(&def, "default", false, "use the default rate")
	return cmd
}
