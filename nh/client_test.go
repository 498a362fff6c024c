package nh_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paysaga/nh"
)

const (
	testIscd  = "000123"
	testToken = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
)

// fixedNow is 15:04:05 in Korea: a 12-hour clock would write 030405.
var fixedNow = time.Date(2026, 11, 25, 6, 4, 5, 0, time.UTC)

func newClient(t *testing.T, baseURL string, mutate ...func(*nh.Config)) *nh.Client {
	t.Helper()
	cfg := nh.Config{
		BaseURL: baseURL, Iscd: testIscd, AccessToken: testToken,
		Now: func() time.Time { return fixedNow },
	}
	for _, m := range mutate {
		m(&cfg)
	}
	c, err := nh.New(cfg, nh.NewMemorySequencer())
	require.NoError(t, err)
	return c
}

func TestNewValidatesConfig(t *testing.T) {
	good := nh.Config{BaseURL: "https://developers.nonghyup.com", Iscd: testIscd, AccessToken: testToken}
	tests := []struct {
		name   string
		mutate func(*nh.Config)
		seq    nh.Sequencer
	}{
		{"no base URL", func(c *nh.Config) { c.BaseURL = "" }, nh.NewMemorySequencer()},
		{"base URL without scheme", func(c *nh.Config) { c.BaseURL = "developers.nonghyup.com" }, nh.NewMemorySequencer()},
		{"short Iscd", func(c *nh.Config) { c.Iscd = "123" }, nh.NewMemorySequencer()},
		{"short token", func(c *nh.Config) { c.AccessToken = testToken[:63] }, nh.NewMemorySequencer()},
		{"token not hex", func(c *nh.Config) { c.AccessToken = strings.Repeat("z", 64) }, nh.NewMemorySequencer()},
		{"bad apsno", func(c *nh.Config) { c.FintechApsno = "1" }, nh.NewMemorySequencer()},
		{"long service code", func(c *nh.Config) { c.SvcCodes = map[string]string{nh.APIDrawingTransfer: strings.Repeat("A", 21)} }, nh.NewMemorySequencer()},
		{"zero timeout", func(c *nh.Config) { c.Timeouts = map[string]time.Duration{"*": 0} }, nh.NewMemorySequencer()},
		{"no sequencer", func(*nh.Config) {}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			tt.mutate(&cfg)
			_, err := nh.New(cfg, tt.seq)
			require.Error(t, err)
			require.NotContains(t, err.Error(), testToken[:16])
		})
	}
	_, err := nh.New(good, nh.NewMemorySequencer())
	require.NoError(t, err)
	require.NotContains(t, good.String(), testToken)
}

func TestTimeHelpersUseKoreaAnd24Hours(t *testing.T) {
	// 2026-11-25 23:30 UTC is already the 26th in Korea.
	late := time.Date(2026, 11, 25, 23, 30, 0, 0, time.UTC)
	require.Equal(t, "20261126", nh.Today(late))
	require.Equal(t, "083000", nh.Trtm(late))
	require.Equal(t, "150405", nh.Trtm(fixedNow))
	d, err := nh.ParseTsymd("20261126")
	require.NoError(t, err)
	require.True(t, d.Equal(time.Date(2026, 11, 25, 15, 0, 0, 0, time.UTC)))
	_, err = nh.ParseTsymd("2026112")
	require.Error(t, err)
}

func TestMemorySequencer(t *testing.T) {
	seq := nh.NewMemorySequencer()
	ctx := context.Background()
	var (
		mu   sync.Mutex
		seen = map[string]bool{}
		wg   sync.WaitGroup
	)
	for range 8 {
		wg.Go(func() {
			for range 100 {
				no, err := seq.NextIsTuno(ctx, "20261125")
				mu.Lock()
				if err != nil || seen[no] {
					t.Errorf("IsTuno %s: err %v or handed out twice", no, err)
				}
				seen[no] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	require.Len(t, seen, 800)
	require.True(t, seen["20261125000000000800"])
	other, err := seq.NextIsTuno(ctx, "20261126")
	require.NoError(t, err)
	require.Equal(t, "20261126000000000001", other, "the sequence restarts each day")
	_, err = seq.NextIsTuno(ctx, "2026-11-26")
	require.Error(t, err)
}

// TestRequestEnvelope checks what goes on the wire: the URL, every value a string, the header
// in Korea time on a 24-hour clock, the service code per call, the caller's Ref on a transfer.
func TestRequestEnvelope(t *testing.T) {
	var got map[string]any
	var path string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path = r.URL.Path
		require.Equal(t, http.MethodPost, r.Method)
		require.Contains(t, r.Header.Get("Content-Type"), "application/json")
		require.NoError(t, json.NewDecoder(r.Body).Decode(&got))
		io.WriteString(w, `{"Header":{"Rpcd":"00000","Rsms":"정상처리 되었습니다."},"FinAcno":"1","RgsnYmd":"20261125"}`)
	}))
	defer srv.Close()
	c := newClient(t, srv.URL+"/", func(cfg *nh.Config) {
		cfg.SvcCodes = map[string]string{nh.APIDrawingTransfer: "ProdDrawing"}
	})
	ref := nh.Ref{Tsymd: "20261125", IsTuno: "20261125000000000042"}
	res, err := c.DrawingTransfer(context.Background(), ref, nh.DrawingTransferRequest{FinAcno: "00820100000000000000000001", Tram: 15000, DractOtlt: "페이사가 결제"})
	require.NoError(t, err)
	require.Equal(t, "정상처리 되었습니다.", res.Header.Rsms)
	require.Equal(t, "/DrawingTransfer.nh", path)
	require.Equal(t, map[string]any{
		"ApiNm": "DrawingTransfer", "Tsymd": "20261125", "Trtm": "150405", "Iscd": testIscd,
		"FintechApsno": "001", "ApiSvcCd": "ProdDrawing", "IsTuno": "20261125000000000042", "AccessToken": testToken,
	}, got["Header"])
	require.Equal(t, "15000", got["Tram"], "amounts travel as strings")
	require.Equal(t, "페이사가 결제", got["DractOtlt"])

	_, err = c.InquireBalance(context.Background(), "00820100000000000000000001")
	require.Error(t, err, "the canned answer has no balance")
	require.Equal(t, "/InquireBalance.nh", path)
	h := got["Header"].(map[string]any)
	require.Equal(t, "ReceivedTransferA", h["ApiSvcCd"])
	require.Equal(t, "20261125000000000001", h["IsTuno"], "a non-money call allocates its own IsTuno")
}

func TestMoneyCallsNeedARef(t *testing.T) {
	c := newClient(t, "http://127.0.0.1:1")
	_, err := c.DrawingTransfer(context.Background(), nh.Ref{}, nh.DrawingTransferRequest{FinAcno: "1", Tram: 1})
	require.Equal(t, nh.OutcomeInvalid, nh.Classify(err))
	_, err = c.DrawingTransfer(context.Background(), nh.Ref{Tsymd: "20261125", IsTuno: "x"}, nh.DrawingTransferRequest{FinAcno: "1", Tram: 1})
	require.Equal(t, nh.OutcomeInvalid, nh.Classify(err))
	_, err = c.DrawingTransfer(context.Background(), nh.Ref{Tsymd: "20261125", IsTuno: "1"}, nh.DrawingTransferRequest{FinAcno: "1", Tram: 0})
	require.Equal(t, nh.OutcomeInvalid, nh.Classify(err))
	_, err = c.ReceivedTransferAccountNumber(context.Background(), nh.Ref{Tsymd: "20261125", IsTuno: "1"}, nh.ReceivedTransferAccountRequest{Bncd: "004", Acno: "123456", Tram: 1})
	require.Equal(t, nh.OutcomeInvalid, nh.Classify(err), "KB accounts go through ReceivedTransferOtherBank")
}

// TestTransportClassification covers answers no simulator gives: odd bodies and statuses, a
// bank that refuses connections.
func TestTransportClassification(t *testing.T) {
	ref := nh.Ref{Tsymd: "20261125", IsTuno: "20261125000000000001"}
	draw := func(c *nh.Client) error {
		_, err := c.DrawingTransfer(context.Background(), ref, nh.DrawingTransferRequest{FinAcno: "1", Tram: 100})
		return err
	}
	balance := func(c *nh.Client) error {
		_, err := c.InquireBalance(context.Background(), "1")
		return err
	}
	tests := []struct {
		name   string
		status int
		body   string
		call   func(*nh.Client) error
		want   nh.Outcome
	}{
		{"money call, garbage body", 200, "<html>", draw, nh.OutcomeUnknown},
		{"money call, no Rpcd", 200, `{"Header":{"Rsms":"?"}}`, draw, nh.OutcomeUnknown},
		{"money call, 502", 502, "", draw, nh.OutcomeUnknown},
		{"money call, 404", 404, "", draw, nh.OutcomeUnknown},
		{"money call, declined", 200, `{"Header":{"Rpcd":"E1001","Rsms":"잔액이 부족합니다."}}`, draw, nh.OutcomeDeclined},
		{"money call, success with padded keys", 200, `{"header":{"RPCD ":"00000"}}`, draw, nh.OutcomeSuccess},
		{"inquiry, garbage body", 200, "{", balance, nh.OutcomeTransient},
		{"inquiry, 500", 500, "", balance, nh.OutcomeTransient},
		{"inquiry, declined", 200, `{"Header":{"Rpcd":"E1002"}}`, balance, nh.OutcomeDeclined},
		{"inquiry, unreadable balance", 200, `{"Header":{"Rpcd":"00000"},"Ldbl":"12.5","RlpmAbamt":"1"}`, balance, nh.OutcomeTransient},
		{"inquiry, padded balance", 200, `{"Header":{"Rpcd":"00000"},"Ldbl":"0000000000010000.00","RlpmAbamt":"10000"}`, balance, nh.OutcomeSuccess},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			}))
			defer srv.Close()
			require.Equal(t, tt.want, nh.Classify(tt.call(newClient(t, srv.URL))))
		})
	}

	t.Run("bank refuses connections: nothing was sent", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := l.Addr().String()
		l.Close()
		c := newClient(t, "http://"+addr)
		require.Equal(t, nh.OutcomeTransient, nh.Classify(draw(c)))
	})
	t.Run("context already done: nothing was sent", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := newClient(t, "http://127.0.0.1:1").DrawingTransfer(ctx, ref, nh.DrawingTransferRequest{FinAcno: "1", Tram: 1})
		require.Equal(t, nh.OutcomeTransient, nh.Classify(err))
	})
}

// TestSecretsStayOut makes calls fail in every way and checks that neither the token nor an
// account, fin account or birth date reaches an error or a log line.
func TestSecretsStayOut(t *testing.T) {
	const (
		acno  = "3510000000077"
		fin   = "00820100000000000000009999"
		birth = "19850317"
	)
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	bodies := []string{"<html>" + acno + fin + birth + "</html>", `{"Header":{"Rpcd":"E1005","Rsms":"계좌정보가 존재하지 않습니다."}}`, `{"x":"` + fin + `"`}
	for _, body := range bodies {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, body)
		}))
		c := newClient(t, srv.URL, func(cfg *nh.Config) { cfg.Logger = logger })
		ctx := context.Background()
		ref := nh.Ref{Tsymd: "20261125", IsTuno: "7"}
		var errs []error
		_, err := c.OpenFinAccountDirect(ctx, nh.OpenFinAccountRequest{Withdrawal: true, BrdtBrno: birth, Bncd: "011", Acno: acno})
		errs = append(errs, err)
		_, err = c.CheckOpenFinAccountDirect(ctx, "1", birth)
		errs = append(errs, err)
		_, err = c.DrawingTransfer(ctx, ref, nh.DrawingTransferRequest{FinAcno: fin, Tram: 1})
		errs = append(errs, err)
		_, err = c.ReceivedTransferOtherBank(ctx, ref, nh.ReceivedTransferAccountRequest{Bncd: "004", Acno: acno, Tram: 1})
		errs = append(errs, err)
		_, err = c.InquireDepositor(ctx, "004", acno)
		errs = append(errs, err)
		_, err = c.CheckOnDrawingTransfer(ctx, nh.CheckOnDrawingTransferRequest{Original: ref, FinAcno: fin, Tram: 1})
		errs = append(errs, err)
		_, err = c.DrawingTransfer(ctx, ref, nh.DrawingTransferRequest{FinAcno: fin, Tram: -1})
		errs = append(errs, err)
		srv.Close()
		_, err = c.InquireBalance(ctx, fin)
		errs = append(errs, err)
		for _, err := range errs {
			require.Error(t, err)
			for _, secret := range []string{testToken, acno, fin, birth} {
				require.NotContains(t, err.Error(), secret)
			}
		}
	}
	require.NotEmpty(t, logs.String())
	for _, secret := range []string{testToken, acno, fin, birth} {
		require.NotContains(t, logs.String(), secret)
	}
	require.Contains(t, logs.String(), "nh_api=DrawingTransfer")
	require.Contains(t, logs.String(), "rpcd=E1005")
}

// Issue 11, Low: a failed call is logged once, by the caller that knows what it means (the
// activity, with the payment it belongs to, at the level its outcome deserves); the client's
// own line for it is DEBUG. A declined or retried call is never an ERROR here.
func TestFailedCallsAreNotLoggedAsErrorsByTheClient(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	for _, answer := range []func(w http.ResponseWriter){
		func(w http.ResponseWriter) { w.WriteHeader(http.StatusInternalServerError) },                 // retried
		func(w http.ResponseWriter) { io.WriteString(w, `{"Header":{"Rpcd":"E1005","Rsms":"없음"}}`) },  // declined
		func(w http.ResponseWriter) { io.WriteString(w, `{"Header":{"Rpcd":"A0017","Rsms":"처리중"}}`) }, // in progress
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { answer(w) }))
		c := newClient(t, srv.URL, func(cfg *nh.Config) { cfg.Logger = logger })
		_, err := c.InquireBalance(context.Background(), "00820100000000000000000001")
		require.Error(t, err)
		srv.Close()
	}
	require.Empty(t, logs.String(), "nothing at INFO or above from the client for a failed call")

	var debug bytes.Buffer
	logger = slog.New(slog.NewTextHandler(&debug, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusBadGateway) }))
	defer srv.Close()
	c := newClient(t, srv.URL, func(cfg *nh.Config) { cfg.Logger = logger })
	_, err := c.InquireBalance(context.Background(), "00820100000000000000000001")
	require.Error(t, err)
	require.Contains(t, debug.String(), "level=DEBUG msg=\"nh call\"")
	require.Equal(t, 1, strings.Count(debug.String(), "nh call"), "once")
}
