// Package keystore defines the signing seam of securelog (SPEC §9): a Signer
// resolves a key by identity label, and a Key reports its algorithm and
// public key and signs. Private keys never leave the implementation;
// verification is not part of the keystore (see package checkpoint and the
// trust file).
package keystore

import (
	"context"
	"fmt"
)

// Algorithm identifiers (SPEC §8.4), exact and case-sensitive.
const (
	Ed25519      = "ed25519"
	ECDSAP256    = "ecdsa-p256"
	RSAPSSSHA256 = "rsa-pss-sha256"
)

// Algorithms lists the supported algorithm identifiers.
var Algorithms = []string{Ed25519, ECDSAP256, RSAPSSSHA256}

// Key is a resolved signing key.
type Key interface {
	// Algorithm returns one of Ed25519, ECDSAP256, RSAPSSSHA256.
	Algorithm() string
	// PublicKey returns the public key in the encoding of SPEC §8.4
	// (ed25519: 32 raw bytes; ecdsa-p256: SEC1 uncompressed 65 bytes;
	// rsa-pss-sha256: PKCS#1 RSAPublicKey DER).
	PublicKey() []byte
	// Sign signs msg (the 32-byte checkpoint hash) and returns the raw
	// signature of SPEC §8.4 (ed25519: 64 bytes; ecdsa-p256: r‖s, 64 bytes;
	// rsa-pss-sha256: modulus-length bytes, PSS with SHA-256, MGF1-SHA256,
	// salt 32).
	Sign(msg []byte) ([]byte, error)
}

// Signer resolves keys by identity label. Implementations must be safe for
// concurrent use.
type Signer interface {
	GetKey(ctx context.Context, identity string) (Key, error)
}

// KeyNotFoundError is keystore error key-not-found.
type KeyNotFoundError struct{ Identity string }

func (e *KeyNotFoundError) Error() string {
	return fmt.Sprintf("signer identity '%s' not found", e.Identity)
}

// UnsupportedAlgorithmError is keystore error unsupported-algorithm.
type UnsupportedAlgorithmError struct{ Algorithm string }

func (e *UnsupportedAlgorithmError) Error() string {
	return fmt.Sprintf("unsupported algorithm: %q (expected one of ed25519, ecdsa-p256, rsa-pss-sha256)", e.Algorithm)
}

// AccessDeniedError is keystore error access-denied.
type AccessDeniedError struct{ Msg string }

func (e *AccessDeniedError) Error() string { return "access denied: " + e.Msg }

// BackendError is keystore error backend.
type BackendError struct {
	Msg string
	Err error
}

func (e *BackendError) Error() string {
	if e.Err != nil {
		return e.Msg + ": " + e.Err.Error()
	}
	return e.Msg
}
func (e *BackendError) Unwrap() error { return e.Err }

// ParseAlgorithm checks an algorithm identifier exactly.
func ParseAlgorithm(alg string) (string, error) {
	for _, a := range Algorithms {
		if a == alg {
			return a, nil
		}
	}
	return "", &UnsupportedAlgorithmError{Algorithm: alg}
}
