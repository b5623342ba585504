//go:build !cgo

package pkcs11

import (
	"context"

	"github.com/securelog/securelog/pkg/keystore"
)

// Keystore is an open PKCS#11 token. In this build (CGO_ENABLED=0) no token
// can be opened: Open always fails with ErrNoCgo.
type Keystore struct{}

var _ keystore.Signer = (*Keystore)(nil)

// Open fails with ErrNoCgo: PKCS#11 needs cgo.
func Open(cfg Config) (*Keystore, error) { return nil, ErrNoCgo }

// Close does nothing in this build.
func (k *Keystore) Close() error { return nil }

// GetKey fails with ErrNoCgo in this build.
func (k *Keystore) GetKey(ctx context.Context, identity string) (keystore.Key, error) {
	return nil, ErrNoCgo
}

// Generate fails with ErrNoCgo in this build.
func (k *Keystore) Generate(identity, alg string) (keystore.Key, error) { return nil, ErrNoCgo }

// NewWrappedKEK fails with ErrNoCgo in this build.
func (k *Keystore) NewWrappedKEK(wrappingLabel string) ([]byte, error) { return nil, ErrNoCgo }

// LoadWrappedKEK fails with ErrNoCgo in this build.
func (k *Keystore) LoadWrappedKEK(wrappingLabel string, wrapped []byte) ([]byte, error) {
	return nil, ErrNoCgo
}
