// Command ingester runs the securelog ingester worker: the same as
// 'securelog ingester ARGS' (see 'securelog ingester --help').
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
	code := cli.IngesterMain(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}
