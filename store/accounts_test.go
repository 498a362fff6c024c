package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paysaga"
	"paysaga/store"
	"paysaga/store/storetest"
)

// seedPayer stores a customer and an active account of theirs, and returns both IDs.
func seedPayer(t *testing.T, db *store.DB) (customerID, accountID string) {
	t.Helper()
	ctx := context.Background()
	u := &paysaga.User{ID: paysaga.NewID(paysaga.PrefixUser), Email: paysaga.NewID("") + "@example.com",
		Name: "고객", Role: paysaga.RoleCustomer, PasswordHash: "x"}
	require.NoError(t, db.CreateUser(ctx, u))
	a := &paysaga.Account{ID: paysaga.NewID(paysaga.PrefixAccount), OwnerID: u.ID, BankCode: "011",
		MaskedNumber: "****1234", Status: paysaga.AccountActive, FinAccount: "00820100012345678901234567"}
	require.NoError(t, db.CreateAccount(ctx, a, store.SealedAccountNumber{
		Ciphertext: []byte("sealed"), KeyID: "k1", Hash: paysaga.NewID("h")}))
	return u.ID, a.ID
}

func TestAccounts(t *testing.T) {
	for _, driver := range storetest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			db := storetest.Open(t, driver)
			owner, _ := seedPayer(t, db)

			a := &paysaga.Account{
				ID: paysaga.NewID(paysaga.PrefixAccount), OwnerID: owner, BankCode: "011",
				MaskedNumber: paysaga.MaskAccountNumber("302-1234-5678-91"), Nickname: "생활비",
				Status: paysaga.AccountActive, FinAccount: "00820100099999999999999999",
				CreatedAt: time.Date(2026, 11, 25, 9, 0, 0, 123456789, time.UTC),
			}
			sealed := store.SealedAccountNumber{Ciphertext: []byte{1, 2, 3}, KeyID: "k1", Hash: "hash-1"}
			require.NoError(t, db.CreateAccount(ctx, a, sealed))

			got, err := db.GetAccount(ctx, a.ID)
			require.NoError(t, err)
			require.Equal(t, a, got, "round trip keeps every field, the fin account included")
			require.Equal(t, "****7891", got.MaskedNumber)

			twice := *a
			twice.ID = paysaga.NewID(paysaga.PrefixAccount)
			require.Equal(t, paysaga.ECONFLICT, paysaga.ErrorCode(db.CreateAccount(ctx, &twice, sealed)),
				"the same number at the same bank is registered once")
			otherBank := twice
			otherBank.BankCode = "004"
			require.NoError(t, db.CreateAccount(ctx, &otherBank, sealed))

			_, err = db.GetAccount(ctx, "acct_nope")
			require.Equal(t, paysaga.ENOTFOUND, paysaga.ErrorCode(err))
			unsealed := *a
			unsealed.ID = paysaga.NewID(paysaga.PrefixAccount)
			require.Equal(t, paysaga.EINVALID, paysaga.ErrorCode(db.CreateAccount(ctx, &unsealed, store.SealedAccountNumber{})))
		})
	}
}
