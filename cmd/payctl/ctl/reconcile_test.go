package ctl

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paysaga"
	"paysaga/nh"
	"paysaga/reconcile"
)

const day = "20261125"

// at is 20261125 hh:mm:ss Korea time.
func at(hh, mm, ss int) time.Time {
	return time.Date(2026, 11, 25, hh, mm, ss, 0, nh.KST)
}

func bankRow(t time.Time, deposit bool, amount int64, tuno string) nh.HistoryRecord {
	dsnc := "3"
	if deposit {
		dsnc = "1"
	}
	k := t.In(nh.KST)
	return nh.HistoryRecord{Trdd: k.Format("20060102"), Txtm: k.Format("150405"), MnrcDrotDsnc: dsnc, Tram: amount,
		Ccyn: "0", Tuno: tuno, Smr: "출금이체"}
}

func debit(id string, amount int64, state paysaga.TransferState, created time.Time) *paysaga.Transfer {
	return &paysaga.Transfer{ID: id, PaymentID: "pay_" + id, Kind: paysaga.TransferDebit, Amount: amount,
		Tsymd: day, IsTuno: day + "000000000001", State: state, CreatedAt: created.UTC()}
}

func TestReconcileReportOutput(t *testing.T) {
	rep := reconcile.Compare(day,
		[]nh.HistoryRecord{bankRow(at(10, 0, 1), true, 15_000, "T1"), bankRow(at(12, 0, 0), true, 1_234_567, "T9")},
		[]*paysaga.Transfer{
			debit("a", 15_000, paysaga.TransferSucceeded, at(10, 0, 0)),
			debit("u", 8_000, paysaga.TransferUnknown, at(11, 0, 0)),
		}, 5*time.Minute)

	var table bytes.Buffer
	require.NoError(t, printReconcile(&table, rep))
	out := table.String()
	require.Contains(t, out, "reconcile 20261125: 2 bank transactions, 2 transfers: 1 matched, 1 missing, 0 extra, 1 mismatched")
	require.Contains(t, out, "MISSING")
	require.Contains(t, out, "1,234,567")
	require.Contains(t, out, "T9")
	require.Contains(t, out, "2026-11-25T03:00:00Z", "bank times in UTC like every other time payctl prints")
	require.Contains(t, out, "MISMATCHED")
	require.Contains(t, out, "pay_u")
	require.NotContains(t, out, "EXTRA")

	var js bytes.Buffer
	require.NoError(t, printJSON(&js, rep))
	var decoded struct {
		Date       string           `json:"date"`
		Missing    []map[string]any `json:"missing"`
		Extra      []map[string]any `json:"extra"`
		Mismatched []map[string]any `json:"mismatched"`
	}
	require.NoError(t, json.Unmarshal(js.Bytes(), &decoded))
	require.Equal(t, day, decoded.Date)
	require.Len(t, decoded.Missing, 1)
	require.EqualValues(t, 1_234_567, decoded.Missing[0]["amount"])
	require.Equal(t, "in", decoded.Missing[0]["direction"])
	require.NotNil(t, decoded.Extra, "empty lists are [] for scripts, not null")
	require.Len(t, decoded.Mismatched, 1)
}
