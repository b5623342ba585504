package witness

import (
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/securelog/securelog/pkg/checkpoint"
	"github.com/securelog/securelog/pkg/wire"
)

// CosignAlgorithm is the only algorithm witnesses cosign with (DECISIONS 12).
const CosignAlgorithm = "ed25519"

// VerifyCosignature checks a receipt's cosignature: the witness's Ed25519
// signature over the 32-byte checkpoint hash, with the witness's key from a
// witness trust file. It is the one check used by the signer, the witness
// tests and the offline auditor.
func VerifyCosignature(trust *checkpoint.Trust, r Receipt) error {
	if trust == nil {
		return errors.New("verify cosignature: no witness trust file")
	}
	if !r.Accepted {
		return fmt.Errorf("verify cosignature: receipt for segment %d of stream %q was not accepted (status %q)", r.SegmentID, r.StreamID, r.Status)
	}
	if r.WitnessIdentity == "" || r.CosignatureHex == "" {
		return fmt.Errorf("verify cosignature: receipt for segment %d of stream %q has no witness identity or cosignature", r.SegmentID, r.StreamID)
	}
	e, ok := trust.Lookup(r.WitnessIdentity)
	if !ok {
		return fmt.Errorf("verify cosignature: witness_identity %q is not in the witness trust file", r.WitnessIdentity)
	}
	if e.Algorithm != CosignAlgorithm {
		return fmt.Errorf("verify cosignature: witness %q has a %s key in the witness trust file; witnesses cosign with ed25519", r.WitnessIdentity, e.Algorithm)
	}
	h, err := hex.DecodeString(r.CheckpointHashHex)
	if err != nil || len(h) != wire.HashLen {
		return fmt.Errorf("verify cosignature: checkpoint_hash_hex %q is not 32 bytes of hex", r.CheckpointHashHex)
	}
	sig, err := hex.DecodeString(r.CosignatureHex)
	if err != nil {
		return fmt.Errorf("verify cosignature: cosignature_hex %q is not hex: %v", r.CosignatureHex, err)
	}
	if err := trust.Verify(r.WitnessIdentity, h, sig); err != nil {
		return fmt.Errorf("cosignature by witness %q does not verify over checkpoint %s: %w", r.WitnessIdentity, r.CheckpointHashHex, err)
	}
	return nil
}
