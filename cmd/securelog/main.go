// Command securelog is the securelog CLI: append, read, verify, seal, sign
// and export a tamper-evident audit log. Run `securelog --help`.
package main

import "github.com/securelog/securelog/internal/cli"

func main() { cli.Run() }
