package cli

import (
	"encoding/json"
	"fmt"

	"github.com/securelog/securelog/pkg/producer"
	"github.com/securelog/securelog/pkg/securelog"
	"github.com/securelog/securelog/pkg/wire"
	"github.com/securelog/securelog/pkg/witness"
)

// The JSON views of the CLI (docs/cli.md): every hash, key and signature a
// lowercase hex string under one name without a _hex suffix. The wire
// shapes (JSON-RPC rows with byte arrays, the witness protocol's *_hex
// fields) stay as they are on the wire; these views are presentation only.

// checkpointView is a segment's checkpoint (docs/format.md §3.8).
type checkpointView struct {
	Version            uint32   `json:"version"`
	StreamID           string   `json:"stream_id"`
	SegmentID          uint64   `json:"segment_id"`
	SeqStart           uint64   `json:"seq_start"`
	SeqEnd             uint64   `json:"seq_end"`
	MerkleRoot         wire.Hex `json:"merkle_root"`
	LastEntryHash      wire.Hex `json:"last_entry_hash"`
	PrevCheckpointHash wire.Hex `json:"prev_checkpoint_hash"`
	BootID             string   `json:"boot_id"`
	SessionID          string   `json:"session_id"`
	PolicyHash         wire.Hex `json:"policy_hash"`
	Timestamp          string   `json:"timestamp_rfc3339"`
}

func toCheckpointView(f wire.CheckpointFields) checkpointView {
	return checkpointView{f.Version, f.StreamID, f.SegmentID, f.SeqStart, f.SeqEnd, f.MerkleRoot, f.LastEntryHash,
		f.PrevCheckpointHash, f.BootID, f.SessionID, f.PolicyHash, f.Timestamp}
}

// receiptView is a witness receipt (docs/format.md §11.2).
type receiptView struct {
	StreamID        string   `json:"stream_id"`
	SegmentID       uint64   `json:"segment_id"`
	CheckpointHash  string   `json:"checkpoint_hash"`
	Accepted        bool     `json:"accepted"`
	Status          string   `json:"status,omitempty"`
	Reason          *string  `json:"reason"`
	ReceivedAt      string   `json:"received_at_rfc3339"`
	WitnessIdentity string   `json:"witness_identity,omitempty"`
	Cosignature     string   `json:"cosignature,omitempty"`
	CurrentHead     *witView `json:"current_head,omitempty"`
}

// witView is a witness's recorded head of a stream.
type witView struct {
	StreamID       string `json:"stream_id"`
	SegmentID      uint64 `json:"segment_id"`
	SeqStart       uint64 `json:"seq_start"`
	SeqEnd         uint64 `json:"seq_end"`
	CheckpointHash string `json:"checkpoint_hash"`
	Signature      string `json:"signature"`
	SignerIdentity string `json:"signer_identity"`
	ReceivedAt     string `json:"received_at_rfc3339"`
}

func toReceiptView(r witness.Receipt) receiptView {
	v := receiptView{StreamID: r.StreamID, SegmentID: r.SegmentID, CheckpointHash: r.CheckpointHashHex, Accepted: r.Accepted,
		Status: r.Status, Reason: r.Reason, ReceivedAt: r.ReceivedAt, WitnessIdentity: r.WitnessIdentity, Cosignature: r.CosignatureHex}
	if h := r.CurrentHead; h != nil {
		v.CurrentHead = &witView{StreamID: h.StreamID, SegmentID: h.SegmentID, SeqStart: h.SeqStart, SeqEnd: h.SeqEnd,
			CheckpointHash: h.CheckpointHashHex, Signature: h.SignatureHex, SignerIdentity: h.SignerIdentity, ReceivedAt: h.ReceivedAt}
	}
	return v
}

// checkpointedView is what `publish --wait checkpointed --json` prints.
type checkpointedView struct {
	Level          string                   `json:"level"`
	Stream         string                   `json:"stream"`
	Seqno          uint64                   `json:"seqno"`
	EntryHash      wire.Hex                 `json:"entry_hash"`
	JSSeq          uint64                   `json:"js_seq,omitempty"`
	MsgID          string                   `json:"msg_id,omitempty"`
	Segment        segmentJSON              `json:"segment"`
	CheckpointHash wire.Hex                 `json:"checkpoint_hash,omitempty"`
	Proof          securelog.InclusionProof `json:"proof"`
	Receipts       []receiptView            `json:"receipts"`
}

func toCheckpointedView(res producer.Committed, ck producer.Checkpointed) checkpointedView {
	v := checkpointedView{Level: "checkpointed", Stream: res.Stream, Seqno: res.Seqno, EntryHash: res.EntryHash, JSSeq: res.JSSeq,
		MsgID: res.MsgID, Segment: toSegmentJSON(ck.Segment), CheckpointHash: ck.CheckpointHash, Proof: ck.Proof,
		Receipts: make([]receiptView, 0, len(ck.Receipts))}
	for _, r := range ck.Receipts {
		v.Receipts = append(v.Receipts, toReceiptView(r))
	}
	return v
}

// proofEntry is the entry a proof file carries: written as the CLI's entry
// view (hex), read in that shape or in the wire shape (byte arrays) that
// `prove --json` wrote before the output contract.
type proofEntry struct{ wire.EntryRow }

// MarshalJSON writes the CLI's entry view.
func (e proofEntry) MarshalJSON() ([]byte, error) { return json.Marshal(toEntryJSON(e.EntryRow)) }

// UnmarshalJSON reads the entry view or the wire shape.
func (e *proofEntry) UnmarshalJSON(b []byte) error {
	var probe struct {
		EntryHash json.RawMessage `json:"entry_hash"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return fmt.Errorf("proof entry: %w", err)
	}
	if len(probe.EntryHash) == 0 || probe.EntryHash[0] != '"' {
		return e.EntryRow.UnmarshalJSON(b)
	}
	var v entryJSON
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("proof entry: %w", err)
	}
	sev, err := wire.ParseSeverity(v.Severity)
	if err != nil {
		return fmt.Errorf("proof entry: %w", err)
	}
	if v.Version != wire.EntryVersion {
		return fmt.Errorf("proof entry: version %d, want %d", v.Version, wire.EntryVersion)
	}
	e.EntryRow = wire.EntryRow{Seqno: v.Seqno, StreamID: v.StreamID, SessionID: v.SessionID, BootID: v.BootID,
		Timestamp: v.Timestamp, EventType: v.EventType, Severity: sev, Producer: v.Producer, PayloadEncoding: v.PayloadEncoding,
		Payload: nonNilBytes(v.Payload), PrevEntryHash: nonNilBytes(v.PrevEntryHash), EntryHash: nonNilBytes(v.EntryHash)}
	return nil
}

func nonNilBytes(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// upView is what `up --json` prints once everything listens.
type upView struct {
	Event            string `json:"event"`
	Sync             string `json:"sync"`
	NATSURL          string `json:"nats_url"`
	HTTPAddr         string `json:"http_addr"`
	WitnessAddr      string `json:"witness_addr"`
	WitnessSubject   string `json:"witness_subject"`
	WitnessTrustFile string `json:"witness_trust_file"`
	DataDir          string `json:"data_dir"`
	StoreSpec        string `json:"store"`
	Keystore         string `json:"keystore"`
	KeysDir          string `json:"keys_dir"`
	Identity         string `json:"identity"`
	TrustFile        string `json:"trust_file"`
	HeadFile         string `json:"head_file"`
	// AuthDir holds the generated credentials ("" with --insecure);
	// Insecure says that the listeners accept anyone.
	AuthDir  string `json:"auth_dir"`
	Insecure bool   `json:"insecure"`
}
