package cli

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/securelog/securelog/pkg/seal"
)

// A token-wrapped KEK file (DECISIONS 6) is one line:
//
//	securelog-wrapped-kek/v1 pkcs11 <wrapping key label> <hex of the wrapped KEK>
//
// The 32-byte KEK was generated inside the PKCS#11 token and wrapped there
// with a non-extractable AES key; the clear KEK never touches the disk and
// exists only in the memory of a process that unwrapped it with the token.
const wrappedKEKPrefix = "securelog-wrapped-kek/v1"

// loadKEK reads --kek: a token-wrapped KEK file is unwrapped in the token;
// anything else is a plain KEK file (32 raw bytes or 64 hex characters).
func loadKEK(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read KEK file: %w", err)
	}
	if !bytes.HasPrefix(data, []byte(wrappedKEKPrefix)) {
		return seal.LoadKEK(path)
	}
	f := strings.Fields(string(data))
	if len(f) != 4 || f[1] != "pkcs11" {
		return nil, fmt.Errorf("KEK file %s: want %q followed by \"pkcs11 LABEL HEX\"", path, wrappedKEKPrefix)
	}
	wrapped, err := hex.DecodeString(f[3])
	if err != nil {
		return nil, fmt.Errorf("KEK file %s: wrapped key is not hex: %v", path, err)
	}
	ks, err := openToken()
	if err != nil {
		return nil, err
	}
	defer ks.Close()
	kek, err := ks.LoadWrappedKEK(f[2], wrapped)
	if err != nil {
		return nil, fmt.Errorf("unwrap KEK of %s in the token with key %q: %w", path, f[2], err)
	}
	return kek, nil
}

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
			ks, err := openToken()
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
			a.printf("wrote token-wrapped KEK to %s (wrapping key %q stays in the token)\n", out, label)
			return nil
		},
	}
	c.Flags().StringVar(&out, "out", "", "KEK file to create")
	c.Flags().StringVar(&label, "wrapping-key", "securelog-kek-wrap", "label of the token's AES wrapping key")
	return c
}
