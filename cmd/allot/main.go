// Command allot is a quota and limits service for multi-tenant clouds.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/allot-dev/allot/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
