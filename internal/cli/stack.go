package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/securelog/securelog/pkg/stackcheck"
)

func init() { extraCommands = append(extraCommands, (*app).verifyStackCmd) }

func (a *app) verifyStackCmd() *cobra.Command {
	var skipPKCS11 bool
	var stacks, algs []string
	var binary, dir string
	c := &cobra.Command{
		Use:   "verify-stack [--skip-pkcs11] [--stack NAME]... [--alg ALG]... [--json]",
		Short: "Run the end-to-end scenario of docs/format.md §20 on every storage stack and keystore",
		Long: `Run the scenario of docs/format.md §20 and its extra checks on each stack:
pebble, sqlite, file (JSON lines), remote-http (this binary's 'serve-rpc' started
as a subprocess on a free loopback port, backed by an SQLite file) and
remote-nats (an embedded NATS server and RPC server over a pebble store). Each
run gets a fresh store and runs once per algorithm (ed25519, ecdsa-p256,
rsa-pss-sha256) with the software keystore and with a PKCS#11 token (keys are
generated non-extractable in the token of SECURELOG_PKCS11_MODULE, _TOKEN and
_PIN or _PIN_FILE). Without a configured token the PKCS#11 cells fail unless
--skip-pkcs11 is given.

Prints a stack × check table (a cell passes when the check passed with every
keystore) and the failed cells with their reasons. Exit 0 only if every cell
passes.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts := stackcheck.Options{Stacks: stacks, Algorithms: algs, SkipPKCS11: skipPKCS11, Binary: binary, Dir: dir}
			if a.verbose {
				opts.Logger = a.logger
			}
			if !a.jsonOut {
				opts.OnRun = func(stack, ks string, cells []stackcheck.Cell) {
					failed := 0
					for _, c := range cells {
						if !c.Pass {
							failed++
						}
					}
					status := "PASS"
					if failed > 0 {
						status = fmt.Sprintf("FAIL (%d checks)", failed)
					}
					fmt.Fprintf(a.stderr, "verify-stack: %-12s %-24s %s\n", stack, ks, status)
				}
			}
			res, err := stackcheck.Run(cmd.Context(), opts)
			if err != nil && len(res.Cells) == 0 {
				if strings.Contains(err.Error(), "unknown") {
					return usageErr("%v", err)
				}
				return err
			}
			if a.jsonOut {
				if perr := a.printJSON(map[string]any{"ok": res.OK(), "result": res}); perr != nil {
					return perr
				}
			} else {
				a.printf("%s", res.Table())
			}
			if err != nil {
				return &ExitError{Code: 1, Err: err}
			}
			if !res.OK() {
				return &ExitError{Code: 1, Err: fmt.Errorf("verify-stack: %d of %d cells FAILED", len(res.Failures()), len(res.Cells))}
			}
			if !a.jsonOut {
				a.printf("\nverify-stack OK: %d cells passed (%d stacks × %d keystores × %d checks)\n",
					len(res.Cells), len(res.Stacks), len(res.Keystores), len(res.Checks))
			}
			return nil
		},
	}
	f := c.Flags()
	f.BoolVar(&skipPKCS11, "skip-pkcs11", false, "leave out the PKCS#11 keystore")
	f.StringSliceVar(&stacks, "stack", nil, "stacks to run (default all): "+strings.Join(stackcheck.Stacks, ", "))
	f.StringSliceVar(&algs, "alg", nil, "algorithms to run (default all three)")
	f.StringVar(&binary, "binary", "", "securelog executable to start as serve-rpc (default this program)")
	f.StringVar(&dir, "dir", "", "keep the fresh stores in a new directory under DIR (default a temporary directory, removed afterwards)")
	return c
}
