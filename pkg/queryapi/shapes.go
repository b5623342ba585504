package queryapi

import (
	"encoding/hex"

	"github.com/securelog/securelog/pkg/query"
	"github.com/securelog/securelog/pkg/securelog"
	"github.com/securelog/securelog/pkg/wire"
)

// Entry is the JSON shape of an entry. Hashes are lowercase hex. Payload is
// text when the stored bytes are valid UTF-8, else base64; a sealed payload
// (payload_encoding "aead") is the ciphertext unless Opened.
type Entry struct {
	Seqno           uint64        `json:"seqno"`
	Stream          string        `json:"stream"`
	Timestamp       string        `json:"timestamp"`
	EventType       string        `json:"event_type"`
	Severity        string        `json:"severity"`
	Producer        string        `json:"producer"`
	SessionID       string        `json:"session_id"`
	BootID          string        `json:"boot_id"`
	PayloadEncoding string        `json:"payload_encoding"`
	Payload         query.Payload `json:"payload"`
	Sealed          bool          `json:"sealed"`
	Opened          bool          `json:"opened"`
	PrevEntryHash   wire.Hex      `json:"prev_entry_hash"`
	EntryHash       wire.Hex      `json:"entry_hash"`
}

// EntryOf renders a stored row (payload as stored).
func EntryOf(r wire.EntryRow) Entry {
	return Entry{
		Seqno: r.Seqno, Stream: r.StreamID, Timestamp: r.Timestamp, EventType: r.EventType,
		Severity: r.Severity.String(), Producer: r.Producer, SessionID: r.SessionID, BootID: r.BootID,
		PayloadEncoding: r.PayloadEncoding, Payload: query.RenderPayload(r.Payload),
		Sealed: r.PayloadEncoding == wire.AEADEncoding, PrevEntryHash: r.PrevEntryHash, EntryHash: r.EntryHash,
	}
}

// Page is the answer of GET /v1/streams/{stream}/entries. Next continues
// the query (pass it as after=); it is null on the last page.
type Page struct {
	Stream  string  `json:"stream"`
	Order   string  `json:"order"`
	Limit   int     `json:"limit"`
	Entries []Entry `json:"entries"`
	Next    *string `json:"next"`
}

// Segment is the JSON shape of a segment.
type Segment struct {
	SegmentID          uint64   `json:"segment_id"`
	Stream             string   `json:"stream"`
	SeqStart           uint64   `json:"seq_start"`
	SeqEnd             uint64   `json:"seq_end"`
	MerkleRoot         wire.Hex `json:"merkle_root"`
	LastEntryHash      wire.Hex `json:"last_entry_hash"`
	PrevCheckpointHash wire.Hex `json:"prev_checkpoint_hash"`
	ClosedAt           string   `json:"closed_at"`
	Signed             bool     `json:"signed"`
	// Signature is hex, null while unsigned.
	Signature      *string `json:"signature"`
	SignerIdentity *string `json:"signer_identity"`
}

// SegmentOf renders a segment row.
func SegmentOf(s wire.SegmentRow) Segment {
	var sig *string
	if s.Signed() {
		h := hex.EncodeToString(s.Signature)
		sig = &h
	}
	return Segment{
		SegmentID: s.SegmentID, Stream: s.StreamID, SeqStart: s.SeqStart, SeqEnd: s.SeqEnd,
		MerkleRoot: s.MerkleRoot, LastEntryHash: s.LastEntryHash, PrevCheckpointHash: s.PrevCheckpointHash,
		ClosedAt: s.ClosedAt, Signed: s.Signed(), Signature: sig, SignerIdentity: s.SignerIdentity,
	}
}

// Segments is the answer of GET /v1/streams/{stream}/segments, newest
// first. Next (a segment id, pass it as before=) is null on the last page.
type Segments struct {
	Stream   string    `json:"stream"`
	Segments []Segment `json:"segments"`
	Next     *uint64   `json:"next"`
}

// EntryDetail is the answer of GET /v1/entries/{seqno}: the entry, its
// segment and inclusion proof once sealed (both null before).
type EntryDetail struct {
	Entry   Entry                     `json:"entry"`
	Segment *Segment                  `json:"segment"`
	Proof   *securelog.InclusionProof `json:"proof"`
}

// Witness is the latest witness cosignature of a stream.
type Witness struct {
	SegmentID      uint64 `json:"segment_id"`
	SeqEnd         uint64 `json:"seq_end"`
	CheckpointHash string `json:"checkpoint_hash"`
	SignerIdentity string `json:"signer_identity"`
	ReceivedAt     string `json:"received_at"`
}

// Stream is one element of GET /v1/streams.
type Stream struct {
	Name         string   `json:"name"`
	Tier         string   `json:"tier"`
	Description  *string  `json:"description"`
	CreatedAt    string   `json:"created_at"`
	DeprecatedAt *string  `json:"deprecated_at"`
	Entries      uint64   `json:"entries"`
	HeadSeqno    *uint64  `json:"head_seqno"`
	LastSegment  *Segment `json:"last_segment"`
	// LastSigned is the newest signed segment (its checkpoint is signed).
	LastSigned *Segment `json:"last_signed_segment"`
	// LastCheckpointHash is the hash of LastSigned's checkpoint (hex; the
	// value witnesses cosign), null if none.
	LastCheckpointHash *string `json:"last_checkpoint_hash"`
	// Witness is the newest cosignature, null if none; WitnessStatus is
	// "none", "current" (it covers LastSigned) or "behind".
	Witness       *Witness `json:"witness"`
	WitnessStatus string   `json:"witness_status"`
}

// Streams is the answer of GET /v1/streams.
type Streams struct {
	Streams []Stream `json:"streams"`
}

// Alerts is the answer of GET /v1/alerts: alerts seen by this server
// since Since (it keeps the most recent ones in memory), newest first.
type Alerts struct {
	Since  string          `json:"since"`
	Alerts []wire.AlertMsg `json:"alerts"`
}

// DLQEntry is a dead-lettered event.
type DLQEntry struct {
	Seq    uint64        `json:"seq"`
	Time   string        `json:"time"`
	Stream string        `json:"stream"`
	MsgID  string        `json:"msg_id,omitempty"`
	JSSeq  uint64        `json:"js_seq,omitempty"`
	Reason string        `json:"reason"`
	Data   query.Payload `json:"data"`
}

// DLQ is the answer of GET /v1/dlq, newest first. Next (a DLQ sequence,
// pass it as before=) is null on the last page.
type DLQ struct {
	Entries []DLQEntry `json:"entries"`
	Next    *uint64    `json:"next"`
}

// ErrorBody is the JSON body of every error answer.
type ErrorBody struct {
	Error ErrorInfo `json:"error"`
}

// ErrorInfo describes an error: the HTTP status, a short code and the
// message naming the bad input.
type ErrorInfo struct {
	Status  int    `json:"status"`
	Code    string `json:"code"`
	Message string `json:"message"`
}
