package node

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/securelog/securelog/pkg/checkpoint"
	"github.com/securelog/securelog/pkg/keystore"
	"github.com/securelog/securelog/pkg/keystore/pkcs11"
	"github.com/securelog/securelog/pkg/seal"
)

// Keystore kinds accepted by KeystoreConfig.Kind.
const (
	KeystoreSoftware = "software"
	KeystorePKCS11   = "pkcs11"
)

// TokenConfig returns the PKCS#11 token configuration. It is called only
// when a token is needed, so an unconfigured token is an error only then.
type TokenConfig func() (pkcs11.Config, error)

// KeystoreConfig chooses the signing keystore of every command that signs.
type KeystoreConfig struct {
	// Kind is KeystoreSoftware ("" too) or KeystorePKCS11.
	Kind string
	// Dir is the software keystore directory.
	Dir string
	// Token configures the PKCS#11 token (Kind pkcs11).
	Token TokenConfig
}

// Keystore is an open signing keystore: software keys in a directory or
// the keys of a PKCS#11 token.
type Keystore struct {
	keystore.Signer
	kind  string
	soft  *keystore.Software
	token *pkcs11.Keystore
}

// OpenKeystore opens the keystore cfg names. Close releases it.
func OpenKeystore(cfg KeystoreConfig) (*Keystore, error) {
	switch cfg.Kind {
	case "", KeystoreSoftware:
		if cfg.Dir == "" {
			return nil, &SettingError{Flag: "--keys", Env: "SECURELOG_KEYS", Msg: "no key directory"}
		}
		ks, err := keystore.OpenSoftware(cfg.Dir)
		if err != nil {
			return nil, err
		}
		return &Keystore{Signer: ks, kind: KeystoreSoftware, soft: ks}, nil
	case KeystorePKCS11:
		tok, err := OpenToken(cfg.Token)
		if err != nil {
			return nil, err
		}
		return &Keystore{Signer: tok, kind: KeystorePKCS11, token: tok}, nil
	default:
		return nil, &SettingError{Flag: "--keystore", Env: "SECURELOG_KEYSTORE", Value: cfg.Kind,
			Msg: fmt.Sprintf("want %q or %q", KeystoreSoftware, KeystorePKCS11)}
	}
}

// OpenToken opens the PKCS#11 token that cfg describes.
func OpenToken(cfg TokenConfig) (*pkcs11.Keystore, error) {
	if cfg == nil {
		return nil, errors.New("no PKCS#11 token configured (set SECURELOG_PKCS11_MODULE, SECURELOG_PKCS11_TOKEN and SECURELOG_PKCS11_PIN_FILE)")
	}
	c, err := cfg()
	if err != nil {
		return nil, err
	}
	ks, err := pkcs11.Open(c)
	if err != nil {
		return nil, fmt.Errorf("open PKCS#11 token %q (module %s): %w", c.TokenLabel, c.Module, err)
	}
	return ks, nil
}

// Kind returns KeystoreSoftware or KeystorePKCS11.
func (k *Keystore) Kind() string { return k.kind }

// Software returns the software keystore, or nil for a token.
func (k *Keystore) Software() *keystore.Software { return k.soft }

// Close releases the token session pool (nothing for software keys).
func (k *Keystore) Close() error {
	if k.token != nil {
		return k.token.Close()
	}
	return nil
}

// Key returns identity's key. With create, a missing software key is
// generated (Ed25519); a token key is never created implicitly.
func (k *Keystore) Key(ctx context.Context, identity string, create bool) (keystore.Key, error) {
	if create && k.soft != nil {
		return k.soft.GetKeyOrCreate(ctx, identity, keystore.Ed25519)
	}
	key, err := k.GetKey(ctx, identity)
	if err == nil {
		return key, nil
	}
	var nf *keystore.KeyNotFoundError
	switch {
	case errors.As(err, &nf) && k.token != nil:
		return nil, fmt.Errorf("%w in the PKCS#11 token (create it with 'securelog pkcs11 generate %s')", err, identity)
	case errors.As(err, &nf):
		return nil, fmt.Errorf("%w in %s (create it with 'securelog keys generate %s')", err, k.soft.Dir(), identity)
	}
	return nil, err
}

// TrustEntries returns the trust file entries of the keystore: every
// software key, or the token keys named by identities.
func (k *Keystore) TrustEntries(ctx context.Context, identities ...string) ([]checkpoint.TrustEntry, error) {
	var out []checkpoint.TrustEntry
	if k.soft != nil {
		keys, err := k.soft.List()
		if err != nil {
			return nil, err
		}
		for _, ki := range keys {
			out = append(out, checkpoint.TrustEntry{Identity: ki.Identity, Algorithm: ki.Algorithm, PublicKey: ki.PublicKey})
		}
		return out, nil
	}
	for _, id := range identities {
		key, err := k.Key(ctx, id, false)
		if err != nil {
			return nil, err
		}
		out = append(out, checkpoint.TrustEntry{Identity: id, Algorithm: key.Algorithm(), PublicKey: key.PublicKey()})
	}
	return out, nil
}

// WrappedKEKPrefix starts a token-wrapped KEK file (DECISIONS 6), one line:
//
//	securelog-wrapped-kek/v1 pkcs11 <wrapping key label> <hex of the wrapped KEK>
//
// The 32-byte KEK was generated inside the PKCS#11 token and wrapped there
// with a non-extractable AES key; the clear KEK never touches the disk and
// exists only in the memory of a process that unwrapped it with the token.
const WrappedKEKPrefix = "securelog-wrapped-kek/v1"

// LoadKEK reads a KEK file: a token-wrapped KEK file is unwrapped in the
// token of token; anything else is a plain KEK file (32 raw bytes or 64 hex
// characters).
func LoadKEK(path string, token TokenConfig) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read KEK file: %w", err)
	}
	if !bytes.HasPrefix(data, []byte(WrappedKEKPrefix)) {
		return seal.LoadKEK(path)
	}
	f := strings.Fields(string(data))
	if len(f) != 4 || f[1] != "pkcs11" {
		return nil, fmt.Errorf("KEK file %s: want %q followed by \"pkcs11 LABEL HEX\"", path, WrappedKEKPrefix)
	}
	wrapped, err := hex.DecodeString(f[3])
	if err != nil {
		return nil, fmt.Errorf("KEK file %s: wrapped key is not hex: %v", path, err)
	}
	ks, err := OpenToken(token)
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

// SettingError is a missing or bad setting; it names the flag and the
// environment variable that set it.
type SettingError struct {
	Flag  string // e.g. "--keys"
	Env   string // e.g. "SECURELOG_KEYS"; "" if none
	Value string // the bad value; "" when missing
	Msg   string
}

func (e *SettingError) Error() string {
	name := e.Flag
	if e.Env != "" {
		name += " / " + e.Env
	}
	if e.Value != "" {
		return fmt.Sprintf("%s %q: %s", name, e.Value, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.Msg, "pass "+strings.Replace(name, " / ", " or set ", 1))
}
