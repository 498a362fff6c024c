// Command payctl is the operators' tool for paysaga: list, show and resolve payments, find the
// stuck ones, reconcile a day with the bank, replay workflow histories before a deploy, grant
// roles. The commands live in package ctl; this file only runs them.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"paysaga/cmd/payctl/ctl"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := ctl.Execute(ctx, os.Args[1:], ctl.Env{})
	stop()
	os.Exit(code)
}
