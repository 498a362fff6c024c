package reconcile_test

import (
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

func TestReconcile(t *testing.T) {
	type want struct {
		matched    int
		missing    []string // bank Tunos
		extra      []string // transfer IDs
		mismatched []string // transfer IDs
	}
	for _, tc := range []struct {
		name      string
		bank      []nh.HistoryRecord
		transfers []*paysaga.Transfer
		want      want
	}{
		{
			name: "every executed debit on the statement",
			bank: []nh.HistoryRecord{bankRow(at(10, 0, 1), true, 15_000, "T1"), bankRow(at(10, 5, 0), true, 7_000, "T2")},
			transfers: []*paysaga.Transfer{
				debit("a", 15_000, paysaga.TransferSucceeded, at(10, 0, 0)),
				debit("b", 7_000, paysaga.TransferSucceeded, at(10, 4, 59)),
				debit("declined", 9_000, paysaga.TransferDeclined, at(11, 0, 0)),
				debit("notexec", 9_000, paysaga.TransferNotExecuted, at(11, 1, 0)),
			},
			want: want{matched: 2},
		},
		{
			name:      "a transfer the bank executed and we never recorded",
			bank:      []nh.HistoryRecord{bankRow(at(10, 0, 1), true, 15_000, "T1"), bankRow(at(12, 0, 0), true, 15_000, "T9")},
			transfers: []*paysaga.Transfer{debit("a", 15_000, paysaga.TransferSucceeded, at(10, 0, 0))},
			want:      want{matched: 1, missing: []string{"T9"}},
		},
		{
			name:      "recorded as executed, not on the statement",
			transfers: []*paysaga.Transfer{debit("a", 15_000, paysaga.TransferSucceeded, at(10, 0, 0))},
			want:      want{extra: []string{"a"}},
		},
		{
			name: "the bank executed what we hold as unknown or not executed",
			bank: []nh.HistoryRecord{bankRow(at(10, 0, 2), true, 15_000, "T1"), bankRow(at(10, 30, 0), true, 5_000, "T2")},
			transfers: []*paysaga.Transfer{
				debit("unknown", 15_000, paysaga.TransferUnknown, at(10, 0, 0)),
				debit("wrong", 5_000, paysaga.TransferNotExecuted, at(10, 29, 58)),
			},
			want: want{mismatched: []string{"unknown", "wrong"}},
		},
		{
			name:      "unknown here, nothing at the bank",
			transfers: []*paysaga.Transfer{debit("sent", 15_000, paysaga.TransferSent, at(10, 0, 0))},
			want:      want{mismatched: []string{"sent"}},
		},
		{
			name:      "amounts differ",
			bank:      []nh.HistoryRecord{bankRow(at(10, 0, 1), true, 15_001, "T1")},
			transfers: []*paysaga.Transfer{debit("a", 15_000, paysaga.TransferSucceeded, at(10, 0, 0))},
			want:      want{mismatched: []string{"a"}},
		},
		{
			name:      "same amount, far apart in time: not the same transfer",
			bank:      []nh.HistoryRecord{bankRow(at(15, 0, 0), true, 15_000, "T1")},
			transfers: []*paysaga.Transfer{debit("a", 15_000, paysaga.TransferSucceeded, at(10, 0, 0))},
			want:      want{missing: []string{"T1"}, extra: []string{"a"}},
		},
		{
			name: "a row pairs with the executed transfer before a not-executed one of the same amount",
			bank: []nh.HistoryRecord{bankRow(at(10, 0, 1), true, 15_000, "T1")},
			transfers: []*paysaga.Transfer{
				debit("notexec", 15_000, paysaga.TransferNotExecuted, at(10, 0, 1)),
				debit("ok", 15_000, paysaga.TransferSucceeded, at(10, 0, 0)),
			},
			want: want{matched: 1},
		},
		{
			name: "direction counts: a refund paid out is not a debit",
			bank: []nh.HistoryRecord{bankRow(at(10, 0, 1), false, 15_000, "T1")},
			transfers: []*paysaga.Transfer{
				debit("a", 15_000, paysaga.TransferSucceeded, at(10, 0, 0)),
			},
			want: want{missing: []string{"T1"}, extra: []string{"a"}},
		},
		{
			name: "cancelled rows are not transactions",
			bank: []nh.HistoryRecord{func() nh.HistoryRecord {
				r := bankRow(at(10, 0, 1), true, 15_000, "T1")
				r.Ccyn = "1"
				return r
			}()},
		},
		{
			name: "a debit sent before midnight and executed after it belongs to its day",
			bank: []nh.HistoryRecord{
				bankRow(at(23, 59, 59).Add(2*time.Second), true, 15_000, "T1"),
				bankRow(at(23, 59, 59).Add(time.Hour), true, 3_000, "T2"), // the next day's business
			},
			transfers: []*paysaga.Transfer{debit("late", 15_000, paysaga.TransferSucceeded, at(23, 59, 59))},
			want:      want{matched: 1},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := reconcile.Compare(day, tc.bank, tc.transfers, 5*time.Minute)
			var missing, extra, mismatched []string
			for _, m := range rep.Missing {
				missing = append(missing, m.Tuno)
			}
			for _, x := range rep.Extra {
				extra = append(extra, x.ID)
			}
			for _, m := range rep.Mismatched {
				mismatched = append(mismatched, m.Transfer.ID)
				require.NotEmpty(t, m.Problem)
			}
			require.Equal(t, tc.want.matched, rep.Matched, "matched")
			require.Equal(t, tc.want.missing, missing, "missing")
			require.Equal(t, tc.want.extra, extra, "extra")
			require.Equal(t, tc.want.mismatched, mismatched, "mismatched")
			require.Equal(t, len(missing)+len(extra)+len(mismatched) > 0, rep.Differs())
		})
	}
}
