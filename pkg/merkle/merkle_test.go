package merkle

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/securelog/securelog/pkg/wire"
)

func testLeaves(n int) [][]byte {
	leaves := make([][]byte, n)
	for i := range leaves {
		h := sha256.Sum256([]byte{byte(i), byte(i >> 8), 0x5a})
		leaves[i] = h[:]
	}
	return leaves
}

// naiveRoot is the level-by-level definition of SPEC §6.1, written
// independently of reducer.
func naiveRoot(level [][]byte) []byte {
	if len(level) == 0 {
		return wire.ZeroHash
	}
	for len(level) > 1 {
		var next [][]byte
		for i := 0; i < len(level); i += 2 {
			if i+1 == len(level) {
				next = append(next, level[i])
				continue
			}
			h := sha256.Sum256(append(append([]byte{}, level[i]...), level[i+1]...))
			next = append(next, h[:])
		}
		level = next
	}
	return level[0]
}

func clonePath(p []Step) []Step {
	out := make([]Step, len(p))
	for i, s := range p {
		out[i] = Step{Sibling: append([]byte(nil), s.Sibling...), Right: s.Right}
	}
	return out
}

func flipBit(b []byte, bit int) []byte {
	c := append([]byte(nil), b...)
	c[bit/8] ^= 1 << (bit % 8)
	return c
}

func mustFail(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: Verify accepted", what)
	}
}

func TestProveVerifyProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	all := testLeaves(72)
	for n := 1; n <= 70; n++ {
		leaves := all[:n]
		root := Root(leaves)
		if !bytes.Equal(root, naiveRoot(leaves)) {
			t.Fatalf("n=%d: Root differs from the level-by-level definition", n)
		}
		tree := NewTree(leaves)
		if !bytes.Equal(tree.Root(), root) || tree.Size() != n {
			t.Fatalf("n=%d: Tree root/size wrong", n)
		}
		for i := 0; i < n; i++ {
			path, pr := Prove(leaves, i)
			if !bytes.Equal(pr, root) {
				t.Fatalf("n=%d i=%d: Prove root differs from Root", n, i)
			}
			if tp, err := tree.Prove(i); err != nil || !equalSteps(tp, path) {
				t.Fatalf("n=%d i=%d: Tree.Prove differs: %v", n, i, err)
			}
			shape, err := PathShape(uint64(i), uint64(n))
			if err != nil || len(shape) != len(path) {
				t.Fatalf("n=%d i=%d: PathShape %v (%v) vs path length %d", n, i, shape, err, len(path))
			}
			for k := range shape {
				if shape[k] != path[k].Right {
					t.Fatalf("n=%d i=%d: PathShape %v disagrees with Prove at step %d", n, i, shape, k)
				}
			}
			leaf := leaves[i]
			if err := Verify(leaf, uint64(i), uint64(n), path, root); err != nil {
				t.Fatalf("n=%d i=%d: Verify: %v", n, i, err)
			}
			checkTampering(t, r, all, leaf, i, n, path, root)
		}
	}
}

func equalSteps(a, b []Step) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Right != b[i].Right || !bytes.Equal(a[i].Sibling, b[i].Sibling) {
			return false
		}
	}
	return true
}

func checkTampering(t *testing.T, r *rand.Rand, all [][]byte, leaf []byte, i, n int, path []Step, root []byte) {
	t.Helper()
	idx, size := uint64(i), uint64(n)
	mustFail(t, "flipped leaf bit", Verify(flipBit(leaf, r.IntN(256)), idx, size, path, root))
	mustFail(t, "flipped root bit", Verify(leaf, idx, size, path, flipBit(root, r.IntN(256))))
	for k := range path {
		p := clonePath(path)
		p[k].Sibling = flipBit(p[k].Sibling, r.IntN(256))
		mustFail(t, "flipped sibling bit", Verify(leaf, idx, size, p, root))
		p = clonePath(path)
		p[k].Right = !p[k].Right
		err := Verify(leaf, idx, size, p, root)
		if !errors.Is(err, ErrShape) {
			t.Fatalf("n=%d i=%d: flipped right flag at step %d: %v, want ErrShape", n, i, k, err)
		}
	}
	if len(path) > 0 {
		mustFail(t, "dropped first step", Verify(leaf, idx, size, clonePath(path[1:]), root))
		mustFail(t, "dropped last step", Verify(leaf, idx, size, clonePath(path[:len(path)-1]), root))
	}
	extra := append(clonePath(path), Step{Sibling: all[0], Right: true})
	mustFail(t, "extra step", Verify(leaf, idx, size, extra, root))
	for j := 0; j < n; j++ {
		if j != i {
			mustFail(t, "wrong index", Verify(leaf, uint64(j), size, path, root))
		}
	}
	mustFail(t, "index = size", Verify(leaf, size, size, path, root))
	// Wrong size: against that size's real root it always fails; against
	// this root the shape check rejects every size whose shape differs.
	for _, m := range []int{i + 1, n - 1, n + 1, n + 2, 2 * n, 1 + r.IntN(len(all))} {
		if m == n || m <= i || m > len(all) {
			continue
		}
		mustFail(t, "wrong size, its own root", Verify(leaf, idx, uint64(m), path, Root(all[:m])))
		shape, _ := PathShape(idx, uint64(m))
		same := len(shape) == len(path)
		for k := 0; same && k < len(shape); k++ {
			same = shape[k] == path[k].Right
		}
		if err := Verify(leaf, idx, uint64(m), path, root); same != (err == nil) {
			t.Fatalf("n=%d i=%d m=%d: same shape %v but Verify error %v", n, i, m, same, err)
		}
	}
	if n > 1 {
		mustFail(t, "leaf is root, empty path", Verify(root, idx, size, nil, root))
	}
}

// TestInteriorNodeAsLeaf is the attack of SPEC §6.1's note: an interior node
// presented as a leaf with the shorter path above it reconstructs the root,
// but never with the real tree size and any index.
func TestInteriorNodeAsLeaf(t *testing.T) {
	all := testLeaves(40)
	attacks := 0
	for n := 2; n <= len(all); n++ {
		tree := NewTree(all[:n])
		root := tree.Root()
		for l := 1; l < len(tree.levels)-1; l++ {
			for k, node := range tree.levels[l] {
				if below := len(tree.levels[l-1]); below%2 == 1 && k == below/2 {
					continue // promoted unchanged: a real lower node, not an interior one
				}
				sub := &Tree{levels: tree.levels[l:]}
				path, err := sub.Prove(k)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(RootFromPath(node, path), root) {
					t.Fatalf("n=%d level %d node %d: sub-path does not reach the root", n, l, k)
				}
				attacks++
				for idx := 0; idx < n; idx++ {
					if err := Verify(node, uint64(idx), uint64(n), path, root); err == nil {
						t.Fatalf("n=%d: interior node (level %d, index %d) accepted as leaf %d", n, l, k, idx)
					}
				}
			}
		}
	}
	if attacks < 100 {
		t.Fatalf("only %d attacks tried", attacks)
	}
}

func TestVerifyErrors(t *testing.T) {
	leaves := testLeaves(5)
	path, root := Prove(leaves, 2)
	var inv *wire.InvalidError
	short := append([]byte(nil), leaves[2][:31]...)
	cases := []struct {
		name  string
		err   error
		inv   bool
		shape bool
		mism  bool
	}{
		{"short leaf", Verify(short, 2, 5, path, root), true, false, false},
		{"short root", Verify(leaves[2], 2, 5, path, root[:31]), true, false, false},
		{"nil root", Verify(leaves[2], 2, 5, path, nil), true, false, false},
		{"short sibling", Verify(leaves[2], 2, 5, []Step{{Sibling: path[0].Sibling[:31], Right: true}, path[1], path[2]}, root), true, false, false},
		{"size zero", Verify(leaves[2], 0, 0, nil, root), false, true, false},
		{"index beyond", Verify(leaves[2], 9, 5, path, root), false, true, false},
		{"wrong root", Verify(leaves[2], 2, 5, path, leaves[0]), false, false, true},
	}
	for _, c := range cases {
		if c.err == nil {
			t.Errorf("%s: accepted", c.name)
			continue
		}
		if got := errors.As(c.err, &inv); got != c.inv {
			t.Errorf("%s: InvalidError %v, want %v (%v)", c.name, got, c.inv, c.err)
		} else if c.inv && inv.Msg != "hash is not 32 bytes" {
			t.Errorf("%s: message %q", c.name, inv.Msg)
		}
		if errors.Is(c.err, ErrShape) != c.shape || errors.Is(c.err, ErrMismatch) != c.mism {
			t.Errorf("%s: error %v: shape %v mismatch %v", c.name, c.err, c.shape, c.mism)
		}
	}
	if p, r := Prove(leaves, 5); p != nil || r != nil {
		t.Error("Prove out of range returned a proof")
	}
	if p, r := Prove(leaves, -1); p != nil || r != nil {
		t.Error("Prove(-1) returned a proof")
	}
	if _, err := NewTree(leaves).Prove(5); !errors.Is(err, ErrShape) {
		t.Errorf("Tree.Prove out of range: %v", err)
	}
}

func TestSmallShapes(t *testing.T) {
	cases := []struct {
		index, size uint64
		want        []bool
	}{
		{0, 1, nil},
		{0, 2, []bool{true}},
		{1, 2, []bool{false}},
		{2, 3, []bool{false}},
		{4, 5, []bool{false}},
		{3, 7, []bool{false, false, true}},
		{6, 7, []bool{false, false}},
		{0, 1 << 40, make([]bool, 40)},
	}
	for i := range 40 {
		cases[len(cases)-1].want[i] = true
	}
	for _, c := range cases {
		got, err := PathShape(c.index, c.size)
		if err != nil || !equalBools(got, c.want) {
			t.Errorf("PathShape(%d,%d) = %v, %v; want %v", c.index, c.size, got, err, c.want)
		}
	}
}

func equalBools(a, b []bool) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestRootDoesNotAliasInput(t *testing.T) {
	leaves := testLeaves(1)
	r := Root(leaves)
	r[0] ^= 0xff
	if bytes.Equal(leaves[0], r) {
		t.Fatal("Root of one leaf aliases the leaf")
	}
	leaves = testLeaves(9)
	keep := make([][]byte, len(leaves))
	for i := range leaves {
		keep[i] = append([]byte(nil), leaves[i]...)
	}
	_ = Root(leaves)
	_, _ = Prove(leaves, 8)
	for i := range leaves {
		if !bytes.Equal(leaves[i], keep[i]) {
			t.Fatalf("leaf %d modified", i)
		}
	}
}

// FuzzVerify builds a real proof for (index, size), applies the fuzzer's
// edits to leaf, root, siblings and flags, and requires Verify to accept
// exactly when nothing changed (or the edits yield another genuine
// single-leaf tree). It also runs Verify on raw fuzz input to check it
// never panics.
func FuzzVerify(f *testing.F) {
	f.Add(uint8(3), uint8(7), []byte{})
	f.Add(uint8(0), uint8(1), []byte{0, 1})
	f.Add(uint8(4), uint8(5), []byte{40, 0x80})
	f.Add(uint8(2), uint8(3), []byte{255, 0})
	f.Add(uint8(63), uint8(64), []byte{7, 7, 7, 7})
	all := testLeaves(256)
	f.Fuzz(func(t *testing.T, index, size uint8, edits []byte) {
		// Raw garbage must never panic.
		raw := rawPath(edits)
		_ = Verify(padTo32(edits), uint64(index), uint64(size), raw, padTo32(edits))
		_, _ = PathShape(uint64(index), uint64(size))

		if size == 0 || index >= size {
			return
		}
		leaves := all[:size]
		path, root := Prove(leaves, int(index))
		leaf := append([]byte(nil), leaves[index]...)
		p := clonePath(path)
		changed := false
		// Each edit pair (pos, xor) hits leaf, root, a sibling or a flag.
		for k := 0; k+1 < len(edits); k += 2 {
			pos, x := int(edits[k]), edits[k+1]
			if x == 0 {
				continue
			}
			units := 2 + len(p)
			switch u := pos % (units + 1); {
			case u == 0:
				leaf[pos%32] ^= x
			case u == 1:
				root = append([]byte(nil), root...)
				root[pos%32] ^= x
			case u < units:
				p[u-2].Sibling[pos%32] ^= x
			default:
				if len(p) == 0 {
					continue
				}
				p[pos%len(p)].Right = !p[pos%len(p)].Right
			}
			changed = true
		}
		if changed && equalSteps(p, path) && bytes.Equal(leaf, leaves[index]) && bytes.Equal(root, Root(leaves)) {
			changed = false // edits cancelled out
		}
		// With an empty path (size 1) the leaf is the root: editing both
		// the same way yields another genuine single-leaf tree.
		if changed && len(p) == 0 && bytes.Equal(leaf, root) {
			changed = false
		}
		err := Verify(leaf, uint64(index), uint64(size), p, root)
		if changed != (err != nil) {
			t.Fatalf("index %d size %d edits %x: changed=%v, Verify error %v", index, size, edits, changed, err)
		}
	})
}

func padTo32(b []byte) []byte {
	out := make([]byte, 32)
	copy(out, b)
	return out
}

// rawPath turns arbitrary bytes into steps, some of which are malformed.
func rawPath(b []byte) []Step {
	var p []Step
	for len(b) > 0 && len(p) < 70 {
		n := int(b[0]) % 40
		b = b[1:]
		if n > len(b) {
			n = len(b)
		}
		p = append(p, Step{Sibling: b[:n], Right: n%2 == 0})
		b = b[n:]
	}
	return p
}

func BenchmarkRoot10k(b *testing.B) {
	leaves := testLeaves(10000)
	b.ReportAllocs()
	for b.Loop() {
		_ = Root(leaves)
	}
}

func BenchmarkProve10k(b *testing.B) {
	leaves := testLeaves(10000)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		_, _ = Prove(leaves, i%10000)
		i += 7919
	}
}

func BenchmarkTreeProve10k(b *testing.B) {
	tree := NewTree(testLeaves(10000))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := tree.Prove(i % 10000); err != nil {
			b.Fatal(err)
		}
		i += 7919
	}
}

// TestVerifyUnbound: proofs without (index, size) verify by root only and
// report the index their path implies.
func TestVerifyUnbound(t *testing.T) {
	for n := 1; n <= 17; n++ {
		leaves := make([][]byte, n)
		for i := range leaves {
			leaves[i] = bytes.Repeat([]byte{byte(i + 1)}, 32)
		}
		root := Root(leaves)
		for i := range n {
			path, _ := Prove(leaves, i)
			idx, err := VerifyUnbound(leaves[i], path, root)
			if err != nil {
				t.Fatalf("n=%d i=%d: %v", n, i, err)
			}
			// Without promotions on the leaf's way up the index is exact.
			if shape, _ := PathShape(uint64(i), uint64(n)); len(shape) == bitsFor(n) && idx != uint64(i) {
				t.Errorf("n=%d i=%d: index from path %d", n, i, idx)
			}
			other := bytes.Repeat([]byte{0xee}, 32)
			if _, err := VerifyUnbound(other, path, root); !errors.Is(err, ErrMismatch) {
				t.Errorf("n=%d i=%d: wrong leaf: %v", n, i, err)
			}
		}
	}
	if _, err := VerifyUnbound([]byte{1}, nil, make([]byte, 32)); err == nil {
		t.Error("short leaf accepted")
	}
}

// bitsFor is the number of levels above the leaves of a tree of n leaves.
func bitsFor(n int) int {
	b := 0
	for ; n > 1; n = (n + 1) / 2 {
		b++
	}
	return b
}

// TestPathNodes: the nodes PathNodes names, read from the tree's levels,
// are exactly Tree.Prove's path (siblings and sides), for every leaf of
// trees of 1 to 70 leaves; an index outside the tree wraps ErrShape.
func TestPathNodes(t *testing.T) {
	for n := 1; n <= 70; n++ {
		tree := NewTree(testLeaves(n))
		levels := tree.Levels()
		for i := range n {
			want, err := tree.Prove(i)
			if err != nil {
				t.Fatal(err)
			}
			nodes, err := PathNodes(uint64(i), uint64(n))
			if err != nil || len(nodes) != len(want) {
				t.Fatalf("n=%d i=%d: PathNodes %v (%v), want %d steps", n, i, nodes, err, len(want))
			}
			for k, nd := range nodes {
				if nd.Right != want[k].Right || !bytes.Equal(levels[nd.Level][nd.Index], want[k].Sibling) {
					t.Fatalf("n=%d i=%d step %d: node %+v is not Prove's sibling", n, i, k, nd)
				}
			}
		}
		if _, err := PathNodes(uint64(n), uint64(n)); !errors.Is(err, ErrShape) {
			t.Fatalf("n=%d: PathNodes(n, n) = %v, want ErrShape", n, err)
		}
	}
}
