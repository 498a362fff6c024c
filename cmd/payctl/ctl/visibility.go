package ctl

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"paysaga/workflows"
)

// workflowRow is a payment workflow as Temporal's visibility store sees it: IDs, the amount and
// the status from the search attributes, never personal data.
type workflowRow struct {
	PaymentID      string    `json:"payment_id"`
	WorkflowID     string    `json:"workflow_id"`
	RunID          string    `json:"run_id"`
	WorkflowType   string    `json:"workflow_type"`
	WorkflowStatus string    `json:"workflow_status"` // Running, Completed, Failed…
	PaymentStatus  string    `json:"payment_status"`
	NeedsAttention bool      `json:"needs_attention"`
	CustomerID     string    `json:"customer_id"`
	MerchantID     string    `json:"merchant_id"`
	AmountKRW      int64     `json:"amount_krw"`
	StartTime      time.Time `json:"start_time"`
	CloseTime      time.Time `json:"close_time,omitzero"`
	// DBStatus is the status in the database, when it was looked up.
	DBStatus string `json:"db_status,omitempty"`
}

func rowFromInfo(info *workflowpb.WorkflowExecutionInfo) workflowRow {
	r := workflowRow{
		WorkflowID:     info.GetExecution().GetWorkflowId(),
		RunID:          info.GetExecution().GetRunId(),
		WorkflowType:   info.GetType().GetName(),
		WorkflowStatus: workflowStatusName(info.GetStatus().String()),
		StartTime:      info.GetStartTime().AsTime().UTC(),
	}
	if info.GetCloseTime() != nil {
		r.CloseTime = info.GetCloseTime().AsTime().UTC()
	}
	r.PaymentID = strings.TrimPrefix(r.WorkflowID, "payment:")
	fields := info.GetSearchAttributes().GetIndexedFields()
	decode(fields, workflows.SearchPaymentStatus.GetName(), &r.PaymentStatus)
	decode(fields, workflows.SearchNeedsAttention.GetName(), &r.NeedsAttention)
	decode(fields, workflows.SearchCustomerID.GetName(), &r.CustomerID)
	decode(fields, workflows.SearchMerchantID.GetName(), &r.MerchantID)
	// Set on workflows started before issue 14 only; listPayments reads the amount from the
	// database.
	decode(fields, workflows.SearchAmountKRW.GetName(), &r.AmountKRW)
	return r
}

func decode(fields map[string]*commonpb.Payload, name string, into any) {
	if p, ok := fields[name]; ok {
		_ = converter.GetDefaultDataConverter().FromPayload(p, into)
	}
}

// workflowStatusName turns WORKFLOW_EXECUTION_STATUS_RUNNING into Running, the spelling of
// visibility queries and the Web UI.
func workflowStatusName(enum string) string {
	s := strings.TrimPrefix(enum, "WORKFLOW_EXECUTION_STATUS_")
	parts := strings.Split(strings.ToLower(s), "_")
	for i, p := range parts {
		if p != "" {
			parts[i] = strings.ToUpper(p[:1]) + p[1:]
		}
	}
	return strings.Join(parts, "")
}

// listWorkflows runs a visibility query and returns up to limit executions, newest first.
func listWorkflows(ctx context.Context, c client.Client, namespace, query string, limit int) ([]*workflowpb.WorkflowExecutionInfo, error) {
	var out []*workflowpb.WorkflowExecutionInfo
	var token []byte
	for len(out) < limit {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: namespace, PageSize: int32(min(limit-len(out), 1000)), NextPageToken: token, Query: query,
		})
		if err != nil {
			return nil, fmt.Errorf("visibility query %q: %w", query, err)
		}
		out = append(out, resp.GetExecutions()...)
		token = resp.GetNextPageToken()
		if len(token) == 0 {
			break
		}
	}
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// paymentsQuery is the visibility query of payment workflows with the given conditions.
func paymentsQuery(conds ...string) string {
	q := []string{fmt.Sprintf("WorkflowType = %s", quote(workflows.PaymentWorkflowName))}
	for _, c := range conds {
		if c != "" {
			q = append(q, c)
		}
	}
	return strings.Join(q, " AND ")
}

// quote makes s a visibility query string literal.
func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9_:-]{1,100}$`)

// paymentID accepts "pay_…" or the workflow ID "payment:pay_…".
func paymentID(arg string) (string, error) {
	id := strings.TrimPrefix(strings.TrimSpace(arg), "payment:")
	if !idPattern.MatchString(id) || strings.Contains(id, ":") {
		return "", usageErrorf("%q is not a payment id (pay_…)", arg)
	}
	return id, nil
}
