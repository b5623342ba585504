package cli

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/securelog/securelog/internal/node"
	"github.com/securelog/securelog/pkg/checkpoint"
	"github.com/securelog/securelog/pkg/keystore"
	"github.com/securelog/securelog/pkg/keystore/pkcs11"
	"github.com/securelog/securelog/pkg/wire"
)

func init() { extraCommands = append(extraCommands, (*app).pkcs11Cmd) }

// EnvKeystore selects the signing keystore of commands that sign:
// "software" (the default, keys in --keys DIR) or "pkcs11" (keys in the
// token of SECURELOG_PKCS11_*).
const EnvKeystore = "SECURELOG_KEYSTORE"

// Keystore kinds accepted by --keystore and SECURELOG_KEYSTORE.
const (
	keystoreSoftware = node.KeystoreSoftware
	keystorePKCS11   = node.KeystorePKCS11
)

// openToken opens the PKCS#11 token described by SECURELOG_PKCS11_MODULE,
// _TOKEN and _PIN or _PIN_FILE.
func (a *app) openToken() (*pkcs11.Keystore, error) { return node.OpenToken(a.tokenConfig) }

// signer returns the signing keystore chosen by --keystore and a function
// releasing it.
func (a *app) signer() (keystore.Signer, func(), error) {
	ks, err := node.OpenKeystore(a.keystoreConfig(""))
	if err != nil {
		return nil, nil, settingErr(err)
	}
	if ks.Software() != nil {
		return ks.Software(), func() {}, nil
	}
	return ks, func() { _ = ks.Close() }, nil
}

// pkcs11Generate creates a non-extractable key pair labelled identity in
// the token and returns its trust entry.
func (a *app) pkcs11Generate(identity, alg string) (checkpoint.TrustEntry, error) {
	if _, err := keystore.ParseAlgorithm(alg); err != nil {
		return checkpoint.TrustEntry{}, usageErr("--alg: %v", err)
	}
	ks, err := a.openToken()
	if err != nil {
		return checkpoint.TrustEntry{}, err
	}
	defer ks.Close()
	k, err := ks.Generate(identity, alg)
	if err != nil {
		if errors.Is(err, pkcs11.ErrLabelExists) {
			return checkpoint.TrustEntry{}, fmt.Errorf("%w (token keys are never overwritten; choose another identity)", err)
		}
		return checkpoint.TrustEntry{}, err
	}
	return checkpoint.TrustEntry{Identity: identity, Algorithm: k.Algorithm(), PublicKey: k.PublicKey()}, nil
}

// pkcs11TrustEntries reads the public keys of identities from the token.
func (a *app) pkcs11TrustEntries(ctx context.Context, identities []string) ([]checkpoint.TrustEntry, error) {
	if len(identities) == 0 {
		return nil, usageErr("name the token keys to export with --identity ID (repeatable)")
	}
	ks, err := a.openToken()
	if err != nil {
		return nil, err
	}
	defer ks.Close()
	out := make([]checkpoint.TrustEntry, 0, len(identities))
	for _, id := range identities {
		k, err := ks.GetKey(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("token key %q: %w", id, err)
		}
		out = append(out, checkpoint.TrustEntry{Identity: id, Algorithm: k.Algorithm(), PublicKey: k.PublicKey()})
	}
	return out, nil
}

func (a *app) pkcs11Cmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "pkcs11",
		Short: "Signing keys in a PKCS#11 token (HSM, SoftHSM): generate, export, sign-segment",
		Long: `Keys live in the token named by SECURELOG_PKCS11_TOKEN of the module
SECURELOG_PKCS11_MODULE; the user PIN comes from SECURELOG_PKCS11_PIN or the file
named by SECURELOG_PKCS11_PIN_FILE (never from a flag). Keys are found by label =
signer identity, generated in the token as non-extractable, sensitive private
keys, and never leave it. For SoftHSM: eval "$(.ci/softhsm-setup.sh)".`,
	}
	var alg string
	gen := &cobra.Command{
		Use:   "generate IDENTITY [--alg ed25519|ecdsa-p256|rsa-pss-sha256]",
		Short: "Generate a non-extractable key pair labelled IDENTITY in the token",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := a.checkAlg(cmd, alg); err != nil {
				return err
			}
			e, err := a.pkcs11Generate(args[0], alg)
			if err != nil {
				return err
			}
			if a.jsonOut {
				return a.printJSON(e)
			}
			a.printf("generated %s key %q in token %s (non-extractable)\npublic_key %x\n", e.Algorithm, e.Identity, a.env(pkcs11.EnvToken), e.PublicKey)
			return nil
		},
	}
	gen.Flags().StringVar(&alg, "alg", keystore.Ed25519, "algorithm: ed25519, ecdsa-p256 or rsa-pss-sha256 (env SECURELOG_KEYSTORE_ALG or SECURE_LOG_KEYSTORE_ALG)")

	var ids []string
	var out string
	export := &cobra.Command{
		Use:   "export --identity ID [--identity ID]... [--out trust.json]",
		Short: "Write the trust file entries (public keys) of token keys",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			entries, err := a.pkcs11TrustEntries(cmd.Context(), ids)
			if err != nil {
				return err
			}
			data, err := checkpoint.MarshalTrust(entries)
			if err != nil {
				return err
			}
			if out == "" || out == "-" {
				return a.printDocument(data)
			}
			if err := os.WriteFile(out, data, 0o644); err != nil {
				return fmt.Errorf("write trust file: %w", err)
			}
			if a.jsonOut {
				return a.printJSON(map[string]any{"out": out, "keys": len(entries)})
			}
			a.printf("wrote %d public key(s) to %s\n", len(entries), out)
			return nil
		},
	}
	export.Flags().StringSliceVar(&ids, "identity", nil, "token key label to export (repeatable, or comma separated)")
	export.Flags().StringVar(&out, "out", "", "output file (default stdout)")

	sign := &cobra.Command{
		Use:   "sign-segment IDENTITY SEGMENT_ID",
		Short: "Sign a segment's checkpoint with the token key labelled IDENTITY",
		Long: `Like 'securelog sign-segment', but the signature is made inside the PKCS#11 token:
recompute the segment's checkpoint hash, sign it with the token key IDENTITY, store
the signature and advance the head file.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseSegmentID(args[1])
			if err != nil {
				return err
			}
			a.keystoreFlag = keystorePKCS11
			l, closeFn, err := a.openLog(cmd.Context(), openOpts{signer: true})
			if err != nil {
				return err
			}
			defer closeFn()
			h, sig, err := l.SignSegment(cmd.Context(), args[0], id)
			if err != nil {
				return err
			}
			if a.jsonOut {
				return a.printJSON(map[string]any{"segment_id": id, "checkpoint_hash": wire.Hex(h), "signature": wire.Hex(sig), "signer_identity": args[0], "keystore": keystorePKCS11})
			}
			a.printf("segment %d signed by %s (PKCS#11)\ncheckpoint_hash %x\nsignature %x\n", id, args[0], h, sig)
			return nil
		},
	}
	c.AddCommand(gen, export, sign)
	return c
}

// tokenConfig reads the PKCS#11 token configuration (a node.TokenConfig).
func (a *app) tokenConfig() (pkcs11.Config, error) {
	lookup := a.lookupEnv
	if lookup == nil {
		lookup = func(string) (string, bool) { return "", false }
	}
	cfg, err := pkcs11.ConfigFrom(lookup)
	if err != nil {
		return pkcs11.Config{}, &ExitError{Code: ExitUsage, Kind: CodeUsage, Err: err}
	}
	return cfg, nil
}

// keystoreConfig is the keystore of commands that sign: --keystore with
// software keys in dir (default --keys).
func (a *app) keystoreConfig(dir string) node.KeystoreConfig {
	if dir == "" {
		dir = a.keysDir
	}
	return node.KeystoreConfig{Kind: a.keystoreFlag, Dir: dir, Token: a.tokenConfig}
}

// keystoreKind returns the keystore kind of --keystore.
func (a *app) keystoreKind() (string, error) {
	switch v := a.keystoreFlag; v {
	case "", keystoreSoftware:
		return keystoreSoftware, nil
	case keystorePKCS11:
		return keystorePKCS11, nil
	default:
		return "", usageErr("--keystore / SECURELOG_KEYSTORE %q: want %q or %q", v, keystoreSoftware, keystorePKCS11)
	}
}
