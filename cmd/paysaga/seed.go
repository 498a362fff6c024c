package main

import (
	"context"
	"fmt"
	"io"

	"paysaga"
	"paysaga/auth"
	"paysaga/internal/stack"
	"paysaga/nhsim"
)

// The dev stack comes with a merchant to pay and bank accounts to register, so that a first
// payment needs nothing but curl. They exist only in `paysaga dev`.
const (
	demoMerchantID       = "usr_demomerchant"
	demoMerchantEmail    = "merchant@paysaga.dev"
	demoMerchantPassword = "merchant-dev-password"
)

// demoBankAccounts are opened at the simulated bank on every start (its ledger lives in memory).
var demoBankAccounts = []nhsim.Account{
	{Bncd: "011", Acno: "3021234567890", Holder: "김페이", Birth: "19900101", Balance: 1_000_000},
	{Bncd: "011", Acno: "3029876543210", Holder: "이사가", Birth: "19851231", Balance: 50_000},
}

func seedDev(ctx context.Context, st *stack.Stack, out io.Writer) error {
	for _, a := range demoBankAccounts {
		if _, err := st.Sim.CreateAccount(a); err != nil {
			return fmt.Errorf("seed the simulated bank: %w", err)
		}
	}
	if _, err := st.Parts.DB.UserByID(ctx, demoMerchantID); paysaga.ErrorCode(err) == paysaga.ENOTFOUND {
		hash, err := auth.HashPassword(demoMerchantPassword, auth.DefaultPasswordParams)
		if err != nil {
			return err
		}
		if err := st.Parts.DB.CreateUser(ctx, &paysaga.User{
			ID: demoMerchantID, Email: demoMerchantEmail, Name: "Demo Shop",
			Role: paysaga.RoleMerchant, PasswordHash: hash,
		}); err != nil {
			return fmt.Errorf("seed the demo merchant: %w", err)
		}
	} else if err != nil {
		return err
	}
	// Account numbers and birth dates are not printed, even fake ones: the README lists them.
	fmt.Fprintf(out, "\nDemo data (dev only): merchant %s (%s); %d bank accounts at the simulated bank (see README, \"First payment\")\n",
		demoMerchantID, demoMerchantEmail, len(demoBankAccounts))
	return nil
}
