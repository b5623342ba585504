package wire

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"
)

// NATS subjects and message envelopes of the JetStream pipeline (DESIGN.md
// "Data flow", docs/events.md). Every subject ends in the audit stream name,
// which must therefore be one NATS subject token (see CheckStreamToken).
//
//	securelog.in.<stream>          event JSON (EventMsg), JetStream stream SECURELOG_IN
//	securelog.append.<stream>      request/reply append: EventMsg → AppendReply
//	securelog.close.<stream>       request/reply segment close: {} → CloseReply
//	securelog.committed.<stream>   CommitReceipt, one per ingester batch and stream
//	securelog.appended.<stream>    AppendedMsg, one per stream for the batches of up to 50 ms, JetStream stream SECURELOG_APPENDED
//	securelog.sealed.<stream>      SegmentInfo of a newly closed segment, JetStream stream SECURELOG_SEALED
//	securelog.checkpoint.<stream>  CheckpointMsg after signing (+ witnessing)
//	securelog.alert.<stream>       AlertMsg (witness refusal, rollback, ...)
//	securelog.dlq.<stream>         DLQMsg: a rejected event with the reason
const (
	// InStream is the JetStream stream that holds incoming events.
	InStream = "SECURELOG_IN"
	// InSubjects is the subject filter of InStream.
	InSubjects = "securelog.in.>"
	// DLQStream is the JetStream stream that keeps dead-lettered events.
	DLQStream = "SECURELOG_DLQ"
	// DLQSubjects is the subject filter of DLQStream.
	DLQSubjects = "securelog.dlq.>"
	// AppendedStream is the JetStream stream (a work queue) that keeps the
	// ingester's appended announcements until the sealer's durable consumer
	// acknowledges them.
	AppendedStream = "SECURELOG_APPENDED"
	// AppendedSubjects is the subject filter of AppendedStream.
	AppendedSubjects = "securelog.appended.>"
	// SealedStream is the JetStream stream (a work queue) that keeps the
	// ingester's sealed announcements until the signer's durable consumer
	// acknowledges them.
	SealedStream = "SECURELOG_SEALED"
	// SealedSubjects is the subject filter of SealedStream.
	SealedSubjects = "securelog.sealed.>"
	// MsgIDHeader is the JetStream de-duplication header producers set.
	MsgIDHeader = "Nats-Msg-Id"

	subjIn         = "securelog.in."
	subjAppend     = "securelog.append."
	subjClose      = "securelog.close."
	subjCommitted  = "securelog.committed."
	subjAppended   = "securelog.appended."
	subjSealed     = "securelog.sealed."
	subjCheckpoint = "securelog.checkpoint."
	subjAlert      = "securelog.alert."
	subjDLQ        = "securelog.dlq."
)

// Subject kinds for SubjectFor and StreamOf.
const (
	KindIn         = subjIn
	KindAppend     = subjAppend
	KindClose      = subjClose
	KindCommitted  = subjCommitted
	KindAppended   = subjAppended
	KindSealed     = subjSealed
	KindCheckpoint = subjCheckpoint
	KindAlert      = subjAlert
	KindDLQ        = subjDLQ
)

// SubjectFor returns the subject of kind (a Kind* constant) for stream.
func SubjectFor(kind, stream string) string { return kind + stream }

// WildcardFor returns the subscription filter of kind over all streams.
func WildcardFor(kind string) string { return kind + ">" }

// StreamOf returns the stream token of a subject of kind, or false if the
// subject is not of that kind or its stream is not one valid token.
func StreamOf(kind, subject string) (string, bool) {
	s, ok := strings.CutPrefix(subject, kind)
	if !ok || CheckStreamToken(s) != nil {
		return "", false
	}
	return s, true
}

// CheckStreamToken reports whether stream can be the last token of a
// pipeline subject: non-empty, at most 255 bytes, valid UTF-8, and without
// '.', '*', '>', whitespace (ASCII or Unicode), control characters or
// format characters (bidi overrides, zero-width). It is the one stream-name
// rule of the producer, the pipeline and the CLI's publish.
func CheckStreamToken(stream string) error {
	switch {
	case stream == "":
		return Invalidf("stream name is empty")
	case len(stream) > 255:
		return Invalidf("stream name %q is longer than 255 bytes", stream[:32]+"…")
	case !utf8.ValidString(stream):
		return Invalidf("stream name %q is not valid UTF-8", stream)
	}
	for _, r := range stream {
		if r == '.' || r == '*' || r == '>' || r <= ' ' || r == 0x7f {
			return Invalidf("stream name %q cannot be a NATS subject token (no '.', '*', '>', spaces or control characters)", stream)
		}
		// Other control, format (bidi overrides, zero-width) and space
		// characters would let one stream name display as another.
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || unicode.IsSpace(r) || unicode.Is(unicode.Zs, r) {
			return Invalidf("stream name %q contains the invisible or control character U+%04X (no spaces, control, bidi or zero-width characters)", stream, r)
		}
	}
	return nil
}

// EventMsg is the JSON event producers publish on securelog.in.<stream> and
// send to securelog.append.<stream>. Exactly one of Payload (UTF-8 text) and
// PayloadB64 (standard base64) may be set; neither means an empty payload.
// PayloadEncoding, if set, is stored verbatim as the entry's
// payload_encoding (public streams only); absent means "cbor".
type EventMsg struct {
	Type            string  `json:"type"`
	Severity        string  `json:"severity"`
	Producer        string  `json:"producer"`
	Payload         *string `json:"payload,omitempty"`
	PayloadB64      *string `json:"payload_b64,omitempty"`
	PayloadEncoding *string `json:"payload_encoding,omitempty"`
}

// ParsedEvent is a validated EventMsg.
type ParsedEvent struct {
	Type     string
	Severity Severity
	Producer string
	Payload  []byte
	Encoding *string
}

// ParseEventMsg decodes and validates an event: well-formed JSON object,
// known severity, at most one payload form, valid base64, and a payload of
// at most maxPayload bytes (0 = no limit). Errors are *InvalidError.
//
// Invalid UTF-8 anywhere in the event is rejected (naming the byte offset):
// encoding/json would silently replace it by U+FFFD, storing a payload the
// producer did not send. Binary payloads go in payload_b64.
func ParseEventMsg(data []byte, maxPayload int) (ParsedEvent, error) {
	if !utf8.Valid(data) {
		return ParsedEvent{}, Invalidf("event is not valid UTF-8 (first bad byte at offset %d); send binary payloads as payload_b64", invalidUTF8At(data))
	}
	var m EventMsg
	if err := json.Unmarshal(data, &m); err != nil {
		return ParsedEvent{}, Invalidf("event is not a JSON object {type, severity, producer, payload|payload_b64}: %v", err)
	}
	sev, err := ParseSeverity(m.Severity)
	if err != nil {
		return ParsedEvent{}, err
	}
	ev := ParsedEvent{Type: m.Type, Severity: sev, Producer: m.Producer, Encoding: m.PayloadEncoding, Payload: []byte{}}
	switch {
	case m.Payload != nil && m.PayloadB64 != nil:
		return ParsedEvent{}, Invalidf("event has both payload and payload_b64; send one")
	case m.Payload != nil:
		ev.Payload = []byte(*m.Payload)
	case m.PayloadB64 != nil:
		b, err := base64.StdEncoding.DecodeString(*m.PayloadB64)
		if err != nil {
			return ParsedEvent{}, Invalidf("payload_b64 is not standard base64: %v", err)
		}
		ev.Payload = b
	}
	if maxPayload > 0 && len(ev.Payload) > maxPayload {
		return ParsedEvent{}, Invalidf("payload is %d bytes, limit is %d", len(ev.Payload), maxPayload)
	}
	return ev, nil
}

// NewEventMsg builds the JSON event for a payload: text if it is valid UTF-8,
// else base64.
func NewEventMsg(eventType string, sev Severity, producer string, payload []byte) EventMsg {
	m := EventMsg{Type: eventType, Severity: sev.String(), Producer: producer}
	if utf8.Valid(payload) {
		s := string(payload)
		m.Payload = &s
	} else {
		s := base64.StdEncoding.EncodeToString(payload)
		m.PayloadB64 = &s
	}
	return m
}

// CommitItem is the fate of one published event in a commit receipt: a
// seqno and entry hash once committed, or the rejection reason (the event
// went to the dead-letter subject and will never be committed).
type CommitItem struct {
	MsgID     string `json:"msg_id,omitempty"`
	JSSeq     uint64 `json:"js_seq,omitempty"`
	Seqno     uint64 `json:"seqno,omitempty"`
	EntryHash Hex    `json:"entry_hash,omitempty"`
	Error     string `json:"error,omitempty"`
}

// CommitReceipt is published on securelog.committed.<stream> after the
// ingester's batch holding these events is fsynced.
type CommitReceipt struct {
	Stream string       `json:"stream"`
	Items  []CommitItem `json:"items"`
}

// AppendedMsg tells the sealer that entries were appended to a stream:
// Count entries from FirstSeqno to LastSeqno (seqnos are global, so other
// streams' entries may lie between them), of one or several batches.
type AppendedMsg struct {
	Stream        string `json:"stream"`
	Count         int    `json:"count"`
	FirstSeqno    uint64 `json:"first_seqno"`
	LastSeqno     uint64 `json:"last_seqno"`
	LastEntryHash Hex    `json:"last_entry_hash"`
}

// AppendReply answers a request/reply append: a seqno and entry hash after
// the fsync, or an error with its code (ErrorCode).
type AppendReply struct {
	Seqno     uint64 `json:"seqno,omitempty"`
	EntryHash Hex    `json:"entry_hash,omitempty"`
	Error     string `json:"error,omitempty"`
	Code      string `json:"code,omitempty"`
}

// SegmentInfo is a closed segment in pipeline messages (hashes as hex).
type SegmentInfo struct {
	Stream             string `json:"stream"`
	SegmentID          uint64 `json:"segment_id"`
	SeqStart           uint64 `json:"seq_start"`
	SeqEnd             uint64 `json:"seq_end"`
	MerkleRoot         Hex    `json:"merkle_root"`
	LastEntryHash      Hex    `json:"last_entry_hash"`
	PrevCheckpointHash Hex    `json:"prev_checkpoint_hash"`
	ClosedAt           string `json:"closed_at"`
}

// SegmentInfoOf converts a segment row.
func SegmentInfoOf(s SegmentRow) SegmentInfo {
	return SegmentInfo{Stream: s.StreamID, SegmentID: s.SegmentID, SeqStart: s.SeqStart, SeqEnd: s.SeqEnd,
		MerkleRoot: s.MerkleRoot, LastEntryHash: s.LastEntryHash, PrevCheckpointHash: s.PrevCheckpointHash, ClosedAt: s.ClosedAt}
}

// CloseReply answers a segment-close request: the new segment, or an error
// with its code ("empty-segment" when there was nothing to close).
type CloseReply struct {
	Segment *SegmentInfo `json:"segment,omitempty"`
	Error   string       `json:"error,omitempty"`
	Code    string       `json:"code,omitempty"`
}

// CheckpointMsg is published on securelog.checkpoint.<stream> once a
// segment is signed and submitted to the configured witnesses. Receipts
// are the witnesses' answers as JSON (witness.Receipt).
type CheckpointMsg struct {
	Stream         string            `json:"stream"`
	SegmentID      uint64            `json:"segment_id"`
	SeqStart       uint64            `json:"seq_start"`
	SeqEnd         uint64            `json:"seq_end"`
	CheckpointHash Hex               `json:"checkpoint_hash"`
	Signature      Hex               `json:"signature"`
	SignerIdentity string            `json:"signer_identity"`
	Receipts       []json.RawMessage `json:"receipts,omitempty"`
}

// AlertMsg is published on securelog.alert.<stream>.
type AlertMsg struct {
	Stream    string `json:"stream"`
	Kind      string `json:"kind"`
	SegmentID uint64 `json:"segment_id,omitempty"`
	Message   string `json:"message"`
	Source    string `json:"source"`
	Time      string `json:"time"`
}

// DLQMsg is published on securelog.dlq.<stream> for an event that cannot be
// committed.
type DLQMsg struct {
	Stream string `json:"stream"`
	MsgID  string `json:"msg_id,omitempty"`
	JSSeq  uint64 `json:"js_seq,omitempty"`
	Reason string `json:"reason"`
	// Data is the original message body (base64 in JSON).
	Data []byte `json:"data"`
}

// ErrorCode names the kind of a log error for pipeline replies:
// "invalid", "storage", "empty-segment", "stream-not-found",
// "chain-broken", "encoding", "segment-not-found", "wrong-partition" (the
// stream belongs to another partition) or "error".
func ErrorCode(err error) string {
	var (
		inv *InvalidError
		sto *StorageError
		emp *EmptySegmentError
		snf *StreamNotFoundError
		cb  *ChainBrokenError
		enc *EncodingError
		sg  *SegmentNotFoundError
		wp  *PartitionConflictError
	)
	switch {
	case errors.As(err, &wp):
		return "wrong-partition"
	case errors.As(err, &emp):
		return "empty-segment"
	case errors.As(err, &inv):
		return "invalid"
	case errors.As(err, &snf):
		return "stream-not-found"
	case errors.As(err, &cb):
		return "chain-broken"
	case errors.As(err, &enc):
		return "encoding"
	case errors.As(err, &sg):
		return "segment-not-found"
	case errors.As(err, &sto):
		return "storage"
	}
	return "error"
}

// invalidUTF8At returns the offset of the first byte of b that does not
// start a valid UTF-8 sequence (len(b) if there is none).
func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return len(b)
}
