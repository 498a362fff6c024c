package nhsim_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paysaga/nh"
	"paysaga/nhsim"
)

func admin(t *testing.T, h http.Handler, method, path, body, token string) (int, []byte) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.Bytes()
}

func TestAdminAPI(t *testing.T) {
	sim := nhsim.New(nhsim.Config{Iscd: testIscd, AccessToken: testToken, AdminToken: "s3cret",
		Clock: func() time.Time { return simNow }, FintechAccount: nhsim.Account{Balance: 9_000}})
	t.Cleanup(sim.Close)
	h := sim.Handler()
	const tok = "s3cret"

	status, _ := admin(t, h, http.MethodGet, "/admin/ledger", "", "")
	require.Equal(t, http.StatusUnauthorized, status)

	status, body := admin(t, h, http.MethodPost, "/admin/accounts", `{"bank_code":"088","holder":"정신한","birth_date":"19881212","balance":1500}`, tok)
	require.Equal(t, http.StatusCreated, status, string(body))
	var acct nhsim.Account
	require.NoError(t, json.Unmarshal(body, &acct))
	require.Equal(t, "088", acct.Bncd)
	require.NotEmpty(t, acct.Acno)

	status, _ = admin(t, h, http.MethodPost, "/admin/accounts", `{"holder":"x","birth_date":"1988"}`, tok)
	require.Equal(t, http.StatusBadRequest, status)
	status, _ = admin(t, h, http.MethodPost, "/admin/accounts", `{"holder":"x","birth_date":"19880101","colour":"red"}`, tok)
	require.Equal(t, http.StatusBadRequest, status, "unknown fields are refused, not ignored")

	status, body = admin(t, h, http.MethodGet, "/admin/accounts/088/"+acct.Acno, "", tok)
	require.Equal(t, http.StatusOK, status)
	require.JSONEq(t, `{"bank_code":"088","account_number":"`+acct.Acno+`","holder":"정신한","birth_date":"19881212","balance":1500}`, string(body))
	status, _ = admin(t, h, http.MethodGet, "/admin/accounts/088/999999999", "", tok)
	require.Equal(t, http.StatusNotFound, status)

	status, body = admin(t, h, http.MethodPost, "/admin/finaccounts", `{"bank_code":"088","account_number":"`+acct.Acno+`","withdrawal":true}`, tok)
	require.Equal(t, http.StatusCreated, status, string(body))
	var fin struct {
		FinAccount string `json:"fin_account"`
	}
	require.NoError(t, json.Unmarshal(body, &fin))
	bal, ok := sim.FinAccountBalance(fin.FinAccount)
	require.True(t, ok)
	require.Equal(t, int64(1500), bal)

	status, body = admin(t, h, http.MethodGet, "/admin/ledger", "", tok)
	require.Equal(t, http.StatusOK, status)
	var ledger nhsim.Ledger
	require.NoError(t, json.Unmarshal(body, &ledger))
	require.Equal(t, int64(10_500), ledger.Total)
	require.Len(t, ledger.Accounts, 2)
	require.Equal(t, int64(9_000), ledger.Fintech.Balance)

	// Faults: one by fields, several by spec, listed, cleared.
	status, body = admin(t, h, http.MethodPost, "/admin/faults", `{"api":"DrawingTransfer","kind":"latency","probability":0.5,"latency":"20ms"}`, tok)
	require.Equal(t, http.StatusNoContent, status, string(body))
	status, _ = admin(t, h, http.MethodPost, "/admin/faults", `{"spec":"*=drop:0.1,InquireBalance=decline:1:E3333"}`, tok)
	require.Equal(t, http.StatusNoContent, status)
	status, _ = admin(t, h, http.MethodPost, "/admin/faults", `{"spec":"InquireBalance=drop:0.1,Nope=drop:1"}`, tok)
	require.Equal(t, http.StatusBadRequest, status)
	status, _ = admin(t, h, http.MethodPost, "/admin/faults", `{"api":"InquireBalance","kind":"drop","probability":3}`, tok)
	require.Equal(t, http.StatusBadRequest, status)
	status, body = admin(t, h, http.MethodGet, "/admin/faults", "", tok)
	require.Equal(t, http.StatusOK, status)
	require.JSONEq(t, `{
		"DrawingTransfer":[{"kind":"latency","probability":0.5,"latency":"20ms"}],
		"*":[{"kind":"drop","probability":0.1}],
		"InquireBalance":[{"kind":"decline","probability":1,"rpcd":"E3333"}]}`, string(body),
		"a refused request sets nothing")
	status, _ = admin(t, h, http.MethodDelete, "/admin/faults/InquireBalance", "", tok)
	require.Equal(t, http.StatusNoContent, status)
	require.Len(t, sim.Faults(), 2)
	status, _ = admin(t, h, http.MethodDelete, "/admin/faults", "", tok)
	require.Equal(t, http.StatusNoContent, status)
	require.Empty(t, sim.Faults())

	// Transfers, after one withdrawal through the bank API.
	status, body = admin(t, h, http.MethodGet, "/admin/transfers", "", tok)
	require.Equal(t, http.StatusOK, status)
	require.JSONEq(t, `[]`, string(body))
	_, out := post(t, sim, nh.APIDrawingTransfer, nil, map[string]any{"FinAcno": fin.FinAccount, "Tram": "500"})
	require.Equal(t, nhsim.CodeOK, rpcd(out))
	status, body = admin(t, h, http.MethodGet, "/admin/transfers", "", tok)
	require.Equal(t, http.StatusOK, status)
	var transfers []nhsim.Transfer
	require.NoError(t, json.Unmarshal(body, &transfers))
	require.Len(t, transfers, 1)
	require.Equal(t, nh.APIDrawingTransfer, transfers[0].API)
	require.Equal(t, nhsim.AccountID{Bncd: "088", Acno: acct.Acno}, transfers[0].From)
	require.Equal(t, sim.Fintech().Acno, transfers[0].To.Acno)
	require.Equal(t, int64(500), transfers[0].Amount)

	require.NoError(t, sim.SetFault(nh.APIInquireBalance, nhsim.Fault{Kind: nhsim.FaultDecline, Probability: 1, Rpcd: "E3333"}))
	_, out = post(t, sim, nh.APIInquireBalance, nil, map[string]any{"FinAcno": fin.FinAccount})
	require.Equal(t, "E3333", rpcd(out))
	status, body = admin(t, h, http.MethodGet, "/admin/stats", "", tok)
	require.Equal(t, http.StatusOK, status)
	require.JSONEq(t, `{
		"DrawingTransfer":{"requests":1,"answered":{"00000":1},"faults":{}},
		"InquireBalance":{"requests":1,"answered":{"E3333":1},"faults":{"decline":1}}}`, string(body))

	status, body = admin(t, h, http.MethodGet, "/admin/codes", "", tok)
	require.Equal(t, http.StatusOK, status)
	var codes []nhsim.Code
	require.NoError(t, json.Unmarshal(body, &codes))
	require.Equal(t, nhsim.Codes, codes)
}
