// Command signer runs the securelog signer worker: the same as
// 'securelog signer ARGS' (see 'securelog signer --help').
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
	code := cli.SignerMain(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}
