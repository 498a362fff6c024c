package api

import (
	"context"
	"encoding/csv"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"paysaga"
	"paysaga/seal"
	"paysaga/settlement"
	"paysaga/store"
)

// SettlementStore is what the settlement routes need of the database (*store.DB).
type SettlementStore interface {
	ListSettlements(ctx context.Context, f store.SettlementFilter) (*store.SettlementPage, error)
	GetSettlement(ctx context.Context, id string, lines bool) (*settlement.Settlement, error)
	SettlementAccountOf(ctx context.Context, merchantID string) (*store.SettlementAccount, error)
	SetSettlementAccount(ctx context.Context, merchantID, bankCode, masked string, number store.SealedAccountNumber) error
}

// SettlementDeps serves /v1/settlements and /v1/settlement-account (503 until set).
type SettlementDeps struct {
	Store SettlementStore
	// Keys seal the merchants' settlement account numbers.
	Keys *seal.Keyring
}

type settlementHandlers struct {
	SettlementDeps
}

// registerSettlements adds the settlement routes: a merchant reads its own settlements and
// registers where it is paid; an operator reads everyone's. Another merchant's settlement is
// answered like one that does not exist.
func (s *Server) registerSettlements(d SettlementDeps) {
	h := &settlementHandlers{d}
	g := s.v1.Group("", h.available)
	g.GET("/settlements", RequireRole(paysaga.RoleMerchant, paysaga.RoleOperator), h.list)
	g.GET("/settlements/:id", RequireRole(paysaga.RoleMerchant, paysaga.RoleOperator), h.get)
	g.GET("/settlement-account", RequireRole(paysaga.RoleMerchant), h.account)
	g.PUT("/settlement-account", RequireRole(paysaga.RoleMerchant), h.setAccount)
}

func (h *settlementHandlers) available(c *gin.Context) {
	if h.Store == nil {
		Problem(c, paysaga.Errorf(paysaga.EUNAVAILABLE, "settlements are not available on this server"))
	}
}

// wantsCSV: ?format=csv, or an Accept header that asks for text/csv.
func wantsCSV(c *gin.Context) bool {
	if f := c.Query("format"); f != "" {
		return f == "csv"
	}
	return strings.Contains(c.GetHeader("Accept"), "text/csv")
}

func (h *settlementHandlers) list(c *gin.Context) {
	user := UserFrom(c)
	f := store.SettlementFilter{Status: settlement.Status(c.Query("status")), StartingAfter: c.Query("starting_after")}
	var ok bool
	if f.Limit, ok = listLimit(c); !ok {
		return
	}
	if f.Status != "" && !f.Status.Valid() {
		Problem(c, &ValidationError{Message: "some fields are invalid", Fields: []FieldError{{Field: "status", Message: "unknown settlement status"}}})
		return
	}
	if user.Role == paysaga.RoleOperator {
		f.MerchantID = c.Query("merchant_id")
	} else {
		f.MerchantID = user.UserID
	}
	page, err := h.Store.ListSettlements(c.Request.Context(), f)
	if err != nil {
		Problem(c, err)
		return
	}
	if wantsCSV(c) {
		rows := [][]string{{"id", "merchant_id", "day", "status", "fee_bps", "payment_count", "refund_count",
			"payment_amount", "refund_amount", "fee_amount", "carry_in", "net", "payout", "carry_out",
			"transfer_id", "failure_code", "created_at", "updated_at"}}
		for _, s := range page.Settlements {
			rows = append(rows, []string{s.ID, s.MerchantID, s.Day, string(s.Status), itoa(s.FeeBPS),
				strconv.Itoa(s.PaymentCount), strconv.Itoa(s.RefundCount), itoa(s.PaymentAmount), itoa(s.RefundAmount),
				itoa(s.FeeAmount), itoa(s.CarryIn), itoa(s.Net), itoa(s.Payout), itoa(s.CarryOut),
				s.TransferID, s.FailureCode, s.CreatedAt.Format(time.RFC3339Nano), s.UpdatedAt.Format(time.RFC3339Nano)})
		}
		// The page's cursor travels in a header: the next page is starting_after=<last id>.
		c.Header("Paysaga-Has-More", strconv.FormatBool(page.HasMore))
		writeCSV(c, "settlements.csv", rows)
		return
	}
	c.JSON(http.StatusOK, gin.H{"data": page.Settlements, "has_more": page.HasMore})
}

func (h *settlementHandlers) get(c *gin.Context) {
	s, err := h.Store.GetSettlement(c.Request.Context(), c.Param("id"), true)
	if paysaga.ErrorCode(err) == paysaga.ENOTFOUND {
		err = paysaga.Errorf(paysaga.ENOTFOUND, "settlement not found")
	}
	if err != nil {
		Problem(c, err)
		return
	}
	if u := UserFrom(c); u.Role != paysaga.RoleOperator && s.MerchantID != u.UserID {
		Problem(c, paysaga.Errorf(paysaga.ENOTFOUND, "settlement not found"))
		return
	}
	if s.Lines == nil {
		s.Lines = []settlement.Line{}
	}
	if wantsCSV(c) {
		rows := [][]string{{"settlement_id", "kind", "payment_id", "refund_id", "amount", "fee", "occurred_at"}}
		for _, l := range s.Lines {
			rows = append(rows, []string{s.ID, string(l.Kind), l.PaymentID, l.RefundID, itoa(l.Amount), itoa(l.Fee),
				l.At.Format(time.RFC3339Nano)})
		}
		writeCSV(c, s.ID+".csv", rows)
		return
	}
	c.JSON(http.StatusOK, s)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func writeCSV(c *gin.Context, name string, rows [][]string) {
	c.Header("Content-Disposition", fmt.Sprintf("attachment; filename=%q", name))
	c.Status(http.StatusOK)
	c.Header("Content-Type", "text/csv; charset=utf-8")
	w := csv.NewWriter(c.Writer)
	_ = w.WriteAll(rows) // a client gone mid-body has nothing left to be told
}

// settlementAccount is a merchant's settlement account as the API shows it: masked.
type settlementAccount struct {
	BankCode      string    `json:"bank_code"`
	AccountNumber string    `json:"account_number"`
	FeeBPS        *int64    `json:"fee_bps"`
	UpdatedAt     time.Time `json:"updated_at"`
}

func (h *settlementHandlers) account(c *gin.Context) {
	a, err := h.Store.SettlementAccountOf(c.Request.Context(), UserFrom(c).UserID)
	if err == nil && !a.HasAccount() {
		err = paysaga.Errorf(paysaga.ENOTFOUND, "no settlement account")
	}
	if err != nil {
		Problem(c, err)
		return
	}
	c.JSON(http.StatusOK, settlementAccount{BankCode: a.BankCode, AccountNumber: a.MaskedNumber, FeeBPS: a.FeeBPS, UpdatedAt: a.UpdatedAt})
}

type setSettlementAccountRequest struct {
	BankCode      string `json:"bank_code" binding:"required"`
	AccountNumber string `json:"account_number" binding:"required,max=32"`
}

// setAccount registers (or replaces) where the merchant is paid. The number is sealed at rest;
// the bank's depositor inquiry must name the merchant (its registered name) before every
// payout, so a wrong account fails the payout with nothing sent (settlement.failed).
func (h *settlementHandlers) setAccount(c *gin.Context) {
	if h.Keys == nil {
		Problem(c, paysaga.Errorf(paysaga.EUNAVAILABLE, "settlement accounts are not available on this server"))
		return
	}
	var req setSettlementAccountRequest
	if err := BindJSON(c, &req); err != nil {
		Problem(c, err)
		return
	}
	var fields []FieldError
	if !slices.Contains(BankCodes, req.BankCode) {
		fields = append(fields, FieldError{Field: "bank_code", Message: "must be one of: " + fmt.Sprint(BankCodes)})
	}
	number := seal.NormalizeAccountNumber(req.AccountNumber)
	if len(number) < 6 || len(number) > 16 || !onlyDigits(number) {
		fields = append(fields, FieldError{Field: "account_number", Message: "must be 6 to 16 digits (hyphens allowed)"})
	}
	if len(fields) > 0 {
		Problem(c, &ValidationError{Message: "some fields are invalid", Fields: fields})
		return
	}
	merchant := UserFrom(c).UserID
	sealed, err := h.Keys.Seal([]byte(number), settlement.AccountAD(merchant))
	if err != nil {
		Problem(c, err)
		return
	}
	masked := paysaga.MaskAccountNumber(number)
	if err := h.Store.SetSettlementAccount(c.Request.Context(), merchant, req.BankCode, masked,
		store.SealedAccountNumber{Ciphertext: sealed.Ciphertext, KeyID: sealed.KeyID}); err != nil {
		Problem(c, err)
		return
	}
	h.account(c)
}
