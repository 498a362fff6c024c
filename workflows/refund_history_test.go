package workflows_test

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/temporalproto"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"

	"paysaga"
	"paysaga/internal/temporaltest"
	"paysaga/nh"
	"paysaga/nhsim"
	"paysaga/store"
	"paysaga/store/storetest"
	"paysaga/worker"
	"paysaga/workflows"
)

// refundBank is the real nh client against the simulator, with a hook before each credit.
type refundBank struct {
	*nh.Client
	mu     sync.Mutex
	n      int
	before func(n int)
}

func (b *refundBank) ReceivedTransferFinAccount(ctx context.Context, ref nh.Ref, req nh.ReceivedTransferFinAccountRequest) (*nh.TransferResult, error) {
	b.mu.Lock()
	b.n++
	n := b.n
	b.mu.Unlock()
	if b.before != nil {
		b.before(n)
	}
	return b.Client.ReceivedTransferFinAccount(ctx, ref, req)
}

// refundRig is a worker on the dev server with SQLite, the simulator (the fintech holding
// money to give back) and a customer's registered account.
type refundRig struct {
	c        client.Client
	db       *store.DB
	sim      *nhsim.Sim
	bank     *refundBank
	customer string
	account  string
	fin      string
}

func newRefundRig(t *testing.T, c client.Client) *refundRig {
	t.Helper()
	ctx := context.Background()
	db := storetest.Open(t, store.DriverSQLite)
	sim := nhsim.New(nhsim.Config{Iscd: recIscd, AccessToken: recToken, Seed: 1,
		FintechAccount: nhsim.Account{Balance: 10_000_000}})
	t.Cleanup(sim.Close)
	hs := httptest.NewServer(sim.Handler())
	t.Cleanup(hs.Close)
	nhc, err := nh.New(nh.Config{BaseURL: hs.URL, Iscd: recIscd, AccessToken: recToken,
		Timeouts: map[string]time.Duration{"*": 2 * time.Second}}, db)
	require.NoError(t, err)
	bankAcct, err := sim.CreateAccount(nhsim.Account{Holder: "김민준", Birth: "19900101", Balance: 100_000})
	require.NoError(t, err)
	fin, err := sim.RegisterFinAccount(bankAcct.Bncd, bankAcct.Acno, true)
	require.NoError(t, err)
	u := &paysaga.User{ID: paysaga.NewID(paysaga.PrefixUser), Email: "kim@example.com", Name: "김민준",
		Role: paysaga.RoleCustomer, PasswordHash: "x"}
	require.NoError(t, db.CreateUser(ctx, u))
	acct := &paysaga.Account{ID: paysaga.NewID(paysaga.PrefixAccount), OwnerID: u.ID, BankCode: bankAcct.Bncd,
		MaskedNumber: paysaga.MaskAccountNumber(bankAcct.Acno), Status: paysaga.AccountActive, FinAccount: fin}
	require.NoError(t, db.CreateAccount(ctx, acct, store.SealedAccountNumber{Ciphertext: []byte("x"), KeyID: "k", Hash: "h"}))

	bank := &refundBank{Client: nhc}
	w, err := worker.New(c, worker.Deps{Store: db, Bank: bank, Events: &flakyBroker{}, Payments: recordConfig, Refunds: recordRefundConfig,
		Options: sdkworker.Options{}})
	require.NoError(t, err)
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)
	return &refundRig{c: c, db: db, sim: sim, bank: bank, customer: u.ID, account: acct.ID, fin: fin}
}

// paidPayment records a SUCCEEDED payment of amount, as PaymentWorkflow would have.
func (r *refundRig) paidPayment(t *testing.T, amount int64) string {
	t.Helper()
	ctx := context.Background()
	p := &paysaga.Payment{ID: paysaga.NewID(paysaga.PrefixPayment), CustomerID: r.customer, MerchantID: "usr_shop",
		AccountID: r.account, Amount: amount, Description: "원두 1kg", Status: paysaga.PaymentPending}
	err := r.db.RecordPaymentChange(ctx, store.PaymentChange{Create: p, PaymentID: p.ID, Status: paysaga.PaymentProcessing})
	require.NoError(t, err)
	err = r.db.RecordPaymentChange(ctx, store.PaymentChange{PaymentID: p.ID, Status: paysaga.PaymentSucceeded})
	require.NoError(t, err)
	return p.ID
}

// refund runs a refund the way the API does (Update-with-Start on "outcome") and returns the
// outcome update's answer, the refund's workflow ID, and the update's error.
func (r *refundRig) refund(t *testing.T, paymentID string, amount int64, during func(id string)) (paysaga.Refund, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	in := workflows.RefundInput{RefundID: paysaga.NewID(paysaga.PrefixRefund), PaymentID: paymentID, CustomerID: r.customer,
		MerchantID: "usr_shop", Amount: amount, Reason: "damaged", Actor: "usr_shop", CreatedAt: time.Now().UTC()}
	id := workflows.RefundWorkflowID(in.RefundID)
	if during != nil {
		during(id)
	}
	op := r.c.NewWithStartWorkflowOperation(client.StartWorkflowOptions{
		ID: id, TaskQueue: workflows.TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		TypedSearchAttributes:    workflows.SearchAttributesForRefund(in),
	}, workflows.RefundWorkflowName, in)
	h, err := r.c.UpdateWithStartWorkflow(ctx, client.UpdateWithStartWorkflowOptions{
		StartWorkflowOperation: op,
		UpdateOptions: client.UpdateWorkflowOptions{UpdateName: workflows.UpdateOutcome, UpdateID: "outcome",
			WaitForStage: client.WorkflowUpdateStageCompleted},
	})
	require.NoError(t, err)
	var outcome paysaga.Refund
	uerr := h.Get(ctx, &outcome)
	var final paysaga.Refund
	_ = r.c.GetWorkflow(ctx, id, "").Get(ctx, &final)
	return outcome, id, uerr
}

func (r *refundRig) credits() int {
	n := 0
	for _, tr := range r.sim.Transfers() {
		if tr.API == nh.APIReceivedTransferFinAccount {
			n++
		}
	}
	return n
}

func history(t *testing.T, c client.Client, id string) *historypb.History {
	t.Helper()
	var hist historypb.History
	it := c.GetWorkflowHistory(context.Background(), id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(t, err)
		hist.Events = append(hist.Events, ev)
	}
	return &hist
}

func writeHistory(t *testing.T, name string, hist *historypb.History) {
	t.Helper()
	t.Logf("%s: %d history events", name, len(hist.Events))
	if !*record {
		return
	}
	b, err := temporalproto.CustomJSONMarshalOptions{Indent: "  "}.Marshal(hist)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join("testdata", name+".json"), append(b, '\n'), 0o644))
}

// refundHistoryEvents is the size of a successful refund's history: started 1, first workflow
// task 3, outcome update accepted 1, reserve marker 1, credit activity 3 and the workflow task
// it wakes 3, settle marker 1, search attributes 1, outcome update completed 1, publish marker
// 1, completed 1; and 2 for the credit-waits-for-cancellation version marker (the marker and its
// TemporalChangeVersion upsert) — the price of waiting for a credit in flight when cancelled.
const refundHistoryEvents = 19

// TestRefundScenariosOnDevServer runs refunds and manual-capture payments on a real dev
// server with real activities, SQLite and the simulator, checks the money at the bank and in
// the database, and with -record writes the histories TestReplayRefundHistories replays.
func TestRefundScenariosOnDevServer(t *testing.T) {
	srv := temporaltest.Start(t)
	ctx := context.Background()

	t.Run("full", func(t *testing.T) {
		r := newRefundRig(t, srv.Client)
		pay := r.paidPayment(t, 30_000)
		out, id, err := r.refund(t, pay, 30_000, nil)
		require.NoError(t, err)
		require.Equal(t, paysaga.RefundSucceeded, out.Status)
		require.Equal(t, 1, r.credits())
		p, _ := r.db.GetPayment(ctx, pay)
		require.Equal(t, paysaga.PaymentRefunded, p.Status)
		hist := history(t, srv.Client, id)
		require.LessOrEqual(t, len(hist.Events), refundHistoryEvents)
		writeHistory(t, "refund_full", hist)
	})

	t.Run("partial_to_exhaustion", func(t *testing.T) {
		r := newRefundRig(t, srv.Client)
		pay := r.paidPayment(t, 30_000)
		for i := range 3 {
			out, _, err := r.refund(t, pay, 10_000, nil)
			require.NoError(t, err, "refund %d", i)
			require.Equal(t, paysaga.RefundSucceeded, out.Status)
		}
		_, id, err := r.refund(t, pay, 1, nil)
		require.Error(t, err, "nothing is left to refund")
		require.Contains(t, err.Error(), "is REFUNDED and cannot be refunded")
		require.Equal(t, 3, r.credits())
		p, _ := r.db.GetPayment(ctx, pay)
		require.Equal(t, paysaga.PaymentRefunded, p.Status)
		require.EqualValues(t, 30_000, p.RefundedAmount)
		writeHistory(t, "refund_refused_exhausted", history(t, srv.Client, id))
	})

	t.Run("declined", func(t *testing.T) {
		r := newRefundRig(t, srv.Client)
		pay := r.paidPayment(t, 30_000)
		must(r.sim.SetFault(nh.APIReceivedTransferFinAccount, nhsim.Fault{Kind: nhsim.FaultDecline, Probability: 1}))
		out, id, err := r.refund(t, pay, 20_000, nil)
		require.NoError(t, err)
		require.Equal(t, paysaga.RefundFailed, out.Status)
		require.Equal(t, "E9999", out.FailureCode)
		reserved, _ := r.db.ReservedRefundAmount(ctx, pay)
		require.Zero(t, reserved, "compensated: the reservation is released")
		require.Zero(t, r.credits())
		writeHistory(t, "refund_declined", history(t, srv.Client, id))
	})

	t.Run("lost_answer_executed", func(t *testing.T) {
		r := newRefundRig(t, srv.Client)
		pay := r.paidPayment(t, 30_000)
		must(r.sim.SetFault(nh.APIReceivedTransferFinAccount, nhsim.Fault{Kind: nhsim.FaultLostResponse, Probability: 1}))
		out, id, err := r.refund(t, pay, 20_000, nil)
		require.NoError(t, err)
		require.Equal(t, paysaga.RefundSucceeded, out.Status)
		require.Equal(t, 1, r.credits(), "resolved by CheckOnReceivedTransfer, never sent again")
		writeHistory(t, "refund_lost_answer_executed", history(t, srv.Client, id))
	})

	t.Run("lost_answer_not_executed", func(t *testing.T) {
		r := newRefundRig(t, srv.Client)
		pay := r.paidPayment(t, 30_000)
		r.bank.before = func(n int) {
			if n == 1 {
				must(r.sim.SetFault(nh.APIReceivedTransferFinAccount, nhsim.Fault{Kind: nhsim.FaultHTTP500, Probability: 1}))
			} else {
				r.sim.ClearFaults()
			}
		}
		out, id, err := r.refund(t, pay, 20_000, nil)
		require.NoError(t, err)
		require.Equal(t, paysaga.RefundSucceeded, out.Status)
		require.Equal(t, 1, r.credits())
		transfers, _ := r.db.ListTransfersByRefund(ctx, out.ID)
		require.Len(t, transfers, 2, "a new transfer (new IsTuno) after the first did not execute")
		writeHistory(t, "refund_lost_answer_not_executed", history(t, srv.Client, id))
	})

	t.Run("cancelled_mid_refund", func(t *testing.T) {
		r := newRefundRig(t, srv.Client)
		pay := r.paidPayment(t, 30_000)
		var wid string
		r.bank.before = func(n int) {
			// The first credit does not go through; the workflow is cancelled while it waits
			// to send another.
			must(r.sim.SetFault(nh.APIReceivedTransferFinAccount, nhsim.Fault{Kind: nhsim.FaultHTTP500, Probability: 1}))
			go func() { _ = r.c.CancelWorkflow(context.Background(), wid, "") }()
		}
		out, id, err := r.refund(t, pay, 20_000, func(id string) { wid = id })
		require.NoError(t, err)
		require.Equal(t, paysaga.RefundFailed, out.Status)
		require.Equal(t, workflows.FailureCanceled, out.FailureCode)
		reserved, _ := r.db.ReservedRefundAmount(ctx, pay)
		require.Zero(t, reserved, "a cancelled refund gives its reservation back")
		require.Zero(t, r.credits())
		desc, derr := srv.Client.DescribeWorkflowExecution(ctx, id, "")
		require.NoError(t, derr)
		require.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED, desc.WorkflowExecutionInfo.Status)
		writeHistory(t, "refund_cancelled", history(t, srv.Client, id))
	})

	t.Run("unknown_resolved", func(t *testing.T) {
		r := newRefundRig(t, srv.Client)
		pay := r.paidPayment(t, 30_000)
		// The credit executes and its answer is lost; the bank cannot be asked either.
		must(r.sim.SetFault(nh.APIReceivedTransferFinAccount, nhsim.Fault{Kind: nhsim.FaultLostResponse, Probability: 1}))
		must(r.sim.SetFault(nh.APICheckOnReceivedTransfer, nhsim.Fault{Kind: nhsim.FaultHTTP500, Probability: 1}))
		resolved := make(chan error, 1)
		out, id, err := r.refund(t, pay, 20_000, func(id string) {
			go func() {
				// An operator, once the refund is UNKNOWN, says it went through.
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				for {
					var view workflows.RefundView
					if v, err := r.c.QueryWorkflow(ctx, id, "", workflows.QueryStatus); err == nil && v.Get(&view) == nil && view.AwaitingResolution {
						break
					}
					select {
					case <-ctx.Done():
						resolved <- ctx.Err()
						return
					case <-time.After(50 * time.Millisecond):
					}
				}
				h, err := r.c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: id, UpdateName: workflows.UpdateResolveRefund,
					UpdateID: "resolve", Args: []any{workflows.Resolution{As: workflows.ResolveSucceeded, Reason: "bank statement shows the credit", Actor: "ops@paysaga"}},
					WaitForStage: client.WorkflowUpdateStageCompleted})
				if err == nil {
					err = h.Get(ctx, nil)
				}
				resolved <- err
			}()
		})
		require.NoError(t, <-resolved)
		require.NoError(t, err)
		require.Equal(t, paysaga.RefundUnknown, out.Status, "the outcome update answers UNKNOWN first")
		var final paysaga.Refund
		require.NoError(t, r.c.GetWorkflow(ctx, id, "").Get(ctx, &final))
		require.Equal(t, paysaga.RefundSucceeded, final.Status)
		require.Equal(t, 1, r.credits(), "never sent again")
		p, _ := r.db.GetPayment(ctx, pay)
		require.Equal(t, paysaga.PaymentPartiallyRefunded, p.Status)
		writeHistory(t, "refund_unknown_resolved", history(t, srv.Client, id))
	})

	for _, decision := range []string{workflows.UpdateCapture, workflows.UpdateCancel, "deadline"} {
		t.Run("manual_"+decision, func(t *testing.T) {
			r := newRefundRig(t, srv.Client)
			cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			defer cancel()
			in := workflows.PaymentInput{
				PaymentID: paysaga.NewID(paysaga.PrefixPayment), CustomerID: r.customer, MerchantID: "usr_shop", AccountID: r.account,
				Amount: 15_000, Description: "원두 1kg", CaptureMode: paysaga.CaptureManual, CreatedAt: time.Now().UTC(),
			}
			if decision == "deadline" {
				in.CaptureBy = in.CreatedAt.Add(time.Second)
			}
			_, _, err := r.db.CreatePayment(cctx, &paysaga.Payment{ID: in.PaymentID, CustomerID: in.CustomerID, MerchantID: in.MerchantID,
				AccountID: in.AccountID, Amount: in.Amount, Description: in.Description, CaptureMode: in.CaptureMode,
				Status: paysaga.PaymentPending, CreatedAt: in.CreatedAt})
			require.NoError(t, err)
			id := workflows.PaymentWorkflowID(in.PaymentID)
			op := r.c.NewWithStartWorkflowOperation(client.StartWorkflowOptions{
				ID: id, TaskQueue: workflows.TaskQueue,
				WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
				TypedSearchAttributes:    workflows.SearchAttributesForStart(in),
			}, workflows.PaymentWorkflowName, in)
			h, err := r.c.UpdateWithStartWorkflow(cctx, client.UpdateWithStartWorkflowOptions{
				StartWorkflowOperation: op,
				UpdateOptions: client.UpdateWorkflowOptions{UpdateName: workflows.UpdateOutcome, UpdateID: "outcome",
					WaitForStage: client.WorkflowUpdateStageCompleted},
			})
			require.NoError(t, err)
			var outcome paysaga.Payment
			require.NoError(t, h.Get(cctx, &outcome))
			require.Equal(t, paysaga.PaymentAuthorized, outcome.Status)
			if decision != "deadline" {
				uh, err := r.c.UpdateWorkflow(cctx, client.UpdateWorkflowOptions{WorkflowID: id, UpdateName: decision,
					UpdateID: decision, Args: []any{workflows.CaptureDecision{Actor: "usr_shop"}}, WaitForStage: client.WorkflowUpdateStageCompleted})
				require.NoError(t, err)
				require.NoError(t, uh.Get(cctx, &outcome))
			}
			var final paysaga.Payment
			require.NoError(t, r.c.GetWorkflow(cctx, id, "").Get(cctx, &final))
			want, credits := paysaga.PaymentCanceled, 1
			if decision == workflows.UpdateCapture {
				want, credits = paysaga.PaymentSucceeded, 0
			}
			require.Equal(t, want, final.Status)
			stored, _ := r.db.GetPayment(cctx, in.PaymentID)
			require.Equal(t, want, stored.Status)
			require.Equal(t, credits, r.credits(), "refunded exactly once when canceled")
			writeHistory(t, "payment_manual_"+decision, history(t, srv.Client, id))
		})
	}
}

// TestReplayRefundHistories replays every recorded refund history against the code the
// worker registers.
func TestReplayRefundHistories(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "refund_*.json"))
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(files), 6, "a recorded history per refund scenario (go test ./workflows -run TestRefundScenariosOnDevServer -args -record)")
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			r := sdkworker.NewWorkflowReplayer()
			worker.RegisterWorkflows(r, recordConfigs)
			require.NoError(t, r.ReplayWorkflowHistoryFromJSONFile(quietLogger(), file))
		})
	}
}
