// Package merkle implements the binary Merkle tree of SPEC §6 and the
// strict inclusion-proof check of DECISIONS 1. It is pure tree math: leaves
// come in as byte slices, nothing is read or written.
//
// The v1 tree has no domain separation: leaves are used as is, an interior
// node is SHA-256(left || right), and an odd last node is promoted unchanged
// to the next level. Because of that, a proof alone does not bind the leaf's
// position; Verify therefore also requires the path's length and left/right
// pattern to be exactly the one implied by (index, size).
package merkle

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/securelog/securelog/pkg/wire"
)

// ErrMismatch is wrapped by Verify when the path does not reconstruct the
// expected root.
var ErrMismatch = errors.New("merkle: inclusion proof does not reconstruct the expected root")

// ErrShape is wrapped by Verify and PathShape when the index, size or path
// shape is impossible for a v1 tree.
var ErrShape = errors.New("merkle: proof shape does not match leaf index and tree size")

// Step is one level of an inclusion proof, bottom-up (SPEC §3.7). Right
// true means Sibling is the right operand: running = H(running || sibling);
// false means running = H(sibling || running). In JSON it is
// {"sibling_hash":"<64 lowercase hex>","right":bool}.
type Step struct {
	Sibling []byte `json:"sibling_hash"`
	Right   bool   `json:"right"`
}

type stepJSON struct {
	Sibling string `json:"sibling_hash"`
	Right   bool   `json:"right"`
}

// MarshalJSON writes {"sibling_hash":"<hex>","right":bool}. A sibling that
// is not 32 bytes is an error.
func (s Step) MarshalJSON() ([]byte, error) {
	if len(s.Sibling) != wire.HashLen {
		return nil, fmt.Errorf("merkle step: sibling_hash is %d bytes, want %d", len(s.Sibling), wire.HashLen)
	}
	return json.Marshal(stepJSON{Sibling: hex.EncodeToString(s.Sibling), Right: s.Right})
}

// UnmarshalJSON reads {"sibling_hash":"<hex>","right":bool}. The hex must be
// exactly 64 lowercase hex digits and "right" must be present.
func (s *Step) UnmarshalJSON(data []byte) error {
	var j struct {
		Sibling *string `json:"sibling_hash"`
		Right   *bool   `json:"right"`
	}
	if err := json.Unmarshal(data, &j); err != nil {
		return fmt.Errorf("merkle step: %w", err)
	}
	if j.Sibling == nil || j.Right == nil {
		return fmt.Errorf("merkle step: want {\"sibling_hash\":\"<hex>\",\"right\":bool}, got %s", data)
	}
	h := *j.Sibling
	if len(h) != 2*wire.HashLen || !isLowerHex(h) {
		return fmt.Errorf("merkle step: sibling_hash %q is not %d lowercase hex digits", h, 2*wire.HashLen)
	}
	b, err := hex.DecodeString(h)
	if err != nil {
		return fmt.Errorf("merkle step: sibling_hash %q: %w", h, err)
	}
	*s = Step{Sibling: b, Right: *j.Right}
	return nil
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// hashPair returns SHA-256(left || right) into dst[:0].
func hashPair(dst, left, right []byte) []byte {
	var buf [2 * wire.HashLen]byte
	var in []byte
	if len(left) == wire.HashLen && len(right) == wire.HashLen {
		copy(buf[:wire.HashLen], left)
		copy(buf[wire.HashLen:], right)
		in = buf[:]
	} else {
		in = append(append(make([]byte, 0, len(left)+len(right)), left...), right...)
	}
	h := sha256.Sum256(in)
	return append(dst[:0], h[:]...)
}

// reducer folds one level of nodes into the next, in place: nodes holds the
// current level and scratch one 32-byte slot per pair, so interior hashes
// never allocate.
type reducer struct {
	nodes   [][]byte
	scratch []byte
}

func newReducer(leaves [][]byte) *reducer {
	r := &reducer{nodes: make([][]byte, len(leaves)), scratch: make([]byte, (len(leaves)/2)*wire.HashLen)}
	copy(r.nodes, leaves)
	return r
}

// reduce replaces the level with the next one. The parent of pair (2i,2i+1)
// goes to slot i; pairs are processed in increasing order, and slot i can
// only hold a node of index ≤ i of the current level (indices never grow),
// so the nodes it overwrites have already been read.
func (r *reducer) reduce() {
	n := len(r.nodes)
	for i := 0; i+1 < n; i += 2 {
		slot := r.scratch[(i/2)*wire.HashLen : (i/2+1)*wire.HashLen : (i/2+1)*wire.HashLen]
		r.nodes[i/2] = hashPair(slot, r.nodes[i], r.nodes[i+1])
	}
	if n%2 == 1 {
		r.nodes[n/2] = r.nodes[n-1] // promoted unchanged
	}
	r.nodes = r.nodes[:(n+1)/2]
}

// Root returns the Merkle root of SPEC §6.1: leaves used as is, interior
// nodes SHA-256(left || right), an odd last node promoted unchanged. An
// empty list gives a copy of wire.ZeroHash; one leaf gives a copy of that
// leaf. Cost: n−1 hashes, two allocations.
func Root(leaves [][]byte) []byte {
	if len(leaves) == 0 {
		return append([]byte(nil), wire.ZeroHash...)
	}
	r := newReducer(leaves)
	for len(r.nodes) > 1 {
		r.reduce()
	}
	return append([]byte(nil), r.nodes[0]...)
}

// Prove builds the inclusion proof of SPEC §6.2 for leaves[index] and returns
// the bottom-up path and the root, in one O(n) pass. A promoted node gets no
// step at that level; a single leaf has an empty path. If index is out of
// range Prove returns nil, nil.
func Prove(leaves [][]byte, index int) ([]Step, []byte) {
	if index < 0 || index >= len(leaves) {
		return nil, nil
	}
	var path []Step
	r := newReducer(leaves)
	idx := index
	for len(r.nodes) > 1 {
		sib, right := idx+1, true
		if idx%2 == 1 {
			sib, right = idx-1, false
		}
		if sib < len(r.nodes) {
			path = append(path, Step{Sibling: append([]byte(nil), r.nodes[sib]...), Right: right})
		}
		r.reduce()
		idx /= 2
	}
	return path, append([]byte(nil), r.nodes[0]...)
}

// RootFromPath returns the root implied by leaf and path (SPEC §6.3): the
// running hash starts at leaf and each step hashes the sibling on the side
// its Right flag names. It checks nothing; see Verify.
func RootFromPath(leaf []byte, path []Step) []byte {
	running := append(make([]byte, 0, wire.HashLen), leaf...)
	for _, s := range path {
		if s.Right {
			running = hashPair(running, running, s.Sibling)
		} else {
			running = hashPair(running, s.Sibling, running)
		}
	}
	return running
}

// PathShape returns the exact sequence of Right flags that a valid proof for
// leaf index in a tree of size leaves has, bottom-up. Levels where the node
// is promoted produce no step. index ≥ size (including size 0) wraps ErrShape.
func PathShape(index, size uint64) ([]bool, error) {
	if index >= size {
		return nil, fmt.Errorf("%w: leaf index %d is not below tree size %d", ErrShape, index, size)
	}
	var shape []bool
	for n, i := size, index; n > 1; n, i = (n+1)/2, i/2 {
		if i%2 == 0 {
			if i+1 < n {
				shape = append(shape, true)
			}
		} else {
			shape = append(shape, false)
		}
	}
	return shape, nil
}

// Node is one sibling of an inclusion path in a tree stored by level:
// Level 0 is the leaves, Index the node's position in its level, Right as
// in Step (the sibling is the right operand).
type Node struct {
	Level int
	Index uint64
	Right bool
}

// PathNodes returns where the siblings of leaf index's inclusion path are in
// a tree of size leaves, bottom-up, exactly as Tree.Prove takes them (a
// promoted node has no sibling and no step): a stored tree answers a proof
// by reading these nodes. index ≥ size wraps ErrShape.
func PathNodes(index, size uint64) ([]Node, error) {
	if index >= size {
		return nil, fmt.Errorf("%w: leaf index %d is not below tree size %d", ErrShape, index, size)
	}
	var out []Node
	for level, i, n := 0, index, size; n > 1; level, i, n = level+1, i/2, (n+1)/2 {
		switch {
		case i%2 == 1:
			out = append(out, Node{Level: level, Index: i - 1})
		case i+1 < n:
			out = append(out, Node{Level: level, Index: i + 1, Right: true})
		}
	}
	return out, nil
}

// errNot32 is the reference message for malformed hashes (SPEC §6.3).
func errNot32() error { return &wire.InvalidError{Msg: "hash is not 32 bytes"} }

// Verify checks that leaf is leaf number index of a tree of size leaves
// whose root is root, following DECISIONS 1:
//   - leaf, root and every sibling must be 32 bytes, else *wire.InvalidError
//     "hash is not 32 bytes" (before any hashing);
//   - index < size and the path's length and left/right pattern must equal
//     PathShape(index, size), else an error wrapping ErrShape;
//   - RootFromPath(leaf, path) must equal root, else an error wrapping
//     ErrMismatch.
//
// The shape check is what rejects an interior node presented as a leaf with
// a shorter path, or a proof replayed for another position or tree size.
func Verify(leaf []byte, index, size uint64, path []Step, root []byte) error {
	if len(leaf) != wire.HashLen || len(root) != wire.HashLen {
		return errNot32()
	}
	for _, s := range path {
		if len(s.Sibling) != wire.HashLen {
			return errNot32()
		}
	}
	shape, err := PathShape(index, size)
	if err != nil {
		return err
	}
	if len(path) != len(shape) {
		return fmt.Errorf("%w: path has %d steps, leaf %d of %d needs %d", ErrShape, len(path), index, size, len(shape))
	}
	for i, right := range shape {
		if path[i].Right != right {
			return fmt.Errorf("%w: step %d has right=%t, leaf %d of %d needs right=%t",
				ErrShape, i, path[i].Right, index, size, right)
		}
	}
	if got := RootFromPath(leaf, path); !bytes.Equal(got, root) {
		return fmt.Errorf("%w: recomputed %x, expected %x (leaf %d of %d)", ErrMismatch, got, root, index, size)
	}
	return nil
}

// IndexFromPath returns the leaf index a path implies if no level of the
// tree promoted the running node: step i with Right false (the sibling is
// on the left, so the running node is a right child) sets bit i. Levels
// where the node was promoted have no step and are not counted, so for
// such trees this is not the leaf's true index. Paths longer than 64 steps
// keep the low 64 bits.
func IndexFromPath(path []Step) uint64 {
	var idx uint64
	for i, s := range path {
		if !s.Right && i < 64 {
			idx |= 1 << i
		}
	}
	return idx
}

// VerifyUnbound checks a proof that carries no leaf index and no tree size
// — the reference's proof shape (SPEC §3.7, §6.3): leaf, root and every
// sibling must be 32 bytes (else *wire.InvalidError "hash is not 32
// bytes"), and RootFromPath(leaf, path) must equal root (else an error
// wrapping ErrMismatch). It returns IndexFromPath(path).
//
// This is weaker than Verify: without (index, size) the path's shape is not
// checked, so neither the leaf's position nor the tree size is bound, and
// an interior node presented as a leaf with a shorter path also verifies.
// Callers must say so, and should recompute leaf from the entry's bytes.
func VerifyUnbound(leaf []byte, path []Step, root []byte) (uint64, error) {
	if len(leaf) != wire.HashLen || len(root) != wire.HashLen {
		return 0, errNot32()
	}
	for _, s := range path {
		if len(s.Sibling) != wire.HashLen {
			return 0, errNot32()
		}
	}
	if got := RootFromPath(leaf, path); !bytes.Equal(got, root) {
		return 0, fmt.Errorf("%w: recomputed %x, expected %x (proof without leaf index or tree size)", ErrMismatch, got, root)
	}
	return IndexFromPath(path), nil
}
