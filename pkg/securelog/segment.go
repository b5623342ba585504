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
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.checkOpen(); err != nil {
		return wire.SegmentRow{}, err
	}
	start, rows, err := l.segmentRange(ctx, stream)
	if err != nil {
		return wire.SegmentRow{}, err
	}
	if _, ok := l.st.(store.SegmentReserver); ok {
		return l.closeOne(ctx, stream, false, start, rows)
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

// segmentRange returns the stream's entries after its last segment (SPEC
// §7.1 steps 1–4).
func (l *Log) segmentRange(ctx context.Context, stream string) (start uint64, rows []wire.EntryRow, err error) {
	last, ok, err := l.st.SegmentLastSeqno(ctx, stream)
	if err != nil {
		return 0, nil, storageErr(err, "segment last seqno of %q", stream)
	}
	start = 1
	if ok {
		start = last + 1
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
	if err := l.verifyOpenRows(ctx, stream, start, rows); err != nil {
		l.alert(stream, err)
		return wire.SegmentRow{}, err
	}
	leaves := make([][]byte, len(rows))
	entries := make([]wire.SegmentEntry, len(rows))
	for i, r := range rows {
		if err := check32(r.EntryHash, fmt.Sprintf("entry_hash of seqno %d", r.Seqno)); err != nil {
			return wire.SegmentRow{}, err
		}
		leaves[i] = r.EntryHash
		entries[i] = wire.SegmentEntry{Seqno: r.Seqno, LeafIndex: uint64(i)}
	}
	prev, err := l.lastCheckpointHash(ctx, stream)
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
	if ts, ok := l.st.(store.SegmentTreeStore); ok {
		// Keep the whole tree with the segment, in the same atomic write,
		// so proofs cost O(log n) reads (issue 13).
		tree := merkle.NewTree(leaves)
		seg.MerkleRoot = tree.Root()
		id, err = ts.SegmentInsertTree(ctx, seg, entries, store.TreeChunks(tree.Levels()))
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
	if id > l.maxSeg {
		l.maxSeg = id
	}
	if expect != 0 && id != expect {
		err := wire.Storagef(nil, "store assigned segment id %d but the sealed entries of stream %q were sealed under segment %d (another writer closed a segment concurrently)", id, stream, expect)
		l.alert(stream, err)
		return seg, err
	}
	l.cacheCheckpoint(id, l.checkpointFields(seg, prev, last))
	return seg, nil
}

// verifyOpenRows checks the entries about to be sealed (issue: sign only what
// verifies): each entry hash is recomputed from the entry's canonical bytes
// and each prev_entry_hash must be the entry hash before it, the first one
// the stream's last sealed entry (start-1, the previous segment's end) or,
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

// ListSegments returns the stream's segments by ascending id (SPEC §14.8).
func (l *Log) ListSegments(ctx context.Context, stream string) ([]wire.SegmentRow, error) {
	segs, err := l.st.SegmentsList(ctx, stream)
	if err != nil {
		return nil, storageErr(err, "list segments of %q", stream)
	}
	for i := range segs {
		normaliseSignature(&segs[i])
	}
	return segs, nil
}

// ReadSegment returns one segment (SPEC §14.9).
func (l *Log) ReadSegment(ctx context.Context, id uint64) (wire.SegmentRow, error) {
	seg, ok, err := l.st.SegmentGet(ctx, id)
	if err != nil {
		return wire.SegmentRow{}, storageErr(err, "get segment %d", id)
	}
	if !ok {
		return wire.SegmentRow{}, &wire.SegmentNotFoundError{SegmentID: id}
	}
	for _, h := range []struct {
		b    []byte
		name string
	}{{seg.MerkleRoot, "merkle_root"}, {seg.LastEntryHash, "last_entry_hash"}, {seg.PrevCheckpointHash, "prev_checkpoint_hash"}} {
		if err := check32(h.b, fmt.Sprintf("%s of segment %d", h.name, id)); err != nil {
			return wire.SegmentRow{}, err
		}
	}
	normaliseSignature(&seg)
	return seg, nil
}

// normaliseSignature applies SPEC §3.6: an empty signature is absent.
func normaliseSignature(s *wire.SegmentRow) {
	if len(s.Signature) == 0 {
		s.Signature = nil
	}
}

// InclusionProof proves that an entry is a leaf of a segment's Merkle tree
// (SPEC §3.7). LeafIndex and TreeSize are our additions (DECISIONS 1): the
// verifier checks the path's shape against them.
type InclusionProof struct {
	Seqno      uint64        `json:"seqno"`
	EntryHash  wire.Hex      `json:"entry_hash"`
	SegmentID  uint64        `json:"segment_id"`
	MerkleRoot wire.Hex      `json:"merkle_root"`
	Path       []merkle.Step `json:"path"`
	LeafIndex  uint64        `json:"leaf_index"`
	TreeSize   uint64        `json:"tree_size"`
}

// BuildInclusionProof builds the proof for seqno (SPEC §14.10). The proof
// carries the segment's stored root (DECISIONS 2); if the entries no longer
// hash to it, that is tampering: *wire.ChainBrokenError. On a store that
// kept the segment's tree (store.SegmentTreeStore) it costs O(log n) reads
// (proofFromTree); otherwise the segment's entries are read.
func (l *Log) BuildInclusionProof(ctx context.Context, seqno uint64) (InclusionProof, error) {
	if ts, ok := l.st.(store.SegmentTreeStore); ok {
		if p, ok, err := l.proofFromTree(ctx, ts, seqno); ok || err != nil {
			return p, err
		}
	}
	segID, ok, err := l.st.SegmentForSeqno(ctx, seqno)
	if err != nil {
		return InclusionProof{}, storageErr(err, "segment for seqno %d", seqno)
	}
	if !ok {
		return InclusionProof{}, &wire.EntryNotFoundError{Seqno: seqno}
	}
	seg, err := l.ReadSegment(ctx, segID)
	if err != nil {
		return InclusionProof{}, err
	}
	seqnos, err := l.st.SegmentEntrySeqnos(ctx, segID)
	if err != nil {
		return InclusionProof{}, storageErr(err, "entries of segment %d", segID)
	}
	leaves, index, err := l.segmentLeaves(ctx, seg, seqnos, seqno)
	if err != nil {
		return InclusionProof{}, err
	}
	if index < 0 {
		return InclusionProof{}, &wire.EntryNotFoundError{Seqno: seqno}
	}
	path, root := merkle.Prove(leaves, index)
	if !bytesEqual(root, seg.MerkleRoot) {
		return InclusionProof{}, &wire.ChainBrokenError{Seqno: seg.SeqEnd, Reason: fmt.Sprintf(
			"segment %d merkle root mismatch: stored=%s recomputed=%s", segID, hexs(seg.MerkleRoot), hexs(root))}
	}
	return InclusionProof{
		Seqno: seqno, EntryHash: leaves[index], SegmentID: segID, MerkleRoot: seg.MerkleRoot,
		Path: path, LeafIndex: uint64(index), TreeSize: uint64(len(leaves)),
	}, nil
}

// segmentLeaves returns the stored entry hashes of a segment's members in
// leaf order and the leaf index of seqno (-1 if absent). It reads the
// segment's range in one call; only if the members are not exactly the
// stream's entries in that range does it fall back to one read per member.
func (l *Log) segmentLeaves(ctx context.Context, seg wire.SegmentRow, seqnos []uint64, seqno uint64) ([][]byte, int, error) {
	leaves := make([][]byte, len(seqnos))
	index := -1
	rows, err := l.st.Range(ctx, seg.StreamID, seg.SeqStart, seg.SeqEnd)
	if err != nil {
		return nil, -1, storageErr(err, "range of segment %d", seg.SegmentID)
	}
	same := len(rows) == len(seqnos)
	for i := 0; same && i < len(rows); i++ {
		same = rows[i].Seqno == seqnos[i]
	}
	for i, s := range seqnos {
		var row wire.EntryRow
		if same {
			row = rows[i]
		} else {
			r, ok, err := l.st.Get(ctx, s)
			if err != nil {
				return nil, -1, storageErr(err, "get seqno %d", s)
			}
			if !ok {
				return nil, -1, &wire.EntryNotFoundError{Seqno: s}
			}
			row = r
		}
		if err := check32(row.EntryHash, fmt.Sprintf("entry_hash of seqno %d", s)); err != nil {
			return nil, -1, err
		}
		leaves[i] = row.EntryHash
		if s == seqno {
			index = i
		}
	}
	return leaves, index, nil
}

// VerifyInclusionProof checks proof against expectedRoot (SPEC §6.3) and,
// beyond the reference, that the path has exactly the shape implied by
// (LeafIndex, TreeSize) (DECISIONS 1). Any hash that is not 32 bytes is
// *wire.InvalidError; a failing proof is *wire.InclusionMismatchError.
func VerifyInclusionProof(proof InclusionProof, expectedRoot []byte) error {
	for _, h := range [][]byte{proof.EntryHash, proof.MerkleRoot, expectedRoot} {
		if len(h) != wire.HashLen {
			return wire.Invalidf("hash is not 32 bytes")
		}
	}
	for _, s := range proof.Path {
		if len(s.Sibling) != wire.HashLen {
			return wire.Invalidf("hash is not 32 bytes")
		}
	}
	if err := merkle.Verify(proof.EntryHash, proof.LeafIndex, proof.TreeSize, proof.Path, expectedRoot); err != nil {
		var inv *wire.InvalidError
		if errors.As(err, &inv) {
			return err
		}
		return &wire.InclusionMismatchError{Seqno: proof.Seqno, SegmentID: proof.SegmentID}
	}
	return nil
}

func bytesEqual(a, b []byte) bool { return string(a) == string(b) }
