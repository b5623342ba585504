package witnessd

import (
	"fmt"

	"github.com/securelog/securelog/pkg/checkpoint"
	"github.com/securelog/securelog/pkg/keystore"
	"github.com/securelog/securelog/pkg/witness"
)

// DefaultIdentity is the key identity of a witness unless configured.
const DefaultIdentity = "witness"

// Cosign returns the witness's cosignature of an accepted checkpoint: the
// witness key's signature over the 32-byte checkpoint hash — the same
// message the log signs (SPEC §8.3), so for the Ed25519 witness key it is
// PureEdDSA over the hash, 64 bytes R‖S.
func Cosign(key keystore.Key, checkpointHash []byte) ([]byte, error) {
	if len(checkpointHash) != 32 {
		return nil, fmt.Errorf("cosign: checkpoint hash is %d bytes, want 32", len(checkpointHash))
	}
	sig, err := key.Sign(checkpointHash)
	if err != nil {
		return nil, fmt.Errorf("cosign: %w", err)
	}
	return sig, nil
}

// VerifyCosignature checks a witness receipt with a witness trust file
// (written by `securelog witness keys`): the receipt must be accepted, name
// its witness identity, and carry a cosignature that verifies over the
// 32-byte checkpoint hash with that identity's key.
func VerifyCosignature(trust *checkpoint.Trust, receipt witness.Receipt) error {
	return witness.VerifyCosignature(trust, receipt)
}
