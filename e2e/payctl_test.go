package e2e

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/workflow"

	"paysaga"
	"paysaga/cmd/payctl/ctl"
	"paysaga/config"
	"paysaga/internal/stack"
	"paysaga/internal/temporaltest"
	"paysaga/nh"
	"paysaga/nhsim"
	"paysaga/reconcile"
	"paysaga/store"
	"paysaga/worker"
	"paysaga/workflows"
)

// The operator's path through a lost bank answer: the simulator executes the debit, loses the
// answer and fails every inquiry until the unknown deadline, so the payment is UNKNOWN. payctl
// finds it among the stuck payments, refuses nothing it should not, resolves it, and the
// customer's history says who resolved it and why.
func TestPayctlStuckPaymentIsFoundAndResolved(t *testing.T) {
	c, m := newUser(t, paysaga.RoleCustomer), newUser(t, paysaga.RoleMerchant)
	acct := seedAccount(t, c, 100_000)
	withFault(t, nh.APIDrawingTransfer, nhsim.Fault{Kind: nhsim.FaultLostResponse, Probability: 1})
	withFault(t, nh.APICheckOnDrawingTransfer, nhsim.Fault{Kind: nhsim.FaultHTTP500, Probability: 1})

	id := paymentIDOf(t, pay(t, c, acct, m, 12_345, "payctl-stuck-1"))
	waitStatus(t, c, id, paysaga.PaymentUnknown)
	n, _ := debits(acct)
	require.Equal(t, 1, n, "the bank executed the debit; only its answer was lost")

	// Listed as stuck, with the ids and the amount from the search attributes (visibility is
	// eventually consistent, hence the polling).
	var stuck []listed
	require.Eventually(t, func() bool {
		payctlJSON(t, ctl.ExitOK, &stuck, "payments", "stuck", "--older-than", "1s")
		return findListed(stuck, id) != nil
	}, 30*time.Second, 200*time.Millisecond, "payctl payments stuck never listed %s", id)
	row := findListed(stuck, id)
	require.Equal(t, "UNKNOWN", row.PaymentStatus)
	require.True(t, row.NeedsAttention)
	require.Equal(t, c.ID, row.CustomerID)
	require.Equal(t, m.ID, row.MerchantID)
	require.EqualValues(t, 12_345, row.AmountKRW)
	require.Equal(t, "Running", row.WorkflowStatus)
	require.Equal(t, "UNKNOWN", row.DBStatus, "the database agrees")

	// Not stuck for an hour yet.
	payctlJSON(t, ctl.ExitOK, &stuck, "payments", "stuck", "--older-than", "1h")
	require.Nil(t, findListed(stuck, id))

	// The table an operator reads, and the payment in detail.
	table := payctl(t, "payments", "list", "--status", "UNKNOWN", "--customer", c.ID)
	require.Equal(t, ctl.ExitOK, table.Code, table.Stderr)
	require.Contains(t, table.Stdout, id)
	require.Contains(t, table.Stdout, "12,345")
	show := payctl(t, "payments", "show", id)
	require.Equal(t, ctl.ExitOK, show.Code, show.Stderr)
	require.Contains(t, show.Stdout, "waiting     resolution=true")
	require.Contains(t, show.Stdout, workflows.EventUnknown)
	require.Contains(t, show.Stdout, "UNKNOWN") // the transfer's state
	acctRow, err := env.Parts.DB.GetAccount(context.Background(), acct.ID)
	require.NoError(t, err)
	require.NotContains(t, show.Stdout, acctRow.FinAccount, "never a fin account")
	require.NotContains(t, show.Stdout, acct.Acn.Acno, "never an account number")

	// Resolve it: the operator found the debit on the bank's statement.
	env.Sim.ClearFaults()
	reason := "debit found on the NH statement"
	r := payctl(t, "payments", "resolve", id, "--as", "succeeded", "--reason", reason, "--actor", "ops@example.com")
	require.Equal(t, ctl.ExitOK, r.Code, "%s%s", r.Stdout, r.Stderr)
	require.Contains(t, r.Stdout, "resolved: SUCCEEDED")
	waitStatus(t, c, id, paysaga.PaymentSucceeded)

	// The history says who resolved it and why — to the merchant (and operators); the customer
	// sees what happened, not the operator nor the note (issue 11, Low).
	h := call(t, "GET", "/v1/payments/"+id+"/events", m.Token, nil)
	require.Equal(t, http.StatusOK, h.Status, "%s", h.Raw)
	events, _ := h.Body["data"].([]any)
	var resolved map[string]any
	for _, e := range events {
		if ev, _ := e.(map[string]any); ev["type"] == workflows.EventSucceeded {
			resolved = ev
		}
	}
	require.NotNil(t, resolved, "no %s event in %s", workflows.EventSucceeded, h.Raw)
	require.Equal(t, "ops@example.com", resolved["actor"])
	require.Equal(t, reason, resolved["reason"])
	stored, err := env.Parts.DB.ListPaymentEvents(context.Background(), id)
	require.NoError(t, err)
	last := stored[len(stored)-1]
	require.Equal(t, "ops@example.com", last.Actor)
	require.Equal(t, reason, last.Reason)

	// Resolving again is refused, whatever the verdict: the payment no longer waits.
	again := payctl(t, "payments", "resolve", id, "--as", "failed", "--reason", "changed my mind")
	require.Equal(t, ctl.ExitRefused, again.Code, "%s%s", again.Stdout, again.Stderr)
	require.Contains(t, again.Stderr, "not waiting for a resolution")
	p, err := env.Parts.DB.GetPayment(context.Background(), id)
	require.NoError(t, err)
	require.Equal(t, paysaga.PaymentSucceeded, p.Status)

	// And it leaves the stuck list.
	require.Eventually(t, func() bool {
		payctlJSON(t, ctl.ExitOK, &stuck, "payments", "stuck", "--older-than", "1s")
		return findListed(stuck, id) == nil
	}, 30*time.Second, 200*time.Millisecond)
}

func TestPayctlResolveRefusesAPaymentThatIsNotWaiting(t *testing.T) {
	c, m := newUser(t, paysaga.RoleCustomer), newUser(t, paysaga.RoleMerchant)
	acct := seedAccount(t, c, 100_000)
	id := settled(t, c, acct, m, 1_000, "payctl-not-waiting-1")

	r := payctl(t, "payments", "resolve", id, "--as", "failed", "--reason", "test")
	require.Equal(t, ctl.ExitRefused, r.Code, "%s%s", r.Stdout, r.Stderr)
	require.Contains(t, r.Stderr, "not waiting for a resolution")
	p, err := env.Parts.DB.GetPayment(context.Background(), id)
	require.NoError(t, err)
	require.Equal(t, paysaga.PaymentSucceeded, p.Status, "nothing changed")

	missing := payctl(t, "payments", "resolve", "pay_doesnotexist", "--as", "failed", "--reason", "test")
	require.Equal(t, ctl.ExitError, missing.Code)
	require.Contains(t, missing.Stderr, "no payment workflow")
}

// reconcile finds a debit the bank executed that paysaga never recorded — made here with the
// NH client directly, as a second system or a replayed request would — and exits non-zero,
// while a payment made through the engine that day is matched.
func TestPayctlReconcileReportsATransferWeDidNotRecord(t *testing.T) {
	ctx := context.Background()
	c, m := newUser(t, paysaga.RoleCustomer), newUser(t, paysaga.RoleMerchant)
	acct := seedAccount(t, c, 1_000_000)
	paid := settled(t, c, acct, m, 23_000, "payctl-reconcile-1")
	ours, err := env.Parts.DB.ListTransfersByPayment(ctx, paid)
	require.NoError(t, err)
	require.Len(t, ours, 1)

	a, err := env.Parts.DB.GetAccount(ctx, acct.ID)
	require.NoError(t, err)
	rogue := 10_000 + rand.Int64N(89_999)
	ref, err := nh.NewRef(ctx, env.Parts.DB, time.Now())
	require.NoError(t, err)
	_, err = env.Parts.Bank.DrawingTransfer(ctx, ref, nh.DrawingTransferRequest{FinAcno: a.FinAccount, Tram: rogue, DractOtlt: "not recorded"})
	require.NoError(t, err)

	today := nh.Today(time.Now())
	var rep reconcile.Report
	r := payctlJSON(t, ctl.ExitRefused, &rep, "reconcile", "--date", today)
	require.Contains(t, r.Stderr, "missing")
	var found *reconcile.BankLine
	for i, l := range rep.Missing {
		if l.Amount == rogue {
			found = &rep.Missing[i]
		}
	}
	require.NotNil(t, found, "the unrecorded debit of %d is not reported missing: %s", rogue, r.Stdout)
	require.Equal(t, reconcile.DirectionIn, found.Direction)
	require.NotEmpty(t, found.Tuno, "the bank's transaction number, to look it up")
	for _, x := range rep.Extra {
		require.NotEqual(t, ours[0].ID, x.ID, "our recorded debit is on the statement")
	}
	for _, x := range rep.Mismatched {
		require.NotEqual(t, ours[0].ID, x.Transfer.ID, "our recorded debit is on the statement")
	}
	require.GreaterOrEqual(t, rep.Matched, 1)

	table := payctl(t, "reconcile", "--date", today)
	require.Equal(t, ctl.ExitRefused, table.Code)
	require.Contains(t, table.Stdout, "MISSING")
	for _, secret := range []string{a.FinAccount, acct.Acn.Acno, env.Sim.Fintech().Acno, env.Parts.Config.NHAccessToken} {
		require.NotContains(t, table.Stdout+table.Stderr+r.Stdout, secret)
	}
}

// history replay passes on the histories the engine recorded, and fails — with exit code 3 —
// when the workflow code changed in a way those histories cannot replay.
func TestPayctlHistoryReplay(t *testing.T) {
	c, m := newUser(t, paysaga.RoleCustomer), newUser(t, paysaga.RoleMerchant)
	acct := seedAccount(t, c, 100_000)
	id := settled(t, c, acct, m, 4_000, "payctl-replay-1")
	query := fmt.Sprintf("WorkflowId = %q", workflows.PaymentWorkflowID(id))

	type result struct {
		WorkflowID string `json:"workflow_id"`
		Events     int    `json:"events"`
		OK         bool   `json:"ok"`
		Error      string `json:"error"`
	}
	var results []result
	require.Eventually(t, func() bool { // closed, and visible as closed
		payctlJSON(t, ctl.ExitOK, &results, "history", "replay", "--query", query)
		return len(results) == 1
	}, 60*time.Second, 200*time.Millisecond)
	require.True(t, results[0].OK)
	require.Greater(t, results[0].Events, 10)

	// Every closed payment of the run replays.
	all := payctl(t, "history", "replay", "--limit", "50")
	require.Equal(t, ctl.ExitOK, all.Code, "%s%s", all.Stdout, all.Stderr)
	require.Contains(t, all.Stdout, "0 failed")

	// A timer added before the saga, without workflow.GetVersion.
	changed := func(r worker.WorkflowRegistry) {
		r.RegisterWorkflowWithOptions(func(ctx workflow.Context, in workflows.PaymentInput) (paysaga.Payment, error) {
			if err := workflow.Sleep(ctx, time.Second); err != nil {
				return paysaga.Payment{}, err
			}
			return workflows.NewPayments(workflows.PaymentConfig{}).PaymentWorkflow(ctx, in)
		}, workflow.RegisterOptions{Name: workflows.PaymentWorkflowName})
	}
	bad := payctlWith(t, ctl.Env{RegisterWorkflows: changed}, "history", "replay", "--query", query)
	require.Equal(t, ctl.ExitRefused, bad.Code, "%s%s", bad.Stdout, bad.Stderr)
	require.Contains(t, bad.Stdout, "FAILED")
	require.Contains(t, bad.Stdout, "NON-DETERMINISTIC")
	require.Contains(t, bad.Stderr, "1 of 1 histories do not replay")
}

// The search attributes are declared on the dev server the stack (and `paysaga dev`) starts,
// and filter in visibility: what the Web UI's filter box and `temporal workflow list --query`
// send.
func TestPayctlSearchAttributesFilterOnTheDevServer(t *testing.T) {
	ctx := context.Background()
	c, m := newUser(t, paysaga.RoleCustomer), newUser(t, paysaga.RoleMerchant)
	acct := seedAccount(t, c, 100_000)
	id := settled(t, c, acct, m, 777, "payctl-sa-1")
	wid := workflows.PaymentWorkflowID(id)

	query := fmt.Sprintf(`PaymentStatus = "SUCCEEDED" AND CustomerId = %q AND MerchantId = %q AND NeedsAttention = false`, c.ID, m.ID)
	require.Eventually(t, func() bool {
		resp, err := env.Parts.Temporal.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query})
		require.NoError(t, err)
		return len(resp.Executions) == 1 && resp.Executions[0].Execution.WorkflowId == wid
	}, 30*time.Second, 200*time.Millisecond, "the search attributes do not filter: %s", query)

	other, err := env.Parts.Temporal.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
		Query: fmt.Sprintf(`PaymentStatus = "UNKNOWN" AND CustomerId = %q`, c.ID)})
	require.NoError(t, err)
	require.Empty(t, other.Executions)

	// The Temporal CLI, as an operator would type it.
	bin, err := temporaltest.Binary()
	require.NoError(t, err)
	out, err := exec.CommandContext(ctx, bin, "workflow", "list", "--address", env.Temporal.FrontendHostPort(),
		"--namespace", "default", "--query", query, "--output", "json").CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), wid)

	desc, err := env.Parts.Temporal.DescribeWorkflowExecution(ctx, wid, "")
	require.NoError(t, err)
	require.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, desc.WorkflowExecutionInfo.Status)
	fields := desc.WorkflowExecutionInfo.SearchAttributes.IndexedFields
	for _, sa := range workflows.SearchAttributeFlags() {
		name, _, _ := strings.Cut(sa, "=")
		require.Contains(t, fields, name, "search attribute %s is set on the workflow", name)
	}
}

// The Web UI of the stack `paysaga dev` runs (`make run`) shows the search attributes and
// filters on them: the UI's own HTTP API answers the query an operator types in its filter box.
func TestPayctlWebUIFiltersPaymentsOnTheDevStack(t *testing.T) {
	ctx := context.Background()
	bin, err := temporaltest.Binary()
	require.NoError(t, err)
	dir := t.TempDir()
	cfg, err := config.Load(func(name string) string {
		switch name {
		case "PAYSAGA_DB_DRIVER":
			return "sqlite"
		case "PAYSAGA_DB_DSN":
			return filepath.Join(dir, "paysaga.db")
		}
		return ""
	})
	require.NoError(t, err)
	cfg.RedisAddr = ""
	uiPort := freePort(t)
	// As runDev starts it: a SQLite file for Temporal, the Web UI on, an in-process Redis.
	st, err := stack.Start(ctx, stack.Options{
		Config: cfg, Dev: true, TemporalBin: bin, TemporalDBFile: filepath.Join(dir, "temporal.db"), UIPort: uiPort,
	})
	require.NoError(t, err)
	t.Cleanup(st.Close)

	// A customer with an account at the simulated bank pays through the saga.
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	bankAcct, err := st.Sim.CreateAccount(nhsim.Account{Holder: "김고객", Birth: "19900101", Balance: 100_000})
	require.NoError(t, err)
	fin, err := st.Sim.RegisterFinAccount(bankAcct.Bncd, bankAcct.Acno, true)
	require.NoError(t, err)
	u := &paysaga.User{ID: paysaga.NewID(paysaga.PrefixUser), Email: "webui@example.com", Name: "Web UI",
		Role: paysaga.RoleCustomer, PasswordHash: "x"}
	require.NoError(t, st.Parts.DB.CreateUser(ctx, u))
	acct := &paysaga.Account{ID: paysaga.NewID(paysaga.PrefixAccount), OwnerID: u.ID, BankCode: bankAcct.Bncd,
		MaskedNumber: paysaga.MaskAccountNumber(bankAcct.Acno), Status: paysaga.AccountActive, FinAccount: fin}
	require.NoError(t, st.Parts.DB.CreateAccount(ctx, acct, store.SealedAccountNumber{Ciphertext: []byte("x"), KeyID: "k", Hash: "h"}))
	in := workflows.PaymentInput{PaymentID: paysaga.NewID(paysaga.PrefixPayment), CustomerID: u.ID, MerchantID: "usr_shop",
		AccountID: acct.ID, Amount: 4_321, CreatedAt: time.Now().UTC()}
	// As the API does: the payment's row first, the authority the workflow's steps obey.
	_, _, err = st.Parts.DB.CreatePayment(ctx, &paysaga.Payment{ID: in.PaymentID, CustomerID: in.CustomerID,
		MerchantID: in.MerchantID, AccountID: in.AccountID, Amount: in.Amount, Status: paysaga.PaymentPending, CreatedAt: in.CreatedAt})
	require.NoError(t, err)
	run, err := st.Parts.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: workflows.PaymentWorkflowID(in.PaymentID), TaskQueue: workflows.TaskQueue,
		TypedSearchAttributes: workflows.SearchAttributesForStart(in),
	}, workflows.PaymentWorkflowName, in)
	require.NoError(t, err)
	var p paysaga.Payment
	require.NoError(t, run.Get(ctx, &p))
	require.Equal(t, paysaga.PaymentSucceeded, p.Status)

	// uiQuery answers nil until the UI answers 200: it is polled inside require.Eventually,
	// where a failed require would stop the test from another goroutine.
	uiQuery := func(q string) []byte {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/api/v1/namespaces/default/workflows?query=%s", uiPort, url.QueryEscape(q)))
		if err != nil {
			return nil
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			return nil
		}
		return body
	}
	filter := fmt.Sprintf(`PaymentStatus="SUCCEEDED" AND CustomerId=%q AND MerchantId="usr_shop" AND NeedsAttention=false`, u.ID)
	var body []byte
	require.Eventually(t, func() bool {
		body = uiQuery(filter)
		return strings.Contains(string(body), run.GetID())
	}, 30*time.Second, 200*time.Millisecond, "the Web UI does not filter on the search attributes")
	for _, sa := range workflows.SearchAttributeFlags() {
		name, _, _ := strings.Cut(sa, "=")
		require.Contains(t, string(body), `"`+name+`"`, "the Web UI shows %s", name)
	}
	unknown := uiQuery(fmt.Sprintf(`PaymentStatus="UNKNOWN" AND CustomerId=%q`, u.ID))
	require.NotNil(t, unknown, "the Web UI answers")
	require.NotContains(t, string(unknown), run.GetID())

}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
