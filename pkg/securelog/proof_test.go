package securelog

import (
	"context"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/store/memory"
	"github.com/securelog/securelog/pkg/wire"
)

// plainStore hides a store's optional interfaces (no stored trees).
type plainStore struct{ store.Store }

// countingTreeStore counts entry reads and tree chunk reads, and can spoil
// the chunks it returns.
type countingTreeStore struct {
	*memory.Store
	gets, ranges, chunks atomic.Int64
	treeReads            atomic.Int64
	spoil                func(level int, b []byte)
}

func (c *countingTreeStore) Get(ctx context.Context, n uint64) (wire.EntryRow, bool, error) {
	c.gets.Add(1)
	return c.Store.Get(ctx, n)
}

func (c *countingTreeStore) Range(ctx context.Context, s string, from, to uint64) ([]wire.EntryRow, error) {
	c.ranges.Add(1)
	return c.Store.Range(ctx, s, from, to)
}

func (c *countingTreeStore) SegmentTreeChunk(ctx context.Context, id uint64, level int, chunk uint64) ([]byte, bool, error) {
	c.chunks.Add(1)
	b, ok, err := c.Store.SegmentTreeChunk(ctx, id, level, chunk)
	if c.spoil != nil {
		c.spoil(level, b)
	}
	return b, ok, err
}

func (c *countingTreeStore) SegmentTreeNodes(ctx context.Context, id uint64, nodes []store.TreeNode) ([][]byte, error) {
	c.treeReads.Add(1)
	out, err := c.Store.SegmentTreeNodes(ctx, id, nodes)
	for i := range out {
		if c.spoil != nil && i < len(nodes) {
			c.spoil(nodes[i].Level, out[i])
		}
	}
	return out, err
}

// TestProofFromStoredTree (issue 13 "Proofs"): with the tree stored at
// close, a proof equals the one rebuilt from the entries, verifies, and
// reads one entry (the proved one) and the stored tree once (the leaf and
// its siblings together), no chunk by chunk.
func TestProofFromStoredTree(t *testing.T) {
	ctx := context.Background()
	for _, n := range []int{1, 2, 3, 7, 256, 257, 600} {
		cs := &countingTreeStore{Store: memory.New()}
		l := New(cs, Options{SessionID: "s", BootID: "b"})
		if err := l.Open(ctx, "m"); err != nil {
			t.Fatal(err)
		}
		appendN(t, l, "default", n)
		seg := must[wire.SegmentRow](t)(l.CloseSegment(ctx, "default"))
		plain := New(plainStore{cs.Store}, Options{})
		if err := plain.OpenInitialized(ctx); err != nil {
			t.Fatal(err)
		}
		levels := 1
		for s := n; s > 1; s = (s + 1) / 2 {
			levels++
		}
		for seqno := uint64(1); seqno <= uint64(n); seqno++ {
			cs.gets.Store(0)
			cs.ranges.Store(0)
			cs.chunks.Store(0)
			cs.treeReads.Store(0)
			got := must[InclusionProof](t)(l.BuildInclusionProof(ctx, seqno))
			if g, r, c, tr := cs.gets.Load(), cs.ranges.Load(), cs.chunks.Load(), cs.treeReads.Load(); g != 1 || r != 0 || c != 0 || tr != 1 {
				t.Fatalf("n=%d seqno %d: %d gets, %d ranges, %d chunk reads, %d tree reads (tree has %d levels)", n, seqno, g, r, c, tr, levels)
			}
			want := must[InclusionProof](t)(plain.BuildInclusionProof(ctx, seqno))
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("n=%d seqno %d: proof from the stored tree\n%+v\nwant (rebuilt from entries)\n%+v", n, seqno, got, want)
			}
			if err := VerifyInclusionProof(got, seg.MerkleRoot); err != nil {
				t.Fatalf("n=%d seqno %d: %v", n, seqno, err)
			}
		}
	}
}

// TestProofFromStoredTreeTampered: a spoiled stored tree node or a
// tampered proved entry still fails the proof with ChainBrokenError.
func TestProofFromStoredTreeTampered(t *testing.T) {
	ctx := context.Background()
	cs := &countingTreeStore{Store: memory.New()}
	l := New(cs, Options{SessionID: "s", BootID: "b"})
	if err := l.Open(ctx, "m"); err != nil {
		t.Fatal(err)
	}
	appendN(t, l, "default", 9)
	must[wire.SegmentRow](t)(l.CloseSegment(ctx, "default"))
	cs.spoil = func(level int, b []byte) {
		for i := 0; level == 1 && i < len(b); i += wire.HashLen {
			b[i] ^= 1 // every node of level 1
		}
	}
	_, err := l.BuildInclusionProof(ctx, 1)
	if cb := wantErr[*wire.ChainBrokenError](t, err); !strings.Contains(cb.Reason, "merkle root mismatch") {
		t.Fatalf("spoiled tree node: reason %q", cb.Reason)
	}
	cs.spoil = nil
	row, _, _ := cs.Store.Get(ctx, 4)
	tampered := &tamperTreeStore{countingTreeStore: cs, seqno: 4, payload: append(row.Payload, 'x')}
	l2 := New(tampered, Options{})
	if err := l2.OpenInitialized(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = l2.BuildInclusionProof(ctx, 4)
	if cb := wantErr[*wire.ChainBrokenError](t, err); !strings.Contains(cb.Reason, "does not hash to its sealed leaf") {
		t.Fatalf("tampered entry: reason %q", cb.Reason)
	}
}

// tamperTreeStore returns a changed payload for one seqno.
type tamperTreeStore struct {
	*countingTreeStore
	seqno   uint64
	payload []byte
}

func (s *tamperTreeStore) Get(ctx context.Context, n uint64) (wire.EntryRow, bool, error) {
	r, ok, err := s.countingTreeStore.Get(ctx, n)
	if n == s.seqno {
		r.Payload = s.payload
	}
	return r, ok, err
}
