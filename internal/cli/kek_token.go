package cli

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/securelog/securelog/internal/node"
)

// wrappedKEKPrefix starts a token-wrapped KEK file (node.WrappedKEKPrefix).
const wrappedKEKPrefix = node.WrappedKEKPrefix

// loadKEK reads --kek through the one KEK loader (node.LoadKEK).
func (a *app) loadKEK(path string) ([]byte, error) { return node.LoadKEK(path, a.tokenConfig) }

func (a *app) kekTokenCmd() *cobra.Command {
	var out, label string
	c := &cobra.Command{
		Use:   "token --out FILE [--wrapping-key LABEL]",
		Short: "Create a payload sealing KEK inside the PKCS#11 token, stored only wrapped",
		Long: `Generate a new 32-byte KEK inside the PKCS#11 token (SECURELOG_PKCS11_MODULE,
_TOKEN, _PIN or _PIN_FILE) and write it to FILE wrapped with the token's
non-extractable AES key LABEL (created if missing). Use the file with --kek like a
plain KEK file: it is unwrapped in the token; the clear KEK never touches the disk.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return usageErr("--out FILE is required")
			}
			if _, err := os.Stat(out); err == nil {
				return fmt.Errorf("KEK file %s exists; refusing to overwrite it", out)
			}
			if strings.ContainsAny(label, " \t\n") || label == "" {
				return usageErr("--wrapping-key %q: want a label without spaces", label)
			}
			ks, err := a.openToken()
			if err != nil {
				return err
			}
			defer ks.Close()
			wrapped, err := ks.NewWrappedKEK(label)
			if err != nil {
				return err
			}
			line := fmt.Sprintf("%s pkcs11 %s %x\n", wrappedKEKPrefix, label, wrapped)
			f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return fmt.Errorf("create KEK file: %w", err)
			}
			if _, err := f.WriteString(line); err != nil {
				f.Close()
				return err
			}
			if err := f.Sync(); err != nil {
				f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
			if a.jsonOut {
				return a.printJSON(map[string]any{"out": out, "wrapping_key": label})
			}
			a.printf("wrote token-wrapped KEK to %s (wrapping key %q stays in the token)\n", out, label)
			return nil
		},
	}
	c.Flags().StringVar(&out, "out", "", "KEK file to create")
	c.Flags().StringVar(&label, "wrapping-key", "securelog-kek-wrap", "label of the token's AES wrapping key")
	return c
}
