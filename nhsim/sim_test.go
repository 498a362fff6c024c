package nhsim_test

import (
	"bytes"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paysaga/nh"
	"paysaga/nhsim"
)

var simNow = time.Date(2026, 11, 25, 6, 0, 0, 0, time.UTC)

func newSim(t *testing.T) (*nhsim.Sim, string) {
	t.Helper()
	sim := nhsim.New(nhsim.Config{Iscd: testIscd, AccessToken: testToken, Clock: func() time.Time { return simNow },
		FintechAccount: nhsim.Account{Balance: 1_000_000}})
	t.Cleanup(sim.Close)
	a, err := sim.CreateAccount(nhsim.Account{Holder: "김고객", Birth: "19900101", Balance: 50_000})
	require.NoError(t, err)
	fin, err := sim.RegisterFinAccount(a.Bncd, a.Acno, true)
	require.NoError(t, err)
	return sim, fin
}

var isTuno int

// post sends a raw request to the in-process handler: a valid header for api, changed by
// header, and the given top-level fields (any JSON value).
func post(t *testing.T, sim *nhsim.Sim, api string, header map[string]any, fields map[string]any) (int, map[string]any) {
	t.Helper()
	isTuno++
	h := map[string]any{
		"ApiNm": api, "Tsymd": nh.Today(simNow), "Trtm": nh.Trtm(simNow), "Iscd": testIscd, "FintechApsno": "001",
		"ApiSvcCd": "DrawingTransferA", "IsTuno": nh.FormatIsTuno(nh.Today(simNow), int64(isTuno)), "AccessToken": testToken,
	}
	for k, v := range header {
		if v == nil {
			delete(h, k)
		} else {
			h[k] = v
		}
	}
	body := map[string]any{"Header": h}
	maps.Copy(body, fields)
	raw, err := json.Marshal(body)
	require.NoError(t, err)
	rec := httptest.NewRecorder()
	sim.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/"+api+".nh", bytes.NewReader(raw)))
	var out map[string]any
	if rec.Code == http.StatusOK {
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &out))
	}
	return rec.Code, out
}

func rpcd(out map[string]any) string {
	h, _ := out["Header"].(map[string]any)
	s, _ := h["Rpcd"].(string)
	return s
}

// TestFieldValidation checks the simulator refuses what the bank would, before touching the
// ledger.
func TestFieldValidation(t *testing.T) {
	sim, fin := newSim(t)
	draw := func(f map[string]any) map[string]any {
		out := map[string]any{"FinAcno": fin, "Tram": "1000", "DractOtlt": "결제"}
		for k, v := range f {
			if v == nil {
				delete(out, k)
			} else {
				out[k] = v
			}
		}
		return out
	}
	tests := []struct {
		name   string
		api    string
		header map[string]any
		fields map[string]any
		want   string
	}{
		{"valid withdrawal", nh.APIDrawingTransfer, nil, draw(nil), nhsim.CodeOK},
		{"amount as a JSON number", nh.APIDrawingTransfer, nil, draw(map[string]any{"Tram": 1000}), nhsim.CodeInvalidField},
		{"amount with a leading zero", nh.APIDrawingTransfer, nil, draw(map[string]any{"Tram": "01000"}), nhsim.CodeInvalidField},
		{"amount with a fraction", nh.APIDrawingTransfer, nil, draw(map[string]any{"Tram": "1000.00"}), nhsim.CodeInvalidField},
		{"amount of 16 digits", nh.APIDrawingTransfer, nil, draw(map[string]any{"Tram": "1000000000000000"}), nhsim.CodeInvalidField},
		{"no amount", nh.APIDrawingTransfer, nil, draw(map[string]any{"Tram": nil}), nhsim.CodeMissingField},
		{"passbook text of 26 characters", nh.APIDrawingTransfer, nil, draw(map[string]any{"DractOtlt": strings.Repeat("가", 26)}), nhsim.CodeInvalidField},
		{"passbook text of 25 characters", nh.APIDrawingTransfer, nil, draw(map[string]any{"DractOtlt": strings.Repeat("가", 25)}), nhsim.CodeOK},
		{"fin account of 31 characters", nh.APIDrawingTransfer, nil, draw(map[string]any{"FinAcno": strings.Repeat("1", 31)}), nhsim.CodeInvalidField},
		{"23:59:59 on a 24-hour clock", nh.APIDrawingTransfer, map[string]any{"Trtm": "235959"}, draw(nil), nhsim.CodeOK},
		{"hour 24", nh.APIDrawingTransfer, map[string]any{"Trtm": "240000"}, draw(nil), nhsim.CodeInvalidField},
		{"Tsymd not a date", nh.APIDrawingTransfer, map[string]any{"Tsymd": "20260230"}, draw(nil), nhsim.CodeInvalidField},
		{"IsTuno with letters", nh.APIDrawingTransfer, map[string]any{"IsTuno": "2026A"}, draw(nil), nhsim.CodeInvalidField},
		{"IsTuno of 21 digits", nh.APIDrawingTransfer, map[string]any{"IsTuno": strings.Repeat("1", 21)}, draw(nil), nhsim.CodeInvalidField},
		{"ApiSvcCd of 21 characters", nh.APIDrawingTransfer, map[string]any{"ApiSvcCd": strings.Repeat("A", 21)}, draw(nil), nhsim.CodeInvalidField},
		{"FintechApsno of 2 characters", nh.APIDrawingTransfer, map[string]any{"FintechApsno": "01"}, draw(nil), nhsim.CodeInvalidField},
		{"no token", nh.APIDrawingTransfer, map[string]any{"AccessToken": nil}, draw(nil), nhsim.CodeMissingField},
		{"header value as a number", nh.APIDrawingTransfer, map[string]any{"Trtm": 150000}, draw(nil), nhsim.CodeInvalidField},
		{"ApiNm differs from the URL", nh.APIDrawingTransfer, map[string]any{"ApiNm": nh.APIInquireBalance}, draw(nil), nhsim.CodeWrongAPI},
		{"wrong Iscd", nh.APIDrawingTransfer, map[string]any{"Iscd": "000124"}, draw(nil), nhsim.CodeWrongIscd},
		{"wrong token", nh.APIInquireBalance, map[string]any{"AccessToken": strings.Repeat("0", 64)}, map[string]any{"FinAcno": fin}, nhsim.CodeWrongToken},
		{"DrtrRgyn other than Y/N", nh.APIOpenFinAccountDirect, nil, map[string]any{"DrtrRgyn": "y", "BrdtBrno": "19900101", "Bncd": "011", "Acno": "351000000001"}, nhsim.CodeInvalidField},
		{"bank code of 2 digits", nh.APIInquireDepositorAccountNumber, nil, map[string]any{"Bncd": "11", "Acno": "351000000001"}, nhsim.CodeInvalidField},
		{"other bank through the NH call", nh.APIReceivedTransferAccountNumber, nil, map[string]any{"Bncd": "004", "Acno": "351000000001", "Tram": "1"}, nhsim.CodeWrongBank},
		{"NH account through the other-bank inquiry", nh.APIInquireDepositorOtherBank, nil, map[string]any{"Bncd": "011", "Acno": "351000000001"}, nhsim.CodeWrongBank},
		{"history page size over 100", nh.APIInquireTransactionHistory, nil, map[string]any{"FinAcno": fin, "Insymd": "20261125", "Ineymd": "20261125", "TrnsDsnc": "A", "Lnsq": "ASC", "PageNo": "1", "Dmcnt": "101"}, nhsim.CodeInvalidField},
		{"history period reversed", nh.APIInquireTransactionHistory, nil, map[string]any{"FinAcno": fin, "Insymd": "20261125", "Ineymd": "20261124", "TrnsDsnc": "A", "Lnsq": "ASC", "PageNo": "1", "Dmcnt": "10"}, nhsim.CodeBadPeriod},
		{"check-on with a bad original date", nh.APICheckOnDrawingTransfer, nil, map[string]any{"FinAcno": fin, "Tram": "1", "OrtrYmd": "2026112", "OrtrIsTuno": "1"}, nhsim.CodeInvalidField},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := sim.TotalMoney()
			transfers := len(sim.Transfers())
			status, out := post(t, sim, tt.api, tt.header, tt.fields)
			require.Equal(t, http.StatusOK, status)
			require.Equal(t, tt.want, rpcd(out))
			require.Equal(t, nhsim.Message(tt.want), out["Header"].(map[string]any)["Rsms"])
			require.NotContains(t, out["Header"], "AccessToken", "the token is never echoed")
			require.Equal(t, before, sim.TotalMoney())
			if tt.want != nhsim.CodeOK {
				require.Len(t, sim.Transfers(), transfers, "a refusal moves nothing")
			}
		})
	}
}

func TestTransportRefusals(t *testing.T) {
	sim, _ := newSim(t)
	h := sim.Handler()
	tests := []struct {
		name, method, path, body string
		wantStatus               int
		wantRpcd                 string
	}{
		{"unknown call", http.MethodPost, "/TransferEverything.nh", "{}", http.StatusNotFound, ""},
		{"no .nh suffix", http.MethodPost, "/DrawingTransfer", "{}", http.StatusNotFound, ""},
		{"GET", http.MethodGet, "/DrawingTransfer.nh", "", http.StatusMethodNotAllowed, ""},
		{"not JSON", http.MethodPost, "/DrawingTransfer.nh", "Tram=1000", http.StatusOK, nhsim.CodeInvalidField},
		{"no header", http.MethodPost, "/DrawingTransfer.nh", `{"Tram":"1"}`, http.StatusOK, nhsim.CodeMissingField},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body)))
			require.Equal(t, tt.wantStatus, rec.Code)
			if tt.wantRpcd != "" {
				var out map[string]any
				require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &out))
				require.Equal(t, tt.wantRpcd, rpcd(out))
			}
		})
	}
}

func TestDuplicateIsTunoIsPerDay(t *testing.T) {
	sim, fin := newSim(t)
	fields := map[string]any{"FinAcno": fin}
	_, out := post(t, sim, nh.APIInquireBalance, map[string]any{"IsTuno": "1"}, fields)
	require.Equal(t, nhsim.CodeOK, rpcd(out))
	_, out = post(t, sim, nh.APIInquireBalance, map[string]any{"IsTuno": "1"}, fields)
	require.Equal(t, nhsim.CodeDuplicateIsTuno, rpcd(out))
	require.Equal(t, "중복된 기관거래고유번호입니다. 다시 확인바랍니다.", out["Header"].(map[string]any)["Rsms"])
	_, out = post(t, sim, nh.APIInquireBalance, map[string]any{"IsTuno": "1", "Tsymd": "20261126"}, fields)
	require.Equal(t, nhsim.CodeOK, rpcd(out), "the same number on another day is a new request")
}

func TestCreateAccountValidates(t *testing.T) {
	sim, _ := newSim(t)
	for name, a := range map[string]nhsim.Account{
		"no holder":         {Birth: "19900101"},
		"bad birth date":    {Holder: "x", Birth: "19901301"},
		"bank code letters": {Bncd: "KB1", Holder: "x", Birth: "19900101"},
		"short number":      {Acno: "123", Holder: "x", Birth: "19900101"},
		"negative balance":  {Holder: "x", Birth: "19900101", Balance: -1},
		"fintech's number":  {Acno: sim.Fintech().Acno, Holder: "x", Birth: "19900101"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := sim.CreateAccount(a)
			require.Error(t, err)
		})
	}
}

// TestCodeTableIsDocumented keeps the one table of result codes, the package comment and
// docs/nh.md in step.
func TestCodeTableIsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/nh.md")
	require.NoError(t, err)
	src, err := os.ReadFile("sim.go")
	require.NoError(t, err)
	seen := map[string]bool{}
	for _, c := range nhsim.Codes {
		require.False(t, seen[c.Rpcd], "code %s twice", c.Rpcd)
		seen[c.Rpcd] = true
		require.Len(t, c.Rpcd, 5)
		require.Contains(t, string(doc), "| `"+c.Rpcd+"` | "+c.Rsms+" |", "docs/nh.md lacks %s", c.Rpcd)
		require.Regexp(t, `//\s+`+c.Rpcd+`\s+`+regexp.QuoteMeta(c.Rsms), string(src), "the package comment lacks %s", c.Rpcd)
	}
}

func TestConfigDefaultsAndValidation(t *testing.T) {
	sim := nhsim.New(nhsim.Config{})
	t.Cleanup(sim.Close)
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	cfg := sim.ClientConfig(srv.URL)
	require.Equal(t, nhsim.DefaultIscd, cfg.Iscd)
	client, err := nh.New(cfg, nh.NewMemorySequencer())
	require.NoError(t, err, "the default credentials satisfy the client")
	dep, err := client.InquireDepositor(t.Context(), sim.Fintech().Bncd, sim.Fintech().Acno)
	require.NoError(t, err)
	require.Equal(t, "페이사가", dep.Dpnm)

	for name, c := range map[string]nhsim.Config{
		"short Iscd":          {Iscd: "1"},
		"token not hex":       {AccessToken: strings.Repeat("x", 64)},
		"negative delay":      {IssueDelay: -time.Second},
		"fintech bank letter": {FintechAccount: nhsim.Account{Bncd: "0A1"}},
		"fintech in debt":     {FintechAccount: nhsim.Account{Balance: -1}},
		"fault on no API":     {Faults: map[string][]nhsim.Fault{"Nope": {{Kind: nhsim.FaultDrop, Probability: 1}}}},
		"fault impossible":    {Faults: map[string][]nhsim.Fault{"*": {{Kind: nhsim.FaultDrop}}}},
	} {
		t.Run(name, func(t *testing.T) {
			require.Error(t, c.Validate())
			require.Panics(t, func() { nhsim.New(c) })
		})
	}
}
