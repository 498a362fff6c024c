package ctl

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"

	"paysaga"
	"paysaga/saga"
	"paysaga/workflows"
)

func paymentsCmd(s *session) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "payments",
		Short: "List, show, find stuck and resolve payments",
	}
	cmd.AddCommand(paymentsListCmd(s), paymentsShowCmd(s), paymentsStuckCmd(s), paymentsResolveCmd(s))
	return cmd
}

// ---- list ----

type listOptions struct {
	status, customer, merchant, query string
	attention                         bool
	limit                             int
}

func paymentsListCmd(s *session) *cobra.Command {
	var o listOptions
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List payment workflows, newest first (Temporal visibility, with the database's status)",
		Example: `  payctl payments list --status UNKNOWN
  payctl payments list --merchant usr_123 --limit 50 -o json
  payctl payments list --query 'StartTime > "2026-11-25T00:00:00Z"'`,
		Args: args(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var conds []string
			if o.status != "" {
				if !paysaga.PaymentStatus(o.status).Valid() {
					return usageErrorf("--status %q is not a payment status", o.status)
				}
				conds = append(conds, fmt.Sprintf("%s = %s", workflows.SearchPaymentStatus.GetName(), quote(o.status)))
			}
			for flag, v := range map[string]string{"customer": o.customer, "merchant": o.merchant} {
				if v != "" && !idPattern.MatchString(v) {
					return usageErrorf("--%s %q is not an id", flag, v)
				}
			}
			if o.customer != "" {
				conds = append(conds, fmt.Sprintf("%s = %s", workflows.SearchCustomerID.GetName(), quote(o.customer)))
			}
			if o.merchant != "" {
				conds = append(conds, fmt.Sprintf("%s = %s", workflows.SearchMerchantID.GetName(), quote(o.merchant)))
			}
			if o.attention {
				conds = append(conds, workflows.SearchNeedsAttention.GetName()+" = true")
			}
			if o.query != "" {
				conds = append(conds, "("+o.query+")")
			}
			return s.listPayments(cmd.Context(), paymentsQuery(conds...), o.limit)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.status, "status", "", "only payments with this PaymentStatus (e.g. UNKNOWN)")
	f.StringVar(&o.customer, "customer", "", "only this customer's payments (usr_…)")
	f.StringVar(&o.merchant, "merchant", "", "only this merchant's payments (usr_…)")
	f.BoolVar(&o.attention, "needs-attention", false, "only payments flagged NeedsAttention")
	f.StringVar(&o.query, "query", "", "an extra visibility condition, ANDed with the others")
	f.IntVar(&o.limit, "limit", 20, "at most this many payments")
	return cmd
}

func (s *session) listPayments(ctx context.Context, query string, limit int) error {
	if limit < 1 {
		return usageErrorf("--limit must be at least 1")
	}
	c, err := s.client(ctx)
	if err != nil {
		return err
	}
	infos, err := listWorkflows(ctx, c, s.namespace(), query, limit)
	if err != nil {
		return err
	}
	rows := make([]workflowRow, 0, len(infos))
	for _, info := range infos {
		rows = append(rows, rowFromInfo(info))
	}
	// The database's word beside visibility's: a disagreement is worth a look.
	if cfg, err := s.config(); err == nil && cfg.DBDSN != "" {
		db, err := s.database(ctx)
		if err != nil {
			return err
		}
		for i := range rows {
			if p, err := db.GetPayment(ctx, rows[i].PaymentID); err == nil {
				rows[i].DBStatus = string(p.Status)
				// The amount is no search attribute (issue 14): the database has it.
				rows[i].AmountKRW = p.Amount
			} else if paysaga.ErrorCode(err) == paysaga.ENOTFOUND {
				rows[i].DBStatus = "(none)"
			} else {
				return err
			}
		}
	}
	if s.output == "json" {
		return printJSON(s.env.Stdout, rows)
	}
	t := newTable(s.env.Stdout, "PAYMENT", "STATUS", "DB STATUS", "ATTENTION", "AMOUNT", "CUSTOMER", "MERCHANT", "WORKFLOW", "STARTED")
	for _, r := range rows {
		attention := ""
		if r.NeedsAttention {
			attention = "yes"
		}
		t.row(r.PaymentID, r.PaymentStatus, r.DBStatus, attention, won(r.AmountKRW), r.CustomerID, r.MerchantID, r.WorkflowStatus, when(r.StartTime))
	}
	if err := t.flush(); err != nil {
		return err
	}
	fmt.Fprintf(s.env.Stdout, "%d payment(s)\n", len(rows))
	return nil
}

// ---- stuck ----

func paymentsStuckCmd(s *session) *cobra.Command {
	var olderThan time.Duration
	var limit int
	cmd := &cobra.Command{
		Use:   "stuck",
		Short: `Running payments that need an operator: PaymentStatus="UNKNOWN" or NeedsAttention=true, started before --older-than`,
		Long: `stuck lists the running payment workflows whose outcome is UNKNOWN or that are flagged
NeedsAttention, started more than --older-than ago. The same filter in the Temporal Web UI:

  WorkflowType="PaymentWorkflow" AND ExecutionStatus="Running" AND (PaymentStatus="UNKNOWN" OR NeedsAttention=true)

Resolve each with "payctl payments resolve" after checking with the bank.`,
		Args: args(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if olderThan < 0 {
				return usageErrorf("--older-than must not be negative")
			}
			return s.listPayments(cmd.Context(), stuckQuery(s.env.Now().Add(-olderThan)), limit)
		},
	}
	cmd.Flags().DurationVar(&olderThan, "older-than", 10*time.Minute, "only payments started at least this long ago")
	cmd.Flags().IntVar(&limit, "limit", 100, "at most this many payments")
	return cmd
}

func stuckQuery(startedBefore time.Time) string {
	return paymentsQuery(
		`ExecutionStatus = "Running"`,
		fmt.Sprintf("(%s = %s OR %s = true)", workflows.SearchPaymentStatus.GetName(), quote(string(paysaga.PaymentUnknown)),
			workflows.SearchNeedsAttention.GetName()),
		fmt.Sprintf("StartTime < %s", quote(startedBefore.UTC().Format(time.RFC3339Nano))),
	)
}

// ---- show ----

// paymentDetail is everything payctl knows of one payment.
type paymentDetail struct {
	Workflow  *workflowRow            `json:"workflow,omitempty"`
	HistoryN  int64                   `json:"history_length,omitempty"`
	View      *workflows.PaymentView  `json:"view,omitempty"` // the running workflow's own state
	Payment   *paysaga.Payment        `json:"payment,omitempty"`
	Events    []*paysaga.PaymentEvent `json:"events"`
	Transfers []transferLine          `json:"transfers"`
	Problems  []string                `json:"problems,omitempty"`
}

// transferLine is a transfer as payctl shows it: no fin account, no account number.
type transferLine struct {
	ID     string `json:"id"`
	Kind   string `json:"kind"`
	Amount int64  `json:"amount"`
	Tsymd  string `json:"tsymd"`
	IsTuno string `json:"is_tuno"`
	State  string `json:"state"`
	Rpcd   string `json:"bank_code,omitempty"`
}

func paymentsShowCmd(s *session) *cobra.Command {
	return &cobra.Command{
		Use:   "show <payment id>",
		Short: "Show a payment: its workflow, its state in the database, its history and its bank transfers",
		Args:  args(1),
		RunE: func(cmd *cobra.Command, a []string) error {
			id, err := paymentID(a[0])
			if err != nil {
				return err
			}
			d, err := s.paymentDetail(cmd.Context(), id)
			if err != nil {
				return err
			}
			if s.output == "json" {
				return printJSON(s.env.Stdout, d)
			}
			return printDetail(s, id, d)
		},
	}
}

func (s *session) paymentDetail(ctx context.Context, id string) (*paymentDetail, error) {
	c, err := s.client(ctx)
	if err != nil {
		return nil, err
	}
	db, err := s.database(ctx)
	if err != nil {
		return nil, err
	}
	d := &paymentDetail{Events: []*paysaga.PaymentEvent{}, Transfers: []transferLine{}}
	wid := workflows.PaymentWorkflowID(id)
	desc, err := c.DescribeWorkflowExecution(ctx, wid, "")
	var notFound *serviceerror.NotFound
	switch {
	case errors.As(err, &notFound):
		d.Problems = append(d.Problems, "no workflow "+wid+" (retention may have removed it)")
	case err != nil:
		return nil, fmt.Errorf("describe %s: %w", wid, err)
	default:
		row := rowFromInfo(desc.GetWorkflowExecutionInfo())
		d.Workflow, d.HistoryN = &row, desc.GetWorkflowExecutionInfo().GetHistoryLength()
		if row.WorkflowStatus == "Running" {
			qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			if v, err := c.QueryWorkflow(qctx, wid, "", workflows.QueryStatus); err == nil {
				var view workflows.PaymentView
				if v.Get(&view) == nil {
					d.View = &view
				}
			} else {
				d.Problems = append(d.Problems, "the workflow did not answer the status query (is a worker running?)")
			}
			cancel()
		}
	}
	p, err := db.GetPayment(ctx, id)
	switch {
	case paysaga.ErrorCode(err) == paysaga.ENOTFOUND:
		if d.Workflow == nil {
			return nil, fmt.Errorf("payment %s not found in Temporal nor in the database", id)
		}
		d.Problems = append(d.Problems, "no payment row in the database")
	case err != nil:
		return nil, err
	default:
		d.Payment = p
		if d.Workflow != nil && d.Workflow.PaymentStatus != "" && d.Workflow.PaymentStatus != string(p.Status) {
			d.Problems = append(d.Problems, fmt.Sprintf("the workflow says %s, the database %s", d.Workflow.PaymentStatus, p.Status))
		}
	}
	if d.Events, err = db.ListPaymentEvents(ctx, id); err != nil {
		return nil, err
	}
	trs, err := db.ListTransfersByPayment(ctx, id)
	if err != nil {
		return nil, err
	}
	for _, t := range trs {
		d.Transfers = append(d.Transfers, transferLine{ID: t.ID, Kind: string(t.Kind), Amount: t.Amount,
			Tsymd: t.Tsymd, IsTuno: t.IsTuno, State: string(t.State), Rpcd: t.Rpcd})
	}
	return d, nil
}

func printDetail(s *session, id string, d *paymentDetail) error {
	w := s.env.Stdout
	fmt.Fprintf(w, "payment %s\n", id)
	if p := d.Payment; p != nil {
		fmt.Fprintf(w, "  status      %s\n  amount      %s KRW\n  customer    %s\n  merchant    %s\n  account     %s\n  created     %s\n  updated     %s\n",
			p.Status, won(p.Amount), p.CustomerID, p.MerchantID, p.AccountID, when(p.CreatedAt), when(p.UpdatedAt))
		if p.FailureCode != "" {
			fmt.Fprintf(w, "  failure     %s %s\n", p.FailureCode, p.FailureMessage)
		}
	}
	if r := d.Workflow; r != nil {
		fmt.Fprintf(w, "workflow %s (run %s)\n  state       %s, %d history events\n  search      PaymentStatus=%s NeedsAttention=%t\n",
			r.WorkflowID, r.RunID, r.WorkflowStatus, d.HistoryN, r.PaymentStatus, r.NeedsAttention)
	}
	if v := d.View; v != nil {
		fmt.Fprintf(w, "  waiting     resolution=%t, debit attempts %d, unpublished events %d\n",
			v.AwaitingResolution, v.DebitAttempts, v.UnpublishedEvents)
	}
	fmt.Fprintln(w, "history:")
	t := newTable(w, "  TIME", "EVENT", "STATUS", "BANK CODE", "ACTOR", "REASON")
	for _, e := range d.Events {
		t.row("  "+when(e.CreatedAt), e.Type, string(e.Status), e.Rpcd, e.Actor, e.Reason)
	}
	if err := t.flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "bank transfers:")
	t = newTable(w, "  TRANSFER", "KIND", "AMOUNT", "TSYMD", "ISTUNO", "STATE", "BANK CODE")
	for _, tr := range d.Transfers {
		t.row("  "+tr.ID, tr.Kind, won(tr.Amount), tr.Tsymd, tr.IsTuno, tr.State, tr.Rpcd)
	}
	if err := t.flush(); err != nil {
		return err
	}
	for _, p := range d.Problems {
		fmt.Fprintln(w, "note:", p)
	}
	return nil
}

// ---- resolve ----

func paymentsResolveCmd(s *session) *cobra.Command {
	var r workflows.Resolution
	cmd := &cobra.Command{
		Use:   "resolve <payment id> --as succeeded|failed --reason …",
		Short: "Resolve an UNKNOWN payment after checking with the bank (the workflow's resolve Update)",
		Long: `resolve tells a payment workflow waiting in UNKNOWN what became of its debit: --as succeeded
when the money left the customer's account (check the bank statement: payctl reconcile), --as
failed when it did not. The payment's history records who (--actor, default $USER) and why
(--reason). A payment that is not waiting for a resolution is refused (exit code 3).`,
		Example: `  payctl payments resolve pay_2x9… --as succeeded --reason "debit on the NH statement, Tuno 0000000000000042"`,
		Args:    args(1),
		RunE: func(cmd *cobra.Command, a []string) error {
			id, err := paymentID(a[0])
			if err != nil {
				return err
			}
			if err := s.checkResolution(&r); err != nil {
				return err
			}
			return s.resolve(cmd.Context(), id, r)
		},
	}
	resolutionFlags(cmd, &r)
	return cmd
}

func (s *session) resolve(ctx context.Context, id string, r workflows.Resolution) error {
	sagas, err := s.resolver(ctx, "payment", id, workflows.PaymentWorkflowID(id))
	if err != nil {
		return err
	}
	p, err := sagas.ResolvePayment(ctx, id, r)
	if err != nil {
		return resolveError(id, err)
	}
	want := paysaga.PaymentSucceeded
	if p.CaptureMode == paysaga.CaptureManual {
		// A manual-capture payment that was debited waits for its merchant's capture (or,
		// resolved after the store refused a step, is SUCCEEDED: the operator's verdict is final).
		want = paysaga.PaymentAuthorized
	}
	if r.As == workflows.ResolveFailed {
		want = paysaga.PaymentFailed
	}
	if p.Status != want && !(want == paysaga.PaymentAuthorized && p.Status == paysaga.PaymentSucceeded) {
		// Someone resolved it first; the fixed update ID answered with their verdict.
		return refusedErrorf("payment %s was already resolved: it is %s", id, p.Status)
	}
	if s.output == "json" {
		return printJSON(s.env.Stdout, map[string]any{"payment": p, "resolution": r})
	}
	fmt.Fprintf(s.env.Stdout, "payment %s resolved: %s (by %s: %s)\n", id, p.Status, r.Actor, r.Reason)
	return nil
}

// resolutionFlags declares the flags of a resolve command.
func resolutionFlags(cmd *cobra.Command, r *workflows.Resolution) {
	f := cmd.Flags()
	f.StringVar(&r.As, "as", "", "succeeded or failed")
	f.StringVar(&r.Reason, "reason", "", "why: what the bank said, the statement line you found")
	f.StringVar(&r.Actor, "actor", "", "who resolves it (default $USER)")
}

// checkResolution refuses a resolution without a verdict or a reason; the actor defaults to
// $USER.
func (s *session) checkResolution(r *workflows.Resolution) error {
	if r.As != workflows.ResolveSucceeded && r.As != workflows.ResolveFailed {
		return usageErrorf("--as must be %s or %s", workflows.ResolveSucceeded, workflows.ResolveFailed)
	}
	if r.Reason = strings.TrimSpace(r.Reason); r.Reason == "" {
		return usageErrorf("--reason is required: say what you checked")
	}
	if r.Actor = strings.TrimSpace(r.Actor); r.Actor == "" {
		r.Actor = strings.TrimSpace(s.env.Getenv("USER"))
	}
	if r.Actor == "" {
		return usageErrorf("--actor is required ($USER is not set)")
	}
	return nil
}

// resolver returns the sagas to send a resolution to, once it has checked that the workflow wid
// of the payment or refund (kind, id) runs: a closed workflow, or one not waiting, is refused
// (exit 3). saga's resolve Update has a fixed ID, so a retry after a lost answer gets the first
// call's result.
func (s *session) resolver(ctx context.Context, kind, id, wid string) (saga.Payments, error) {
	c, err := s.client(ctx)
	if err != nil {
		return saga.Payments{}, err
	}
	desc, err := c.DescribeWorkflowExecution(ctx, wid, "")
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return saga.Payments{}, fmt.Errorf("no %s workflow %s", kind, wid)
	}
	if err != nil {
		return saga.Payments{}, fmt.Errorf("describe %s: %w", wid, err)
	}
	row := rowFromInfo(desc.GetWorkflowExecutionInfo())
	if desc.GetWorkflowExecutionInfo().GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		return saga.Payments{}, refusedErrorf("%s %s is %s (workflow %s) and not waiting for a resolution", kind, id, row.PaymentStatus, row.WorkflowStatus)
	}
	return saga.Payments{Client: c}, nil
}

// resolveError is the exit of a resolution the workflow did not take: refused (exit 3) when it
// is not waiting for one, a usage error for a verdict it finds invalid.
func resolveError(id string, err error) error {
	switch paysaga.ErrorCode(err) {
	case paysaga.ECONFLICT:
		return refusedErrorf("refused: %s", paysaga.ErrorMessage(err))
	case paysaga.EINVALID:
		return usageErrorf("refused: %s", paysaga.ErrorMessage(err))
	}
	return fmt.Errorf("resolve %s: %w", id, err)
}
