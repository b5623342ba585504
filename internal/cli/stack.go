package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/spf13/cobra"

	"github.com/securelog/securelog/pkg/keystore/pkcs11"
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
rsa-pss-sha256) with the software keystore and with a PKCS#11 token: keys are
generated non-extractable in the token of SECURELOG_PKCS11_MODULE, _TOKEN and
_PIN or _PIN_FILE, or, when those are unset and softhsm2 is installed, in a
throwaway SoftHSM token made for this run. Without either, the PKCS#11 cells
are SKIP (FAIL when SECURELOG_REQUIRE_PKCS11 is set); --skip-pkcs11 leaves them
out.

Prints a stack × check table (a cell passes when the check passed with every
keystore) and the failed cells with their reasons. Exit 0 unless a cell
failed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts := stackcheck.Options{Stacks: stacks, Algorithms: algs, SkipPKCS11: skipPKCS11, Binary: binary, Dir: dir}
			if !skipPKCS11 {
				cleanup, note := a.stackToken(cmd.Context(), &opts)
				defer cleanup()
				fmt.Fprintf(a.stderr, "verify-stack: %s\n", note)
			}
			if a.verbose {
				opts.Logger = a.logger
			}
			if !a.jsonOut {
				opts.OnRun = func(stack, ks string, cells []stackcheck.Cell) {
					failed, skipped := 0, 0
					for _, c := range cells {
						switch {
						case c.Skipped:
							skipped++
						case !c.Pass:
							failed++
						}
					}
					status := "PASS"
					switch {
					case failed > 0:
						status = fmt.Sprintf("FAIL (%d checks)", failed)
					case skipped > 0:
						status = "SKIP"
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
				return err
			}
			if !res.OK() {
				return verifyFailed(fmt.Errorf("verify-stack: %d of %d cells FAILED", len(res.Failures()), len(res.Cells)))
			}
			if !a.jsonOut {
				a.printf("\nverify-stack OK: %d cells passed, %d skipped (%d stacks × %d keystores × %d checks)\n",
					res.Passed(), len(res.Skipped()), len(res.Stacks), len(res.Keystores), len(res.Checks))
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

// EnvRequirePKCS11, when set to anything, makes a missing PKCS#11 token a
// failure of verify-stack instead of skipped cells (CI sets it).
const EnvRequirePKCS11 = "SECURELOG_REQUIRE_PKCS11"

// stackToken fills the PKCS#11 part of opts: the token of the environment
// (SECURELOG_PKCS11_*) if configured, else a throwaway SoftHSM token when
// softhsm2 is installed, else a skip reason saying how to enable the cells.
// It returns a cleanup function and a one-line note for stderr.
func (a *app) stackToken(ctx context.Context, opts *stackcheck.Options) (func(), string) {
	nothing := func() {}
	opts.RequirePKCS11 = a.env(EnvRequirePKCS11) != ""
	if a.env(pkcs11.EnvModule) != "" {
		cfg, err := a.tokenConfig()
		if err != nil {
			opts.PKCS11Error = err
			return nothing, fmt.Sprintf("PKCS#11 token misconfigured: %v", err)
		}
		opts.PKCS11 = &cfg
		return nothing, fmt.Sprintf("PKCS#11 cells use token %q of %s", cfg.TokenLabel, cfg.Module)
	}
	util, _ := exec.LookPath("softhsm2-util")
	dir, err := os.MkdirTemp("", "securelog-softhsm-")
	if err != nil {
		opts.PKCS11Error = fmt.Errorf("throwaway SoftHSM token: %w", err)
		return nothing, opts.PKCS11Error.Error()
	}
	cleanup := func() { os.RemoveAll(dir) }
	tok, err := stackcheck.ProvisionSoftHSM(ctx, stackcheck.SoftHSM{Util: util, Dir: dir})
	switch {
	case errors.Is(err, stackcheck.ErrSoftHSMMissing):
		opts.PKCS11Unavailable = "no PKCS#11 token: install softhsm2 (apt-get install softhsm2) to run these cells in a throwaway token, " +
			"or set SECURELOG_PKCS11_MODULE, SECURELOG_PKCS11_TOKEN and SECURELOG_PKCS11_PIN_FILE"
		if opts.RequirePKCS11 {
			return cleanup, "PKCS#11 cells FAIL (" + EnvRequirePKCS11 + " is set): " + opts.PKCS11Unavailable
		}
		return cleanup, "PKCS#11 cells SKIP: " + opts.PKCS11Unavailable
	case err != nil:
		opts.PKCS11Error = fmt.Errorf("throwaway SoftHSM token: %w", err)
		return cleanup, opts.PKCS11Error.Error()
	}
	// The SoftHSM module reads SOFTHSM2_CONF when it is initialised (at
	// pkcs11.Open), so it must be in this process's environment.
	if err := os.Setenv("SOFTHSM2_CONF", tok.ConfPath); err != nil {
		opts.PKCS11Error = fmt.Errorf("throwaway SoftHSM token: %w", err)
		return cleanup, opts.PKCS11Error.Error()
	}
	opts.PKCS11 = &tok.Config
	return cleanup, fmt.Sprintf("PKCS#11 cells use a throwaway SoftHSM token in %s", dir)
}
