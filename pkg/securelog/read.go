package securelog

import (
	"context"
	"fmt"
	"sync"

	"github.com/securelog/securelog/pkg/chain"
	"github.com/securelog/securelog/pkg/seal"
	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/wire"
)

// Read returns the entry with seqno (SPEC §14.4).
func (r *Reader) Read(ctx context.Context, seqno uint64) (wire.EntryRow, error) {
	row, ok, err := r.st.Get(ctx, seqno)
	if err != nil {
		return wire.EntryRow{}, storageErr(err, "get seqno %d", seqno)
	}
	if !ok {
		return wire.EntryRow{}, &wire.EntryNotFoundError{Seqno: seqno}
	}
	return row, nil
}

// Head returns the stream's highest seqno (SPEC §14.5).
func (r *Reader) Head(ctx context.Context, stream string) (uint64, bool, error) {
	h, ok, err := r.st.Head(ctx, stream)
	return h, ok, storageErr(err, "head of %q", stream)
}

// verifyWindow is how many seqnos VerifyChain reads per store call, and
// hashBatch how many rows one core hashes at a time.
const (
	verifyWindow = 1 << 13
	hashBatch    = 1 << 10
)

// VerifyChain verifies the stream's entries with from ≤ seqno ≤ to (SPEC
// §14.6), reading the store in windows so memory stays bounded. The link
// into the range is checked against the real predecessor. Entry hashes are
// recomputed on every core while the next window is read; the links are
// checked in order after hashing (chain.HashParallel).
func (r *Reader) VerifyChain(ctx context.Context, stream string, from, to uint64) error {
	if from > to {
		return wire.Invalidf("verify_chain: from (%d) > to (%d)", from, to)
	}
	w := newWindows(r.st)
	next := func(lo uint64) (rows []wire.EntryRow, encs [][]byte, hi uint64, err error) {
		hi = to
		if hi-lo >= verifyWindow {
			hi = lo + verifyWindow - 1
		}
		rows, encs, err = w.read(ctx, stream, lo, hi)
		return rows, encs, hi, storageErr(err, "range of %q", stream)
	}
	// Find the first window with rows: its first row's predecessor anchors
	// the chain.
	var rows []wire.EntryRow
	var encs [][]byte // the rows' encodings, if the store made them
	lo, hi := from, uint64(0)
	for {
		var err error
		if rows, encs, hi, err = next(lo); err != nil {
			return err
		}
		if len(rows) > 0 {
			break
		}
		if hi == to {
			return &wire.StreamNotFoundError{Stream: stream}
		}
		lo = hi + 1
	}
	prev, err := r.predecessor(ctx, stream, rows[0].Seqno)
	if err != nil {
		return err
	}
	v := chain.NewVerifier(prev)
	defer w.done()
	return chain.HashParallel(ctx, 0, func(send func(*chain.Batch) bool) error {
		for {
			for len(rows) > 0 {
				n := min(len(rows), hashBatch)
				b := &chain.Batch{Rows: rows[:n:n]}
				if len(encs) >= n {
					b.Encodings, encs = encs[:n:n], encs[n:]
				}
				if !send(b) {
					return nil
				}
				rows = rows[n:]
			}
			if hi == to {
				return nil
			}
			var err error
			if rows, encs, hi, err = next(hi + 1); err != nil {
				return err
			}
		}
	}, func(row *wire.EntryRow, sum *chain.Sum) error {
		if err := v.NextSum(row, sum); err != nil {
			return err
		}
		w.checked(row)
		return nil
	})
}

// windows reads VerifyChain's windows into reused storage when the store
// can (store.RangeIntoStore): a window's buffer is recycled once its last
// row was checked (rows are checked in order), so a long verification
// allocates a few windows, not every row.
type windows struct {
	ri   store.RangeIntoStore
	rs   store.ReadStore
	free chan *store.RowBuffer

	mu      sync.Mutex
	pending []pendingWindow // read, not yet checked to its last row, in order
}

type pendingWindow struct {
	buf  *store.RowBuffer
	last *wire.EntryRow
}

func newWindows(rs store.ReadStore) *windows {
	w := &windows{rs: rs, free: make(chan *store.RowBuffer, 4)}
	w.ri, _ = rs.(store.RangeIntoStore)
	return w
}

// read returns the rows of one window and, if the store made them
// (store.RowBuffer.Encodings), their canonical encodings.
func (w *windows) read(ctx context.Context, stream string, lo, hi uint64) ([]wire.EntryRow, [][]byte, error) {
	if w.ri == nil {
		rows, err := w.rs.Range(ctx, stream, lo, hi)
		return rows, nil, err
	}
	var buf *store.RowBuffer
	select {
	case buf = <-w.free:
	default:
		buf = rowBuffers.Get().(*store.RowBuffer)
	}
	buf.Encodings = buf.Encodings[:0]
	rows, err := w.ri.RangeInto(ctx, stream, lo, hi, buf)
	if err != nil || len(rows) == 0 {
		w.recycle(buf)
		return rows, nil, err
	}
	w.mu.Lock()
	w.pending = append(w.pending, pendingWindow{buf: buf, last: &rows[len(rows)-1]})
	w.mu.Unlock()
	var encs [][]byte
	if len(buf.Encodings) == len(rows) {
		encs = buf.Encodings
	}
	return rows, encs, nil
}

// checked notes that row was checked; the last row of the oldest pending
// window frees that window.
func (w *windows) checked(row *wire.EntryRow) {
	if w.ri == nil {
		return
	}
	w.mu.Lock()
	var done *store.RowBuffer
	if len(w.pending) > 0 && w.pending[0].last == row {
		done = w.pending[0].buf
		w.pending = w.pending[1:]
	}
	w.mu.Unlock()
	if done != nil {
		w.recycle(done)
	}
}

func (w *windows) recycle(buf *store.RowBuffer) {
	select {
	case w.free <- buf:
	default:
		rowBuffers.Put(buf)
	}
}

// done hands the free windows to the next verification.
func (w *windows) done() {
	for {
		select {
		case buf := <-w.free:
			rowBuffers.Put(buf)
		default:
			return
		}
	}
}

// rowBuffers keeps window buffers between verifications (their storage
// grows to a window's size once).
var rowBuffers = sync.Pool{New: func() any { return &store.RowBuffer{} }}

// predecessor returns the entry hash of the stream's newest entry below
// seqno, or ZeroHash, searching backwards in growing windows.
func (r *Reader) predecessor(ctx context.Context, stream string, seqno uint64) ([]byte, error) {
	hi := seqno - 1
	for w := uint64(1024); hi >= 1; w *= 4 {
		lo := uint64(1)
		if hi > w {
			lo = hi - w + 1
		}
		rows, err := r.st.Range(ctx, stream, lo, hi)
		if err != nil {
			return nil, storageErr(err, "range of %q", stream)
		}
		if len(rows) > 0 {
			h := rows[len(rows)-1].EntryHash
			if err := check32(h, fmt.Sprintf("entry_hash of seqno %d", rows[len(rows)-1].Seqno)); err != nil {
				return nil, err
			}
			return h, nil
		}
		if lo == 1 {
			break
		}
		hi = lo - 1
	}
	return wire.ZeroHash, nil
}

// OpenPayload returns the plaintext payload of an entry (SPEC §12.5): "cbor"
// payloads as stored, sealed ones decrypted with the key of the segment the
// entry is in (or will be in, DECISIONS 5).
func (r *Reader) OpenPayload(ctx context.Context, seqno uint64) ([]byte, error) {
	row, err := r.Read(ctx, seqno)
	if err != nil {
		return nil, err
	}
	if row.PayloadEncoding == wire.EncoderName {
		return row.Payload, nil
	}
	if row.PayloadEncoding != wire.AEADEncoding {
		return nil, wire.Invalidf("unknown payload_encoding: '%s'", row.PayloadEncoding)
	}
	if len(r.kek) == 0 {
		return nil, wire.Invalidf("no master KEK configured")
	}
	segID, ok, err := r.st.SegmentForSeqno(ctx, seqno)
	if err != nil {
		return nil, storageErr(err, "segment for seqno %d", seqno)
	}
	if !ok {
		if segID, err = r.openSegmentID(ctx, row.StreamID); err != nil {
			return nil, err
		}
	}
	tier, err := r.streamTier(ctx, row.StreamID)
	if err != nil {
		return nil, err
	}
	pt, err := seal.Open(r.kek, row.StreamID, tier, segID, row.Payload)
	if err != nil {
		return nil, &wire.EncodingError{Msg: err.Error()}
	}
	return pt, nil
}

// streamTier resolves the current tier of a stream (SPEC §12.4).
func (r *Reader) streamTier(ctx context.Context, stream string) (string, error) {
	row, ok, err := r.st.StreamGet(ctx, stream)
	if err != nil {
		return "", storageErr(err, "get stream %q", stream)
	}
	if !ok {
		return seal.TierPublic, nil
	}
	t, err := seal.ParseTier(row.Tier)
	if err != nil {
		return "", wire.Invalidf("stream '%s' has invalid tier '%s': %v", stream, row.Tier, err)
	}
	return t, nil
}

// ListSegments returns the stream's segments by ascending id (SPEC §14.8).
func (r *Reader) ListSegments(ctx context.Context, stream string) ([]wire.SegmentRow, error) {
	segs, err := r.st.SegmentsList(ctx, stream)
	if err != nil {
		return nil, storageErr(err, "list segments of %q", stream)
	}
	for i := range segs {
		normaliseSignature(&segs[i])
	}
	return segs, nil
}

// ReadSegment returns one segment (SPEC §14.9).
func (r *Reader) ReadSegment(ctx context.Context, id uint64) (wire.SegmentRow, error) {
	seg, ok, err := r.segment(ctx, id)
	if err == nil && !ok {
		err = &wire.SegmentNotFoundError{SegmentID: id}
	}
	return seg, err
}

// SegmentOf returns the segment that holds seqno; false while the entry
// is in no closed segment (or does not exist).
func (r *Reader) SegmentOf(ctx context.Context, seqno uint64) (wire.SegmentRow, bool, error) {
	id, ok, err := r.st.SegmentForSeqno(ctx, seqno)
	if err != nil || !ok {
		return wire.SegmentRow{}, false, storageErr(err, "segment for seqno %d", seqno)
	}
	return r.segment(ctx, id)
}

// segment reads segment id, checks its hash lengths and normalises its
// signature.
func (r *Reader) segment(ctx context.Context, id uint64) (wire.SegmentRow, bool, error) {
	seg, ok, err := r.st.SegmentGet(ctx, id)
	if err != nil || !ok {
		return wire.SegmentRow{}, false, storageErr(err, "get segment %d", id)
	}
	for _, h := range []struct {
		b    []byte
		name string
	}{{seg.MerkleRoot, "merkle_root"}, {seg.LastEntryHash, "last_entry_hash"}, {seg.PrevCheckpointHash, "prev_checkpoint_hash"}} {
		if err := check32(h.b, fmt.Sprintf("%s of segment %d", h.name, id)); err != nil {
			return wire.SegmentRow{}, false, err
		}
	}
	normaliseSignature(&seg)
	return seg, true, nil
}

// normaliseSignature applies SPEC §3.6: an empty signature is absent.
func normaliseSignature(s *wire.SegmentRow) {
	if len(s.Signature) == 0 {
		s.Signature = nil
	}
}

// ListStreams lists all streams in creation order (SPEC §14.13, DECISIONS 10).
func (r *Reader) ListStreams(ctx context.Context) ([]StreamInfo, error) {
	rows, err := r.st.StreamList(ctx)
	if err != nil {
		return nil, storageErr(err, "list streams")
	}
	out := make([]StreamInfo, len(rows))
	for i, row := range rows {
		out[i] = StreamInfo{Name: row.Name, Tier: row.Tier, Description: row.Description, CreatedAt: row.CreatedAt}
		if row.DeprecatedAt != nil {
			if t, err := wire.ParseTime(*row.DeprecatedAt); err == nil {
				u := uint64(t.Unix())
				out[i].DeprecatedAt = &u
			}
		}
	}
	return out, nil
}
