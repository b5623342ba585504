package wire

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math"
	"slices"
	"unsafe"

	"github.com/fxamacker/cbor/v2"
)

// CBOR major types used by the canonical encoding (SPEC §4.1).
const (
	majorUint  byte = 0 << 5
	majorBytes byte = 2 << 5
	majorText  byte = 3 << 5
	majorArray byte = 4 << 5
)

// fieldCount is the number of elements of every entry and checkpoint array.
const fieldCount = 12

// appendHead appends a CBOR header of the given major type carrying v (an
// integer value or a length) in the shortest form of SPEC §4.1.
func appendHead(dst []byte, major byte, v uint64) []byte {
	switch {
	case v < 24:
		return append(dst, major|byte(v))
	case v <= math.MaxUint8:
		return append(dst, major|24, byte(v))
	case v <= math.MaxUint16:
		return append(dst, major|25, byte(v>>8), byte(v))
	case v <= math.MaxUint32:
		return append(dst, major|26, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
	default:
		return append(dst, major|27, byte(v>>56), byte(v>>48), byte(v>>40), byte(v>>32),
			byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
	}
}

func appendUint(dst []byte, v uint64) []byte { return appendHead(dst, majorUint, v) }

func appendText(dst []byte, s string) []byte {
	dst = appendHead(dst, majorText, uint64(len(s)))
	return append(dst, s...)
}

func appendBytes(dst []byte, b []byte) []byte {
	dst = appendHead(dst, majorBytes, uint64(len(b)))
	return append(dst, b...)
}

// EntrySize returns the exact length of EncodeEntry(f), so callers can size
// buffers without encoding twice.
func EntrySize(f EntryFields) int {
	return 1 + uintSize(uint64(f.Version)) + textSize(len(f.StreamID)) + textSize(len(f.SessionID)) +
		textSize(len(f.BootID)) + uintSize(f.Seqno) + textSize(len(f.Timestamp)) +
		textSize(len(f.EventType)) + textSize(len(f.Severity.String())) + textSize(len(f.Producer)) +
		textSize(len(f.PayloadEncoding)) + textSize(len(f.Payload)) + textSize(len(f.PrevEntryHash))
}

func uintSize(v uint64) int {
	switch {
	case v < 24:
		return 1
	case v <= math.MaxUint8:
		return 2
	case v <= math.MaxUint16:
		return 3
	case v <= math.MaxUint32:
		return 5
	default:
		return 9
	}
}

func textSize(n int) int { return uintSize(uint64(n)) + n }

// AppendEntry appends the canonical CBOR encoding of an entry (SPEC §4.1,
// §4.2) to dst and returns the extended slice: the array header 0x8c followed
// by version, stream_id, session_id, boot_id, seqno, timestamp_rfc3339,
// event_type, severity spelling, producer, payload_encoding, payload and
// prev_entry_hash, every integer and length in its shortest form. Hash
// lengths are not validated. A severity outside the eight defined values is
// encoded as its String form, which DecodeEntry rejects; the log never
// produces one.
func AppendEntry(dst []byte, f EntryFields) []byte {
	dst = append(dst, majorArray|fieldCount)
	dst = appendUint(dst, uint64(f.Version))
	dst = appendText(dst, f.StreamID)
	dst = appendText(dst, f.SessionID)
	dst = appendText(dst, f.BootID)
	dst = appendUint(dst, f.Seqno)
	dst = appendText(dst, f.Timestamp)
	dst = appendText(dst, f.EventType)
	dst = appendText(dst, f.Severity.String())
	dst = appendText(dst, f.Producer)
	dst = appendText(dst, f.PayloadEncoding)
	dst = appendBytes(dst, f.Payload)
	return appendBytes(dst, f.PrevEntryHash)
}

// EncodeEntry returns the canonical CBOR encoding of an entry (see
// AppendEntry). The entry hash is SHA-256 of these bytes (SPEC §5.1).
func EncodeEntry(f EntryFields) []byte {
	return AppendEntry(make([]byte, 0, EntrySize(f)), f)
}

// CheckpointSize returns the exact length of EncodeCheckpoint(f).
func CheckpointSize(f CheckpointFields) int {
	return 1 + uintSize(uint64(f.Version)) + textSize(len(f.StreamID)) + uintSize(f.SegmentID) +
		uintSize(f.SeqStart) + uintSize(f.SeqEnd) + textSize(len(f.MerkleRoot)) +
		textSize(len(f.LastEntryHash)) + textSize(len(f.PrevCheckpointHash)) + textSize(len(f.BootID)) +
		textSize(len(f.SessionID)) + textSize(len(f.PolicyHash)) + textSize(len(f.Timestamp))
}

// AppendCheckpoint appends the canonical CBOR encoding of a checkpoint (SPEC
// §4.3) to dst: 0x8c, version, stream_id, segment_id, seq_start, seq_end,
// merkle_root, last_entry_hash, prev_checkpoint_hash, boot_id, session_id,
// policy_hash, timestamp_rfc3339. Note boot_id precedes session_id here, the
// opposite of entries.
func AppendCheckpoint(dst []byte, f CheckpointFields) []byte {
	dst = append(dst, majorArray|fieldCount)
	dst = appendUint(dst, uint64(f.Version))
	dst = appendText(dst, f.StreamID)
	dst = appendUint(dst, f.SegmentID)
	dst = appendUint(dst, f.SeqStart)
	dst = appendUint(dst, f.SeqEnd)
	dst = appendBytes(dst, f.MerkleRoot)
	dst = appendBytes(dst, f.LastEntryHash)
	dst = appendBytes(dst, f.PrevCheckpointHash)
	dst = appendText(dst, f.BootID)
	dst = appendText(dst, f.SessionID)
	dst = appendBytes(dst, f.PolicyHash)
	return appendText(dst, f.Timestamp)
}

// EncodeCheckpoint returns the canonical CBOR encoding of a checkpoint (see
// AppendCheckpoint). The checkpoint hash is SHA-256 of these bytes.
func EncodeCheckpoint(f CheckpointFields) []byte {
	return AppendCheckpoint(make([]byte, 0, CheckpointSize(f)), f)
}

// entryArray is the decoding shape of an entry: a CBOR array of exactly 12
// elements whose element types are enforced by the field types.
type entryArray struct {
	_               struct{} `cbor:",toarray"`
	Version         uint32
	StreamID        string
	SessionID       string
	BootID          string
	Seqno           uint64
	Timestamp       string
	EventType       string
	Severity        string
	Producer        string
	PayloadEncoding string
	Payload         []byte
	PrevEntryHash   []byte
}

// checkpointArray is the decoding shape of a checkpoint.
type checkpointArray struct {
	_                  struct{} `cbor:",toarray"`
	Version            uint32
	StreamID           string
	SegmentID          uint64
	SeqStart           uint64
	SeqEnd             uint64
	MerkleRoot         []byte
	LastEntryHash      []byte
	PrevCheckpointHash []byte
	BootID             string
	SessionID          string
	PolicyHash         []byte
	Timestamp          string
}

// strictDec rejects indefinite lengths, tags and invalid UTF-8, and refuses
// to turn byte strings into text; canonical form is enforced afterwards by
// re-encoding and comparing bytes.
var strictDec = func() cbor.DecMode {
	dm, err := cbor.DecOptions{
		IndefLength:        cbor.IndefLengthForbidden,
		TagsMd:             cbor.TagsForbidden,
		UTF8:               cbor.UTF8RejectInvalid,
		ByteStringToString: cbor.ByteStringToStringForbidden,
		MaxNestedLevels:    4,
	}.DecMode()
	if err != nil {
		panic("wire: cbor decode options: " + err.Error())
	}
	return dm
}()

// maxErrorBytes bounds how much of a rejected input an error message shows.
const maxErrorBytes = 64

func decodeError(what string, b []byte, detail string) error {
	shown := b
	suffix := ""
	if len(shown) > maxErrorBytes {
		shown, suffix = shown[:maxErrorBytes], "..."
	}
	return Invalidf("decode %s (%d bytes, %s%s): %s", what, len(b), hex.EncodeToString(shown), suffix, detail)
}

// DecodeEntry parses the canonical CBOR of an entry (SPEC §4.2). It accepts
// only what EncodeEntry produces: a definite-length array of exactly 12
// elements with the right major types, valid UTF-8, no tags, no trailing
// bytes, shortest-form integers and lengths, and one of the eight severity
// spellings. Any other input is an *InvalidError.
func DecodeEntry(b []byte) (EntryFields, error) {
	var a entryArray
	if err := strictDec.Unmarshal(b, &a); err != nil {
		return EntryFields{}, decodeError("entry", b, err.Error())
	}
	sev, err := ParseSeverity(a.Severity)
	if err != nil {
		var inv *InvalidError
		if errors.As(err, &inv) {
			return EntryFields{}, decodeError("entry", b, inv.Msg)
		}
		return EntryFields{}, decodeError("entry", b, err.Error())
	}
	f := EntryFields{
		Version: a.Version, StreamID: a.StreamID, SessionID: a.SessionID, BootID: a.BootID,
		Seqno: a.Seqno, Timestamp: a.Timestamp, EventType: a.EventType, Severity: sev,
		Producer: a.Producer, PayloadEncoding: a.PayloadEncoding, Payload: nonNil(a.Payload),
		PrevEntryHash: nonNil(a.PrevEntryHash),
	}
	if !bytes.Equal(EncodeEntry(f), b) {
		return EntryFields{}, decodeError("entry", b, "not in canonical form (SPEC §4.1)")
	}
	return f, nil
}

// DecodeCheckpoint parses the canonical CBOR of a checkpoint (SPEC §4.3)
// with the same strictness as DecodeEntry. Any other input is an
// *InvalidError.
func DecodeCheckpoint(b []byte) (CheckpointFields, error) {
	var a checkpointArray
	if err := strictDec.Unmarshal(b, &a); err != nil {
		return CheckpointFields{}, decodeError("checkpoint", b, err.Error())
	}
	f := CheckpointFields{
		Version: a.Version, StreamID: a.StreamID, SegmentID: a.SegmentID, SeqStart: a.SeqStart,
		SeqEnd: a.SeqEnd, MerkleRoot: nonNil(a.MerkleRoot), LastEntryHash: nonNil(a.LastEntryHash),
		PrevCheckpointHash: nonNil(a.PrevCheckpointHash), BootID: a.BootID, SessionID: a.SessionID,
		PolicyHash: nonNil(a.PolicyHash), Timestamp: a.Timestamp,
	}
	if !bytes.Equal(EncodeCheckpoint(f), b) {
		return CheckpointFields{}, decodeError("checkpoint", b, "not in canonical form (SPEC §4.1)")
	}
	return f, nil
}

// AppendEntryRow appends the canonical CBOR encoding of r's entry (exactly
// AppendEntry(dst, r.Fields())) and re-points r's text and byte fields
// (all but Seqno, Severity and EntryHash) at their copies inside the
// appended bytes, so one copy of the content serves both as the row and as
// the bytes to hash. Those bytes must not be modified while r is in use.
// dst is grown once, before anything is written.
func AppendEntryRow(dst []byte, r *EntryRow) []byte {
	sev := r.Severity.String()
	n := 1 + uintSize(uint64(EntryVersion)) + textSize(len(r.StreamID)) + textSize(len(r.SessionID)) +
		textSize(len(r.BootID)) + uintSize(r.Seqno) + textSize(len(r.Timestamp)) + textSize(len(r.EventType)) +
		textSize(len(sev)) + textSize(len(r.Producer)) + textSize(len(r.PayloadEncoding)) + textSize(len(r.Payload)) +
		textSize(len(r.PrevEntryHash)) // EntrySize
	dst = slices.Grow(dst, n)
	start := len(dst)
	out := dst[start : start+n]
	text := func(k int, s string) (int, string) {
		k = putHead(out, k, majorText, uint64(len(s)))
		copy(out[k:], s)
		if len(s) == 0 {
			return k, ""
		}
		return k + len(s), unsafe.String(&out[k], len(s))
	}
	bytes := func(k int, b []byte) (int, []byte) {
		k = putHead(out, k, majorBytes, uint64(len(b)))
		copy(out[k:], b)
		return k + len(b), out[k : k+len(b) : k+len(b)]
	}
	out[0] = majorArray | fieldCount
	k := putHead(out, 1, majorUint, uint64(EntryVersion))
	k, r.StreamID = text(k, r.StreamID)
	k, r.SessionID = text(k, r.SessionID)
	k, r.BootID = text(k, r.BootID)
	k = putHead(out, k, majorUint, r.Seqno)
	k, r.Timestamp = text(k, r.Timestamp)
	k, r.EventType = text(k, r.EventType)
	k, _ = text(k, sev)
	k, r.Producer = text(k, r.Producer)
	k, r.PayloadEncoding = text(k, r.PayloadEncoding)
	k, r.Payload = bytes(k, r.Payload)
	_, r.PrevEntryHash = bytes(k, r.PrevEntryHash)
	return dst[:start+n]
}

// putHead writes the CBOR header of appendHead into b at k and returns the
// index after it; b has room.
func putHead(b []byte, k int, major byte, v uint64) int {
	switch {
	case v < 24:
		b[k] = major | byte(v)
		return k + 1
	case v <= math.MaxUint8:
		b[k], b[k+1] = major|24, byte(v)
		return k + 2
	case v <= math.MaxUint16:
		b[k] = major | 25
		binary.BigEndian.PutUint16(b[k+1:], uint16(v))
		return k + 3
	case v <= math.MaxUint32:
		b[k] = major | 26
		binary.BigEndian.PutUint32(b[k+1:], uint32(v))
		return k + 5
	default:
		b[k] = major | 27
		binary.BigEndian.PutUint64(b[k+1:], v)
		return k + 9
	}
}
