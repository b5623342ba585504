// Package vectors gives tests typed access to the format v1 test vectors
// (internal/vectors/vectordata/vectors.json, compiled into the test binary, so
// the tests need nothing outside the repository). Every accessor takes a
// testing.TB and fails the test (never skips) when a section is missing or a
// value does not parse, so a vector test cannot pass vacuously.
package vectors

import (
	"encoding/hex"
	"encoding/json"
	"sync"
	"testing"

	"github.com/securelog/securelog/internal/vectors/vectordata"
	"github.com/securelog/securelog/pkg/wire"
)

// File is the parsed vectors.json. Sections that no typed field covers are
// available through Raw.
type File struct {
	Entries                []Entry                `json:"entries"`
	SeverityVariants       SeverityVariants       `json:"severity_variants"`
	Chain                  Chain                  `json:"chain"`
	Merkle                 Merkle                 `json:"merkle"`
	SegmentsAndCheckpoints SegmentsAndCheckpoints `json:"segments_and_checkpoints"`
	AEAD                   AEAD                   `json:"aead"`
	WireExamples           map[string]string      `json:"wire_examples"`

	raw map[string]json.RawMessage
}

// Raw returns the undecoded JSON of a top-level section such as
// "signatures" or "keystore_software", or fails the test if it is absent.
func (f *File) Raw(t testing.TB, key string) json.RawMessage {
	t.Helper()
	r, ok := f.raw[key]
	if !ok {
		t.Fatalf("vectors.json has no top-level key %q", key)
	}
	return r
}

// EntryFieldsJSON is the "fields" object of an entry vector.
type EntryFieldsJSON struct {
	Version          uint32 `json:"version"`
	StreamID         string `json:"stream_id"`
	SessionID        string `json:"session_id"`
	BootID           string `json:"boot_id"`
	Seqno            uint64 `json:"seqno"`
	Timestamp        string `json:"timestamp_rfc3339"`
	EventType        string `json:"event_type"`
	Severity         string `json:"severity"`
	Producer         string `json:"producer"`
	PayloadEncoding  string `json:"payload_encoding"`
	PayloadHex       string `json:"payload_hex"`
	PrevEntryHashHex string `json:"prev_entry_hash_hex"`
}

// Wire converts the vector fields to wire.EntryFields.
func (e EntryFieldsJSON) Wire(t testing.TB) wire.EntryFields {
	t.Helper()
	sev, err := wire.ParseSeverity(e.Severity)
	if err != nil {
		t.Fatalf("vector severity: %v", err)
	}
	return wire.EntryFields{
		Version: e.Version, StreamID: e.StreamID, SessionID: e.SessionID, BootID: e.BootID,
		Seqno: e.Seqno, Timestamp: e.Timestamp, EventType: e.EventType, Severity: sev,
		Producer: e.Producer, PayloadEncoding: e.PayloadEncoding,
		Payload: Hex(t, e.PayloadHex), PrevEntryHash: Hex(t, e.PrevEntryHashHex),
	}
}

// Entry is one entry vector: fields, canonical CBOR and entry hash.
type Entry struct {
	Name         string          `json:"name"`
	CBORHex      string          `json:"cbor_hex"`
	CBORLen      int             `json:"cbor_len"`
	EntryHashHex string          `json:"entry_hash_hex"`
	Fields       EntryFieldsJSON `json:"fields"`
}

// Row returns the stored row of the entry (fields plus the vector's hash).
func (e Entry) Row(t testing.TB) wire.EntryRow {
	t.Helper()
	f := e.Fields.Wire(t)
	return wire.EntryRow{
		Seqno: f.Seqno, StreamID: f.StreamID, SessionID: f.SessionID, BootID: f.BootID,
		Timestamp: f.Timestamp, EventType: f.EventType, Severity: f.Severity, Producer: f.Producer,
		PayloadEncoding: f.PayloadEncoding, Payload: f.Payload, PrevEntryHash: f.PrevEntryHash,
		EntryHash: Hex(t, e.EntryHashHex),
	}
}

// SeverityVariants is the severity_variants section: the base entry (the
// first entries vector with seqno 1) under each severity.
type SeverityVariants struct {
	BaseEntry string `json:"base_entry"`
	Variants  []struct {
		Severity        string `json:"severity"`
		SeverityCBORHex string `json:"severity_cbor_hex"`
		EntryHashHex    string `json:"entry_hash_hex"`
	} `json:"variants"`
}

// Chain is the chain section: five entries over two streams.
type Chain struct {
	Entries []Entry `json:"entries"`
}

// Step is a proof step as written in the vectors.
type Step struct {
	SiblingHash string `json:"sibling_hash"`
	Right       bool   `json:"right"`
}

// MerkleProof is one proof of a merkle case.
type MerkleProof struct {
	LeafHex   string `json:"leaf_hex"`
	LeafIndex int    `json:"leaf_index"`
	Path      []Step `json:"path"`
	Role      string `json:"role"`
}

// MerkleCase is one tree of the merkle section.
type MerkleCase struct {
	LeavesHex []string      `json:"leaves_hex"`
	NLeaves   int           `json:"n_leaves"`
	Proofs    []MerkleProof `json:"proofs"`
	RootHex   string        `json:"root_hex"`
}

// Merkle is the merkle section.
type Merkle struct {
	Cases        []MerkleCase `json:"cases"`
	EmptyRootHex string       `json:"empty_root_hex"`
}

// InclusionProof is an inclusion proof of the segments section.
type InclusionProof struct {
	EntryHashHex  string `json:"entry_hash_hex"`
	MerkleRootHex string `json:"merkle_root_hex"`
	Path          []Step `json:"path"`
	SegmentID     uint64 `json:"segment_id"`
	Seqno         uint64 `json:"seqno"`
}

// Segment1 is segments_and_checkpoints.segment1.
type Segment1 struct {
	InclusionProofSeqno2  InclusionProof `json:"inclusion_proof_seqno2"`
	InclusionProofSeqno3  InclusionProof `json:"inclusion_proof_seqno3"`
	LastEntryHashHex      string         `json:"last_entry_hash_hex"`
	MerkleRootHex         string         `json:"merkle_root_hex"`
	PrevCheckpointHashHex string         `json:"prev_checkpoint_hash_hex"`
	SegmentEntries        [][2]uint64    `json:"segment_entries"`
	SegmentID             uint64         `json:"segment_id"`
	SeqEnd                uint64         `json:"seq_end"`
	SeqStart              uint64         `json:"seq_start"`
	StreamID              string         `json:"stream_id"`
}

// CheckpointFieldsJSON is the "fields" object of a checkpoint vector.
type CheckpointFieldsJSON struct {
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

// Wire converts the vector fields to wire.CheckpointFields.
func (c CheckpointFieldsJSON) Wire(t testing.TB) wire.CheckpointFields {
	t.Helper()
	return wire.CheckpointFields{
		Version: c.Version, StreamID: c.StreamID, SegmentID: c.SegmentID, SeqStart: c.SeqStart,
		SeqEnd: c.SeqEnd, MerkleRoot: Hex(t, c.MerkleRootHex), LastEntryHash: Hex(t, c.LastEntryHashHex),
		PrevCheckpointHash: Hex(t, c.PrevCheckpointHashHex), BootID: c.BootID, SessionID: c.SessionID,
		PolicyHash: Hex(t, c.PolicyHashHex), Timestamp: c.Timestamp,
	}
}

// Checkpoint is one checkpoint vector.
type Checkpoint struct {
	Name              string               `json:"name"`
	CBORHex           string               `json:"cbor_hex"`
	CBORLen           int                  `json:"cbor_len"`
	CheckpointHashHex string               `json:"checkpoint_hash_hex"`
	Fields            CheckpointFieldsJSON `json:"fields"`
}

// SegmentsAndCheckpoints is the segments_and_checkpoints section.
type SegmentsAndCheckpoints struct {
	CheckpointHashes map[string]string `json:"checkpoint_hashes"`
	Checkpoints      []Checkpoint      `json:"checkpoints"`
	Segment1         Segment1          `json:"segment1"`
}

// AEAD is the part of the aead section that concerns the entry encoding;
// the key-derivation vectors are available through File.Raw("aead").
type AEAD struct {
	EncryptedEntry Entry `json:"encrypted_entry"`
}

var (
	loadOnce sync.Once
	loaded   *File
	loadErr  error
)

// Load parses the embedded vectors.json once per test binary and returns it.
// A malformed file fails the test.
func Load(t testing.TB) *File {
	t.Helper()
	loadOnce.Do(func() {
		var f File
		if err := json.Unmarshal(vectordata.JSON, &f); err != nil {
			loadErr = err
			return
		}
		if err := json.Unmarshal(vectordata.JSON, &f.raw); err != nil {
			loadErr = err
			return
		}
		loaded = &f
	})
	if loadErr != nil {
		t.Fatalf("vectors: parse vectors.json: %v", loadErr)
	}
	return loaded
}

// Hex decodes a lowercase hex string from the vectors, failing the test on
// malformed input. The empty string decodes to an empty, non-nil slice.
func Hex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("vectors: bad hex %q: %v", s, err)
	}
	return b
}

// Section decodes the top-level section name of vectors.json into out.
func Section(t testing.TB, name string, out any) {
	t.Helper()
	if err := json.Unmarshal(Load(t).Raw(t, name), out); err != nil {
		t.Fatalf("vectors: section %q: %v", name, err)
	}
}
