package nh

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// Samples of answers as NH's documents and public code show them, odd spellings included.
var oddSamples = []string{
	`{"Header":{"ApiNm":"InquireBalance","Tsymd":"20261125","Trtm":"153000","Iscd":"000123","FintechApsno":"001","APISvcCd":"ReceivedTransferA","Istuno":"20261125000000000001","Rpcd":"00000","Rsms":"정상처리 되었습니다."},"FinAcno":"00820100000000000000000001","Ldbl":"0000000000010000.00","RlpmAbamt":"10000"}`,
	`{"Header":{"Rpcd":"E1001","Rsms ":"잔액이 부족합니다."}}`,
	`{"header":{"rpcd":"00000"},"Ldbl":10000}`,
	`{"Header":{"Rsms":"no code"}}`,
	`{"Header":{"Rpcd":"00000"},"CtntDataYn":"Y","Iqtcnt":"1","REC":[{"Trdd":"20261125","Tram":"000100","AftrBlnc":"-50"}]}`,
	`{"Rpcd":"A0017","Rsms":"처리중"}`,
	`{"Header":{"Rpcd":"00000","Rsms":"","Rsms ":"x"}}`,
	`<html>502 Bad Gateway</html>`,
	`{"Header":null}`,
	`{"Header":{"Rpcd":["00000"]}}`,
	`{"Header":{"Rpcd":"00000"},"REC":null}`,
	``,
	`null`,
	`{"Header":{"Rpcd":"00000"},"REC":[1]}`,
	"\xef\xbb\xbf{\"Header\":{\"Rpcd\":\"00000\"}}",
}

func TestDecodeResponse(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		wantErr bool
		check   func(t *testing.T, r *response)
	}{
		{name: "key case and zero-padded amount", body: oddSamples[0], check: func(t *testing.T, r *response) {
			require.Equal(t, "20261125000000000001", r.Header.IsTuno)
			require.Equal(t, "ReceivedTransferA", r.Header.ApiSvcCd)
			require.Equal(t, RpcdOK, r.Header.Rpcd)
			n, err := ParseAmount(r.get("Ldbl"))
			require.NoError(t, err)
			require.Equal(t, int64(10000), n)
		}},
		{name: "stray space in key", body: oddSamples[1], check: func(t *testing.T, r *response) {
			require.Equal(t, "E1001", r.Header.Rpcd)
			require.Equal(t, "잔액이 부족합니다.", r.Header.Rsms)
		}},
		{name: "lower-case keys and a bare number", body: oddSamples[2], check: func(t *testing.T, r *response) {
			require.Equal(t, RpcdOK, r.Header.Rpcd)
			require.Equal(t, "10000", r.get("LDBL"))
		}},
		{name: "missing Rpcd is a failure", body: oddSamples[3], wantErr: true},
		{name: "records", body: oddSamples[4], check: func(t *testing.T, r *response) {
			require.Len(t, r.records, 1)
			require.Equal(t, "000100", r.records[0].get("tram"))
			require.Equal(t, "Y", r.get("CtntDataYn"))
		}},
		{name: "header fields at the top level", body: oddSamples[5], check: func(t *testing.T, r *response) {
			require.Equal(t, RpcdInProgress, r.Header.Rpcd)
		}},
		{name: "non-empty spelling wins a collision", body: oddSamples[6], check: func(t *testing.T, r *response) {
			require.Equal(t, "x", r.Header.Rsms)
		}},
		{name: "not JSON", body: oddSamples[7], wantErr: true},
		{name: "null header", body: oddSamples[8], wantErr: true},
		{name: "Rpcd not a string", body: oddSamples[9], wantErr: true},
		{name: "null REC", body: oddSamples[10]},
		{name: "empty body", body: oddSamples[11], wantErr: true},
		{name: "null body", body: oddSamples[12], wantErr: true},
		{name: "REC item not an object", body: oddSamples[13], wantErr: true},
		{name: "byte-order mark", body: oddSamples[14]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := decodeResponse([]byte(tt.body))
			if tt.wantErr {
				require.Error(t, err)
				require.Nil(t, r)
				return
			}
			require.NoError(t, err)
			if tt.check != nil {
				tt.check(t, r)
			}
		})
	}
}

func TestParseAmount(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{"15000", 15000, false},
		{"0000000000010000.00", 10000, false},
		{" 000 ", 0, false},
		{"-2500", -2500, false},
		{"+7", 7, false},
		{"999999999999999999", 999999999999999999, false},
		{"10000.50", 0, true},
		{"10000.", 0, true},
		{"", 0, true},
		{"1e5", 0, true},
		{"12,000", 0, true},
		{"9999999999999999999", 0, true},
		{"-", 0, true},
		{"-.", 0, true},
		{".", 0, true},
		{"0.0.0", 0, true},
		{strings.Repeat("0", 40) + "1", 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseAmount(tt.in)
			if tt.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

// FuzzDecodeResponse feeds arbitrary bodies to the decoder: it must never panic, never call a
// body without Rpcd a success, and never quote the body in its error.
func FuzzDecodeResponse(f *testing.F) {
	for _, s := range oddSamples {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"Header":{"Rpcd":"00000","Rsms":"정상처리 되었습니다."},"Pcrs":"1"}`))
	f.Add([]byte(`{"Header":{"Rpcd":"00000"},"REC":[{"Tram":"1"},{"Tram":"0000000000000002.00"}],"Iqtcnt":"2"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := decodeResponse(body)
		if err != nil {
			require.Nil(t, r)
			if len(body) >= 12 {
				require.NotContains(t, err.Error(), string(body))
			}
			return
		}
		require.NotEmpty(t, r.Header.Rpcd)
		for _, rec := range r.records {
			_, _ = ParseAmount(rec.get("Tram"))
		}
		_, _ = ParseAmount(r.get("Ldbl"))
	})
}
