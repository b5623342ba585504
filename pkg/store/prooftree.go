package store

import (
	"context"

	"github.com/securelog/securelog/pkg/wire"
)

// TreeChunkNodes is how many 32-byte node hashes one stored tree chunk
// holds (8 KiB values): a proof reads at most one chunk per tree level.
const TreeChunkNodes = 256

// SegmentLeaf locates a seqno in a segment's stored tree.
type SegmentLeaf struct {
	SegmentID uint64
	Index     uint64 // leaf index
	Size      uint64 // number of leaves (tree size)
}

// TreeChunk is one stored piece of a segment's Merkle tree: up to
// TreeChunkNodes consecutive nodes of one level, concatenated.
type TreeChunk struct {
	Level int
	Chunk uint64 // chunk number: nodes [Chunk*TreeChunkNodes, ...)
	Nodes []byte
}

// SegmentTreeStore is implemented by stores that keep each segment's Merkle
// tree (all levels, in chunks) and every member's leaf index, written in the
// same atomic write as the segment, so that an inclusion proof costs
// O(log n) reads and reads no entries.
type SegmentTreeStore interface {
	// SegmentInsertTree is SegmentInsert (same checks, same atomicity) that
	// also stores the tree's chunks and, for each member, its leaf index
	// and the tree size.
	SegmentInsertTree(ctx context.Context, row wire.SegmentRow, entries []wire.SegmentEntry, chunks []TreeChunk) (uint64, error)
	// SegmentLeaf returns where seqno is in its segment's stored tree;
	// false if it is in no segment or its segment was stored without a tree.
	SegmentLeaf(ctx context.Context, seqno uint64) (SegmentLeaf, bool, error)
	// SegmentTreeChunk returns one stored chunk of a segment's tree.
	SegmentTreeChunk(ctx context.Context, segmentID uint64, level int, chunk uint64) ([]byte, bool, error)
	// SegmentTreeNodes returns the 32-byte hashes of nodes of a segment's
	// stored tree, in the order asked, in one read (a proof's siblings);
	// a node that is not stored is nil. The slices are the caller's.
	SegmentTreeNodes(ctx context.Context, segmentID uint64, nodes []TreeNode) ([][]byte, error)
}

// TreeNode names one node of a stored tree: Level 0 is the leaves, Index
// the node's position in its level (it is in chunk Index/TreeChunkNodes).
type TreeNode struct {
	Level int
	Index uint64
}

// NodeFromChunk returns node index's 32 bytes (a copy) from its level's
// chunk, or nil if the chunk is too short to hold it.
func NodeFromChunk(chunk []byte, index uint64) []byte {
	off := (index % TreeChunkNodes) * wire.HashLen
	if off+wire.HashLen > uint64(len(chunk)) {
		return nil
	}
	return append(make([]byte, 0, wire.HashLen), chunk[off:off+wire.HashLen]...)
}

// TreeChunks cuts tree levels (leaves first, root last, as merkle.Tree
// keeps them) into the chunks a SegmentTreeStore stores.
func TreeChunks(levels [][][]byte) []TreeChunk {
	var out []TreeChunk
	for k, level := range levels {
		for start := 0; start < len(level); start += TreeChunkNodes {
			end := min(start+TreeChunkNodes, len(level))
			b := make([]byte, 0, (end-start)*wire.HashLen)
			for _, n := range level[start:end] {
				b = append(b, n...)
			}
			out = append(out, TreeChunk{Level: k, Chunk: uint64(start / TreeChunkNodes), Nodes: b})
		}
	}
	return out
}
