package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paysaga"
	"paysaga/store/storetest"
)

func TestUsers(t *testing.T) {
	for _, driver := range storetest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			db := storetest.Open(t, driver)

			u := &paysaga.User{
				ID: paysaga.NewID(paysaga.PrefixUser), Email: "kim@example.com", Name: "김민준",
				Role: paysaga.RoleCustomer, PasswordHash: "$argon2id$x",
				CreatedAt: time.Date(2026, 11, 25, 9, 30, 0, 123456789, time.UTC),
			}
			require.NoError(t, db.CreateUser(ctx, u))

			byEmail, err := db.UserByEmail(ctx, "kim@example.com")
			require.NoError(t, err)
			require.Equal(t, u, byEmail, "round trip keeps every field (times at microseconds)")
			byID, err := db.UserByID(ctx, u.ID)
			require.NoError(t, err)
			require.Equal(t, u, byID)

			dup := *u
			dup.ID = paysaga.NewID(paysaga.PrefixUser)
			err = db.CreateUser(ctx, &dup)
			require.Equal(t, paysaga.ECONFLICT, paysaga.ErrorCode(err))

			require.NoError(t, db.SetUserRole(ctx, "kim@example.com", paysaga.RoleOperator))
			require.NoError(t, db.SetUserRole(ctx, "kim@example.com", paysaga.RoleOperator), "same role again is fine")
			got, err := db.UserByID(ctx, u.ID)
			require.NoError(t, err)
			require.Equal(t, paysaga.RoleOperator, got.Role)

			for name, err := range map[string]error{
				"unknown email":      func() error { _, err := db.UserByEmail(ctx, "nobody@example.com"); return err }(),
				"unknown id":         func() error { _, err := db.UserByID(ctx, "usr_nope"); return err }(),
				"email case differs": func() error { _, err := db.UserByEmail(ctx, "KIM@example.com"); return err }(),
				"role of unknown":    db.SetUserRole(ctx, "nobody@example.com", paysaga.RoleMerchant),
			} {
				require.Equal(t, paysaga.ENOTFOUND, paysaga.ErrorCode(err), name)
			}
			require.Equal(t, paysaga.EINVALID, paysaga.ErrorCode(db.SetUserRole(ctx, "kim@example.com", "root")))
		})
	}
}
