package bundle

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/securelog/securelog/pkg/audit"
	"github.com/securelog/securelog/pkg/checkpoint"
	"github.com/securelog/securelog/pkg/wire"
	"github.com/securelog/securelog/pkg/witness"
)

// Reader reads a bundle without loading its entries: NewReader makes one
// pass that keeps the segment rows (without their membership lists), the
// trust array and the witness receipts, and remembers where the entries and
// each segment's membership start. Entries and SegmentSeqnos then re-read
// those parts from the file, so memory stays bounded by the largest segment
// whatever the number of entries. Reader implements audit.Source.
//
// A Reader is not safe for concurrent use.
type Reader struct {
	ra     io.ReaderAt
	size   int64
	closer io.Closer

	stream     string
	entries    uint64
	entriesEnd int64   // file offset of the entries array's ']'
	chunks     []chunk // where the second pass splits the entries
	segs       []segInfo
	byID       map[uint64]int
	trust      []checkpoint.TrustEntry
	receipts   []witness.Receipt
	tlogNote   []byte // the "tlog" member's checkpoint (nil: none)
	proofsOff  int64  // offset just after tlog.proofs' '['
	proofs     uint64
	joins      int // pieces of the parallel first pass joined (scanParallel)
}

type segInfo struct {
	row     wire.SegmentRow
	off     int64 // offset of the segment object (possibly preceded by ',' and spaces)
	end     int64 // offset just past the segment object
	members int
}

var _ audit.Source = (*Reader)(nil)

// Open opens the bundle file at path and reads its header parts (see
// Reader). Close the Reader when done.
func Open(path string) (*Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open bundle: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open bundle: %w", err)
	}
	r, err := NewReader(f, fi.Size())
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	r.closer = f
	return r, nil
}

// NewReader reads the bundle held in ra (size bytes). It checks the format
// tag, that every top-level member is known and appears once, that each
// segment row decodes, belongs to the bundle's stream, has a non-zero id and
// lists its membership as [seqno, leaf_index] with leaf_index equal to the
// position, and that trust entries and receipts decode. Errors name the
// member, array index and segment id.
func NewReader(ra io.ReaderAt, size int64) (*Reader, error) {
	r := &Reader{ra: ra, size: size, byID: map[uint64]int{}}
	dec := json.NewDecoder(bufio.NewReaderSize(io.NewSectionReader(ra, 0, size), 1<<20))
	var base int64 // file offset of dec's input offset 0
	if err := expectDelim(dec, '{', "bundle"); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var format string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("bundle: top-level member name: %w", err)
		}
		key, _ := tok.(string)
		if seen[key] {
			return nil, fmt.Errorf("bundle: member %q appears twice", key)
		}
		seen[key] = true
		switch key {
		case "format":
			if err := dec.Decode(&format); err != nil {
				return nil, fmt.Errorf("bundle: format: %w", err)
			}
			if format != Format {
				return nil, fmt.Errorf("bundle: format is %q, want %q", format, Format)
			}
		case "stream":
			if err := dec.Decode(&r.stream); err != nil {
				return nil, fmt.Errorf("bundle: stream: %w", err)
			}
			if r.stream == "" {
				return nil, errors.New("bundle: stream is empty")
			}
		case "entries":
			// The entries are most of the file: scan them without the
			// decoder, then go on decoding after them (the decoder is
			// restarted there inside a stand-in object).
			end, err := r.scanEntries(base + dec.InputOffset())
			if err != nil {
				return nil, err
			}
			const resume = `{"entries":[]`
			dec = json.NewDecoder(bufio.NewReaderSize(io.MultiReader(strings.NewReader(resume), io.NewSectionReader(ra, end, size-end)), 1<<20))
			base = end - int64(len(resume))
			var raw json.RawMessage
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			if err := dec.Decode(&raw); err != nil {
				return nil, err
			}
		case "segments":
			if err := r.readSegments(dec, base); err != nil {
				return nil, err
			}
		case "trust":
			if err := r.readTrust(dec); err != nil {
				return nil, err
			}
		case "witness_receipts":
			if err := r.readReceipts(dec); err != nil {
				return nil, err
			}
		case "tlog":
			if err := r.readTlog(dec, base); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("bundle: unknown top-level member %q", key)
		}
	}
	if err := expectDelim(dec, '}', "bundle"); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("bundle: data after the closing '}' (at byte %d)", base+dec.InputOffset())
	}
	for _, k := range []string{"format", "stream", "entries", "segments"} {
		if !seen[k] {
			return nil, fmt.Errorf("bundle: member %q is missing", k)
		}
	}
	for i, s := range r.segs {
		if s.row.StreamID != r.stream {
			return nil, fmt.Errorf("bundle: segment %d (segments[%d]): stream_id %q is not the bundle's stream %q", s.row.SegmentID, i, s.row.StreamID, r.stream)
		}
	}
	return r, nil
}

func expectDelim(dec *json.Decoder, want json.Delim, what string) error {
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return fmt.Errorf("%s: expected '%c', got %v (at byte %d)", what, want, tok, dec.InputOffset())
	}
	return nil
}

// segmentMembers is the membership part of a bundle segment object.
type segmentMembers struct {
	Entries *[]wire.SegmentEntry `json:"entries"`
}

// parseSegment decodes one segment object and checks its membership list.
func parseSegment(raw json.RawMessage, i int) (wire.SegmentRow, []wire.SegmentEntry, error) {
	if row, members, ok := parseSegmentFast(raw); ok && row.SegmentID != 0 {
		for j, e := range members {
			if e.LeafIndex != uint64(j) {
				return row, nil, fmt.Errorf("bundle: segment %d (segments[%d]): membership entries[%d] has leaf_index %d, want %d", row.SegmentID, i, j, e.LeafIndex, j)
			}
		}
		return row, members, nil
	}
	var row wire.SegmentRow
	if err := json.Unmarshal(raw, &row); err != nil {
		return row, nil, fmt.Errorf("bundle: segments[%d]: %w", i, err)
	}
	spot := fmt.Sprintf("segment %d (segments[%d])", row.SegmentID, i)
	if row.SegmentID == 0 {
		return row, nil, fmt.Errorf("bundle: segments[%d]: segment_id is missing or 0", i)
	}
	var m segmentMembers
	if err := json.Unmarshal(raw, &m); err != nil {
		return row, nil, fmt.Errorf("bundle: %s: entries: %w", spot, err)
	}
	if m.Entries == nil {
		return row, nil, fmt.Errorf("bundle: %s: membership \"entries\" is missing", spot)
	}
	for j, e := range *m.Entries {
		if e.LeafIndex != uint64(j) {
			return row, nil, fmt.Errorf("bundle: %s: membership entries[%d] has leaf_index %d, want %d", spot, j, e.LeafIndex, j)
		}
	}
	return row, *m.Entries, nil
}

func (r *Reader) readSegments(dec *json.Decoder, base int64) error {
	if err := expectDelim(dec, '[', "bundle: segments"); err != nil {
		return err
	}
	for i := 0; dec.More(); i++ {
		off := base + dec.InputOffset()
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return fmt.Errorf("bundle: segments[%d]: %w", i, err)
		}
		row, members, err := parseSegment(raw, i)
		if err != nil {
			return err
		}
		if _, dup := r.byID[row.SegmentID]; dup {
			return fmt.Errorf("bundle: segment %d (segments[%d]): segment_id appears twice", row.SegmentID, i)
		}
		r.byID[row.SegmentID] = len(r.segs)
		r.segs = append(r.segs, segInfo{row: row, off: off, end: base + dec.InputOffset(), members: len(members)})
	}
	return expectDelim(dec, ']', "bundle: segments")
}

func (r *Reader) readTrust(dec *json.Decoder) error {
	var raws []json.RawMessage
	if err := dec.Decode(&raws); err != nil {
		return fmt.Errorf("bundle: trust: %w", err)
	}
	for i, raw := range raws {
		var e checkpoint.TrustEntry
		if err := json.Unmarshal(raw, &e); err != nil {
			return fmt.Errorf("bundle: trust[%d]: %w", i, err)
		}
		r.trust = append(r.trust, e)
	}
	return nil
}

func (r *Reader) readReceipts(dec *json.Decoder) error {
	var raws []json.RawMessage
	if err := dec.Decode(&raws); err != nil {
		return fmt.Errorf("bundle: witness_receipts: %w", err)
	}
	for i, raw := range raws {
		var rc witness.Receipt
		if err := json.Unmarshal(raw, &rc); err != nil {
			return fmt.Errorf("bundle: witness_receipts[%d]: %w", i, err)
		}
		r.receipts = append(r.receipts, rc)
	}
	return nil
}

// Close closes the file opened by Open (no-op for NewReader).
func (r *Reader) Close() error {
	if r.closer == nil {
		return nil
	}
	return r.closer.Close()
}

// Stream returns the bundle's stream id.
func (r *Reader) Stream() string { return r.stream }

// EntryCount returns the number of entry rows in the bundle.
func (r *Reader) EntryCount() uint64 { return r.entries }

// SegmentRows returns the segment rows in bundle order.
func (r *Reader) SegmentRows() []wire.SegmentRow {
	out := make([]wire.SegmentRow, len(r.segs))
	for i, s := range r.segs {
		out[i] = s.row.Clone()
	}
	return out
}

// SegmentIndex returns the position of a segment in the bundle's segments
// array.
func (r *Reader) SegmentIndex(id uint64) (int, bool) {
	i, ok := r.byID[id]
	return i, ok
}

// SegmentForSeqno returns the id of the segment whose range covers seqno,
// assuming ranges ascend (true of any bundle that audits).
func (r *Reader) SegmentForSeqno(seqno uint64) (uint64, bool) {
	i := sort.Search(len(r.segs), func(i int) bool { return r.segs[i].row.SeqEnd >= seqno })
	if i < len(r.segs) && r.segs[i].row.SeqStart <= seqno {
		return r.segs[i].row.SegmentID, true
	}
	return 0, false
}

// Trust returns the bundle's own trust entries (not validated; see
// checkpoint.NewTrust).
func (r *Reader) Trust() []checkpoint.TrustEntry {
	return append([]checkpoint.TrustEntry(nil), r.trust...)
}

// Receipts returns the bundle's witness receipts.
func (r *Reader) Receipts() []witness.Receipt { return append([]witness.Receipt(nil), r.receipts...) }

func (r *Reader) checkStream(stream string) error {
	if stream != r.stream {
		return fmt.Errorf("bundle holds stream %q, not %q", r.stream, stream)
	}
	return nil
}

// Segments returns the bundle's segment rows (the stream's, in bundle
// order; the audit checks the order).
func (r *Reader) Segments(ctx context.Context, stream string) ([]wire.SegmentRow, error) {
	if err := r.checkStream(stream); err != nil {
		return nil, err
	}
	return r.SegmentRows(), nil
}

// SegmentSeqnos re-reads one segment's membership from the file and
// returns its seqnos by leaf index.
func (r *Reader) SegmentSeqnos(ctx context.Context, id uint64) ([]uint64, error) {
	i, ok := r.byID[id]
	if !ok {
		return nil, fmt.Errorf("bundle: segment %d is not in the bundle", id)
	}
	s := r.segs[i]
	// The first pass noted where the object ends: read exactly it (no
	// second scan with encoding/json), past the ',' and spaces before it.
	if s.end <= s.off || s.end > r.size {
		return nil, fmt.Errorf("bundle: segment %d (segments[%d]): bad extent %d..%d", id, i, s.off, s.end)
	}
	buf := make([]byte, s.end-s.off)
	if _, err := r.ra.ReadAt(buf, s.off); err != nil {
		return nil, fmt.Errorf("bundle: segment %d (segments[%d]): %w", id, i, err)
	}
	raw := json.RawMessage(bytes.TrimLeft(buf, " \t\r\n,"))
	row, members, err := parseSegment(raw, i)
	if err != nil {
		return nil, err
	}
	if row.SegmentID != id || len(members) != s.members {
		return nil, fmt.Errorf("bundle: segment %d (segments[%d]) changed since the first pass (file changed?)", id, i)
	}
	out := make([]uint64, len(members))
	for j, m := range members {
		out[j] = m.Seqno
	}
	return out, nil
}
