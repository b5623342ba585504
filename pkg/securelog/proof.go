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
func (r *Reader) BuildInclusionProof(ctx context.Context, seqno uint64) (InclusionProof, error) {
	if ts, ok := r.st.(store.SegmentTreeStore); ok {
		if p, ok, err := r.proofFromTree(ctx, ts, seqno); ok || err != nil {
			return p, err
		}
	}
	segID, ok, err := r.st.SegmentForSeqno(ctx, seqno)
	if err != nil {
		return InclusionProof{}, storageErr(err, "segment for seqno %d", seqno)
	}
	if !ok {
		return InclusionProof{}, &wire.EntryNotFoundError{Seqno: seqno}
	}
	seg, err := r.ReadSegment(ctx, segID)
	if err != nil {
		return InclusionProof{}, err
	}
	seqnos, err := r.st.SegmentEntrySeqnos(ctx, segID)
	if err != nil {
		return InclusionProof{}, storageErr(err, "entries of segment %d", segID)
	}
	leaves, index, err := r.segmentLeaves(ctx, seg, seqnos, seqno)
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
func (r *Reader) segmentLeaves(ctx context.Context, seg wire.SegmentRow, seqnos []uint64, seqno uint64) ([][]byte, int, error) {
	leaves := make([][]byte, len(seqnos))
	index := -1
	rows, err := r.st.Range(ctx, seg.StreamID, seg.SeqStart, seg.SeqEnd)
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
			got, ok, err := r.st.Get(ctx, s)
			if err != nil {
				return nil, -1, storageErr(err, "get seqno %d", s)
			}
			if !ok {
				return nil, -1, &wire.EntryNotFoundError{Seqno: s}
			}
			row = got
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

// proofFromTree builds seqno's proof from its segment's stored tree
// (store.SegmentTreeStore): the leaf location, the leaf and its path's
// siblings in one read of the stored tree (merkle.PathNodes), the proved
// entry and the segment row, so a constant number of reads whatever the
// segment's size. ok is false when the segment was stored without a tree
// (then the caller rebuilds the tree from the entries). The stored-root
// check stays (DECISIONS 2): the entry must hash (recomputed from its
// canonical bytes) to the sealed leaf, and the path must lead to the
// segment's stored root, else *wire.ChainBrokenError.
func (r *Reader) proofFromTree(ctx context.Context, ts store.SegmentTreeStore, seqno uint64) (InclusionProof, bool, error) {
	loc, ok, err := ts.SegmentLeaf(ctx, seqno)
	if err != nil {
		return InclusionProof{}, false, storageErr(err, "leaf of seqno %d", seqno)
	}
	if !ok {
		return InclusionProof{}, false, nil
	}
	broken := func(format string, args ...any) error {
		return &wire.ChainBrokenError{Seqno: seqno, Reason: fmt.Sprintf("segment %d: ", loc.SegmentID) + fmt.Sprintf(format, args...)}
	}
	sibs, err := merkle.PathNodes(loc.Index, loc.Size)
	if err != nil {
		return InclusionProof{}, false, broken("stored leaf location: %v", err)
	}
	want := make([]store.TreeNode, 0, len(sibs)+1)
	want = append(want, store.TreeNode{Level: 0, Index: loc.Index})
	for _, n := range sibs {
		want = append(want, store.TreeNode{Level: n.Level, Index: n.Index})
	}
	nodes, err := ts.SegmentTreeNodes(ctx, loc.SegmentID, want)
	if err != nil {
		return InclusionProof{}, false, storageErr(err, "tree nodes of segment %d", loc.SegmentID)
	}
	if len(nodes) != len(want) {
		return InclusionProof{}, false, storageErr(fmt.Errorf("%d nodes for %d asked", len(nodes), len(want)), "tree nodes of segment %d", loc.SegmentID)
	}
	for i, n := range nodes {
		if len(n) != wire.HashLen {
			return InclusionProof{}, false, broken("stored tree has no node %d of level %d", want[i].Index, want[i].Level)
		}
	}
	leaf := nodes[0]
	row, ok, err := r.st.Get(ctx, seqno)
	if err != nil {
		return InclusionProof{}, false, storageErr(err, "get seqno %d", seqno)
	}
	if !ok {
		return InclusionProof{}, false, &wire.EntryNotFoundError{Seqno: seqno}
	}
	if h := chain.RowHash(row); !bytesEqual(h, leaf) || !bytesEqual(row.EntryHash, leaf) {
		return InclusionProof{}, false, broken("entry %d does not hash to its sealed leaf %s", seqno, hexs(leaf))
	}
	var path []merkle.Step // nil when the segment has one entry, as merkle.Tree.Prove
	for i, n := range sibs {
		path = append(path, merkle.Step{Sibling: nodes[i+1], Right: n.Right})
	}
	seg, err := r.ReadSegment(ctx, loc.SegmentID)
	if err != nil {
		return InclusionProof{}, false, err
	}
	if root := merkle.RootFromPath(leaf, path); !bytesEqual(root, seg.MerkleRoot) {
		return InclusionProof{}, false, broken("merkle root mismatch: stored=%s recomputed=%s", hexs(seg.MerkleRoot), hexs(root))
	}
	return InclusionProof{
		Seqno: seqno, EntryHash: leaf, SegmentID: loc.SegmentID, MerkleRoot: seg.MerkleRoot,
		Path: path, LeafIndex: loc.Index, TreeSize: loc.Size,
	}, true, nil
}
