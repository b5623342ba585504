// Command ingester runs the securelog ingester worker: the same as
// 'securelog ingester ARGS' (see 'securelog ingester --help').
package main

import "github.com/securelog/securelog/internal/cli"

func main() { cli.Run("ingester") }
