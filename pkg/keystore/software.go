package keystore

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/securelog/securelog/pkg/secretfile"
)

// SoftwareKeyBits is the RSA modulus size of generated rsa-pss-sha256 keys.
const SoftwareKeyBits = 2048

// softwareKeySuffix names key files: <identity>.pem.
const softwareKeySuffix = ".pem"

// maxIdentityLen bounds identities so that <identity>.pem fits a file name.
const maxIdentityLen = 200

// KeyExistsError is returned by Software.Generate when the identity already
// has a key; keys are never overwritten.
type KeyExistsError struct{ Identity string }

func (e *KeyExistsError) Error() string {
	return fmt.Sprintf("signer identity '%s' already has a key; refusing to overwrite it", e.Identity)
}

// InvalidIdentityError reports an identity that cannot name a key file.
type InvalidIdentityError struct {
	Identity string
	Reason   string
}

func (e *InvalidIdentityError) Error() string {
	return fmt.Sprintf("invalid signer identity %q: %s", e.Identity, e.Reason)
}

// CheckIdentity reports whether identity can be used as a software key name:
// non-empty, at most 200 bytes, no '/', '\\', NUL or other control
// characters, not "." and not containing "..".
func CheckIdentity(identity string) error {
	bad := func(r string) error { return &InvalidIdentityError{Identity: identity, Reason: r} }
	switch {
	case identity == "":
		return bad("empty")
	case len(identity) > maxIdentityLen:
		return bad(fmt.Sprintf("longer than %d bytes", maxIdentityLen))
	case identity == ".":
		return bad(`"." is not a name`)
	case strings.Contains(identity, ".."):
		return bad(`contains ".."`)
	case strings.ContainsAny(identity, `/\`):
		return bad(`contains a path separator ('/' or '\')`)
	}
	for _, c := range []byte(identity) {
		if c < 0x20 || c == 0x7f {
			return bad(fmt.Sprintf("contains control character 0x%02x", c))
		}
	}
	return nil
}

// KeyInfo describes a stored key without its private part.
type KeyInfo struct {
	Identity  string
	Algorithm string
	PublicKey []byte
}

// Software is the file-backed software keystore (DECISIONS 4): keys are
// random, generated with crypto/rand, and kept one per identity as a PKCS#8
// PEM file <identity>.pem with mode 0600 in a 0700 directory; a key file
// other users can read is refused unless SoftwareOptions allow it. It implements
// Signer and is safe for concurrent use; loaded keys are cached.
type Software struct {
	dir     string
	secrets secretfile.Policy
	mu      sync.Mutex
	cache   map[string]Key
}

var _ Signer = (*Software)(nil)

// SoftwareOptions configures OpenSoftwareWith.
type SoftwareOptions struct {
	// AllowReadableKeys uses key files that other users can read, with a
	// warning; by default they are refused (a *secretfile.ModeError naming
	// the file and the fix, chmod 600).
	AllowReadableKeys bool
	// Hint replaces the error's default way to allow such files (e.g. the
	// CLI flag that sets AllowReadableKeys).
	Hint string
	// Logger receives warnings (slog.Default() if nil).
	Logger *slog.Logger
}

// OpenSoftware opens (creating it with mode 0700 if needed) the key directory
// dir. Key files other users can read are refused (see OpenSoftwareWith).
func OpenSoftware(dir string) (*Software, error) {
	return OpenSoftwareWith(dir, SoftwareOptions{})
}

// OpenSoftwareWith is OpenSoftware with options.
func OpenSoftwareWith(dir string, opts SoftwareOptions) (*Software, error) {
	if dir == "" {
		return nil, errors.New("software keystore: empty key directory")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, &BackendError{Msg: "software keystore: create key directory " + dir, Err: err}
	}
	st, err := os.Stat(dir)
	if err != nil {
		return nil, &BackendError{Msg: "software keystore: stat key directory " + dir, Err: err}
	}
	if !st.IsDir() {
		return nil, &BackendError{Msg: "software keystore: " + dir + " is not a directory"}
	}
	if st.Mode().Perm()&0o077 != 0 {
		slog.Warn("software keystore directory is accessible to other users", "dir", dir, "mode", st.Mode().Perm().String())
	}
	pol := secretfile.Policy{AllowReadable: opts.AllowReadableKeys, Hint: opts.Hint, Logger: opts.Logger}
	return &Software{dir: dir, secrets: pol, cache: make(map[string]Key)}, nil
}

// Dir returns the key directory.
func (s *Software) Dir() string { return s.dir }

func (s *Software) path(identity string) string {
	return filepath.Join(s.dir, identity+softwareKeySuffix)
}

// generatePrivate makes a fresh random private key for alg.
func generatePrivate(alg string) (crypto.Signer, error) {
	switch alg {
	case Ed25519:
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		return priv, err
	case ECDSAP256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case RSAPSSSHA256:
		return rsa.GenerateKey(rand.Reader, SoftwareKeyBits)
	}
	return nil, &UnsupportedAlgorithmError{Algorithm: alg}
}

// Generate creates a random key of algorithm alg for identity and stores it.
// It fails with *KeyExistsError if identity already has a key, with
// *InvalidIdentityError for an unusable identity and with
// *UnsupportedAlgorithmError for an unknown algorithm.
func (s *Software) Generate(identity, alg string) (Key, error) {
	if err := CheckIdentity(identity); err != nil {
		return nil, err
	}
	if _, err := ParseAlgorithm(alg); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := os.Lstat(s.path(identity)); err == nil {
		return nil, &KeyExistsError{Identity: identity}
	}
	priv, err := generatePrivate(alg)
	if err != nil {
		return nil, &BackendError{Msg: "generate " + alg + " key", Err: err}
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, &BackendError{Msg: "encode " + alg + " key", Err: err}
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if err := secretfile.WriteNew(s.path(identity), data); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, &KeyExistsError{Identity: identity}
		}
		return nil, &BackendError{Msg: "store key for '" + identity + "'", Err: err}
	}
	k, err := KeyFromSigner(priv)
	if err != nil {
		return nil, &BackendError{Msg: "wrap key", Err: err}
	}
	s.cache[identity] = k
	slog.Info("software keystore: generated key", "identity", identity, "algorithm", alg, "file", s.path(identity))
	return k, nil
}

// GetKey loads the key of identity (SPEC §9.1 get-key). A missing key gives
// *KeyNotFoundError.
func (s *Software) GetKey(ctx context.Context, identity string) (Key, error) {
	if err := ctx.Err(); err != nil {
		return nil, &BackendError{Msg: "get key", Err: err}
	}
	if err := CheckIdentity(identity); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if k, ok := s.cache[identity]; ok {
		return k, nil
	}
	k, err := s.load(identity)
	if err != nil {
		return nil, err
	}
	s.cache[identity] = k
	return k, nil
}

func (s *Software) load(identity string) (Key, error) {
	p := s.path(identity)
	data, err := secretfile.Read("key file", p, s.secrets)
	if errors.Is(err, os.ErrNotExist) {
		return nil, &KeyNotFoundError{Identity: identity}
	}
	if err != nil {
		return nil, &BackendError{Msg: "software keystore: load key '" + identity + "'", Err: err}
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, &BackendError{Msg: "key file " + p + " is not a PEM \"PRIVATE KEY\" block"}
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, &BackendError{Msg: "parse key file " + p, Err: err}
	}
	priv, ok := parsed.(crypto.Signer)
	if !ok {
		return nil, &BackendError{Msg: fmt.Sprintf("key file %s holds a %T, not a signing key", p, parsed)}
	}
	k, err := KeyFromSigner(priv)
	if err != nil {
		return nil, &BackendError{Msg: "key file " + p, Err: err}
	}
	return k, nil
}

// GetKeyOrCreate returns the key of identity, generating one of algorithm alg
// if there is none (for `securelog up`). An existing key is returned as is,
// whatever its algorithm.
func (s *Software) GetKeyOrCreate(ctx context.Context, identity, alg string) (Key, error) {
	k, err := s.GetKey(ctx, identity)
	var nf *KeyNotFoundError
	if !errors.As(err, &nf) {
		return k, err
	}
	k, err = s.Generate(identity, alg)
	var exists *KeyExistsError
	if errors.As(err, &exists) {
		// Another process created it in between.
		return s.GetKey(ctx, identity)
	}
	return k, err
}

// List returns the identity, algorithm and public key of every stored key,
// sorted by identity.
func (s *Software) List() ([]KeyInfo, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, &BackendError{Msg: "list key directory " + s.dir, Err: err}
	}
	var out []KeyInfo
	for _, e := range ents {
		name := e.Name()
		if !e.Type().IsRegular() || !strings.HasSuffix(name, softwareKeySuffix) {
			continue
		}
		id := strings.TrimSuffix(name, softwareKeySuffix)
		if CheckIdentity(id) != nil {
			continue
		}
		k, err := s.GetKey(context.Background(), id)
		if err != nil {
			return nil, err
		}
		out = append(out, KeyInfo{Identity: id, Algorithm: k.Algorithm(), PublicKey: k.PublicKey()})
	}
	slices.SortFunc(out, func(a, b KeyInfo) int { return strings.Compare(a.Identity, b.Identity) })
	return out, nil
}
