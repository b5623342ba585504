package witness

import "github.com/securelog/securelog/pkg/wire"

// Submission is what a log sends to a witness (SPEC §11.1). The first seven
// fields are the v1 submission; DECISIONS 12 adds the previous checkpoint
// hash and the checkpoint's fields so the witness recomputes the hash
// itself, plus any intermediate checkpoints that link the new head to the
// last one the witness saw.
type Submission struct {
	StreamID              string             `json:"stream_id"`
	SegmentID             uint64             `json:"segment_id"`
	SeqStart              uint64             `json:"seq_start"`
	SeqEnd                uint64             `json:"seq_end"`
	CheckpointHashHex     string             `json:"checkpoint_hash_hex"`
	SignatureHex          string             `json:"signature_hex"`
	SignerIdentity        string             `json:"signer_identity"`
	PrevCheckpointHashHex string             `json:"prev_checkpoint_hash_hex,omitempty"`
	Checkpoint            *CheckpointJSON    `json:"checkpoint,omitempty"`
	Intermediate          []SignedCheckpoint `json:"intermediate,omitempty"`
}

// SignedCheckpoint is a checkpoint with its signature, used to prove that a
// new head extends an older one.
type SignedCheckpoint struct {
	Checkpoint     CheckpointJSON `json:"checkpoint"`
	SignatureHex   string         `json:"signature_hex"`
	SignerIdentity string         `json:"signer_identity"`
}

// CheckpointJSON is the JSON form of the 12 checkpoint fields (hashes as
// lowercase hex).
type CheckpointJSON struct {
	Version               uint32 `json:"version"`
	StreamID              string `json:"stream_id"`
	SegmentID             uint64 `json:"segment_id"`
	SeqStart              uint64 `json:"seq_start"`
	SeqEnd                uint64 `json:"seq_end"`
	MerkleRootHex         string `json:"merkle_root_hex"`
	LastEntryHashHex      string `json:"last_entry_hash_hex"`
	PrevCheckpointHashHex string `json:"prev_checkpoint_hash_hex"`
	BootID                string `json:"boot_id"`
	SessionID             string `json:"session_id"`
	PolicyHashHex         string `json:"policy_hash_hex"`
	Timestamp             string `json:"timestamp_rfc3339"`
}

// Receipt is a witness's answer (SPEC §11.2). DECISIONS 12 adds the
// witness's cosignature over the checkpoint hash of accepted submissions,
// a machine-readable status, and the witness's current head on a stale
// submission.
type Receipt struct {
	StreamID          string  `json:"stream_id"`
	SegmentID         uint64  `json:"segment_id"`
	CheckpointHashHex string  `json:"checkpoint_hash_hex"`
	Accepted          bool    `json:"accepted"`
	Reason            *string `json:"reason"`
	ReceivedAt        string  `json:"received_at_rfc3339"`
	// Status is "accepted", "equivocation", "stale", "bad-signature",
	// "unknown-signer", "not-extending" or "invalid".
	Status          string           `json:"status,omitempty"`
	WitnessIdentity string           `json:"witness_identity,omitempty"`
	CosignatureHex  string           `json:"cosignature_hex,omitempty"`
	CurrentHead     *wire.WitnessRow `json:"current_head,omitempty"`
}
