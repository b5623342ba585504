package storetest

import (
	"bytes"
	"slices"
	"testing"

	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/wire"
)

func (h *harness) testSegments(t *testing.T) {
	t.Run("GlobalIDsFromOne", func(t *testing.T) {
		s := h.open(t)
		rows := []wire.SegmentRow{segment("a", 1, 3), segment("b", 4, 4), segment("a", 5, 9)}
		for i, r := range rows {
			mustSegment(t, s, r, members(r.SeqStart), uint64(i+1))
		}
		for i, r := range rows {
			want := r
			want.SegmentID = uint64(i + 1)
			got, ok, err := s.SegmentGet(ctx(t), want.SegmentID)
			if err != nil || !ok {
				t.Fatalf("SegmentGet(%d) = (_, %v, %v)", want.SegmentID, ok, err)
			}
			if d := diffSegment(want, got); d != "" {
				t.Fatalf("SegmentGet(%d): %s", want.SegmentID, d)
			}
		}
		for _, id := range []uint64{0, 4, 999} {
			if got, ok, err := s.SegmentGet(ctx(t), id); err != nil || ok {
				t.Fatalf("SegmentGet(%d) = (%+v, %v, %v), want absent", id, got, ok, err)
			}
		}
	})

	t.Run("ListAndLastSeqno", func(t *testing.T) {
		s := h.open(t)
		mustSegment(t, s, segment("a", 1, 10), nil, 1)
		mustSegment(t, s, segment("b", 11, 12), nil, 2)
		mustSegment(t, s, segment("a", 13, 15), nil, 3)
		mustSegment(t, s, segment("a", 20, 30), nil, 4)
		mustSegment(t, s, segment("ab", 40, 41), nil, 5)
		list, err := s.SegmentsList(ctx(t), "a")
		if err != nil {
			t.Fatalf("SegmentsList(a): %v", err)
		}
		var ids []uint64
		for _, r := range list {
			if r.StreamID != "a" {
				t.Fatalf("SegmentsList(a) returned a row of stream %q", r.StreamID)
			}
			ids = append(ids, r.SegmentID)
		}
		if !slices.Equal(ids, []uint64{1, 3, 4}) {
			t.Fatalf("SegmentsList(a) ids = %v, want [1 3 4]", ids)
		}
		want := segment("a", 13, 15)
		want.SegmentID = 3
		if d := diffSegment(want, list[1]); d != "" {
			t.Fatalf("SegmentsList(a)[1]: %s", d)
		}
		if list, err := s.SegmentsList(ctx(t), "zz"); err != nil || len(list) != 0 {
			t.Fatalf("SegmentsList(zz) = (%v, %v), want empty", list, err)
		}
		n, ok, err := s.SegmentLastSeqno(ctx(t), "a")
		checkOptU64(t, "SegmentLastSeqno(a)", n, ok, err, 30, true)
		n, ok, err = s.SegmentLastSeqno(ctx(t), "b")
		checkOptU64(t, "SegmentLastSeqno(b)", n, ok, err, 12, true)
		n, ok, err = s.SegmentLastSeqno(ctx(t), "zz")
		checkOptU64(t, "SegmentLastSeqno(zz)", n, ok, err, 0, false)
	})

	t.Run("MembershipAndForSeqno", func(t *testing.T) {
		s := h.open(t)
		// Membership pairs given out of leaf order.
		mustSegment(t, s, segment("a", 3, 7), []wire.SegmentEntry{
			{Seqno: 7, LeafIndex: 2}, {Seqno: 3, LeafIndex: 0}, {Seqno: 5, LeafIndex: 1}}, 1)
		mustSegment(t, s, segment("b", 4, 8), members(4, 6, 8), 2)
		mustSegment(t, s, segment("a", 9, 9), nil, 3)
		for _, c := range []struct {
			id   uint64
			want []uint64
		}{{1, []uint64{3, 5, 7}}, {2, []uint64{4, 6, 8}}, {3, nil}, {42, nil}} {
			got, err := s.SegmentEntrySeqnos(ctx(t), c.id)
			if err != nil {
				t.Fatalf("SegmentEntrySeqnos(%d): %v", c.id, err)
			}
			if !slices.Equal(got, c.want) {
				t.Fatalf("SegmentEntrySeqnos(%d) = %v, want %v", c.id, got, c.want)
			}
		}
		for _, c := range []struct {
			seqno, id uint64
			ok        bool
		}{{3, 1, true}, {5, 1, true}, {7, 1, true}, {4, 2, true}, {8, 2, true}, {9, 0, false}, {1, 0, false}} {
			id, ok, err := s.SegmentForSeqno(ctx(t), c.seqno)
			checkOptU64(t, "SegmentForSeqno", id, ok, err, c.id, c.ok)
		}
	})

	t.Run("PartitionEnforced", func(t *testing.T) {
		s := h.open(t)
		// Stream a holds 1, 2, 4, 5, 7; stream b holds 3 and 6.
		for _, n := range []uint64{1, 2, 4, 5, 7} {
			mustInsert(t, s, entry(n, "a"))
		}
		mustInsert(t, s, entry(3, "b"), entry(6, "b"))
		mustSegment(t, s, segment("a", 1, 2), members(1, 2), 1)
		refused := []struct {
			name    string
			row     wire.SegmentRow
			members []wire.SegmentEntry
		}{
			{"overlap", segment("a", 2, 4), members(2, 4)},
			{"same range again", segment("a", 1, 2), members(1, 2)},
			{"gap over unsealed 4", segment("a", 5, 7), members(5, 7)},
			{"reversed", segment("a", 5, 4), nil},
			{"zero start", segment("b", 0, 3), members(3)},
			{"member outside range", segment("a", 4, 5), members(4, 5, 7)},
			{"member twice", segment("a", 4, 5), members(4, 4)},
		}
		for _, c := range refused {
			_, err := s.SegmentInsert(ctx(t), c.row, c.members)
			e := wantErr[*store.SegmentOverlapError](t, "SegmentInsert "+c.name, err)
			if e.Stream != c.row.StreamID || e.SeqStart != c.row.SeqStart || e.SeqEnd != c.row.SeqEnd {
				t.Fatalf("SegmentInsert %s: error names %q %d..%d", c.name, e.Stream, e.SeqStart, e.SeqEnd)
			}
		}
		// Nothing was stored by the refused inserts; the right ones follow.
		mustSegment(t, s, segment("a", 4, 5), members(4, 5), 2)
		mustSegment(t, s, segment("b", 3, 6), members(3, 6), 3)
		mustSegment(t, s, segment("a", 7, 7), members(7), 4)
		if ids, err := s.SegmentEntrySeqnos(ctx(t), 5); err != nil || len(ids) != 0 {
			t.Fatalf("SegmentEntrySeqnos(5) = %v, %v; a refused insert left members", ids, err)
		}
		if err := partitionErrorOf(ctx(t), s, []string{"a", "b"}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("SetSignature", func(t *testing.T) {
		s := h.open(t)
		mustSegment(t, s, segment("a", 1, 2), members(1, 2), 1)
		mustSegment(t, s, segment("a", 3, 4), members(3, 4), 2)
		got, _, err := s.SegmentGet(ctx(t), 1)
		if err != nil {
			t.Fatalf("SegmentGet(1): %v", err)
		}
		if got.Signature != nil || got.SignerIdentity != nil {
			t.Fatalf("unsigned segment: signature %s signer %s, want both absent",
				fmtOptBytes(got.Signature), fmtOptString(got.SignerIdentity))
		}
		for _, sig := range []struct {
			sig    []byte
			signer string
		}{{[]byte{1, 2, 3}, "key-one"}, {[]byte("second signature"), "κλειδί"}} {
			if err := s.SegmentSetSignature(ctx(t), 1, sig.sig, sig.signer); err != nil {
				t.Fatalf("SegmentSetSignature(1): %v", err)
			}
			want := segment("a", 1, 2)
			want.SegmentID, want.Signature, want.SignerIdentity = 1, sig.sig, strp(sig.signer)
			got, _, err := s.SegmentGet(ctx(t), 1)
			if err != nil {
				t.Fatalf("SegmentGet(1): %v", err)
			}
			if d := diffSegment(want, got); d != "" {
				t.Fatalf("after SegmentSetSignature(1): %s", d)
			}
		}
		other, _, _ := s.SegmentGet(ctx(t), 2)
		if other.Signature != nil {
			t.Fatalf("segment 2 got a signature from segment 1's update")
		}
		err = s.SegmentSetSignature(ctx(t), 77, []byte{1}, "k")
		if e := wantErr[*store.SegmentNotFoundError](t, "SegmentSetSignature(77)", err); e.SegmentID != 77 {
			t.Fatalf("SegmentSetSignature(77): error names segment %d", e.SegmentID)
		}
		if _, ok, _ := s.SegmentGet(ctx(t), 77); ok {
			t.Fatal("SegmentSetSignature of a missing segment created it")
		}
	})

	t.Run("SignatureAsGivenAtInsert", func(t *testing.T) {
		s := h.open(t)
		signed := segment("a", 1, 1)
		signed.Signature, signed.SignerIdentity = []byte{9, 9}, strp("k")
		empty := segment("a", 2, 2)
		empty.Signature, empty.SignerIdentity = []byte{}, strp("")
		for i, r := range []wire.SegmentRow{signed, empty} {
			mustSegment(t, s, r, nil, uint64(i+1))
		}
		got, _, err := s.SegmentGet(ctx(t), 1)
		signed.SegmentID = 1
		if d := diffSegment(signed, got); err != nil || d != "" {
			t.Fatalf("SegmentGet(1): %v %s", err, d)
		}
		got, _, err = s.SegmentGet(ctx(t), 2)
		if err != nil || len(got.Signature) != 0 || got.Signed() {
			t.Fatalf("SegmentGet(2) empty signature = %v, %v", got.Signature, err)
		}
		if got.SignerIdentity == nil || *got.SignerIdentity != "" {
			t.Fatalf("SegmentGet(2) signer = %s, want present and empty", fmtOptString(got.SignerIdentity))
		}
	})
}

// testSegmentTree checks store.SegmentTreeStore where a backend has it: the
// tree chunks and leaf locations come back as stored, a segment stored
// without a tree has none, and the partition rule applies.
func (h *harness) testSegmentTree(t *testing.T) {
	s := h.open(t)
	ts, ok := s.Store.(store.SegmentTreeStore)
	if !ok {
		t.Logf("%s does not store segment trees", h.f.Name)
		return
	}
	for n := uint64(1); n <= 5; n++ {
		mustInsert(t, s, entry(n, "a"))
	}
	mustSegment(t, s, segment("a", 1, 2), members(1, 2), 1)
	chunks := []store.TreeChunk{{Level: 0, Chunk: 0, Nodes: append(hash32("n", 3), hash32("n", 4)...)}, {Level: 1, Chunk: 7, Nodes: hash32("n", 9)}}
	id, err := ts.SegmentInsertTree(ctx(t), segment("a", 3, 4), members(3, 4), chunks)
	if err != nil || id != 2 {
		t.Fatalf("SegmentInsertTree = %d, %v; want 2", id, err)
	}
	_, err = ts.SegmentInsertTree(ctx(t), segment("a", 4, 5), members(4, 5), chunks)
	wantErr[*store.SegmentOverlapError](t, "SegmentInsertTree overlapping", err)
	for _, c := range chunks {
		got, ok, err := ts.SegmentTreeChunk(ctx(t), 2, c.Level, c.Chunk)
		if err != nil || !ok || !bytes.Equal(got, c.Nodes) {
			t.Fatalf("SegmentTreeChunk(2, %d, %d) = %x, %v, %v", c.Level, c.Chunk, got, ok, err)
		}
	}
	if _, ok, err := ts.SegmentTreeChunk(ctx(t), 1, 0, 0); ok || err != nil {
		t.Fatalf("segment 1 (no tree) has a chunk: %v, %v", ok, err)
	}
	// Nodes in any order, two from one chunk, one absent level, one
	// beyond its chunk, one in a chunk that is not stored: one read.
	ask := []store.TreeNode{{Level: 1, Index: 7*store.TreeChunkNodes + 0}, {Level: 0, Index: 1}, {Level: 0, Index: 0},
		{Level: 2, Index: 0}, {Level: 0, Index: 2}, {Level: 1, Index: 0}}
	want := [][]byte{hash32("n", 9), hash32("n", 4), hash32("n", 3), nil, nil, nil}
	got, err := ts.SegmentTreeNodes(ctx(t), 2, ask)
	if err != nil || len(got) != len(want) {
		t.Fatalf("SegmentTreeNodes(2, %v) = %x, %v", ask, got, err)
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) || (want[i] == nil) != (got[i] == nil) {
			t.Fatalf("SegmentTreeNodes(2): node %+v = %x, want %x", ask[i], got[i], want[i])
		}
	}
	if got, err := ts.SegmentTreeNodes(ctx(t), 1, ask[:2]); err != nil || got[0] != nil || got[1] != nil {
		t.Fatalf("segment 1 (no tree) has nodes: %x, %v", got, err)
	}
	if loc, ok, err := ts.SegmentLeaf(ctx(t), 4); err != nil || !ok || loc != (store.SegmentLeaf{SegmentID: 2, Index: 1, Size: 2}) {
		t.Fatalf("SegmentLeaf(4) = %+v, %v, %v", loc, ok, err)
	}
	for _, n := range []uint64{1, 5, 99} { // no tree; not sealed; unknown
		if loc, ok, err := ts.SegmentLeaf(ctx(t), n); ok || err != nil {
			t.Fatalf("SegmentLeaf(%d) = %+v, %v, %v; want absent", n, loc, ok, err)
		}
	}
	if id, ok, err := s.SegmentForSeqno(ctx(t), 3); err != nil || !ok || id != 2 {
		t.Fatalf("SegmentForSeqno(3) = %d, %v, %v", id, ok, err)
	}
}
