package api_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paysaga"
	"paysaga/api"
	"paysaga/seal"
	"paysaga/settlement"
	"paysaga/store"
	"paysaga/store/storetest"
)

type settlementEnv struct {
	*testEnv
	db   *store.DB
	keys *seal.Keyring
}

func newSettlementEnv(t *testing.T) *settlementEnv {
	t.Helper()
	db := storetest.Open(t, store.DriverSQLite)
	keys := seal.NewDevKeyring()
	env := newTestEnv(t, func(d *api.Deps) { d.Settlements = api.SettlementDeps{Store: db, Keys: keys} })
	return &settlementEnv{testEnv: env, db: db, keys: keys}
}

// user is a user known both to the token issuer and to the database.
func (e *settlementEnv) user(t *testing.T, role paysaga.Role) (*paysaga.User, string) {
	t.Helper()
	u, token := e.auth.addUser(paysaga.NewID("")+"@example.com", "pw", role)
	require.NoError(t, e.db.CreateUser(context.Background(), &paysaga.User{ID: u.ID, Email: u.Email, Name: "상점", Role: role, PasswordHash: "x"}))
	return u, token
}

// settled gives merchantID a captured payment of amount on day and settles the day.
func (e *settlementEnv) settled(t *testing.T, merchantID string, amount int64, day string) *settlement.Settlement {
	t.Helper()
	ctx := context.Background()
	cust, _ := e.user(t, paysaga.RoleCustomer)
	acct := &paysaga.Account{ID: paysaga.NewID(paysaga.PrefixAccount), OwnerID: cust.ID, BankCode: "011", MaskedNumber: "****1234", Status: paysaga.AccountActive, FinAccount: "fin"}
	require.NoError(t, e.db.CreateAccount(ctx, acct, store.SealedAccountNumber{Ciphertext: []byte("x"), KeyID: "k", Hash: paysaga.NewID("h")}))
	at, err := settlement.ParseDay(day)
	require.NoError(t, err)
	at = at.Add(10 * time.Hour)
	p := &paysaga.Payment{ID: paysaga.NewID(paysaga.PrefixPayment), CustomerID: cust.ID, MerchantID: merchantID, AccountID: acct.ID,
		Amount: amount, Status: paysaga.PaymentPending, CreatedAt: at}
	err = e.db.RecordPaymentChange(ctx, store.PaymentChange{Create: p, PaymentID: p.ID, Status: paysaga.PaymentProcessing})
	require.NoError(t, err)
	err = e.db.RecordPaymentChange(ctx, store.PaymentChange{PaymentID: p.ID, Status: paysaga.PaymentSucceeded,
		Events: []paysaga.PaymentEvent{{ID: "evt_" + p.ID, PaymentID: p.ID, Type: store.CapturedEventType, CreatedAt: at}}})
	require.NoError(t, err)
	s, _, err := e.db.PrepareSettlement(ctx, merchantID, day, 250)
	require.NoError(t, err)
	return s
}

func TestSettlementsAPIVisibility(t *testing.T) {
	e := newSettlementEnv(t)
	a, aToken := e.user(t, paysaga.RoleMerchant)
	b, bToken := e.user(t, paysaga.RoleMerchant)
	_, opToken := e.user(t, paysaga.RoleOperator)
	_, custToken := e.user(t, paysaga.RoleCustomer)
	a1 := e.settled(t, a.ID, 10_000, "2026-11-29")
	a2 := e.settled(t, a.ID, 20_000, "2026-11-30")
	b1 := e.settled(t, b.ID, 30_000, "2026-11-30")

	list := func(token, query string) []settlement.Settlement {
		rec := e.do(t, req{method: http.MethodGet, path: "/v1/settlements" + query, header: bearer(token)})
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		var page struct {
			Data    []settlement.Settlement `json:"data"`
			HasMore bool                    `json:"has_more"`
		}
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &page))
		return page.Data
	}
	ids := func(ss []settlement.Settlement) []string {
		var out []string
		for _, s := range ss {
			out = append(out, s.ID)
		}
		return out
	}
	require.Equal(t, []string{a2.ID, a1.ID}, ids(list(aToken, "")), "a merchant sees its own, newest first")
	require.Equal(t, []string{b1.ID}, ids(list(bToken, "?merchant_id="+a.ID)), "merchant_id is not a merchant's to choose")
	require.ElementsMatch(t, []string{a1.ID, a2.ID, b1.ID}, ids(list(opToken, "")))
	require.Equal(t, []string{b1.ID}, ids(list(opToken, "?merchant_id="+b.ID)))
	require.Equal(t, []string{a1.ID}, ids(list(aToken, "?limit=1&starting_after="+a2.ID)))
	requireProblem(t, e.do(t, req{method: http.MethodGet, path: "/v1/settlements", header: bearer(custToken)}), http.StatusForbidden, paysaga.EFORBIDDEN)
	requireProblem(t, e.do(t, req{method: http.MethodGet, path: "/v1/settlements"}), http.StatusUnauthorized, paysaga.EUNAUTHORIZED)
	requireProblem(t, e.do(t, req{method: http.MethodGet, path: "/v1/settlements?status=NOPE", header: bearer(aToken)}), http.StatusUnprocessableEntity, paysaga.EINVALID)
	requireProblem(t, e.do(t, req{method: http.MethodGet, path: "/v1/settlements?starting_after=" + b1.ID, header: bearer(aToken)}), http.StatusUnprocessableEntity, paysaga.EINVALID)

	// One settlement with its lines; another merchant's is not there.
	rec := e.do(t, req{method: http.MethodGet, path: "/v1/settlements/" + a2.ID, header: bearer(aToken)})
	require.Equal(t, http.StatusOK, rec.Code)
	var got settlement.Settlement
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
	require.Len(t, got.Lines, 1)
	require.EqualValues(t, 20_000, got.Lines[0].Amount)
	require.EqualValues(t, 500, got.Lines[0].Fee)
	require.EqualValues(t, 19_500, got.Payout)
	requireProblem(t, e.do(t, req{method: http.MethodGet, path: "/v1/settlements/" + b1.ID, header: bearer(aToken)}), http.StatusNotFound, paysaga.ENOTFOUND)
	requireProblem(t, e.do(t, req{method: http.MethodGet, path: "/v1/settlements/stl_nope", header: bearer(opToken)}), http.StatusNotFound, paysaga.ENOTFOUND)
	require.Equal(t, http.StatusOK, e.do(t, req{method: http.MethodGet, path: "/v1/settlements/" + b1.ID, header: bearer(opToken)}).Code)
}

func TestSettlementsAPICSV(t *testing.T) {
	e := newSettlementEnv(t)
	a, aToken := e.user(t, paysaga.RoleMerchant)
	s := e.settled(t, a.ID, 10_000, "2026-11-30")

	h := bearer(aToken)
	h["Accept"] = "text/csv"
	rec := e.do(t, req{method: http.MethodGet, path: "/v1/settlements", header: h})
	require.Equal(t, http.StatusOK, rec.Code)
	require.True(t, strings.HasPrefix(rec.Header().Get("Content-Type"), "text/csv"))
	require.Equal(t, "false", rec.Header().Get("Paysaga-Has-More"))
	rows, err := csv.NewReader(rec.Body).ReadAll()
	require.NoError(t, err)
	require.Len(t, rows, 2)
	require.Equal(t, "id", rows[0][0])
	require.Equal(t, []string{s.ID, a.ID, "2026-11-30", "PENDING"}, rows[1][:4])
	require.Equal(t, "9750", rows[1][12], "payout")

	rec = e.do(t, req{method: http.MethodGet, path: "/v1/settlements/" + s.ID + "?format=csv", header: bearer(aToken)})
	require.Equal(t, http.StatusOK, rec.Code)
	rows, err = csv.NewReader(rec.Body).ReadAll()
	require.NoError(t, err)
	require.Equal(t, []string{"settlement_id", "kind", "payment_id", "refund_id", "amount", "fee", "occurred_at"}, rows[0])
	require.Len(t, rows, 2)
	require.Equal(t, []string{s.ID, "payment"}, rows[1][:2])
	require.Equal(t, []string{"10000", "250"}, rows[1][4:6])
}

func TestSettlementAccountAPI(t *testing.T) {
	e := newSettlementEnv(t)
	m, token := e.user(t, paysaga.RoleMerchant)
	_, custToken := e.user(t, paysaga.RoleCustomer)

	requireProblem(t, e.do(t, req{method: http.MethodGet, path: "/v1/settlement-account", header: bearer(token)}), http.StatusNotFound, paysaga.ENOTFOUND)
	requireProblem(t, e.do(t, req{method: http.MethodPut, path: "/v1/settlement-account", header: bearer(custToken),
		body: `{"bank_code":"011","account_number":"302-1234-5678-91"}`}), http.StatusForbidden, paysaga.EFORBIDDEN)
	p := requireProblem(t, e.do(t, req{method: http.MethodPut, path: "/v1/settlement-account", header: bearer(token),
		body: `{"bank_code":"999","account_number":"12ab"}`}), http.StatusUnprocessableEntity, paysaga.EINVALID)
	require.NotContains(t, p.Detail, "12ab")
	_, err := e.db.SettlementAccountOf(context.Background(), m.ID)
	require.Equal(t, paysaga.ENOTFOUND, paysaga.ErrorCode(err), "bad input changes nothing")

	rec := e.do(t, req{method: http.MethodPut, path: "/v1/settlement-account", header: bearer(token),
		body: `{"bank_code":"088","account_number":"302-1234-5678-91"}`})
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.NotContains(t, rec.Body.String(), "3021234")
	var shown struct {
		BankCode      string `json:"bank_code"`
		AccountNumber string `json:"account_number"`
		FeeBPS        *int64 `json:"fee_bps"`
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &shown))
	require.Equal(t, "088", shown.BankCode)
	require.Equal(t, "****7891", shown.AccountNumber)
	require.Nil(t, shown.FeeBPS)

	// Sealed at rest, for this merchant only.
	a, err := e.db.SettlementAccountOf(context.Background(), m.ID)
	require.NoError(t, err)
	require.NotContains(t, string(a.Number.Ciphertext), "3021234567891")
	plain, err := e.keys.Open(seal.Sealed{Ciphertext: a.Number.Ciphertext, KeyID: a.Number.KeyID}, settlement.AccountAD(m.ID))
	require.NoError(t, err)
	require.Equal(t, "3021234567891", string(plain))
	_, err = e.keys.Open(seal.Sealed{Ciphertext: a.Number.Ciphertext, KeyID: a.Number.KeyID}, settlement.AccountAD("usr_other"))
	require.Error(t, err)
}
