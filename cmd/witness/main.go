// Command witness runs the securelog witness service: the same as
// `securelog witness`, with every argument passed on (so `witness keys
// --data DIR` is `securelog witness keys --data DIR`). Run `witness --help`.
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
	code := cli.Main(ctx, append([]string{"witness"}, os.Args[1:]...), os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
