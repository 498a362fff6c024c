package nhsim_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"paysaga/nh"
	"paysaga/nhsim"
)

// The simulator must never be the bottleneck of the engine's benchmark: these measure one
// call in process (handler and recorder, no network) and over loopback through the client.

func benchSim(b *testing.B) (*nhsim.Sim, string) {
	sim := nhsim.New(nhsim.Config{Iscd: testIscd, AccessToken: testToken})
	b.Cleanup(sim.Close)
	a, err := sim.CreateAccount(nhsim.Account{Holder: "김고객", Birth: "19900101", Balance: 1 << 50})
	if err != nil {
		b.Fatal(err)
	}
	fin, err := sim.RegisterFinAccount(a.Bncd, a.Acno, true)
	if err != nil {
		b.Fatal(err)
	}
	return sim, fin
}

func BenchmarkHandler(b *testing.B) {
	for _, api := range []string{nh.APIInquireBalance, nh.APIDrawingTransfer} {
		b.Run(api, func(b *testing.B) {
			sim, fin := benchSim(b)
			h := sim.Handler()
			now := time.Now()
			tsymd := nh.Today(now)
			fields := `"FinAcno":"` + fin + `"`
			if api == nh.APIDrawingTransfer {
				fields += `,"Tram":"1","DractOtlt":"벤치마크"`
			}
			tmpl := `{"Header":{"ApiNm":"` + api + `","Tsymd":"` + tsymd + `","Trtm":"` + nh.Trtm(now) +
				`","Iscd":"` + testIscd + `","FintechApsno":"001","ApiSvcCd":"ReceivedTransferA","IsTuno":"%s","AccessToken":"` +
				testToken + `"},` + fields + `}`
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				body := fmt.Sprintf(tmpl, nh.FormatIsTuno(tsymd, int64(i+1)))
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/"+api+".nh", strings.NewReader(body)))
				if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"Rpcd":"00000"`) {
					b.Fatalf("answer %d %s", rec.Code, rec.Body.String())
				}
			}
		})
	}
}

func BenchmarkLoopback(b *testing.B) {
	for _, api := range []string{nh.APIInquireBalance, nh.APIDrawingTransfer} {
		b.Run(api, func(b *testing.B) {
			sim, fin := benchSim(b)
			srv := httptest.NewServer(sim.Handler())
			b.Cleanup(srv.Close)
			seq := nh.NewMemorySequencer()
			client, err := nh.New(nh.Config{BaseURL: srv.URL, Iscd: testIscd, AccessToken: testToken}, seq)
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				switch api {
				case nh.APIInquireBalance:
					_, err = client.InquireBalance(ctx, fin)
				default:
					var ref nh.Ref
					if ref, err = nh.NewRef(ctx, seq, time.Now()); err == nil {
						_, err = client.DrawingTransfer(ctx, ref, nh.DrawingTransferRequest{FinAcno: fin, Tram: 1})
					}
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
