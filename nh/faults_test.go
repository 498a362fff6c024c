package nh_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paysaga/nh"
	"paysaga/nhsim"
)

// callCase makes one valid call of an API against a fixture; for a money-moving API, check
// asks the matching CheckOn… about it.
type callCase struct {
	do    func(ctx context.Context, f *fixture, ref nh.Ref) error
	check func(ctx context.Context, f *fixture, ref nh.Ref) (*nh.CheckResult, error)
}

const tram = 1_234

var callCases = map[string]callCase{
	nh.APIOpenFinAccountDirect: {do: func(ctx context.Context, f *fixture, _ nh.Ref) error {
		_, err := f.client.OpenFinAccountDirect(ctx, nh.OpenFinAccountRequest{Withdrawal: true, BrdtBrno: customerBirth, Bncd: f.customer.Bncd, Acno: f.customer.Acno})
		return err
	}},
	nh.APICheckOpenFinAccountDirect: {do: func(ctx context.Context, f *fixture, _ nh.Ref) error {
		_, err := f.client.CheckOpenFinAccountDirect(ctx, f.rgno, customerBirth)
		return err
	}},
	nh.APIDrawingTransfer: {
		do: func(ctx context.Context, f *fixture, ref nh.Ref) error {
			_, err := f.client.DrawingTransfer(ctx, ref, nh.DrawingTransferRequest{FinAcno: f.fin, Tram: tram})
			return err
		},
		check: func(ctx context.Context, f *fixture, ref nh.Ref) (*nh.CheckResult, error) {
			return f.client.CheckOnDrawingTransfer(ctx, nh.CheckOnDrawingTransferRequest{Original: ref, FinAcno: f.fin, Tram: tram})
		},
	},
	nh.APIReceivedTransferFinAccount: {
		do: func(ctx context.Context, f *fixture, ref nh.Ref) error {
			_, err := f.client.ReceivedTransferFinAccount(ctx, ref, nh.ReceivedTransferFinAccountRequest{FinAcno: f.fin, Tram: tram})
			return err
		},
		check: func(ctx context.Context, f *fixture, ref nh.Ref) (*nh.CheckResult, error) {
			return f.client.CheckOnReceivedTransfer(ctx, nh.CheckOnReceivedTransferRequest{Original: ref, FinAcno: f.fin, Tram: tram})
		},
	},
	nh.APIReceivedTransferAccountNumber: {
		do: func(ctx context.Context, f *fixture, ref nh.Ref) error {
			_, err := f.client.ReceivedTransferAccountNumber(ctx, ref, nh.ReceivedTransferAccountRequest{Bncd: f.readOnly.Bncd, Acno: f.readOnly.Acno, Tram: tram})
			return err
		},
		check: func(ctx context.Context, f *fixture, ref nh.Ref) (*nh.CheckResult, error) {
			return f.client.CheckOnReceivedTransfer(ctx, nh.CheckOnReceivedTransferRequest{Original: ref, Bncd: f.readOnly.Bncd, Acno: f.readOnly.Acno, Tram: tram})
		},
	},
	nh.APIReceivedTransferOtherBank: {
		do: func(ctx context.Context, f *fixture, ref nh.Ref) error {
			_, err := f.client.ReceivedTransferOtherBank(ctx, ref, nh.ReceivedTransferAccountRequest{Bncd: f.other.Bncd, Acno: f.other.Acno, Tram: tram})
			return err
		},
		check: func(ctx context.Context, f *fixture, ref nh.Ref) (*nh.CheckResult, error) {
			return f.client.CheckOnReceivedTransfer(ctx, nh.CheckOnReceivedTransferRequest{Original: ref, Bncd: f.other.Bncd, Acno: f.other.Acno, Tram: tram})
		},
	},
	// The result inquiries ask about a withdrawal the fixture makes before the fault is set.
	nh.APICheckOnDrawingTransfer: {do: func(ctx context.Context, f *fixture, ref nh.Ref) error {
		_, err := f.client.CheckOnDrawingTransfer(ctx, nh.CheckOnDrawingTransferRequest{Original: ref, FinAcno: f.fin, Tram: tram})
		return err
	}},
	nh.APICheckOnReceivedTransfer: {do: func(ctx context.Context, f *fixture, ref nh.Ref) error {
		_, err := f.client.CheckOnReceivedTransfer(ctx, nh.CheckOnReceivedTransferRequest{Original: ref, FinAcno: f.fin, Tram: tram})
		return err
	}},
	nh.APIInquireBalance: {do: func(ctx context.Context, f *fixture, _ nh.Ref) error {
		_, err := f.client.InquireBalance(ctx, f.fin)
		return err
	}},
	nh.APIInquireDepositorAccountNumber: {do: func(ctx context.Context, f *fixture, _ nh.Ref) error {
		_, err := f.client.InquireDepositorAccountNumber(ctx, f.customer.Bncd, f.customer.Acno)
		return err
	}},
	nh.APIInquireDepositorOtherBank: {do: func(ctx context.Context, f *fixture, _ nh.Ref) error {
		_, err := f.client.InquireDepositorOtherBank(ctx, f.other.Bncd, f.other.Acno)
		return err
	}},
	nh.APIInquireTransactionHistory: {do: func(ctx context.Context, f *fixture, _ nh.Ref) error {
		today := nh.Today(f.clock.Now())
		_, err := f.client.InquireTransactionHistory(ctx, nh.HistoryRequest{FinAcno: f.fin, From: today, To: today})
		return err
	}},
}

// TestContractEveryCallEveryFault injects each fault, with certainty, into each call and
// checks how the client classifies the result and, for a transfer, what the bank's record
// says afterwards.
func TestContractEveryCallEveryFault(t *testing.T) {
	const (
		clientTimeout = 100 * time.Millisecond
		bankDelay     = 600 * time.Millisecond
		forcedCode    = "E7777"
	)
	faults := map[nhsim.FaultKind]nhsim.Fault{
		nhsim.FaultHTTP500:         {Kind: nhsim.FaultHTTP500, Probability: 1},
		nhsim.FaultDrop:            {Kind: nhsim.FaultDrop, Probability: 1},
		nhsim.FaultDecline:         {Kind: nhsim.FaultDecline, Probability: 1, Rpcd: forcedCode},
		nhsim.FaultLostResponse:    {Kind: nhsim.FaultLostResponse, Probability: 1},
		nhsim.FaultLostResponse500: {Kind: nhsim.FaultLostResponse500, Probability: 1},
		nhsim.FaultLatency:         {Kind: nhsim.FaultLatency, Probability: 1, Latency: bankDelay},
		nhsim.FaultSlowResponse:    {Kind: nhsim.FaultSlowResponse, Probability: 1, Latency: bankDelay},
	}
	require.Len(t, faults, len(nhsim.FaultKinds))
	require.Len(t, callCases, len(nh.APIs))

	// For a transfer: what the client must say, and what the bank's record must say after.
	type expect struct {
		outcome nh.Outcome
		pcrs    string
	}
	money := map[nhsim.FaultKind]expect{
		nhsim.FaultHTTP500:         {nh.OutcomeUnknown, nh.PcrsNotExecuted},
		nhsim.FaultDrop:            {nh.OutcomeUnknown, nh.PcrsNotExecuted},
		nhsim.FaultDecline:         {nh.OutcomeDeclined, nh.PcrsNotExecuted},
		nhsim.FaultLostResponse:    {nh.OutcomeUnknown, nh.PcrsExecuted},
		nhsim.FaultLostResponse500: {nh.OutcomeUnknown, nh.PcrsExecuted},
		nhsim.FaultLatency:         {nh.OutcomeUnknown, nh.PcrsInProgress}, // then executed
		nhsim.FaultSlowResponse:    {nh.OutcomeUnknown, nh.PcrsExecuted},
	}

	for _, api := range nh.APIs {
		for kind, fault := range faults {
			t.Run(api+"/"+string(kind), func(t *testing.T) {
				t.Parallel()
				f := newFixture(t, func(c *nh.Config) { c.Timeouts[api] = clientTimeout })
				ctx := context.Background()
				tc := callCases[api]
				ref := f.ref(t)
				if api == nh.APICheckOnDrawingTransfer || api == nh.APICheckOnReceivedTransfer {
					require.NoError(t, callCases[nh.APIDrawingTransfer].do(ctx, f, ref))
				}
				total := f.sim.TotalMoney()
				require.NoError(t, f.sim.SetFault(api, fault))
				err := tc.do(ctx, f, ref)

				if !nh.MoneyMoving(api) {
					want := nh.OutcomeTransient
					if kind == nhsim.FaultDecline && api != nh.APICheckOnDrawingTransfer && api != nh.APICheckOnReceivedTransfer {
						want = nh.OutcomeDeclined
					}
					require.Equal(t, want, nh.Classify(err), "error: %v", err)
					require.Equal(t, total, f.sim.TotalMoney())
					return
				}

				want := money[kind]
				require.Equal(t, want.outcome, nh.Classify(err), "error: %v", err)
				if want.outcome == nh.OutcomeDeclined {
					var d *nh.DeclinedError
					require.ErrorAs(t, err, &d)
					require.Equal(t, forcedCode, d.Rpcd)
				}
				f.sim.ClearFaults()
				check, err := tc.check(ctx, f, ref)
				require.NoError(t, err)
				require.Equal(t, want.pcrs, check.Pcrs)
				if want.pcrs == nh.PcrsInProgress {
					// The bank finishes what it received even though the client gave up.
					require.Eventually(t, func() bool {
						check, err := tc.check(ctx, f, ref)
						return err == nil && check.Executed()
					}, 5*time.Second, 10*time.Millisecond)
				}
				executed := want.pcrs != nh.PcrsNotExecuted
				require.Equal(t, executed, transferred(f, ref) == 1)
				require.Equal(t, total, f.sim.TotalMoney(), "money is moved, never created or lost")

				// Sending the same request again, the mistake CheckOn… exists to prevent, is
				// refused and moves nothing.
				err = tc.do(ctx, f, ref)
				requireDeclined(t, err, nhsim.CodeDuplicateIsTuno)
				require.Equal(t, executed, transferred(f, ref) == 1)
			})
		}
	}
}

func transferred(f *fixture, ref nh.Ref) int {
	n := 0
	for _, tr := range f.sim.Transfers() {
		if tr.Tsymd == ref.Tsymd && tr.IsTuno == ref.IsTuno {
			n++
		}
	}
	return n
}
