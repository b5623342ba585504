// Command witness runs the securelog witness service: the same as
// `securelog witness`, with every argument passed on (so `witness keys
// --data DIR` is `securelog witness keys --data DIR`). Run `witness --help`.
package main

import "github.com/securelog/securelog/internal/cli"

func main() { cli.Run("witness") }
