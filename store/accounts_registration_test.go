package store_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paysaga"
	"paysaga/store"
	"paysaga/store/storetest"
)

func newCustomer(t *testing.T, db *store.DB) string {
	t.Helper()
	u := &paysaga.User{ID: paysaga.NewID(paysaga.PrefixUser), Email: paysaga.NewID("") + "@example.com",
		Name: "고객", Role: paysaga.RoleCustomer, PasswordHash: "x"}
	require.NoError(t, db.CreateUser(context.Background(), u))
	return u.ID
}

func pendingAccount(owner, bank string) *paysaga.Account {
	return &paysaga.Account{ID: paysaga.NewID(paysaga.PrefixAccount), OwnerID: owner, BankCode: bank,
		MaskedNumber: "****7891", Nickname: "생활비"}
}

func TestAccountRegistration(t *testing.T) {
	for _, driver := range storetest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			db := storetest.Open(t, driver)
			owner, other := newCustomer(t, db), newCustomer(t, db)
			number := store.SealedAccountNumber{Ciphertext: []byte("sealed-number"), KeyID: "k1", Hash: paysaga.NewID("h")}
			birth := store.SealedSecret{Ciphertext: []byte("sealed-birth"), KeyID: "k1"}

			a := pendingAccount(owner, "011")
			stored, created, err := db.RegisterAccount(ctx, a, number, birth)
			require.NoError(t, err)
			require.True(t, created)
			require.Equal(t, paysaga.AccountPending, stored.Status)
			require.Equal(t, "생활비", stored.Nickname)

			// The same number at the same bank by the same owner returns their account untouched.
			dup := pendingAccount(owner, "011")
			got, created, err := db.RegisterAccount(ctx, dup, number, store.SealedSecret{Ciphertext: []byte("x"), KeyID: "k1"})
			require.NoError(t, err)
			require.False(t, created)
			require.Equal(t, a.ID, got.ID)
			require.Equal(t, owner, got.OwnerID)
			_, err = db.GetAccount(ctx, dup.ID)
			require.Equal(t, paysaga.ENOTFOUND, paysaga.ErrorCode(err), "nothing written for the duplicate")
			byHash, err := db.OwnerAccountByNumber(ctx, owner, "011", number.Hash)
			require.NoError(t, err)
			require.Equal(t, a.ID, byHash.ID)
			_, err = db.OwnerAccountByNumber(ctx, other, "011", number.Hash)
			require.Equal(t, paysaga.ENOTFOUND, paysaga.ErrorCode(err), "another owner never sees it")

			reg, err := db.AccountRegistration(ctx, a.ID)
			require.NoError(t, err)
			require.Equal(t, []byte("sealed-number"), reg.Number.Ciphertext)
			require.Equal(t, []byte("sealed-birth"), reg.Birth.Ciphertext)
			require.Empty(t, reg.Rgno)

			require.NoError(t, db.SetAccountRgno(ctx, a.ID, "000000000001"))
			require.NoError(t, db.SetAccountRgno(ctx, a.ID, "000000000001"), "idempotent")
			reg, err = db.AccountRegistration(ctx, a.ID)
			require.NoError(t, err)
			require.Equal(t, "000000000001", reg.Rgno)

			// PENDING cannot be deleted while the bank registers it.
			_, err = db.DeleteAccount(ctx, a.ID)
			require.Equal(t, paysaga.ECONFLICT, paysaga.ErrorCode(err))

			act, err := db.ActivateAccount(ctx, a.ID, "00820100000000000000000001")
			require.NoError(t, err)
			require.Equal(t, paysaga.AccountActive, act.Status)
			require.Equal(t, "00820100000000000000000001", act.FinAccount)
			again, err := db.ActivateAccount(ctx, a.ID, "00820100000000000000000001")
			require.NoError(t, err, "activating twice is harmless (a retried activity)")
			require.Equal(t, paysaga.AccountActive, again.Status)
			_, err = db.AccountRegistration(ctx, a.ID)
			require.Equal(t, paysaga.ECONFLICT, paysaga.ErrorCode(err), "an ACTIVE account is not being registered")
			var left int
			require.NoError(t, db.Bun().NewSelect().Table("account_registrations").ColumnExpr("COUNT(*)").
				Where("account_id = ?", a.ID).Scan(ctx, &left))
			require.Zero(t, left, "the birth date is forgotten once the account is registered")
			_, err = db.FailAccountRegistration(ctx, a.ID, "E1006", "생년월일이 일치하지 않습니다.")
			require.Equal(t, paysaga.ECONFLICT, paysaga.ErrorCode(err), "an ACTIVE account never becomes FAILED")

			renamed, err := db.SetAccountNickname(ctx, a.ID, "월급통장")
			require.NoError(t, err)
			require.Equal(t, "월급통장", renamed.Nickname)

			deleted, err := db.DeleteAccount(ctx, a.ID)
			require.NoError(t, err)
			require.Equal(t, paysaga.AccountDeleted, deleted.Status)
			_, err = db.DeleteAccount(ctx, a.ID)
			require.NoError(t, err, "deleting twice is harmless")
			_, err = db.SetAccountNickname(ctx, a.ID, "x")
			require.Equal(t, paysaga.ECONFLICT, paysaga.ErrorCode(err))

			// The owner registers it again: PENDING, previous registration forgotten.
			restarted, err := db.RestartAccountRegistration(ctx, a.ID, store.SealedSecret{Ciphertext: []byte("birth-2"), KeyID: "k2"})
			require.NoError(t, err)
			require.Equal(t, paysaga.AccountPending, restarted.Status)
			require.Empty(t, restarted.FinAccount)
			reg, err = db.AccountRegistration(ctx, a.ID)
			require.NoError(t, err)
			require.Empty(t, reg.Rgno)
			require.Equal(t, store.SealedSecret{Ciphertext: []byte("birth-2"), KeyID: "k2"}, reg.Birth)
			_, err = db.RestartAccountRegistration(ctx, a.ID, birth)
			require.NoError(t, err, "a concurrent restart finds it PENDING")

			failed, err := db.FailAccountRegistration(ctx, a.ID, "E1006", "생년월일이 일치하지 않습니다.")
			require.NoError(t, err)
			require.Equal(t, paysaga.AccountFailed, failed.Status)
			require.Equal(t, "E1006", failed.FailureCode)
			require.Equal(t, "생년월일이 일치하지 않습니다.", failed.FailureMessage)
			_, err = db.FailAccountRegistration(ctx, a.ID, "E1006", "again")
			require.NoError(t, err, "idempotent")
			_, err = db.ActivateAccount(ctx, a.ID, "0082")
			require.Equal(t, paysaga.ECONFLICT, paysaga.ErrorCode(err))
			require.Equal(t, paysaga.ECONFLICT, paysaga.ErrorCode(db.SetAccountRgno(ctx, a.ID, "1")))
			_, err = db.RestartAccountRegistration(ctx, "acct_nope", birth)
			require.Equal(t, paysaga.ENOTFOUND, paysaga.ErrorCode(err))
		})
	}
}

func TestListAccounts(t *testing.T) {
	for _, driver := range storetest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			base := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
			var tick atomic.Int64
			db := storetest.Open(t, driver).WithClock(func() time.Time {
				return base.Add(time.Duration(tick.Add(1)) * time.Millisecond)
			})
			owner, other := newCustomer(t, db), newCustomer(t, db)
			var ids []string
			for i := 0; i < 5; i++ {
				a := pendingAccount(owner, "011")
				_, _, err := db.RegisterAccount(ctx, a,
					store.SealedAccountNumber{Ciphertext: []byte("n"), KeyID: "k1", Hash: paysaga.NewID("h")},
					store.SealedSecret{Ciphertext: []byte("b"), KeyID: "k1"})
				require.NoError(t, err)
				ids = append(ids, a.ID)
			}
			_, _, err := db.RegisterAccount(ctx, pendingAccount(other, "011"),
				store.SealedAccountNumber{Ciphertext: []byte("n"), KeyID: "k1", Hash: paysaga.NewID("h")},
				store.SealedSecret{Ciphertext: []byte("b"), KeyID: "k1"})
			require.NoError(t, err)
			_, err = db.FailAccountRegistration(ctx, ids[0], "E1005", "계좌정보가 존재하지 않습니다.")
			require.NoError(t, err)
			_, err = db.DeleteAccount(ctx, ids[0])
			require.NoError(t, err)

			var seen []string
			after := ""
			for {
				page, err := db.ListAccounts(ctx, store.AccountFilter{OwnerID: owner, Limit: 2, StartingAfter: after})
				require.NoError(t, err)
				for _, a := range page.Accounts {
					require.Equal(t, owner, a.OwnerID)
					seen = append(seen, a.ID)
				}
				if !page.HasMore {
					break
				}
				after = page.Accounts[len(page.Accounts)-1].ID
			}
			require.Equal(t, []string{ids[4], ids[3], ids[2], ids[1]}, seen, "newest first, DELETED left out")

			deleted, err := db.ListAccounts(ctx, store.AccountFilter{OwnerID: owner, Status: paysaga.AccountDeleted})
			require.NoError(t, err)
			require.Len(t, deleted.Accounts, 1)
			require.Equal(t, ids[0], deleted.Accounts[0].ID)

			_, err = db.ListAccounts(ctx, store.AccountFilter{OwnerID: other, StartingAfter: ids[1]})
			require.Equal(t, paysaga.EINVALID, paysaga.ErrorCode(err), "another owner's account is no cursor")
			_, err = db.ListAccounts(ctx, store.AccountFilter{OwnerID: owner, Limit: 101})
			require.Equal(t, paysaga.EINVALID, paysaga.ErrorCode(err))
		})
	}
}

// Only an ACTIVE registration holds a number: a stranger's registration that failed at the
// bank, is still in flight, or was deleted never keeps the real owner out (issue 11, item 7).
func TestAccountNumberHeldOnlyWhileActive(t *testing.T) {
	for _, driver := range storetest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			db := storetest.Open(t, driver)
			attacker, victim, third := newCustomer(t, db), newCustomer(t, db), newCustomer(t, db)
			number := store.SealedAccountNumber{Ciphertext: []byte("sealed-number"), KeyID: "k1", Hash: paysaga.NewID("h")}
			birth := store.SealedSecret{Ciphertext: []byte("sealed-birth"), KeyID: "k1"}
			register := func(owner string) *paysaga.Account {
				t.Helper()
				a, created, err := db.RegisterAccount(ctx, pendingAccount(owner, "011"), number, birth)
				require.NoError(t, err)
				require.True(t, created, "a registration of its own for every customer")
				require.Equal(t, owner, a.OwnerID)
				return a
			}

			// The attacker registers the victim's number; the bank refuses (wrong birth date).
			bad := register(attacker)
			_, err := db.FailAccountRegistration(ctx, bad.ID, "E1006", "생년월일이 일치하지 않습니다.")
			require.NoError(t, err)
			// The attacker tries again and leaves it PENDING (a registration in flight).
			inFlight, err := db.RestartAccountRegistration(ctx, bad.ID, birth)
			require.NoError(t, err)
			require.Equal(t, paysaga.AccountPending, inFlight.Status)

			// Neither blocks the owner: registered and activated.
			mine := register(victim)
			act, err := db.ActivateAccount(ctx, mine.ID, "fin-victim")
			require.NoError(t, err)
			require.Equal(t, paysaga.AccountActive, act.Status)

			// The attacker's registration, should the bank ever issue it, cannot take the number
			// from the ACTIVE one: it ends FAILED, not ACTIVE, and not an error.
			lost, err := db.ActivateAccount(ctx, bad.ID, "fin-attacker")
			require.NoError(t, err)
			require.Equal(t, paysaga.AccountFailed, lost.Status)
			require.Equal(t, store.FailureNumberRegistered, lost.FailureCode)
			require.Empty(t, lost.FinAccount)
			still, err := db.GetAccount(ctx, mine.ID)
			require.NoError(t, err)
			require.Equal(t, paysaga.AccountActive, still.Status)
			require.Equal(t, "fin-victim", still.FinAccount)

			// Deleting the ACTIVE account releases the number for someone else.
			other := register(third)
			_, err = db.DeleteAccount(ctx, mine.ID)
			require.NoError(t, err)
			act, err = db.ActivateAccount(ctx, other.ID, "fin-third")
			require.NoError(t, err)
			require.Equal(t, paysaga.AccountActive, act.Status)
			// …and its former owner's new registration is the one that now loses.
			back, err := db.RestartAccountRegistration(ctx, mine.ID, birth)
			require.NoError(t, err)
			lost, err = db.ActivateAccount(ctx, back.ID, "fin-victim-2")
			require.NoError(t, err)
			require.Equal(t, paysaga.AccountFailed, lost.Status)

			// CreateAccount (seeding, tests) keeps the same rule for ACTIVE accounts.
			seeded := &paysaga.Account{ID: paysaga.NewID(paysaga.PrefixAccount), OwnerID: attacker, BankCode: "004",
				MaskedNumber: "****1111", Status: paysaga.AccountActive, FinAccount: "fin-x"}
			require.NoError(t, db.CreateAccount(ctx, seeded, number))
			twin := *seeded
			twin.ID, twin.OwnerID = paysaga.NewID(paysaga.PrefixAccount), victim
			require.Equal(t, paysaga.ECONFLICT, paysaga.ErrorCode(db.CreateAccount(ctx, &twin, number)))
		})
	}
}
