package pebblestore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unsafe"

	"github.com/securelog/securelog/pkg/wire"
)

// Row encoding (values). Every value starts with the format byte
// codecVersion (1), then the row's fields in wire order:
//
//	uvarint   unsigned integers (seqno, ids, severity, seq_start, ...)
//	varint    the witness id (signed)
//	bytes     uvarint length ‖ raw bytes (text is UTF-8 bytes, verbatim)
//	opt       0x00 (absent) | 0x01 ‖ bytes (present, possibly empty)
//
//	entry:   seqno stream_id session_id boot_id timestamp event_type severity
//	         producer payload_encoding payload prev_entry_hash entry_hash
//	segment: segment_id stream_id seq_start seq_end merkle_root last_entry_hash
//	         prev_checkpoint_hash closed_at opt(signature) opt(signer_identity)
//	witness: id stream_id segment_id seq_start seq_end checkpoint_hash_hex
//	         signature_hex signer_identity received_at
//	stream:  name tier opt(description) created_at opt(deprecated_at)
//
// Hashes, payloads and timestamps are stored verbatim. Decoding copies every
// byte slice (pebble's buffers are only valid until the next iterator step)
// and rejects trailing bytes.
const codecVersion = 1

var errTruncated = errors.New("truncated value")

type encoder struct{ b []byte }

func (e *encoder) uvarint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) varint(v int64)   { e.b = binary.AppendVarint(e.b, v) }
func (e *encoder) bytes(v []byte)   { e.uvarint(uint64(len(v))); e.b = append(e.b, v...) }
func (e *encoder) str(v string)     { e.uvarint(uint64(len(v))); e.b = append(e.b, v...) }

func (e *encoder) optBytes(v []byte) {
	if v == nil {
		e.b = append(e.b, 0)
		return
	}
	e.b = append(e.b, 1)
	e.bytes(v)
}

func (e *encoder) optStr(v *string) {
	if v == nil {
		e.b = append(e.b, 0)
		return
	}
	e.b = append(e.b, 1)
	e.str(*v)
}

type decoder struct {
	b   []byte
	err error
}

func newDecoder(kind string, b []byte) decoder {
	d := decoder{b: b}
	if len(b) == 0 || b[0] != codecVersion {
		d.err = fmt.Errorf("%s: unknown value format (first byte %v, want %d)", kind, b[:min(1, len(b))], codecVersion)
		return d
	}
	d.b = b[1:]
	return d
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	if len(d.b) > 0 && d.b[0] < 0x80 { // one byte: most lengths and small numbers
		v := d.b[0]
		d.b = d.b[1:]
		return uint64(v)
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errTruncated
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errTruncated
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) raw() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.err = errTruncated
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes() []byte { return append([]byte{}, d.raw()...) }
func (d *decoder) str() string   { return string(d.raw()) }

func (d *decoder) present() bool {
	if d.err != nil {
		return false
	}
	if len(d.b) == 0 {
		d.err = errTruncated
		return false
	}
	flag := d.b[0]
	d.b = d.b[1:]
	if flag > 1 {
		d.err = fmt.Errorf("bad option flag %d", flag)
		return false
	}
	return flag == 1
}

func (d *decoder) optBytes() []byte {
	if !d.present() {
		return nil
	}
	return d.bytes()
}

func (d *decoder) optStr() *string {
	if !d.present() {
		return nil
	}
	s := d.str()
	return &s
}

func (d *decoder) finish(kind string) error {
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%d trailing bytes", len(d.b))
	}
	if d.err != nil {
		return fmt.Errorf("decode %s: %w", kind, d.err)
	}
	return nil
}

func encodeEntry(r wire.EntryRow) []byte {
	return appendEntry(make([]byte, 0, 64+len(r.Payload)+len(r.PrevEntryHash)+len(r.EntryHash)+len(r.StreamID)+
		len(r.SessionID)+len(r.BootID)+len(r.Timestamp)+len(r.EventType)+len(r.Producer)+len(r.PayloadEncoding)), r)
}

// appendEntry appends the encoding of r to dst.
func appendEntry(dst []byte, r wire.EntryRow) []byte {
	e := encoder{b: dst}
	e.b = append(e.b, codecVersion)
	e.uvarint(r.Seqno)
	e.str(r.StreamID)
	e.str(r.SessionID)
	e.str(r.BootID)
	e.str(r.Timestamp)
	e.str(r.EventType)
	e.uvarint(uint64(r.Severity))
	e.str(r.Producer)
	e.str(r.PayloadEncoding)
	e.bytes(r.Payload)
	e.bytes(r.PrevEntryHash)
	e.bytes(r.EntryHash)
	return e.b
}

// decodeEntry decodes an entry row. Its timestamp and three byte fields
// share one copy (each capped, so appending to one never touches another).
func decodeEntry(b []byte) (wire.EntryRow, error) { return decodeEntryInto(b, nil) }

// interner reuses the strings of the previous row of a scan when the next
// row repeats them (stream, session, boot id, event type, producer,
// encoding usually do), so a scan allocates one buffer per row.
// interner decodes the rows of one scan: repeated strings are shared, and
// each row's bytes are copied into a shared arena (one allocation per
// arenaSize bytes, not one per row). The rows of a scan are returned
// together, so the arena lives as long as they do.
type interner struct {
	last  [6]string
	arena []byte
	grow  bool // the arena is the caller's to reuse: grow it, don't cap it at arenaSize
	// encode asks for decodeEntryEncoded: each row's canonical encoding
	// is appended to encodings.
	encode    bool
	encodings [][]byte
}

// arenaSize is the size of one arena allocation of a scan's rows: small,
// so that a row a caller keeps pins little besides itself.
const arenaSize = 16 << 10

// bytes returns n bytes of the arena (fresh storage when in is nil).
func (in *interner) bytes(n int) []byte {
	if in == nil {
		return make([]byte, 0, n)
	}
	if in.arena == nil || cap(in.arena)-len(in.arena) < n {
		size := arenaSize
		if in.grow {
			size = 2 * cap(in.arena)
		}
		in.arena = make([]byte, 0, max(n, size))
	}
	b := in.arena[len(in.arena) : len(in.arena) : len(in.arena)+n]
	in.arena = in.arena[:len(in.arena)+n]
	return b
}

func (in *interner) str(i int, b []byte) string {
	if in == nil {
		return string(b)
	}
	if in.last[i] != string(b) { // no allocation: the compiler compares in place
		in.last[i] = string(b)
	}
	return in.last[i]
}

// rawEntry is a stored entry's fields as they lie in the value: views of
// pebble's buffer, valid until the iterator moves.
type rawEntry struct {
	seqno, sev                               uint64
	stream, sess, boot, ts, evType, producer []byte
	enc, payload, prev, hash                 []byte
}

// parseEntry splits a stored entry value into its fields without copying.
func parseEntry(b []byte) (rawEntry, error) {
	var e rawEntry
	d := newDecoder("entry", b)
	e.seqno = d.uvarint()
	e.stream, e.sess, e.boot, e.ts, e.evType = d.raw(), d.raw(), d.raw(), d.raw(), d.raw()
	e.sev = d.uvarint()
	e.producer, e.enc = d.raw(), d.raw()
	e.payload, e.prev, e.hash = d.raw(), d.raw(), d.raw()
	return e, d.finish("entry")
}

// decodeEntryInto is decodeEntry with the repeated strings interned by in
// (nil: none).
func decodeEntryInto(b []byte, in *interner) (wire.EntryRow, error) {
	e, err := parseEntry(b)
	if err != nil {
		return wire.EntryRow{}, err
	}
	r := wire.EntryRow{
		Seqno: e.seqno, StreamID: in.str(0, e.stream), SessionID: in.str(1, e.sess), BootID: in.str(2, e.boot),
		EventType: in.str(3, e.evType), Severity: wire.Severity(e.sev), Producer: in.str(4, e.producer), PayloadEncoding: in.str(5, e.enc),
	}
	buf := in.bytes(len(e.ts) + len(e.payload) + len(e.prev) + len(e.hash))
	buf = append(buf, e.ts...)
	buf = append(buf, e.payload...)
	buf = append(buf, e.prev...)
	buf = append(buf, e.hash...)
	t, i, j := len(e.ts), len(e.ts)+len(e.payload), len(e.ts)+len(e.payload)+len(e.prev)
	if t > 0 {
		r.Timestamp = unsafe.String(&buf[0], t) // buf[:t] is never written again
	}
	r.Payload, r.PrevEntryHash, r.EntryHash = buf[t:i:i], buf[i:j:j], buf[j:]
	return r, nil
}

// decodeEntryEncoded decodes an entry row by copying its content once,
// into its canonical CBOR encoding in in's arena (wire.AppendEntryRow)
// followed by its entry hash: the row's fields alias those bytes, and the
// encoding is appended to in.encodings.
func decodeEntryEncoded(b []byte, in *interner) (wire.EntryRow, error) {
	e, err := parseEntry(b)
	if err != nil {
		return wire.EntryRow{}, err
	}
	// The text fields view pebble's buffer only until AppendEntryRow
	// re-points them at their copies.
	view := func(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
	r := wire.EntryRow{
		Seqno: e.seqno, StreamID: view(e.stream), SessionID: view(e.sess), BootID: view(e.boot), Timestamp: view(e.ts),
		EventType: view(e.evType), Severity: wire.Severity(e.sev), Producer: view(e.producer), PayloadEncoding: view(e.enc),
		Payload: e.payload, PrevEntryHash: e.prev,
	}
	buf := in.bytes(wire.EntrySize(r.Fields()) + len(e.hash))
	buf = wire.AppendEntryRow(buf, &r)
	n := len(buf)
	buf = append(buf, e.hash...)
	r.EntryHash = buf[n:len(buf):len(buf)]
	in.encodings = append(in.encodings, buf[:n:n])
	return r, nil
}

func encodeSegment(r wire.SegmentRow) []byte {
	e := encoder{b: make([]byte, 0, 160+len(r.StreamID)+len(r.Signature))}
	e.b = append(e.b, codecVersion)
	e.uvarint(r.SegmentID)
	e.str(r.StreamID)
	e.uvarint(r.SeqStart)
	e.uvarint(r.SeqEnd)
	e.bytes(r.MerkleRoot)
	e.bytes(r.LastEntryHash)
	e.bytes(r.PrevCheckpointHash)
	e.str(r.ClosedAt)
	e.optBytes(r.Signature)
	e.optStr(r.SignerIdentity)
	return e.b
}

func decodeSegment(b []byte) (wire.SegmentRow, error) {
	d := newDecoder("segment", b)
	r := wire.SegmentRow{
		SegmentID: d.uvarint(), StreamID: d.str(), SeqStart: d.uvarint(), SeqEnd: d.uvarint(),
		MerkleRoot: d.bytes(), LastEntryHash: d.bytes(), PrevCheckpointHash: d.bytes(), ClosedAt: d.str(),
		Signature: d.optBytes(), SignerIdentity: d.optStr(),
	}
	return r, d.finish("segment")
}

func encodeWitness(r wire.WitnessRow) []byte {
	e := encoder{b: make([]byte, 0, 256)}
	e.b = append(e.b, codecVersion)
	e.varint(r.ID)
	e.str(r.StreamID)
	e.uvarint(r.SegmentID)
	e.uvarint(r.SeqStart)
	e.uvarint(r.SeqEnd)
	e.str(r.CheckpointHashHex)
	e.str(r.SignatureHex)
	e.str(r.SignerIdentity)
	e.str(r.ReceivedAt)
	return e.b
}

func decodeWitness(b []byte) (wire.WitnessRow, error) {
	d := newDecoder("witness", b)
	r := wire.WitnessRow{
		ID: d.varint(), StreamID: d.str(), SegmentID: d.uvarint(), SeqStart: d.uvarint(), SeqEnd: d.uvarint(),
		CheckpointHashHex: d.str(), SignatureHex: d.str(), SignerIdentity: d.str(), ReceivedAt: d.str(),
	}
	return r, d.finish("witness")
}

func encodeStream(r wire.StreamRow) []byte {
	e := encoder{b: make([]byte, 0, 96)}
	e.b = append(e.b, codecVersion)
	e.str(r.Name)
	e.str(r.Tier)
	e.optStr(r.Description)
	e.str(r.CreatedAt)
	e.optStr(r.DeprecatedAt)
	return e.b
}

func decodeStream(b []byte) (wire.StreamRow, error) {
	d := newDecoder("stream", b)
	r := wire.StreamRow{Name: d.str(), Tier: d.str(), Description: d.optStr(), CreatedAt: d.str(), DeprecatedAt: d.optStr()}
	return r, d.finish("stream")
}
