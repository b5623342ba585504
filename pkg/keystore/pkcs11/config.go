// Package pkcs11 is the PKCS#11 keystore of securelog (SPEC §9, DESIGN "trust
// boundaries"): signing keys live in a hardware or software token (tested with
// SoftHSM 2.6.1), are non-extractable, and are found by CKA_LABEL = signer
// identity. It implements keystore.Signer.
//
// The token is found by its label, never by slot number (SoftHSM reassigns the
// slot id when a token is initialised). The PIN comes from the environment or a
// file (ConfigFrom, given the caller's environment lookup), never from a
// command-line flag value. The package itself never reads the environment.
//
// The package also keeps the securelog master KEK (DECISIONS 6) wrapped under a
// non-extractable AES-256 key of the token: see NewWrappedKEK and LoadWrappedKEK.
//
// The token code needs cgo (github.com/miekg/pkcs11). Built with
// CGO_ENABLED=0 the package still compiles, so securelog builds without cgo,
// but Open returns ErrNoCgo.
package pkcs11

import (
	"errors"
	"fmt"
	"strings"

	"github.com/securelog/securelog/pkg/keystore"
	"github.com/securelog/securelog/pkg/secretfile"
)

// Environment variables ConfigFrom looks up.
const (
	// EnvModule names the PKCS#11 module (shared library) path.
	EnvModule = "SECURELOG_PKCS11_MODULE"
	// EnvToken names the label of the token holding the keys.
	EnvToken = "SECURELOG_PKCS11_TOKEN"
	// EnvPIN holds the user PIN itself.
	EnvPIN = "SECURELOG_PKCS11_PIN"
	// EnvPINFile names a file whose content (one trailing newline stripped)
	// is the user PIN.
	EnvPINFile = "SECURELOG_PKCS11_PIN_FILE"
)

// DefaultSessions is the size of the session pool when Config.Sessions is 0.
// A PKCS#11 session runs one operation at a time, so the pool bounds how many
// signatures run in parallel.
const DefaultSessions = 4

// Config says which token to use and how to log in.
type Config struct {
	// Module is the path of the PKCS#11 shared library, e.g.
	// /usr/lib/softhsm/libsofthsm2.so.
	Module string
	// TokenLabel is the CKA_LABEL of the token (CK_TOKEN_INFO.label).
	TokenLabel string
	// PIN is the user PIN.
	PIN string
	// Sessions is the session pool size; 0 means DefaultSessions.
	Sessions int
}

// ConfigFrom builds a Config from variables found by lookup (the CLI passes
// its environment): Module from SECURELOG_PKCS11_MODULE, TokenLabel from
// SECURELOG_PKCS11_TOKEN, and the PIN from SECURELOG_PKCS11_PIN or from the
// file named by SECURELOG_PKCS11_PIN_FILE (exactly one of the two must be set).
//
// A PIN file other users can read is refused (a *secretfile.ModeError
// naming the fix, chmod 600); ConfigFromWith takes the policy.
func ConfigFrom(lookup func(name string) (string, bool)) (Config, error) {
	return ConfigFromWith(lookup, secretfile.Policy{})
}

// ConfigFromWith is ConfigFrom with the policy for PIN files other users
// can read.
func ConfigFromWith(lookup func(name string) (string, bool), p secretfile.Policy) (Config, error) {
	get := func(name string) string { v, _ := lookup(name); return v }
	cfg := Config{Module: get(EnvModule), TokenLabel: get(EnvToken)}
	if cfg.Module == "" {
		return Config{}, fmt.Errorf("pkcs11 config: %s is not set (path of the PKCS#11 module, e.g. /usr/lib/softhsm/libsofthsm2.so)", EnvModule)
	}
	if cfg.TokenLabel == "" {
		return Config{}, fmt.Errorf("pkcs11 config: %s is not set (label of the token)", EnvToken)
	}
	pin, pinSet := lookup(EnvPIN)
	pinFile, fileSet := lookup(EnvPINFile)
	switch {
	case pinSet && fileSet:
		return Config{}, fmt.Errorf("pkcs11 config: both %s and %s are set; set exactly one", EnvPIN, EnvPINFile)
	case fileSet:
		b, err := secretfile.Read("PIN file", pinFile, p)
		if err != nil {
			return Config{}, fmt.Errorf("pkcs11 config: reading PIN file %q (%s): %w", pinFile, EnvPINFile, err)
		}
		pin = strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
		if pin == "" {
			return Config{}, fmt.Errorf("pkcs11 config: PIN file %q (%s) is empty", pinFile, EnvPINFile)
		}
	case pinSet:
		if pin == "" {
			return Config{}, fmt.Errorf("pkcs11 config: %s is set but empty", EnvPIN)
		}
	default:
		return Config{}, fmt.Errorf("pkcs11 config: neither %s nor %s is set (the user PIN)", EnvPIN, EnvPINFile)
	}
	cfg.PIN = pin
	return cfg, nil
}

// ErrLabelExists is returned (wrapped) by Generate and NewWrappedKEK when an
// object with the requested label already exists and may not be replaced.
var ErrLabelExists = errors.New("pkcs11: an object with this label already exists")

// KEKSize is the size of the securelog master KEK (SPEC §12.1).
const KEKSize = 32

// WrappedKEKSize is the size of a wrapped KEK: RFC 3394 AES key wrap
// (CKM_AES_KEY_WRAP) of 32 bytes adds one 8-byte integrity block.
const WrappedKEKSize = KEKSize + 8

// ErrNoCgo is the *keystore.BackendError Open returns when
// securelog was built with CGO_ENABLED=0: PKCS#11 modules are C libraries.
var ErrNoCgo = &keystore.BackendError{Msg: "pkcs11: this securelog binary was built without cgo (CGO_ENABLED=0); rebuild with cgo to use a PKCS#11 token"}
