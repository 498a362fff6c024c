package nhsim_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paysaga/nh"
	"paysaga/nhsim"
)

func TestParseFaults(t *testing.T) {
	got, err := nhsim.ParseFaults(" DrawingTransfer=lost_response:0.2, *=latency:0.1:50ms;ReceivedTransferOtherBank=decline:0.05:E1001,ReceivedTransferOtherBank=decline:1 ,DrawingTransfer=lost_response:0.3,")
	require.NoError(t, err)
	require.Equal(t, map[string][]nhsim.Fault{
		nh.APIDrawingTransfer:           {{Kind: nhsim.FaultLostResponse, Probability: 0.3}},
		nhsim.AllAPIs:                   {{Kind: nhsim.FaultLatency, Probability: 0.1, Latency: 50 * time.Millisecond}},
		nh.APIReceivedTransferOtherBank: {{Kind: nhsim.FaultDecline, Probability: 1}},
	}, got, "a later fault of the same kind on the same API replaces the earlier one")

	empty, err := nhsim.ParseFaults("")
	require.NoError(t, err)
	require.Empty(t, empty)

	for _, bad := range []string{
		"DrawingTransfer",
		"Teleport=drop:0.5",
		"DrawingTransfer=explode:0.5",
		"DrawingTransfer=drop:1.5",
		"DrawingTransfer=drop:0",
		"DrawingTransfer=drop:half",
		"DrawingTransfer=latency:0.5",
		"DrawingTransfer=latency:0.5:soon",
		"DrawingTransfer=drop:0.5:10ms",
		"DrawingTransfer=decline:0.5:00000",
		"DrawingTransfer=decline:0.5:A0017",
		"DrawingTransfer=decline:0.5:E1",
		"DrawingTransfer=drop:0.5:1:2",
	} {
		_, err := nhsim.ParseFaults(bad)
		require.Error(t, err, bad)
	}

	f := nhsim.Fault{Kind: nhsim.FaultLatency, Probability: 0.25, Latency: 30 * time.Millisecond}
	again, err := nhsim.ParseFaults(nh.APIInquireBalance + "=" + f.String())
	require.NoError(t, err)
	require.Equal(t, []nhsim.Fault{f}, again[nh.APIInquireBalance], "String writes what ParseFaults reads")
}

// outcomes records which requests a 50% fault hits, in order.
func outcomes(t *testing.T, seed uint64, n int) []bool {
	sim := nhsim.New(nhsim.Config{Iscd: testIscd, AccessToken: testToken, Seed: seed, Clock: func() time.Time { return simNow },
		Faults: map[string][]nhsim.Fault{nh.APIInquireDepositorAccountNumber: {{Kind: nhsim.FaultHTTP500, Probability: 0.5}}}})
	a, err := sim.CreateAccount(nhsim.Account{Holder: "김고객", Birth: "19900101"})
	require.NoError(t, err)
	hit := make([]bool, n)
	for i := range hit {
		status, _ := post(t, sim, nh.APIInquireDepositorAccountNumber, nil, map[string]any{"Bncd": a.Bncd, "Acno": a.Acno})
		hit[i] = status == http.StatusInternalServerError
	}
	return hit
}

func TestFaultsAreRepeatableAndProbable(t *testing.T) {
	const n = 400
	first, again, other := outcomes(t, 7, n), outcomes(t, 7, n), outcomes(t, 8, n)
	require.Equal(t, first, again, "the same seed fails the same requests")
	require.NotEqual(t, first, other)
	hits := 0
	for _, h := range first {
		if h {
			hits++
		}
	}
	require.InDelta(t, n/2, hits, n/8, "a fault of probability 0.5 hits about half the requests")
}

func TestFaultsAtRunTime(t *testing.T) {
	sim, fin := newSim(t)
	fields := map[string]any{"FinAcno": fin}
	require.Error(t, sim.SetFault("Teleport", nhsim.Fault{Kind: nhsim.FaultDrop, Probability: 1}))
	require.Error(t, sim.SetFault(nh.APIInquireBalance, nhsim.Fault{Kind: nhsim.FaultDrop, Probability: 2}))

	require.NoError(t, sim.SetFault(nhsim.AllAPIs, nhsim.Fault{Kind: nhsim.FaultDecline, Probability: 1, Rpcd: "E5555"}))
	_, out := post(t, sim, nh.APIInquireBalance, nil, fields)
	require.Equal(t, "E5555", rpcd(out))
	require.Equal(t, nhsim.Message(nhsim.CodeForcedDecline), out["Header"].(map[string]any)["Rsms"])

	require.NoError(t, sim.SetFault(nh.APIInquireBalance, nhsim.Fault{Kind: nhsim.FaultHTTP500, Probability: 1}))
	status, _ := post(t, sim, nh.APIInquireBalance, nil, fields)
	require.Equal(t, http.StatusInternalServerError, status, "the call's own fault is drawn before the * ones")
	require.Len(t, sim.Faults(), 2)

	sim.ClearFault(nh.APIInquireBalance)
	_, out = post(t, sim, nh.APIInquireBalance, nil, fields)
	require.Equal(t, "E5555", rpcd(out))

	sim.ClearFaults()
	require.Empty(t, sim.Faults())
	_, out = post(t, sim, nh.APIInquireBalance, nil, fields)
	require.Equal(t, nhsim.CodeOK, rpcd(out))
}

// TestDropWithoutHijack: behind a ResponseWriter that cannot hand over its connection, a drop
// aborts the handler the way net/http understands.
func TestDropWithoutHijack(t *testing.T) {
	sim, fin := newSim(t)
	require.NoError(t, sim.SetFault(nh.APIDrawingTransfer, nhsim.Fault{Kind: nhsim.FaultLostResponse, Probability: 1}))
	require.PanicsWithValue(t, http.ErrAbortHandler, func() {
		post(t, sim, nh.APIDrawingTransfer, nil, map[string]any{"FinAcno": fin, "Tram": "100"})
	})
	require.Len(t, sim.Transfers(), 1, "the transfer committed before the answer was lost")
}

// TestCloseCutsDelaysShort: a closed simulator stops waiting, so tests end promptly; the
// request it was delaying is dropped, not processed.
func TestCloseCutsDelaysShort(t *testing.T) {
	sim, fin := newSim(t)
	require.NoError(t, sim.SetFault(nh.APIDrawingTransfer, nhsim.Fault{Kind: nhsim.FaultLatency, Probability: 1, Latency: time.Hour}))
	done := make(chan any)
	go func() {
		defer func() { done <- recover() }()
		post(t, sim, nh.APIDrawingTransfer, nil, map[string]any{"FinAcno": fin, "Tram": "100"})
	}()
	sim.Close()
	select {
	case v := <-done:
		require.Equal(t, http.ErrAbortHandler, v)
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not end the delay")
	}
	require.Empty(t, sim.Transfers())
}
