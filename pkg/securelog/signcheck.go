package securelog

import (
	"context"
	"errors"
	"fmt"

	"github.com/securelog/securelog/pkg/chain"
	"github.com/securelog/securelog/pkg/merkle"
	"github.com/securelog/securelog/pkg/wire"
)

// checkSegment verifies seg against the store before it is signed (issue 9
// item 1): nothing is signed that a verifier would reject.
//
//   - range: the segment starts at the stream's first entry after its
//     previous segment (or at the stream's first entry) and its members are
//     exactly the stream's entries seq_start..seq_end, in leaf order;
//   - entries: every member's entry hash is recomputed from its canonical
//     bytes and every chain link is checked, the first one against the last
//     entry of the previous segment;
//   - root and last entry hash: the Merkle root over the recomputed leaves
//     and the last entry hash equal the segment's;
//   - link: prev_checkpoint_hash equals the recomputed checkpoint hash of
//     the stream's previous segment (ZeroHash for the first).
//
// It costs one range read of the segment (plus its predecessor's last
// entry) and one membership read; the predecessor is found from the
// checkpoint cache when this Reader computed it, else from the segment list.
// A failed check is *wire.ChainBrokenError; store failures are returned
// as they are.
func (r *Reader) checkSegment(ctx context.Context, seg wire.SegmentRow) error {
	broken := func(seqno uint64, format string, args ...any) error {
		return &wire.ChainBrokenError{Seqno: seqno, Reason: fmt.Sprintf("segment %d: ", seg.SegmentID) + fmt.Sprintf(format, args...)}
	}
	if seg.SeqStart == 0 || seg.SeqStart > seg.SeqEnd {
		return broken(seg.SeqEnd, "seq_start %d and seq_end %d are not a range", seg.SeqStart, seg.SeqEnd)
	}
	pred, predHash, err := r.previousSegment(ctx, seg)
	if err != nil {
		return err
	}
	lo, expectPrev := uint64(1), wire.ZeroHash
	if pred != nil {
		lo = pred.SeqEnd
	}
	if lo > seg.SeqStart {
		return broken(seg.SeqStart, "starts at seqno %d, inside its previous segment %d (ends at %d)", seg.SeqStart, pred.SegmentID, pred.SeqEnd)
	}
	rows, err := r.st.Range(ctx, seg.StreamID, lo, seg.SeqEnd)
	if err != nil {
		return storageErr(err, "range of segment %d", seg.SegmentID)
	}
	if pred != nil {
		if len(rows) == 0 || rows[0].Seqno != pred.SeqEnd {
			return broken(pred.SeqEnd, "the last entry %d of previous segment %d is missing", pred.SeqEnd, pred.SegmentID)
		}
		if h := chain.RowHash(rows[0]); !bytesEqual(h, rows[0].EntryHash) || !bytesEqual(h, pred.LastEntryHash) {
			return broken(pred.SeqEnd, "the last entry %d of previous segment %d does not hash to that segment's last_entry_hash", pred.SeqEnd, pred.SegmentID)
		}
		expectPrev, rows = rows[0].EntryHash, rows[1:]
	}
	if len(rows) == 0 || rows[0].Seqno != seg.SeqStart {
		first := uint64(0)
		if len(rows) > 0 {
			first = rows[0].Seqno
		}
		return broken(seg.SeqStart, "starts at seqno %d, but the stream's first entry after its previous segment is %d", seg.SeqStart, first)
	}
	if last := rows[len(rows)-1].Seqno; last != seg.SeqEnd {
		return broken(seg.SeqEnd, "ends at seqno %d, which is not an entry of stream %q (last entry in range: %d)", seg.SeqEnd, seg.StreamID, last)
	}
	members, err := r.st.SegmentEntrySeqnos(ctx, seg.SegmentID)
	if err != nil {
		return storageErr(err, "entries of segment %d", seg.SegmentID)
	}
	if len(members) != len(rows) {
		return broken(seg.SeqEnd, "has %d members, but stream %q has %d entries in %d..%d", len(members), seg.StreamID, len(rows), seg.SeqStart, seg.SeqEnd)
	}
	v := chain.NewVerifier(expectPrev)
	leaves := make([][]byte, len(rows))
	for i, row := range rows {
		if members[i] != row.Seqno {
			return broken(row.Seqno, "leaf %d is seqno %d, but the stream's entry at that position is %d", i, members[i], row.Seqno)
		}
		if err := v.Next(row); err != nil {
			var cb *wire.ChainBrokenError
			if errors.As(err, &cb) {
				return broken(cb.Seqno, "%s", cb.Reason)
			}
			return broken(row.Seqno, "%v", err)
		}
		leaves[i] = row.EntryHash // equal to the recomputed hash: v.Next checked it
	}
	if root := merkle.Root(leaves); !bytesEqual(root, seg.MerkleRoot) {
		return broken(seg.SeqEnd, "merkle root mismatch: stored=%s recomputed=%s", hexs(seg.MerkleRoot), hexs(root))
	}
	if !bytesEqual(seg.LastEntryHash, leaves[len(leaves)-1]) {
		return broken(seg.SeqEnd, "last_entry_hash %s is not the hash of entry %d", hexs(seg.LastEntryHash), seg.SeqEnd)
	}
	if !bytesEqual(seg.PrevCheckpointHash, predHash) {
		return broken(seg.SeqEnd, "prev_checkpoint_hash %s does not link to the previous checkpoint %s", hexs(seg.PrevCheckpointHash), hexs(predHash))
	}
	return nil
}

// previousSegment returns the stream's segment before seg and its
// recomputed checkpoint hash, or (nil, ZeroHash) when seg is the first.
//
// A segment that names no previous checkpoint (ZeroHash) is taken to be the
// first without listing: checkSegment then reads the stream from seqno 1,
// so any earlier entry (which a real earlier segment would hold) fails it.
func (r *Reader) previousSegment(ctx context.Context, seg wire.SegmentRow) (*wire.SegmentRow, []byte, error) {
	if bytesEqual(seg.PrevCheckpointHash, wire.ZeroHash) {
		return nil, wire.ZeroHash, nil
	}
	if h, id := r.cachedPrev(seg); h != nil {
		if p, err := r.ReadSegment(ctx, id); err == nil && p.StreamID == seg.StreamID {
			return &p, h, nil
		}
	}
	var pred *wire.SegmentRow
	predHash := wire.ZeroHash
	err := r.chainWalk(ctx, seg.StreamID, 0, true, func(s wire.SegmentRow, _ wire.CheckpointFields, h []byte) error {
		if s.SegmentID >= seg.SegmentID {
			return errStopWalk
		}
		p := s
		pred, predHash = &p, h
		return nil
	})
	if err != nil && !errors.Is(err, errStopWalk) {
		return nil, nil, err
	}
	return pred, predHash, nil
}

// errStopWalk ends a chainWalk early.
var errStopWalk = errors.New("stop walk")
