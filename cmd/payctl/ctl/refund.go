package ctl

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"paysaga"
	"paysaga/saga"
	"paysaga/store"
	"paysaga/workflows"
)

func refundCmd(s *session) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "refund",
		Short: "Replay failed refunds, resolve UNKNOWN ones",
	}
	cmd.AddCommand(refundReplayCmd(s), refundResolveCmd(s))
	return cmd
}

// Results of a refund replay, per refund.
const (
	replayWouldRun  = "would_replay" // --dry-run
	replaySucceeded = "succeeded"
	replayFailed    = "failed"  // replayed, and the bank refused again (FAILED, released)
	replayPending   = "pending" // replayed, outcome not known within --wait
	replayRefused   = "refused" // not replayed: succeeded already, in progress, or no longer fits
	replayError     = "error"
)

// refundReplayResult is the outcome of replaying one refund.
type refundReplayResult struct {
	RefundID  string `json:"refund_id"`
	PaymentID string `json:"payment_id,omitempty"`
	Amount    int64  `json:"amount,omitempty"`
	Before    string `json:"before,omitempty"`
	Result    string `json:"result"`
	Status    string `json:"status,omitempty"`
	Detail    string `json:"detail,omitempty"`
}

type refundReplayOptions struct {
	status   string
	since    time.Duration
	fromFile string
	dryRun   bool
	actor    string
	wait     time.Duration
	limit    int
}

func refundReplayCmd(s *session) *cobra.Command {
	o := refundReplayOptions{}
	cmd := &cobra.Command{
		Use:   "replay [<ref id>…] [--status FAILED --since 24h] [--from-file F] [--dry-run]",
		Short: "Run FAILED refunds again: reserve again, credit with a new transfer and IsTuno",
		Long: `replay starts a new run of each FAILED refund's workflow: the amount is reserved against the
payment again (refused if it no longer fits), and the customer is credited with a new transfer
(a new IsTuno). A refund that succeeded is never replayed, nor one still in progress. Replaying
is idempotent: two replays of one refund at the same time join one run, and one credit at most
ever executes per refund.

Refunds are named as arguments, read from a file (one id per line, # comments), or selected by
--status (FAILED) created within --since. Exit code 3 when any refund was refused or failed
again; 1 on errors.`,
		Example: `  payctl refund replay ref_123 ref_456
  payctl refund replay --status FAILED --since 24h --dry-run
  payctl refund replay --from-file refunds.txt -o json`,
		RunE: func(cmd *cobra.Command, ids []string) error {
			return s.replayRefunds(cmd.Context(), ids, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.status, "status", "", "select refunds with this status (only FAILED can be replayed)")
	f.DurationVar(&o.since, "since", 0, "with --status: only refunds created within this long (e.g. 24h)")
	f.StringVar(&o.fromFile, "from-file", "", "read refund ids from this file, one per line")
	f.BoolVar(&o.dryRun, "dry-run", false, "say what would be replayed, change nothing")
	f.StringVar(&o.actor, "actor", "payctl", "who replays, recorded in the payment's history")
	f.DurationVar(&o.wait, "wait", 30*time.Second, "how long to wait for each replay's outcome")
	f.IntVar(&o.limit, "limit", 100, "with --status: at most this many refunds")
	return cmd
}

func (s *session) replayRefunds(ctx context.Context, ids []string, o refundReplayOptions) error {
	if o.since != 0 && o.status == "" {
		return usageErrorf("--since needs --status")
	}
	if o.status != "" && !paysaga.RefundStatus(o.status).Valid() {
		return usageErrorf("--status %q is not a refund status", o.status)
	}
	if o.fromFile != "" {
		fromFile, err := readIDs(o.fromFile)
		if err != nil {
			return err
		}
		ids = append(ids, fromFile...)
	}
	for _, id := range ids {
		if !paysaga.HasPrefix(id, paysaga.PrefixRefund) {
			return usageErrorf("%q is not a refund id (ref_…)", id)
		}
	}
	db, err := s.database(ctx)
	if err != nil {
		return err
	}
	if o.status != "" {
		selected, err := selectRefunds(ctx, db, paysaga.RefundStatus(o.status), o.since, o.limit, s.env.Now())
		if err != nil {
			return err
		}
		ids = append(ids, selected...)
	}
	if len(ids) == 0 && o.status == "" {
		return usageErrorf("name refunds, or give --from-file or --status")
	}

	var sagas saga.Payments
	if !o.dryRun {
		c, err := s.client(ctx)
		if err != nil {
			return err
		}
		sagas = saga.Payments{Client: c, Store: db}
	}
	seen := map[string]bool{}
	var results []refundReplayResult
	for _, id := range ids {
		if seen[id] {
			continue
		}
		seen[id] = true
		results = append(results, s.replayRefund(ctx, db, sagas, id, o))
	}
	if s.output == "json" {
		if results == nil {
			results = []refundReplayResult{}
		}
		if err := printJSON(s.env.Stdout, results); err != nil {
			return err
		}
	} else {
		t := newTable(s.env.Stdout, "REFUND", "PAYMENT", "AMOUNT", "BEFORE", "RESULT", "STATUS", "DETAIL")
		for _, r := range results {
			t.row(r.RefundID, r.PaymentID, won(r.Amount), r.Before, r.Result, r.Status, r.Detail)
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	var errs, refused int
	for _, r := range results {
		switch r.Result {
		case replayError:
			errs++
		case replayRefused, replayFailed:
			refused++
		}
	}
	switch {
	case errs > 0:
		return fmt.Errorf("%d of %d refunds could not be replayed", errs, len(results))
	case refused > 0:
		return refusedErrorf("%d of %d refunds were refused or failed again", refused, len(results))
	}
	return nil
}

// replayRefund replays one refund, saying what became of it.
func (s *session) replayRefund(ctx context.Context, db *store.DB, sagas saga.Payments, id string, o refundReplayOptions) refundReplayResult {
	res := refundReplayResult{RefundID: id}
	r, err := db.GetRefund(ctx, id)
	if err != nil {
		res.Result, res.Detail = replayError, paysaga.ErrorMessage(err)
		if paysaga.ErrorCode(err) == paysaga.EINTERNAL {
			res.Detail = err.Error()
		}
		return res
	}
	res.PaymentID, res.Amount, res.Before, res.Status = r.PaymentID, r.Amount, string(r.Status), string(r.Status)
	switch r.Status {
	case paysaga.RefundSucceeded:
		res.Result, res.Detail = replayRefused, "the refund succeeded already"
		return res
	case paysaga.RefundPending, paysaga.RefundUnknown:
		res.Result, res.Detail = replayRefused, "the refund is still in progress"
		return res
	}
	if o.dryRun {
		res.Result = replayWouldRun
		return res
	}
	p, err := db.GetPayment(ctx, r.PaymentID)
	if err != nil {
		res.Result, res.Detail = replayError, err.Error()
		return res
	}
	if p.Status == paysaga.PaymentAuthorized {
		// The refund of a canceled manual-capture payment: its payment's workflow waits for the
		// replay and runs it (then cancels the payment).
		return s.replayCancellation(ctx, db, sagas, p, res, o)
	}
	in := workflows.RefundInput{
		RefundID: r.ID, PaymentID: r.PaymentID, CustomerID: p.CustomerID, MerchantID: p.MerchantID,
		Amount: r.Amount, Reason: r.Reason, Actor: o.actor, Replay: true, CreatedAt: r.CreatedAt,
	}
	got, err := sagas.StartRefund(ctx, in, o.wait)
	switch {
	case paysaga.ErrorCode(err) == paysaga.ECONFLICT:
		res.Result, res.Detail = replayRefused, paysaga.ErrorMessage(err)
	case err != nil:
		res.Result, res.Detail = replayError, err.Error()
	case got == nil:
		res.Result, res.Status, res.Detail = replayPending, string(paysaga.RefundPending), "still running; check it again later"
	default:
		res.Status = string(got.Status)
		switch got.Status {
		case paysaga.RefundSucceeded:
			res.Result = replaySucceeded
		case paysaga.RefundFailed:
			res.Result, res.Detail = replayFailed, strings.TrimSpace(got.FailureCode+" "+got.FailureMessage)
		default:
			res.Result = replayPending
		}
	}
	return res
}

func selectRefunds(ctx context.Context, db *store.DB, status paysaga.RefundStatus, since time.Duration, limit int, now time.Time) ([]string, error) {
	if limit < 1 {
		return nil, usageErrorf("--limit must be at least 1")
	}
	f := store.RefundFilter{Status: status}
	if since > 0 {
		f.Since = now.Add(-since)
	}
	var ids []string
	for len(ids) < limit {
		f.Limit = min(limit-len(ids), store.MaxListLimit)
		page, err := db.ListRefunds(ctx, f)
		if err != nil {
			return nil, err
		}
		for _, r := range page.Refunds {
			if r.FailureCode == store.RefundRefused {
				continue // refused when asked for: nothing was reserved, nothing to replay
			}
			ids = append(ids, r.ID)
		}
		if !page.HasMore || len(page.Refunds) == 0 {
			break
		}
		f.StartingAfter = page.Refunds[len(page.Refunds)-1].ID
	}
	return ids, nil
}

func readIDs(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &exitError{code: ExitUsage, err: fmt.Errorf("--from-file: %w", err)}
	}
	defer f.Close()
	var ids []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		if line != "" {
			ids = append(ids, strings.Fields(line)...)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, errors.Join(fmt.Errorf("--from-file %s", path), err)
	}
	return ids, nil
}

// ---- resolve ----

// refundID checks a refund id argument (ref_…, or the workflow ID refund:ref_…).
func refundID(arg string) (string, error) {
	id := strings.TrimPrefix(strings.TrimSpace(arg), "refund:")
	if !idPattern.MatchString(id) || strings.Contains(id, ":") || !paysaga.HasPrefix(id, paysaga.PrefixRefund) {
		return "", usageErrorf("%q is not a refund id (ref_…)", arg)
	}
	return id, nil
}

func refundResolveCmd(s *session) *cobra.Command {
	var r workflows.Resolution
	cmd := &cobra.Command{
		Use:   "resolve <ref id> --as succeeded|failed --reason …",
		Short: "Resolve an UNKNOWN refund after checking with the bank (the workflow's resolve Update)",
		Long: `resolve tells a refund workflow left UNKNOWN (its credit's answer lost, and the bank unable to
say) what became of the credit: --as succeeded when the money reached the customer (check the
bank statement: payctl reconcile), and the refund SUCCEEDED counts against the payment
(PARTIALLY_REFUNDED or REFUNDED); --as failed when it did not, and the refund FAILED gives its
reservation back to the payment. The credit's transfer is marked accordingly, and the payment's
history records who (--actor, default $USER) and why (--reason). Until then the workflow keeps
asking the bank: whichever answers first settles the refund. A refund that is not waiting for a
resolution is refused (exit code 3).`,
		Example: `  payctl refund resolve ref_2x9… --as failed --reason "no credit on the NH statement for Tuno 0000000000000042"`,
		Args:    args(1),
		RunE: func(cmd *cobra.Command, a []string) error {
			id, err := refundID(a[0])
			if err != nil {
				return err
			}
			if err := s.checkResolution(&r); err != nil {
				return err
			}
			return s.resolveRefund(cmd.Context(), id, r)
		},
	}
	resolutionFlags(cmd, &r)
	return cmd
}

// resolveRefund resolves a refund left UNKNOWN (see resolver) and reports its new status.
func (s *session) resolveRefund(ctx context.Context, id string, r workflows.Resolution) error {
	sagas, err := s.resolver(ctx, "refund", id, workflows.RefundWorkflowID(id))
	if err != nil {
		return err
	}
	ref, err := sagas.ResolveRefund(ctx, id, r)
	if err != nil {
		return resolveError(id, err)
	}
	want := paysaga.RefundSucceeded
	if r.As == workflows.ResolveFailed {
		want = paysaga.RefundFailed
	}
	if ref.Status != want {
		// Someone resolved it first (the fixed update ID answered with their verdict), or the
		// bank said the credit executed.
		return refusedErrorf("refund %s was already resolved: it is %s", id, ref.Status)
	}
	if s.output == "json" {
		return printJSON(s.env.Stdout, map[string]any{"refund": ref, "resolution": r})
	}
	fmt.Fprintf(s.env.Stdout, "refund %s resolved: %s (by %s: %s)\n", id, ref.Status, r.Actor, r.Reason)
	return nil
}

// replayCancellation replays the failed refund of a cancellation through the payment's
// workflow (saga.Payments.ReplayCancellation), which stays open for it, and reports the refund
// as it ended.
func (s *session) replayCancellation(ctx context.Context, db *store.DB, sagas saga.Payments, p *paysaga.Payment,
	res refundReplayResult, o refundReplayOptions) refundReplayResult {
	got, err := sagas.ReplayCancellation(ctx, p.ID, workflows.CaptureDecision{Actor: o.actor, Reason: "refund replayed by an operator"}, o.wait)
	switch code := paysaga.ErrorCode(err); {
	case err != nil && (code == paysaga.ECONFLICT || code == paysaga.EINVALID):
		res.Result, res.Detail = replayRefused, paysaga.ErrorMessage(err)
		return res
	case err != nil:
		res.Result, res.Detail = replayError, err.Error()
		return res
	case got == nil:
		res.Result, res.Status, res.Detail = replayPending, string(paysaga.RefundPending), "still running; check it again later"
		return res
	}
	r, err := db.GetRefund(ctx, res.RefundID)
	if err != nil {
		res.Result, res.Detail = replayError, err.Error()
		return res
	}
	res.Status = string(r.Status)
	switch {
	case got.Status == paysaga.PaymentCanceled || r.Status == paysaga.RefundSucceeded:
		res.Result = replaySucceeded
	case r.Status == paysaga.RefundFailed:
		res.Result, res.Detail = replayFailed, strings.TrimSpace(r.FailureCode+" "+r.FailureMessage)
	default:
		res.Result = replayPending
	}
	return res
}
