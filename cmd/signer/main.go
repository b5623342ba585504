// Command signer runs the securelog signer worker: the same as
// 'securelog signer ARGS' (see 'securelog signer --help').
package main

import "github.com/securelog/securelog/internal/cli"

func main() { cli.Run("signer") }
