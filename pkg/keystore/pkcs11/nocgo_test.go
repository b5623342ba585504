//go:build !cgo

package pkcs11

import (
	"errors"
	"testing"

	"github.com/securelog/securelog/pkg/keystore"
)

func TestOpenWithoutCgo(t *testing.T) {
	ks, err := Open(Config{Module: "/usr/lib/softhsm/libsofthsm2.so", TokenLabel: "t", PIN: "1234"})
	var be *keystore.BackendError
	if ks != nil || !errors.As(err, &be) || !errors.Is(err, ErrNoCgo) {
		t.Fatalf("Open without cgo = %v, %v; want ErrNoCgo", ks, err)
	}
}
