// Command paysaga is the server binary. `paysaga dev` runs the whole engine on one machine with
// embedded defaults; `api`, `worker` and `migrate` are the production processes, configured from
// PAYSAGA_… environment variables; `nhsim` runs the NH Open API simulator on its own.
//
// This package only wires things together: every rule lives in the packages it imports.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"paysaga/config"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := rootCmd().ExecuteContext(ctx)
	flush()
	if err != nil {
		fmt.Fprintln(os.Stderr, "paysaga:", err)
		os.Exit(1)
	}
}

// atExit are flushed before the process exits: the tracer providers, whose last spans would
// otherwise be lost.
var atExit []func(context.Context) error

func flush() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, f := range atExit {
		_ = f(ctx)
	}
}

func rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "paysaga",
		Short:         "paysaga — a payment engine on Temporal",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(devCmd(), apiCmd(), workerCmd(), migrateCmd(), nhsimCmd(), configCmd(), codecServerCmd())
	return root
}

func configCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "config",
		Short: "Print the table of PAYSAGA_… environment variables (Markdown)",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprint(cmd.OutOrStdout(), config.MarkdownTable())
		},
	}
}
