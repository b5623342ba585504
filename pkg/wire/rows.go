package wire

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// EntryRow is the stored entry ("secure-log-row", SPEC §3.3). Field order is
// the wire order of SPEC §16.3. Seqno 0 means "absent" (seqnos start at 1) and
// is written as JSON null.
type EntryRow struct {
	Seqno           uint64
	StreamID        string
	SessionID       string
	BootID          string
	Timestamp       string
	EventType       string
	Severity        Severity
	Producer        string
	PayloadEncoding string
	Payload         []byte
	PrevEntryHash   []byte
	EntryHash       []byte
}

type entryRowJSON struct {
	Seqno           *uint64  `json:"seqno"`
	StreamID        string   `json:"stream_id"`
	SessionID       string   `json:"session_id"`
	BootID          string   `json:"boot_id"`
	Timestamp       string   `json:"timestamp_rfc3339"`
	EventType       string   `json:"event_type"`
	Severity        Severity `json:"severity"`
	Producer        string   `json:"producer"`
	PayloadEncoding string   `json:"payload_encoding"`
	Payload         Bytes    `json:"payload"`
	PrevEntryHash   Bytes    `json:"prev_entry_hash"`
	EntryHash       Bytes    `json:"entry_hash"`
}

// MarshalJSON writes the wire shape of SPEC §16.3.
func (r EntryRow) MarshalJSON() ([]byte, error) {
	return marshalNoEscape(entryRowJSON{
		Seqno: optU64(r.Seqno), StreamID: r.StreamID, SessionID: r.SessionID, BootID: r.BootID,
		Timestamp: r.Timestamp, EventType: r.EventType, Severity: r.Severity, Producer: r.Producer,
		PayloadEncoding: r.PayloadEncoding, Payload: r.Payload, PrevEntryHash: r.PrevEntryHash,
		EntryHash: r.EntryHash,
	})
}

// UnmarshalJSON reads the wire shape; unknown fields are ignored.
func (r *EntryRow) UnmarshalJSON(b []byte) error {
	var j entryRowJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("entry row: %w", err)
	}
	*r = EntryRow{
		Seqno: derefU64(j.Seqno), StreamID: j.StreamID, SessionID: j.SessionID, BootID: j.BootID,
		Timestamp: j.Timestamp, EventType: j.EventType, Severity: j.Severity, Producer: j.Producer,
		PayloadEncoding: j.PayloadEncoding, Payload: nonNil(j.Payload), PrevEntryHash: nonNil(j.PrevEntryHash),
		EntryHash: nonNil(j.EntryHash),
	}
	return nil
}

// Fields returns the logical entry (SPEC §3.2) of the row, with version 1.
func (r EntryRow) Fields() EntryFields {
	return EntryFields{
		Version: EntryVersion, StreamID: r.StreamID, SessionID: r.SessionID, BootID: r.BootID,
		Seqno: r.Seqno, Timestamp: r.Timestamp, EventType: r.EventType, Severity: r.Severity,
		Producer: r.Producer, PayloadEncoding: r.PayloadEncoding, Payload: r.Payload,
		PrevEntryHash: r.PrevEntryHash,
	}
}

// Clone returns a deep copy of the row.
func (r EntryRow) Clone() EntryRow {
	r.Payload = clone(r.Payload)
	r.PrevEntryHash = clone(r.PrevEntryHash)
	r.EntryHash = clone(r.EntryHash)
	return r
}

// SegmentRow is a closed segment (SPEC §3.6). SegmentID 0 means "absent"
// (ids start at 1). Signature nil means unsigned; SignerIdentity "" with
// HasSigner false means absent.
type SegmentRow struct {
	SegmentID          uint64
	StreamID           string
	SeqStart           uint64
	SeqEnd             uint64
	MerkleRoot         []byte
	LastEntryHash      []byte
	PrevCheckpointHash []byte
	ClosedAt           string
	Signature          []byte // nil = absent
	SignerIdentity     *string
}

type segmentRowJSON struct {
	SegmentID          *uint64  `json:"segment_id"`
	StreamID           string   `json:"stream_id"`
	SeqStart           uint64   `json:"seq_start"`
	SeqEnd             uint64   `json:"seq_end"`
	MerkleRoot         Bytes    `json:"merkle_root"`
	LastEntryHash      Bytes    `json:"last_entry_hash"`
	PrevCheckpointHash Bytes    `json:"prev_checkpoint_hash"`
	ClosedAt           string   `json:"closed_at_rfc3339"`
	Signature          OptBytes `json:"signature"`
	SignerIdentity     *string  `json:"signer_identity"`
}

// MarshalJSON writes the wire shape of SPEC §16.3.
func (s SegmentRow) MarshalJSON() ([]byte, error) {
	return marshalNoEscape(segmentRowJSON{
		SegmentID: optU64(s.SegmentID), StreamID: s.StreamID, SeqStart: s.SeqStart, SeqEnd: s.SeqEnd,
		MerkleRoot: s.MerkleRoot, LastEntryHash: s.LastEntryHash, PrevCheckpointHash: s.PrevCheckpointHash,
		ClosedAt: s.ClosedAt, Signature: s.Signature, SignerIdentity: s.SignerIdentity,
	})
}

// UnmarshalJSON reads the wire shape; unknown fields are ignored.
func (s *SegmentRow) UnmarshalJSON(b []byte) error {
	var j segmentRowJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("segment row: %w", err)
	}
	*s = SegmentRow{
		SegmentID: derefU64(j.SegmentID), StreamID: j.StreamID, SeqStart: j.SeqStart, SeqEnd: j.SeqEnd,
		MerkleRoot: nonNil(j.MerkleRoot), LastEntryHash: nonNil(j.LastEntryHash),
		PrevCheckpointHash: nonNil(j.PrevCheckpointHash), ClosedAt: j.ClosedAt,
		Signature: []byte(j.Signature), SignerIdentity: j.SignerIdentity,
	}
	return nil
}

// Signed reports whether the segment carries a non-empty signature (the
// caller-facing rule of SPEC §3.6: an empty signature counts as absent).
func (s SegmentRow) Signed() bool { return len(s.Signature) > 0 }

// Signer returns the signer identity, or "" if absent.
func (s SegmentRow) Signer() string {
	if s.SignerIdentity == nil {
		return ""
	}
	return *s.SignerIdentity
}

// Clone returns a deep copy of the row.
func (s SegmentRow) Clone() SegmentRow {
	s.MerkleRoot = clone(s.MerkleRoot)
	s.LastEntryHash = clone(s.LastEntryHash)
	s.PrevCheckpointHash = clone(s.PrevCheckpointHash)
	s.Signature = clone(s.Signature)
	if s.SignerIdentity != nil {
		v := *s.SignerIdentity
		s.SignerIdentity = &v
	}
	return s
}

// SegmentEntry is a segment membership record (seqno, leaf_index), written
// on the wire as a two-element array.
type SegmentEntry struct {
	Seqno     uint64
	LeafIndex uint64
}

// MarshalJSON writes [seqno, leaf_index].
func (e SegmentEntry) MarshalJSON() ([]byte, error) {
	return json.Marshal([2]uint64{e.Seqno, e.LeafIndex})
}

// UnmarshalJSON reads [seqno, leaf_index].
func (e *SegmentEntry) UnmarshalJSON(b []byte) error {
	var a []uint64
	if err := json.Unmarshal(b, &a); err != nil {
		return fmt.Errorf("segment entry: %w", err)
	}
	if len(a) != 2 {
		return fmt.Errorf("segment entry: want [seqno, leaf_index], got %d elements", len(a))
	}
	e.Seqno, e.LeafIndex = a[0], a[1]
	return nil
}

// StreamRow is a stream metadata row (SPEC §3.5).
type StreamRow struct {
	Name         string  `json:"name"`
	Tier         string  `json:"tier"`
	Description  *string `json:"description"`
	CreatedAt    string  `json:"created_at_rfc3339"`
	DeprecatedAt *string `json:"deprecated_at_rfc3339"`
}

// Clone returns a deep copy of the row.
func (s StreamRow) Clone() StreamRow {
	if s.Description != nil {
		v := *s.Description
		s.Description = &v
	}
	if s.DeprecatedAt != nil {
		v := *s.DeprecatedAt
		s.DeprecatedAt = &v
	}
	return s
}

// WitnessRow is a witness log row (SPEC §3.9). ID 0 means "absent".
type WitnessRow struct {
	ID                int64
	StreamID          string
	SegmentID         uint64
	SeqStart          uint64
	SeqEnd            uint64
	CheckpointHashHex string
	SignatureHex      string
	SignerIdentity    string
	ReceivedAt        string
}

type witnessRowJSON struct {
	ID                *int64 `json:"id"`
	StreamID          string `json:"stream_id"`
	SegmentID         uint64 `json:"segment_id"`
	SeqStart          uint64 `json:"seq_start"`
	SeqEnd            uint64 `json:"seq_end"`
	CheckpointHashHex string `json:"checkpoint_hash_hex"`
	SignatureHex      string `json:"signature_hex"`
	SignerIdentity    string `json:"signer_identity"`
	ReceivedAt        string `json:"received_at_rfc3339"`
}

// MarshalJSON writes the wire shape of SPEC §16.3.
func (w WitnessRow) MarshalJSON() ([]byte, error) {
	var id *int64
	if w.ID != 0 {
		id = &w.ID
	}
	return marshalNoEscape(witnessRowJSON{id, w.StreamID, w.SegmentID, w.SeqStart, w.SeqEnd,
		w.CheckpointHashHex, w.SignatureHex, w.SignerIdentity, w.ReceivedAt})
}

// UnmarshalJSON reads the wire shape; unknown fields are ignored.
func (w *WitnessRow) UnmarshalJSON(b []byte) error {
	var j witnessRowJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("witness row: %w", err)
	}
	var id int64
	if j.ID != nil {
		id = *j.ID
	}
	*w = WitnessRow{id, j.StreamID, j.SegmentID, j.SeqStart, j.SeqEnd,
		j.CheckpointHashHex, j.SignatureHex, j.SignerIdentity, j.ReceivedAt}
	return nil
}

func optU64(v uint64) *uint64 {
	if v == 0 {
		return nil
	}
	return &v
}

func derefU64(p *uint64) uint64 {
	if p == nil {
		return 0
	}
	return *p
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}

// marshalNoEscape is json.Marshal without HTML escaping of <, > and &, so
// rows are byte-identical to what the reference writes.
func marshalNoEscape(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
