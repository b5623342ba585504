// Command securelog is the securelog CLI: append, read, verify, seal, sign
// and export a tamper-evident audit log. Run `securelog --help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/securelog/securelog/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
