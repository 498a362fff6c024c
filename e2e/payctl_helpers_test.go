package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"paysaga/cmd/payctl/ctl"
)

// payctlRun is one in-process run of payctl.
type payctlRun struct {
	Code           int
	Stdout, Stderr string
}

// payctlEnv is the environment an operator's shell would have for this stack: the same
// PAYSAGA_… variables as the engine, pointing at the dev server, the database and the
// simulator (whose fintech account reconcile reads).
func payctlEnv() map[string]string {
	cfg := env.Parts.Config
	fintech := env.Sim.Fintech()
	return map[string]string{
		"PAYSAGA_DB_DRIVER":             cfg.DBDriver,
		"PAYSAGA_DB_DSN":                cfg.DBDSN,
		"PAYSAGA_TEMPORAL_ADDRESS":      env.Temporal.FrontendHostPort(),
		"PAYSAGA_TEMPORAL_NAMESPACE":    cfg.TemporalNamespace,
		"PAYSAGA_TEMPORAL_PAYLOAD_KEYS": cfg.TemporalPayloadKeys,
		"PAYSAGA_NH_BASE_URL":           cfg.NHBaseURL,
		"PAYSAGA_NH_ISCD":               cfg.NHIscd,
		"PAYSAGA_NH_ACCESS_TOKEN":       cfg.NHAccessToken,
		"PAYSAGA_NH_FINTECH_BANK_CODE":  fintech.Bncd,
		"PAYSAGA_NH_FINTECH_ACCOUNT":    fintech.Acno,
		"USER":                          "e2e-operator",
	}
}

// payctl runs payctl with args as an operator would, through its cobra root, in-process.
func payctl(t testing.TB, args ...string) payctlRun {
	t.Helper()
	return payctlWith(t, ctl.Env{}, args...)
}

// payctlWith runs payctl with some of its Env replaced (Getenv and the outputs are set here).
func payctlWith(t testing.TB, e ctl.Env, args ...string) payctlRun {
	t.Helper()
	vars := payctlEnv()
	var out, errOut bytes.Buffer
	e.Getenv = func(k string) string { return vars[k] }
	e.Stdout, e.Stderr = &out, &errOut
	code := ctl.Execute(context.Background(), args, e)
	return payctlRun{Code: code, Stdout: out.String(), Stderr: errOut.String()}
}

// payctlJSON runs payctl with -o json, requires want as its exit code and decodes its output.
func payctlJSON(t testing.TB, want int, into any, args ...string) payctlRun {
	t.Helper()
	r := payctl(t, append([]string{"-o", "json"}, args...)...)
	require.Equal(t, want, r.Code, "payctl %v: %s%s", args, r.Stdout, r.Stderr)
	require.NoError(t, json.Unmarshal([]byte(r.Stdout), into), "payctl %v: %s", args, r.Stdout)
	return r
}

// listed is a payment as `payctl payments list|stuck -o json` prints it.
type listed struct {
	PaymentID      string `json:"payment_id"`
	WorkflowStatus string `json:"workflow_status"`
	PaymentStatus  string `json:"payment_status"`
	NeedsAttention bool   `json:"needs_attention"`
	CustomerID     string `json:"customer_id"`
	MerchantID     string `json:"merchant_id"`
	AmountKRW      int64  `json:"amount_krw"`
	DBStatus       string `json:"db_status"`
}

func findListed(rows []listed, id string) *listed {
	for i := range rows {
		if rows[i].PaymentID == id {
			return &rows[i]
		}
	}
	return nil
}

// paymentIDOf is the payment id of a POST /v1/payments answer (200: the payment; 202 and
// problems: under "payment").
func paymentIDOf(t testing.TB, a answer) string {
	t.Helper()
	if id := a.str("id"); id != "" {
		return id
	}
	p, _ := a.Body["payment"].(map[string]any)
	id, _ := p["id"].(string)
	require.NotEmpty(t, id, "no payment id in %d %s", a.Status, a.Raw)
	return id
}

// settled pays and waits for the payment to succeed.
func settled(t *testing.T, c user, acct bankAccount, m user, amount int64, key string) string {
	t.Helper()
	a := pay(t, c, acct, m, amount, key)
	require.Contains(t, []int{http.StatusOK, http.StatusAccepted}, a.Status, "%s", a.Raw)
	id := paymentIDOf(t, a)
	waitStatus(t, c, id, "SUCCEEDED")
	return id
}
