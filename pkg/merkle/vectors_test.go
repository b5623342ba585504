package merkle_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"

	"github.com/securelog/securelog/internal/vectors"
	"github.com/securelog/securelog/pkg/merkle"
	"github.com/securelog/securelog/pkg/wire"
)

func vectorPath(t *testing.T, steps []vectors.Step) []merkle.Step {
	t.Helper()
	out := []merkle.Step{}
	for _, s := range steps {
		out = append(out, merkle.Step{Sibling: vectors.Hex(t, s.SiblingHash), Right: s.Right})
	}
	return out
}

func equalPath(a, b []merkle.Step) bool {
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

func TestMerkleVector(t *testing.T) {
	m := vectors.Load(t).Merkle
	if got := hex.EncodeToString(merkle.Root(nil)); got != m.EmptyRootHex {
		t.Errorf("empty root %s, want %s", got, m.EmptyRootHex)
	}
	if !bytes.Equal(merkle.NewTree(nil).Root(), wire.ZeroHash) {
		t.Error("empty Tree root is not the zero hash")
	}
	sizes := map[int]bool{}
	proofs := 0
	for _, c := range m.Cases {
		sizes[c.NLeaves] = true
		leaves := make([][]byte, len(c.LeavesHex))
		for i, h := range c.LeavesHex {
			leaves[i] = vectors.Hex(t, h)
			if want := sha256.Sum256([]byte{byte(i + 1)}); !bytes.Equal(leaves[i], want[:]) {
				t.Fatalf("n=%d: leaf %d does not follow the leaf rule", c.NLeaves, i)
			}
		}
		if len(leaves) != c.NLeaves {
			t.Fatalf("case claims %d leaves, has %d", c.NLeaves, len(leaves))
		}
		root := vectors.Hex(t, c.RootHex)
		if got := merkle.Root(leaves); !bytes.Equal(got, root) {
			t.Errorf("n=%d: Root %x, want %x", c.NLeaves, got, root)
		}
		tree := merkle.NewTree(leaves)
		if !bytes.Equal(tree.Root(), root) {
			t.Errorf("n=%d: Tree.Root %x, want %x", c.NLeaves, tree.Root(), root)
		}
		for _, p := range c.Proofs {
			proofs++
			want := vectorPath(t, p.Path)
			leaf := vectors.Hex(t, p.LeafHex)
			if !bytes.Equal(leaf, leaves[p.LeafIndex]) {
				t.Errorf("n=%d: proof leaf %d differs from leaves list", c.NLeaves, p.LeafIndex)
			}
			path, r := merkle.Prove(leaves, p.LeafIndex)
			if !equalPath(path, want) || !bytes.Equal(r, root) {
				t.Errorf("n=%d i=%d: Prove = %v, %x; want %v, %x", c.NLeaves, p.LeafIndex, path, r, want, root)
			}
			if tp, err := tree.Prove(p.LeafIndex); err != nil || !equalPath(tp, want) {
				t.Errorf("n=%d i=%d: Tree.Prove = %v, %v", c.NLeaves, p.LeafIndex, tp, err)
			}
			if got := merkle.RootFromPath(leaf, want); !bytes.Equal(got, root) {
				t.Errorf("n=%d i=%d: RootFromPath %x, want %x", c.NLeaves, p.LeafIndex, got, root)
			}
			if err := merkle.Verify(leaf, uint64(p.LeafIndex), uint64(c.NLeaves), want, root); err != nil {
				t.Errorf("n=%d i=%d: Verify: %v", c.NLeaves, p.LeafIndex, err)
			}
			// The vector's JSON path is the Step wire shape.
			raw, err := json.Marshal(p.Path)
			if err != nil {
				t.Fatal(err)
			}
			var decoded []merkle.Step
			if err := json.Unmarshal(raw, &decoded); err != nil || !equalPath(decoded, want) {
				t.Errorf("n=%d i=%d: unmarshal %s: %v %v", c.NLeaves, p.LeafIndex, raw, decoded, err)
			}
			if len(want) > 0 {
				again, err := json.Marshal(decoded)
				if err != nil || string(again) != string(raw) {
					t.Errorf("marshal path: %s, %v; want %s", again, err, raw)
				}
			}
		}
	}
	for _, n := range []int{1, 2, 3, 4, 5, 7} {
		if !sizes[n] {
			t.Errorf("merkle vector lacks the %d-leaf case", n)
		}
	}
	if proofs < 10 {
		t.Errorf("only %d vector proofs checked", proofs)
	}
}

func TestSegment1Vector(t *testing.T) {
	v := vectors.Load(t)
	seg := v.SegmentsAndCheckpoints.Segment1
	hashBySeqno := map[uint64][]byte{}
	for _, e := range v.Chain.Entries {
		hashBySeqno[e.Fields.Seqno] = vectors.Hex(t, e.EntryHashHex)
	}
	if len(seg.SegmentEntries) != 3 {
		t.Fatalf("segment1 has %d entries, want 3", len(seg.SegmentEntries))
	}
	leaves := make([][]byte, len(seg.SegmentEntries))
	for _, se := range seg.SegmentEntries {
		seqno, idx := se[0], se[1]
		if seqno < seg.SeqStart || seqno > seg.SeqEnd || idx >= uint64(len(leaves)) {
			t.Fatalf("segment entry %v outside segment [%d,%d]", se, seg.SeqStart, seg.SeqEnd)
		}
		leaves[idx] = hashBySeqno[seqno]
	}
	root := vectors.Hex(t, seg.MerkleRootHex)
	if got := merkle.Root(leaves); !bytes.Equal(got, root) {
		t.Errorf("segment1 root %x, want %x", got, root)
	}
	if !bytes.Equal(leaves[len(leaves)-1], vectors.Hex(t, seg.LastEntryHashHex)) {
		t.Error("segment1 last_entry_hash is not the last leaf")
	}
	for _, p := range []vectors.InclusionProof{seg.InclusionProofSeqno2, seg.InclusionProofSeqno3} {
		var idx uint64
		for _, se := range seg.SegmentEntries {
			if se[0] == p.Seqno {
				idx = se[1]
			}
		}
		want := vectorPath(t, p.Path)
		path, r := merkle.Prove(leaves, int(idx))
		if !equalPath(path, want) || !bytes.Equal(r, root) {
			t.Errorf("seqno %d: Prove = %v; want %v", p.Seqno, path, want)
		}
		leaf := vectors.Hex(t, p.EntryHashHex)
		if !bytes.Equal(leaf, hashBySeqno[p.Seqno]) || !bytes.Equal(vectors.Hex(t, p.MerkleRootHex), root) {
			t.Errorf("seqno %d: proof entry hash or root disagrees with the chain vector", p.Seqno)
		}
		if err := merkle.Verify(leaf, idx, uint64(len(leaves)), want, root); err != nil {
			t.Errorf("seqno %d: Verify: %v", p.Seqno, err)
		}
		if err := merkle.Verify(leaf, idx, uint64(len(leaves)), want, wire.ZeroHash); err == nil {
			t.Errorf("seqno %d: verified against the zero root", p.Seqno)
		}
	}
}

func TestStepJSON(t *testing.T) {
	h := strings.Repeat("ab", 32)
	var s merkle.Step
	if err := json.Unmarshal([]byte(`{"sibling_hash":"`+h+`","right":true}`), &s); err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(s.Sibling) != h || !s.Right {
		t.Fatalf("decoded %+v", s)
	}
	out, err := json.Marshal(merkle.Step{Sibling: s.Sibling, Right: false})
	if err != nil || string(out) != `{"sibling_hash":"`+h+`","right":false}` {
		t.Fatalf("marshal: %s, %v", out, err)
	}
	bad := []string{
		`{"sibling_hash":"` + strings.ToUpper(h) + `","right":true}`,
		`{"sibling_hash":"` + h[:62] + `","right":true}`,
		`{"sibling_hash":"` + h + `00","right":true}`,
		`{"sibling_hash":"` + h[:63] + `g","right":true}`,
		`{"sibling_hash":"` + h + `"}`,
		`{"right":true}`,
		`{"sibling_hash":null,"right":true}`,
		`{"sibling_hash":[1,2,3],"right":true}`,
		`{"sibling_hash":"` + h + `","right":"yes"}`,
		`[]`,
	}
	for _, in := range bad {
		var s merkle.Step
		if err := json.Unmarshal([]byte(in), &s); err == nil {
			t.Errorf("Unmarshal(%s) accepted", in)
		}
	}
	if _, err := json.Marshal(merkle.Step{Sibling: []byte{1}}); err == nil {
		t.Error("marshalled a 1-byte sibling")
	}
}
