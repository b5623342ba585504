package cli

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/securelog/securelog/internal/node"
	"github.com/securelog/securelog/pkg/checkpoint"
	"github.com/securelog/securelog/pkg/keystore"
	"github.com/securelog/securelog/pkg/seal"
)

func (a *app) keysCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "keys",
		Short: "Manage signing keys (software keystore in --keys DIR)",
	}
	var alg string
	gen := &cobra.Command{
		Use:   "generate IDENTITY [--alg ed25519|ecdsa-p256|rsa-pss-sha256] [--keystore pkcs11]",
		Short: "Generate a random signing key for IDENTITY (0600 file, or a non-extractable token key)",
		Long: `Generate a new random key. The default algorithm comes from SECURELOG_KEYSTORE_ALG (or SECURE_LOG_KEYSTORE_ALG)
(exact spellings: ed25519, ecdsa-p256, rsa-pss-sha256), else ed25519.
An existing identity is never overwritten.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := a.checkAlg(cmd, alg); err != nil {
				return err
			}
			if kind, err := a.keystoreKind(); err != nil {
				return err
			} else if kind == keystorePKCS11 {
				e, err := a.pkcs11Generate(args[0], alg)
				if err != nil {
					return err
				}
				if a.jsonOut {
					return a.printJSON(e)
				}
				a.printf("generated %s key %q in the PKCS#11 token (non-extractable)\npublic_key %x\n", e.Algorithm, e.Identity, e.PublicKey)
				return nil
			}
			ks, err := a.keystore()
			if err != nil {
				return err
			}
			k, err := ks.Generate(args[0], alg)
			if err != nil {
				return err
			}
			if a.jsonOut {
				return a.printJSON(checkpoint.TrustEntry{Identity: args[0], Algorithm: k.Algorithm(), PublicKey: k.PublicKey()})
			}
			a.printf("generated %s key %q in %s\npublic_key %x\n", k.Algorithm(), args[0], ks.Dir(), k.PublicKey())
			return nil
		},
	}
	gen.Flags().StringVar(&alg, "alg", keystore.Ed25519, "algorithm: ed25519, ecdsa-p256 or rsa-pss-sha256 (env SECURELOG_KEYSTORE_ALG or SECURE_LOG_KEYSTORE_ALG)")

	var out string
	var identities []string
	export := &cobra.Command{
		Use:   "export --out trust.json",
		Short: "Write the trust file (public keys of every identity) that verifiers read",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var entries []checkpoint.TrustEntry
			if kind, err := a.keystoreKind(); err != nil {
				return err
			} else if kind == keystorePKCS11 {
				if entries, err = a.pkcs11TrustEntries(cmd.Context(), identities); err != nil {
					return err
				}
			} else {
				ks, err := a.keystore()
				if err != nil {
					return err
				}
				if entries, err = trustEntries(ks); err != nil {
					return err
				}
			}
			if err := node.AddVKeys(entries, node.TlogConfig{}); err != nil {
				return err
			}
			data, err := checkpoint.MarshalTrust(entries)
			if err != nil {
				return err
			}
			if out == "" || out == "-" {
				return a.printDocument(data)
			}
			if err := os.WriteFile(out, append(data, '\n'), 0o644); err != nil {
				return fmt.Errorf("write trust file: %w", err)
			}
			if a.jsonOut {
				return a.printJSON(map[string]any{"out": out, "keys": len(entries)})
			}
			a.printf("wrote %d public key(s) to %s\n", len(entries), out)
			return nil
		},
	}
	export.Flags().StringVar(&out, "out", "", "output file (default stdout)")
	export.Flags().StringSliceVar(&identities, "identity", nil, "with --keystore pkcs11: the token keys to export (repeatable)")

	list := &cobra.Command{
		Use:   "list",
		Short: "List the identities in the key directory",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ks, err := a.keystore()
			if err != nil {
				return err
			}
			entries, err := trustEntries(ks)
			if err != nil {
				return err
			}
			if a.jsonOut {
				return a.printJSON(entries)
			}
			for _, e := range entries {
				a.printf("%s\t%s\t%x\n", e.Identity, e.Algorithm, e.PublicKey)
			}
			return nil
		},
	}
	c.AddCommand(gen, export, list, a.vkeyCmd())
	return c
}

func trustEntries(ks *keystore.Software) ([]checkpoint.TrustEntry, error) {
	infos, err := ks.List()
	if err != nil {
		return nil, err
	}
	out := make([]checkpoint.TrustEntry, 0, len(infos))
	for _, in := range infos {
		out = append(out, checkpoint.TrustEntry{Identity: in.Identity, Algorithm: in.Algorithm, PublicKey: in.PublicKey})
	}
	return out, nil
}

func (a *app) kekCmd() *cobra.Command {
	c := &cobra.Command{Use: "kek", Short: "Manage the payload sealing master key (KEK)"}
	var out string
	gen := &cobra.Command{
		Use:   "generate --out FILE",
		Short: "Write a new random 32-byte KEK as 64 hex characters (mode 0600; never overwrites)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usageErr("--out FILE is required")
			}
			if err := seal.GenerateKEKFile(out); err != nil {
				return err
			}
			if a.jsonOut {
				return a.printJSON(map[string]any{"out": out})
			}
			a.printf("wrote KEK to %s (keep it secret; losing it makes sealed payloads unreadable)\n", out)
			return nil
		},
	}
	gen.Flags().StringVar(&out, "out", "", "KEK file to create")
	c.AddCommand(gen, a.kekTokenCmd())
	return c
}
