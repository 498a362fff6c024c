package ctl

import (
	"fmt"

	"github.com/spf13/cobra"

	"paysaga"
	"paysaga/auth"
)

func usersCmd(s *session) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "users",
		Short: "Manage users' roles",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "grant <email> merchant|operator|customer",
		Short: "Give a signed-up user a role (customer takes a granted role back)",
		Long: `grant sets the role of the user with this email. Customers sign up through the API;
merchants and operators are granted here. Tokens already issued keep their role until they
expire (PAYSAGA_ACCESS_TOKEN_TTL).`,
		Example: `  payctl users grant shop@example.com merchant`,
		Args:    args(2),
		RunE: func(cmd *cobra.Command, a []string) error {
			email, role := auth.NormalizeEmail(a[0]), paysaga.Role(a[1])
			if !role.Valid() {
				return usageErrorf("role must be merchant, operator or customer, not %q", a[1])
			}
			db, err := s.database(cmd.Context())
			if err != nil {
				return err
			}
			if err := db.SetUserRole(cmd.Context(), email, role); err != nil {
				if paysaga.ErrorCode(err) == paysaga.ENOTFOUND {
					return fmt.Errorf("no user with email %s (they sign up through the API first)", email)
				}
				return err
			}
			if s.output == "json" {
				return printJSON(s.env.Stdout, map[string]string{"email": email, "role": string(role)})
			}
			fmt.Fprintf(s.env.Stdout, "%s is now %s\n", email, role)
			return nil
		},
	})
	return cmd
}
