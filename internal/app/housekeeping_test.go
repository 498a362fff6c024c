package app_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"

	"paysaga"
	"paysaga/internal/app"
	"paysaga/store"
	"paysaga/store/storetest"
	"paysaga/workflows"
)

func TestHousekeepingPurgesExpiredIdempotencyKeys(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	db := storetest.Open(t, "sqlite")
	// One key claimed two days ago (expired), one now (live).
	past := db.WithClock(func() time.Time { return time.Now().Add(-48 * time.Hour) })
	_, _, err := past.ClaimIdempotencyKey(ctx, "usr_1:payments", "old", "h", 24*time.Hour)
	require.NoError(t, err)
	_, _, err = db.ClaimIdempotencyKey(ctx, "usr_1:payments", "new", "h", 24*time.Hour)
	require.NoError(t, err)

	done := make(chan struct{})
	go func() {
		defer close(done)
		app.Housekeeping(ctx, db, nil, slog.New(slog.DiscardHandler), time.Hour)
	}()
	require.Eventually(t, func() bool {
		n, err := db.Bun().NewSelect().Table("idempotency_keys").Count(ctx)
		return err == nil && n == 1
	}, 10*time.Second, 10*time.Millisecond, "the expired key is deleted, the live one kept")
	_, err = db.IdempotencyKey(ctx, "usr_1:payments", "new")
	require.NoError(t, err)
	cancel()
	<-done
}

// describer knows the workflows in running; every other one is not found.
type describer struct{ running map[string]bool }

func (d describer) DescribeWorkflowExecution(_ context.Context, id, _ string) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
	if d.running[id] {
		return &workflowservice.DescribeWorkflowExecutionResponse{}, nil
	}
	return nil, serviceerror.NewNotFound("workflow not found")
}

// A payment the API recorded whose workflow never started (its client got 503 and never
// retried) does not stay PENDING for good: housekeeping ends it FAILED, nothing debited. One
// whose workflow exists, or that is recent, is left alone.
func TestFailUnstartedPayments(t *testing.T) {
	ctx := context.Background()
	db := storetest.Open(t, "sqlite")
	u := &paysaga.User{ID: paysaga.NewID(paysaga.PrefixUser), Email: "c@example.com", Name: "고객", Role: paysaga.RoleCustomer, PasswordHash: "x"}
	require.NoError(t, db.CreateUser(ctx, u))
	a := &paysaga.Account{ID: paysaga.NewID(paysaga.PrefixAccount), OwnerID: u.ID, BankCode: "011", MaskedNumber: "****1234",
		Status: paysaga.AccountActive, FinAccount: "00820100012345678901234567"}
	require.NoError(t, db.CreateAccount(ctx, a, store.SealedAccountNumber{Ciphertext: []byte("s"), KeyID: "k1", Hash: "h"}))
	pending := func(at time.Time) string {
		p := &paysaga.Payment{ID: paysaga.NewID(paysaga.PrefixPayment), CustomerID: u.ID, MerchantID: "usr_m", AccountID: a.ID,
			Amount: 1_000, Status: paysaga.PaymentPending, CreatedAt: at}
		_, _, err := db.CreatePayment(ctx, p)
		require.NoError(t, err)
		return p.ID
	}
	old := time.Now().Add(-time.Hour)
	orphan, running, recent := pending(old), pending(old), pending(time.Now())

	n, err := app.FailUnstartedPayments(ctx, db, describer{running: map[string]bool{workflows.PaymentWorkflowID(running): true}},
		time.Now().Add(-app.UnstartedAfter))
	require.NoError(t, err)
	require.Equal(t, 1, n)
	p, err := db.GetPayment(ctx, orphan)
	require.NoError(t, err)
	require.Equal(t, paysaga.PaymentFailed, p.Status)
	require.Equal(t, "not_started", p.FailureCode)
	for _, id := range []string{running, recent} {
		p, err := db.GetPayment(ctx, id)
		require.NoError(t, err)
		require.Equal(t, paysaga.PaymentPending, p.Status)
	}
	// Run again: nothing more to do.
	n, err = app.FailUnstartedPayments(ctx, db, describer{}, time.Now().Add(-app.UnstartedAfter))
	require.NoError(t, err)
	require.Equal(t, 1, n, "the running one's workflow is unknown to this describer: ended too")
}
