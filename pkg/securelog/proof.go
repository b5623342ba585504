package securelog

import (
	"context"
	"fmt"

	"github.com/securelog/securelog/pkg/chain"
	"github.com/securelog/securelog/pkg/merkle"
	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/wire"
)

// proofFromTree builds seqno's proof from its segment's stored tree
// (store.SegmentTreeStore): the leaf location, one chunk per tree level and
// the proved entry itself, so O(log n) reads. ok is false when the segment
// was stored without a tree (then the caller rebuilds the tree from the
// entries). The stored-root check stays (DECISIONS 2): the entry must hash
// (recomputed from its canonical bytes) to the sealed leaf, and the path
// must lead to the segment's stored root, else *wire.ChainBrokenError.
func (l *Log) proofFromTree(ctx context.Context, ts store.SegmentTreeStore, seqno uint64) (InclusionProof, bool, error) {
	loc, ok, err := ts.SegmentLeaf(ctx, seqno)
	if err != nil {
		return InclusionProof{}, false, storageErr(err, "leaf of seqno %d", seqno)
	}
	if !ok {
		return InclusionProof{}, false, nil
	}
	seg, err := l.ReadSegment(ctx, loc.SegmentID)
	if err != nil {
		return InclusionProof{}, false, err
	}
	broken := func(format string, args ...any) error {
		return &wire.ChainBrokenError{Seqno: seqno, Reason: fmt.Sprintf("segment %d: ", loc.SegmentID) + fmt.Sprintf(format, args...)}
	}
	chunks := map[[2]uint64][]byte{}
	node := func(level int, idx uint64) ([]byte, error) {
		pos := [2]uint64{uint64(level), idx / store.TreeChunkNodes}
		b, ok := chunks[pos]
		if !ok {
			var err error
			if b, ok, err = ts.SegmentTreeChunk(ctx, loc.SegmentID, level, pos[1]); err != nil {
				return nil, storageErr(err, "tree chunk %d/%d of segment %d", level, pos[1], loc.SegmentID)
			}
			if !ok {
				return nil, broken("stored tree lacks level %d chunk %d", level, pos[1])
			}
			chunks[pos] = b
		}
		off := (idx % store.TreeChunkNodes) * wire.HashLen
		if off+wire.HashLen > uint64(len(b)) {
			return nil, broken("stored tree level %d has no node %d", level, idx)
		}
		return b[off : off+wire.HashLen], nil
	}
	leaf, err := node(0, loc.Index)
	if err != nil {
		return InclusionProof{}, false, err
	}
	row, ok, err := l.st.Get(ctx, seqno)
	if err != nil {
		return InclusionProof{}, false, storageErr(err, "get seqno %d", seqno)
	}
	if !ok {
		return InclusionProof{}, false, &wire.EntryNotFoundError{Seqno: seqno}
	}
	if h := chain.RowHash(row); !bytesEqual(h, leaf) || !bytesEqual(row.EntryHash, leaf) {
		return InclusionProof{}, false, broken("entry %d does not hash to its sealed leaf %s", seqno, hexs(leaf))
	}
	var path []merkle.Step
	for level, idx, size := 0, loc.Index, loc.Size; size > 1; level, idx, size = level+1, idx/2, (size+1)/2 {
		sib, right := idx+1, true
		if idx%2 == 1 {
			sib, right = idx-1, false
		}
		if sib >= size {
			continue // promoted: no step
		}
		h, err := node(level, sib)
		if err != nil {
			return InclusionProof{}, false, err
		}
		path = append(path, merkle.Step{Sibling: append([]byte(nil), h...), Right: right})
	}
	if root := merkle.RootFromPath(leaf, path); !bytesEqual(root, seg.MerkleRoot) {
		return InclusionProof{}, false, broken("merkle root mismatch: stored=%s recomputed=%s", hexs(seg.MerkleRoot), hexs(root))
	}
	return InclusionProof{
		Seqno: seqno, EntryHash: append([]byte(nil), leaf...), SegmentID: loc.SegmentID, MerkleRoot: seg.MerkleRoot,
		Path: path, LeafIndex: loc.Index, TreeSize: loc.Size,
	}, true, nil
}
