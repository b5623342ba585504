// Command sealer runs the securelog sealer worker: the same as
// 'securelog sealer ARGS' (see 'securelog sealer --help').
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
	code := cli.SealerMain(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}
