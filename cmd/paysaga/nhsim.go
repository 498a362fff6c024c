package main

import (
	"fmt"
	"net"
	"os"

	"github.com/spf13/cobra"

	"paysaga/config"
	"paysaga/internal/app"
	"paysaga/nhsim"
)

func nhsimCmd() *cobra.Command {
	var addr, faults string
	var seed uint64
	cfg := nhsim.Config{}
	cmd := &cobra.Command{
		Use:   "nhsim",
		Short: "Run the NH Open API simulator on its own (in-memory ledger, fault injection, admin API)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if faults != "" {
				f, err := nhsim.ParseFaults(faults)
				if err != nil {
					return err
				}
				cfg.Faults = f
			}
			cfg.Seed = seed
			if err := cfg.Validate(); err != nil {
				return err
			}
			sim := nhsim.New(cfg)
			defer sim.Close()
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return err
			}
			logger := app.NewLogger(mustConfig())
			fmt.Fprintf(cmd.OutOrStdout(), "NH simulator on http://%s (Iscd %s; admin API under /admin/)\n", ln.Addr(), sim.ClientConfig("").Iscd)
			return app.Serve(cmd.Context(), ln, sim.Handler(), logger)
		},
	}
	f := cmd.Flags()
	f.StringVar(&addr, "addr", "127.0.0.1:8090", "listen address")
	f.StringVar(&cfg.Iscd, "iscd", nhsim.DefaultIscd, "institution code requests must carry")
	f.StringVar(&cfg.AccessToken, "access-token", nhsim.DefaultAccessToken, "access token requests must carry")
	f.StringVar(&cfg.AdminToken, "admin-token", "", "when set, /admin/ requires `Authorization: Bearer <token>`")
	f.DurationVar(&cfg.IssueDelay, "issue-delay", 0, "how long fin-account issuance stays in progress")
	f.StringVar(&faults, "faults", "", "faults in force from the start, e.g. DrawingTransfer=lost_response:0.2")
	f.Uint64Var(&seed, "seed", 1, "seed of the fault draws")
	return cmd
}

func mustConfig() config.Config {
	cfg, err := config.Load(os.Getenv)
	if err != nil {
		cfg, _ = config.Load(func(string) string { return "" })
	}
	return cfg
}
