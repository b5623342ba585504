// Command sealer runs the securelog sealer worker: the same as
// 'securelog sealer ARGS' (see 'securelog sealer --help').
package main

import "github.com/securelog/securelog/internal/cli"

func main() { cli.Run("sealer") }
