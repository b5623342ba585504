package securelog

import (
	"context"
	"errors"
	"fmt"

	"github.com/securelog/securelog/pkg/chain"
	"github.com/securelog/securelog/pkg/merkle"
	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/wire"
)

// CloseSegment seals every entry of stream after its previous segment under a
// Merkle root (SPEC §7.1) and returns the new segment (unsigned). Closing
// with nothing new is *wire.EmptySegmentError.
//
// Only the named stream is closed: a sealed stream's open segment has its id
// reserved in the store (DECISIONS 5, see reserve.go). Over a store without
// reservations, pending sealed segments of other streams that hold a lower
// computed id are closed first; each such close is logged.
func (l *Log) CloseSegment(ctx context.Context, stream string) (wire.SegmentRow, error) {
	if _, ok := l.st.(store.SegmentReserver); ok {
		return l.closeReserved(ctx, stream)
	}
	l.lockIdle()
	defer l.mu.Unlock()
	if err := l.closable(stream); err != nil {
		return wire.SegmentRow{}, err
	}
	start, rows, err := l.segmentRange(ctx, stream)
	if err != nil {
		return wire.SegmentRow{}, err
	}
	p, err := l.pendingSealed(ctx)
	if err != nil {
		return wire.SegmentRow{}, err
	}
	before := p.names
	if r := p.rank(stream); r > 0 {
		before = p.names[:r-1]
	}
	for _, other := range before {
		ostart, orows, err := l.segmentRange(ctx, other)
		if err != nil {
			return wire.SegmentRow{}, fmt.Errorf("close pending sealed segment of stream %q before %q: %w", other, stream, err)
		}
		seg, err := l.closeOne(ctx, other, true, ostart, orows)
		if err != nil {
			return wire.SegmentRow{}, fmt.Errorf("close pending sealed segment of stream %q before %q: %w", other, stream, err)
		}
		l.log.Info("closed pending sealed segment first to keep reserved segment ids", "stream", other, "segment_id", seg.SegmentID, "requested", stream)
	}
	return l.closeOne(ctx, stream, p.rank(stream) > 0, start, rows)
}

// closable reports why stream cannot be closed now (the Log is not open,
// or the stream is halted: its sealing waits for the operator).
func (l *Log) closable(stream string) error {
	if err := l.checkOpen(); err != nil {
		return err
	}
	return l.haltedErr(stream)
}

// closeReserved is CloseSegment over a store that keeps segment-id
// reservations. The open entries are read and verified, and the tree is
// built, without holding the write lock, so appends (the ingester's
// batches) do not wait for that work: committed entries never change, and
// the segment ends at the head read here. Under the lock the close then
// checks that it is still exact: no segment of the stream was stored
// meanwhile and, if the stream holds a reservation (a sealed stream whose
// later entries are sealed under the reserved id, DECISIONS 5), no entry
// was appended since the head was read; otherwise it is redone under the
// lock, as before.
func (l *Log) closeReserved(ctx context.Context, stream string) (wire.SegmentRow, error) {
	l.mu.Lock()
	err := l.closable(stream)
	l.mu.Unlock()
	if err != nil {
		return wire.SegmentRow{}, err
	}
	start, rows, err := l.segmentRange(ctx, stream)
	if err != nil {
		return wire.SegmentRow{}, err
	}
	p, err := l.prepareClose(ctx, stream, start, rows)
	if err != nil {
		return wire.SegmentRow{}, err
	}
	l.lockIdle()
	defer l.mu.Unlock()
	if err := l.closable(stream); err != nil {
		return wire.SegmentRow{}, err
	}
	exact, err := l.stillOpen(ctx, stream, p)
	if err != nil {
		return wire.SegmentRow{}, err
	}
	if !exact {
		if start, rows, err = l.segmentRange(ctx, stream); err != nil {
			return wire.SegmentRow{}, err
		}
		return l.closeOne(ctx, stream, false, start, rows)
	}
	return l.insertClose(ctx, stream, false, p)
}

// stillOpen reports whether p, prepared without the write lock, is what
// closing stream now would store (closeReserved). The caller holds l.mu.
func (l *Log) stillOpen(ctx context.Context, stream string, p *preparedClose) (bool, error) {
	start, err := l.segmentStart(ctx, stream)
	if err != nil || start != p.start {
		return false, err
	}
	r := l.st.(store.SegmentReserver)
	_, held, err := r.SegmentReservation(ctx, stream)
	if err != nil {
		return false, storageErr(err, "segment reservation of stream %q", stream)
	}
	if !held {
		return true, nil // public: later entries go to the next segment
	}
	head, ok, err := l.st.Head(ctx, stream)
	if err != nil {
		return false, storageErr(err, "head of %q", stream)
	}
	return ok && head == p.rows[len(p.rows)-1].Seqno, nil
}

// segmentStart returns the first seqno after the stream's last segment.
func (l *Log) segmentStart(ctx context.Context, stream string) (uint64, error) {
	last, ok, err := l.st.SegmentLastSeqno(ctx, stream)
	if err != nil {
		return 0, storageErr(err, "segment last seqno of %q", stream)
	}
	if ok {
		return last + 1, nil
	}
	return 1, nil
}

// segmentRange returns the stream's entries after its last segment (SPEC
// §7.1 steps 1–4).
func (l *Log) segmentRange(ctx context.Context, stream string) (start uint64, rows []wire.EntryRow, err error) {
	if start, err = l.segmentStart(ctx, stream); err != nil {
		return 0, nil, err
	}
	head, ok, err := l.st.Head(ctx, stream)
	if err != nil {
		return 0, nil, storageErr(err, "head of %q", stream)
	}
	if !ok || head < start {
		return 0, nil, &wire.EmptySegmentError{Stream: stream}
	}
	rows, err = l.st.Range(ctx, stream, start, head)
	if err != nil {
		return 0, nil, storageErr(err, "range of %q", stream)
	}
	if len(rows) == 0 {
		return 0, nil, &wire.EmptySegmentError{Stream: stream}
	}
	return start, rows, nil
}

// closeOne closes one stream's open segment, whose entries (from
// segmentRange) start at computed start. The id the store assigns must be
// the stream's reservation if it holds one, or with sealed (a store without
// reservations) the computed one (max+1); anything else means another writer
// closed a segment concurrently.
func (l *Log) closeOne(ctx context.Context, stream string, sealed bool, start uint64, rows []wire.EntryRow) (wire.SegmentRow, error) {
	p, err := l.prepareClose(ctx, stream, start, rows)
	if err != nil {
		return wire.SegmentRow{}, err
	}
	return l.insertClose(ctx, stream, sealed, p)
}

// preparedClose is what a close computes from the open entries alone.
type preparedClose struct {
	start   uint64
	rows    []wire.EntryRow
	leaves  [][]byte
	entries []wire.SegmentEntry
	tree    *merkle.Tree // with a store.SegmentTreeStore
}

// prepareClose verifies the open entries (verifyOpenRows) and computes the
// segment's leaves, members and tree: reads of committed entries only.
func (l *Log) prepareClose(ctx context.Context, stream string, start uint64, rows []wire.EntryRow) (*preparedClose, error) {
	if err := l.verifyOpenRows(ctx, stream, start, rows); err != nil {
		l.alert(stream, err)
		return nil, err
	}
	leaves := make([][]byte, len(rows))
	entries := make([]wire.SegmentEntry, len(rows))
	for i, r := range rows {
		if len(r.EntryHash) != wire.HashLen { // the message is formatted only then
			return nil, check32(r.EntryHash, fmt.Sprintf("entry_hash of seqno %d", r.Seqno))
		}
		leaves[i] = r.EntryHash
		entries[i] = wire.SegmentEntry{Seqno: r.Seqno, LeafIndex: uint64(i)}
	}
	p := &preparedClose{start: start, rows: rows, leaves: leaves, entries: entries}
	if _, ok := l.st.(store.SegmentTreeStore); ok {
		p.tree = merkle.NewTree(leaves)
	}
	return p, nil
}

// insertClose stores the prepared segment (closeOne's second half; the
// caller holds l.mu).
func (l *Log) insertClose(ctx context.Context, stream string, sealed bool, p *preparedClose) (wire.SegmentRow, error) {
	rows, leaves, entries := p.rows, p.leaves, p.entries
	prev, err := l.prevCheckpoint(ctx, stream, p.start)
	if err != nil {
		return wire.SegmentRow{}, err
	}
	var expect uint64
	if r, ok := l.st.(store.SegmentReserver); ok {
		id, held, err := r.SegmentReservation(ctx, stream)
		if err != nil {
			return wire.SegmentRow{}, storageErr(err, "segment reservation of stream %q", stream)
		}
		if held {
			expect = id
		}
	} else if sealed {
		maxID, err := l.maxSegmentID(ctx)
		if err != nil {
			return wire.SegmentRow{}, err
		}
		expect = maxID + 1
	}
	last := rows[len(rows)-1]
	seg := wire.SegmentRow{
		StreamID: stream, SeqStart: rows[0].Seqno, SeqEnd: last.Seqno,
		LastEntryHash: last.EntryHash, PrevCheckpointHash: prev, ClosedAt: l.timestamp(),
	}
	var id uint64
	if ts, ok := l.st.(store.SegmentTreeStore); ok && p.tree != nil {
		// Keep the whole tree with the segment, in the same atomic write,
		// so proofs cost O(log n) reads (issue 13).
		seg.MerkleRoot = p.tree.Root()
		id, err = ts.SegmentInsertTree(ctx, seg, entries, store.TreeChunks(p.tree.Levels()))
	} else {
		seg.MerkleRoot = merkle.Root(leaves)
		id, err = l.st.SegmentInsert(ctx, seg, entries)
	}
	var overlap *store.SegmentOverlapError
	if errors.As(err, &overlap) {
		// DECISIONS 13: another writer closed this stream's segment while we
		// computed ours; the store refused the overlapping segment atomically.
		return wire.SegmentRow{}, l.alreadyClosed(ctx, stream, overlap)
	}
	if err != nil {
		return wire.SegmentRow{}, storageErr(err, "insert segment of stream %q", stream)
	}
	seg.SegmentID = id
	l.sawSegment(id)
	if expect != 0 && id != expect {
		err := wire.Storagef(nil, "store assigned segment id %d but the sealed entries of stream %q were sealed under segment %d (another writer closed a segment concurrently)", id, stream, expect)
		l.alert(stream, err)
		return seg, err
	}
	f := checkpointFields(seg, prev, last)
	l.newestSeg.put(stream, segHead{seqEnd: seg.SeqEnd, hash: l.cacheCheckpoint(id, f)})
	l.opts.Closed.add(seg, f) // verified by prepareClose (ClosedSegments)
	return seg, nil
}

// segHead is a stream's newest segment and its recomputed checkpoint hash.
type segHead struct {
	seqEnd uint64
	hash   []byte
}

// prevCheckpoint returns the checkpoint hash the stream's next segment
// links to (SPEC §7.1 step 7), given start, the first seqno after the
// stream's segments as read under l.mu. When the newest segment this
// instance knows for the stream ends at start-1, it is still the stream's
// newest (a stream's segments do not overlap) and its hash is used: a
// close costs no listing of the stream's segments, which grew linearly
// with their number. Otherwise the segments are walked once (chainWalk,
// with the cached hashes) and the newest is remembered. The caller holds
// l.mu.
func (l *Log) prevCheckpoint(ctx context.Context, stream string, start uint64) ([]byte, error) {
	if h, ok := l.newestSeg.get(stream); ok && h.seqEnd+1 == start {
		return h.hash, nil
	}
	prev := wire.ZeroHash
	var head segHead
	err := l.chainWalk(ctx, stream, 0, true, func(s wire.SegmentRow, _ wire.CheckpointFields, h []byte) error {
		prev, head = h, segHead{seqEnd: s.SeqEnd, hash: h}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if head.hash != nil {
		l.newestSeg.put(stream, head)
	}
	return prev, nil
}

// verifyOpenRows checks the entries about to be sealed (issue: sign only what
// verifies): each entry hash is recomputed from the entry's canonical bytes
// and each prev_entry_hash must be the entry hash before it, the first one
// the stream's last sealed entry (start-1, the previous segment's end, whose
// hash is recomputed too) or,
// for a stream's first segment, its predecessor (ZeroHash for the first
// entry). A failure is *wire.ChainBrokenError naming the seqno.
func (l *Log) verifyOpenRows(ctx context.Context, stream string, start uint64, rows []wire.EntryRow) error {
	var prev []byte
	if start > 1 {
		r, ok, err := l.st.Get(ctx, start-1)
		if err != nil {
			return storageErr(err, "get seqno %d", start-1)
		}
		if ok && r.StreamID == stream {
			if err := check32(r.EntryHash, fmt.Sprintf("entry_hash of seqno %d", r.Seqno)); err != nil {
				return err
			}
			// The previous segment's last entry is re-hashed too, as
			// checkSegment does before signing: a segment closed here
			// may be signed on the strength of this check (ClosedSegments).
			if !bytesEqual(chain.RowHash(r), r.EntryHash) {
				return &wire.ChainBrokenError{Seqno: r.Seqno, Reason: fmt.Sprintf("entry %d, the last of stream %q's previous segment, does not hash to its stored entry_hash", r.Seqno, stream)}
			}
			prev = r.EntryHash
		}
	}
	if prev == nil {
		p, err := l.predecessor(ctx, stream, rows[0].Seqno)
		if err != nil {
			return err
		}
		prev = p
	}
	v := chain.NewVerifier(prev)
	for _, r := range rows {
		if err := v.Next(r); err != nil {
			return err
		}
	}
	return nil
}

// alreadyClosed reports a close that lost a race: the id of the stream's
// newest segment (the one that won), with the store's refusal as detail.
func (l *Log) alreadyClosed(ctx context.Context, stream string, cause error) error {
	var other uint64
	if segs, err := l.st.SegmentsList(ctx, stream); err == nil && len(segs) > 0 {
		other = segs[len(segs)-1].SegmentID
	}
	l.log.Warn("segment close lost a race with another writer", "stream", stream, "segment_id", other, "error", cause)
	return &wire.SegmentAlreadyClosedError{SegmentID: other}
}
