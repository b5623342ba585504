// Package checkpoint hashes checkpoints and verifies their signatures (SPEC
// §8). It is pure: no files, no keystore. Verification needs only public keys,
// which come from a trust file (DECISIONS 4): a JSON list of
// {identity, algorithm, public_key} that maps a signer identity to its key.
//
// The signed message is the 32-byte checkpoint hash (hash-then-sign, SPEC
// §8.3, DECISIONS 3): ed25519 signs it directly, ecdsa-p256 and
// rsa-pss-sha256 sign SHA-256 of it.
package checkpoint

import (
	"crypto/sha256"

	"github.com/securelog/securelog/pkg/wire"
)

// Hash returns the checkpoint hash of SPEC §8.2: SHA-256 of the canonical CBOR
// encoding of f (wire.EncodeCheckpoint). It is the message that is signed.
func Hash(f wire.CheckpointFields) []byte {
	sum := sha256.Sum256(wire.EncodeCheckpoint(f))
	return sum[:]
}
