package merkle

import (
	"fmt"

	"github.com/securelog/securelog/pkg/wire"
)

// Tree keeps every level of a v1 Merkle tree so that many proofs over the
// same leaves (one segment) cost O(log n) each after an O(n) build. A Tree
// is immutable and safe for concurrent use.
type Tree struct {
	levels [][][]byte // levels[0] = leaves, last level = [root]
}

// NewTree builds the tree over copies of leaves (SPEC §6.1).
func NewTree(leaves [][]byte) *Tree {
	level := make([][]byte, len(leaves))
	for i, l := range leaves {
		level[i] = append([]byte(nil), l...)
	}
	t := &Tree{levels: [][][]byte{level}}
	for len(level) > 1 {
		n := len(level)
		buf := make([]byte, (n/2)*wire.HashLen)
		next := make([][]byte, (n+1)/2)
		for i := 0; i+1 < n; i += 2 {
			slot := buf[(i/2)*wire.HashLen : (i/2+1)*wire.HashLen : (i/2+1)*wire.HashLen]
			next[i/2] = hashPair(slot, level[i], level[i+1])
		}
		if n%2 == 1 {
			next[n/2] = level[n-1]
		}
		t.levels = append(t.levels, next)
		level = next
	}
	return t
}

// Size returns the number of leaves.
func (t *Tree) Size() int { return len(t.levels[0]) }

// Root returns a copy of the root: wire.ZeroHash for an empty tree, the leaf
// itself for a single leaf.
func (t *Tree) Root() []byte {
	if t.Size() == 0 {
		return append([]byte(nil), wire.ZeroHash...)
	}
	return append([]byte(nil), t.levels[len(t.levels)-1][0]...)
}

// Prove returns the inclusion path of leaf index, identical to the path
// Prove(leaves, index) returns. An index outside [0, Size()) wraps ErrShape.
func (t *Tree) Prove(index int) ([]Step, error) {
	if index < 0 || index >= t.Size() {
		return nil, fmt.Errorf("%w: leaf index %d is not below tree size %d", ErrShape, index, t.Size())
	}
	var path []Step
	idx := index
	for _, level := range t.levels[:len(t.levels)-1] {
		sib, right := idx+1, true
		if idx%2 == 1 {
			sib, right = idx-1, false
		}
		if sib < len(level) {
			path = append(path, Step{Sibling: append([]byte(nil), level[sib]...), Right: right})
		}
		idx /= 2
	}
	return path, nil
}

// Levels returns the tree's levels, leaves first and the root level last.
// The slices are the tree's own: callers must not modify them.
func (t *Tree) Levels() [][][]byte { return t.levels }
