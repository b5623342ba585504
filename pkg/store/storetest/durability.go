package storetest

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/wire"
)

func (h *harness) testDurability(t *testing.T) {
	if h.f.Reopen == nil {
		t.Skipf("%s is not durable (Factory.Reopen is nil)", h.f.Name)
	}
	s := h.open(t)
	c := ctx(t)

	rows := []wire.EntryRow{entry(1, "a"), entry(2, "b"), entry(3, "a")}
	rows[1].Payload = []byte{}
	mustInsert(t, s, rows...)

	seg1 := segment("a", 1, 3)
	mustSegment(t, s, seg1, []wire.SegmentEntry{{Seqno: 3, LeafIndex: 1}, {Seqno: 1, LeafIndex: 0}}, 1)
	seg2 := segment("b", 2, 2)
	mustSegment(t, s, seg2, members(2), 2)
	if err := s.SegmentSetSignature(c, 1, []byte{7, 7, 7}, "label"); err != nil {
		t.Fatalf("SegmentSetSignature: %v", err)
	}

	mustWitness(t, s, witness("a", 1, "2020-01-01T00:00:00+00:00"), 1)
	mustWitness(t, s, witness("b", 2, "2026-01-01T00:00:00+00:00"), 2)
	mustWitness(t, s, witness("a", 3, "2020-01-02T00:00:00+00:00"), 3)
	zero, a := uint32(0), "a"
	cutoff := "2021-01-01T00:00:00+00:00"
	// Deletes ids 1 and 3, including the highest id.
	if n, err := s.WitnessGC(c, &a, &zero, &cutoff); err != nil || n != 2 {
		t.Fatalf("WitnessGC = (%d, %v), want (2, nil)", n, err)
	}

	zeta := wire.StreamRow{Name: "zeta", Tier: "protected", Description: strp("z"), CreatedAt: "2026-01-01T00:00:00+00:00"}
	alpha := wire.StreamRow{Name: "alpha", Tier: "public", CreatedAt: "2026-01-02T00:00:00+00:00"}
	for _, r := range []wire.StreamRow{zeta, alpha} {
		if err := s.StreamUpsert(c, r); err != nil {
			t.Fatalf("StreamUpsert: %v", err)
		}
	}
	if err := s.StreamDeprecate(c, "zeta", "2026-02-02T00:00:00+00:00"); err != nil {
		t.Fatalf("StreamDeprecate: %v", err)
	}
	if err := s.StreamSetTier(c, "default", "protected"); err != nil {
		t.Fatalf("StreamSetTier(default): %v", err)
	}
	def, _, err := s.StreamGet(c, "default")
	if err != nil {
		t.Fatalf("StreamGet(default): %v", err)
	}
	zeta.DeprecatedAt = strp("2026-02-02T00:00:00+00:00")

	var batchRows []wire.EntryRow
	if b, ok := s.Store.(store.Batcher); ok {
		batchRows = []wire.EntryRow{entry(4, "a"), entry(5, "c")}
		if err := b.CommitBatch(c, store.Batch{Entries: batchRows, Meta: map[string][]byte{"pos": {9}}}); err != nil {
			t.Fatalf("CommitBatch: %v", err)
		}
	}

	var added []wire.StreamRow
	for round := range 2 { // reopen twice: a reopened store must reopen too
		s = h.reopen(t, s)
		c = ctx(t)
		checkRange(t, s, "a", 0, math.MaxUint64, append([]wire.EntryRow{rows[0], rows[2]}, batchRows[:min(1, len(batchRows))]...))
		checkRange(t, s, "b", 0, math.MaxUint64, rows[1:2])
		if len(batchRows) > 0 {
			checkRange(t, s, "c", 0, math.MaxUint64, batchRows[1:])
			checkMeta(t, s.Store.(store.Batcher), "pos", []byte{9})
		}
		g, ok, err := s.GlobalHead(c)
		checkOptU64(t, "GlobalHead after reopen", g, ok, err, uint64(3+len(batchRows)), true)
		_, err = s.Insert(c, entry(2, "b"))
		checkDuplicate(t, "Insert(duplicate after reopen)", err, 2)

		want1 := seg1
		want1.SegmentID, want1.Signature, want1.SignerIdentity = 1, []byte{7, 7, 7}, strp("label")
		got, ok, err := s.SegmentGet(c, 1)
		if d := diffSegment(want1, got); err != nil || !ok || d != "" {
			t.Fatalf("SegmentGet(1) after reopen: %v %v %s", ok, err, d)
		}
		want2 := seg2
		want2.SegmentID = 2
		list, err := s.SegmentsList(c, "b")
		if err != nil || len(list) != 1 || diffSegment(want2, list[0]) != "" {
			t.Fatalf("SegmentsList(b) after reopen = %+v, %v", list, err)
		}
		seqs, err := s.SegmentEntrySeqnos(c, 1)
		if err != nil || !slices.Equal(seqs, []uint64{1, 3}) {
			t.Fatalf("SegmentEntrySeqnos(1) after reopen = %v, %v", seqs, err)
		}
		id, ok, err := s.SegmentForSeqno(c, 2)
		checkOptU64(t, "SegmentForSeqno(2) after reopen", id, ok, err, 2, true)
		last, ok, err := s.SegmentLastSeqno(c, "a")
		checkOptU64(t, "SegmentLastSeqno(a) after reopen", last, ok, err, 3, true)

		if ids := witnessIDs(t, s, "a"); len(ids) != 0 {
			t.Fatalf("witness ids of a after reopen = %v, want none", ids)
		}
		if ids := witnessIDs(t, s, "b"); !slices.Equal(ids, []int64{2}) {
			t.Fatalf("witness ids of b after reopen = %v, want [2]", ids)
		}

		checkStreams(t, s, append([]wire.StreamRow{def, zeta, alpha}, added...))
		// Creation order continues after reopen.
		nr := wire.StreamRow{Name: fmt.Sprintf("new%d", round), Tier: "public", CreatedAt: "2026-04-04T00:00:00+00:00"}
		if err := s.StreamUpsert(c, nr); err != nil {
			t.Fatalf("StreamUpsert after reopen: %v", err)
		}
		added = append(added, nr)
		checkStreams(t, s, append([]wire.StreamRow{def, zeta, alpha}, added...))

		// Id allocation continues; ids are never reused (witness 3 was deleted).
		mustSegment(t, s, segment(fmt.Sprintf("r%d", round), 10, 10), nil, uint64(3+round))
		mustWitness(t, s, witness("a", 9, "2026-01-01T00:00:00+00:00"), int64(4+round))
		// Remove the new rows' influence on the next round's checks.
		if n, err := s.WitnessGC(c, &a, &zero, strp("2099-01-01T00:00:00+00:00")); err != nil || n != 1 {
			t.Fatalf("WitnessGC cleanup = (%d, %v)", n, err)
		}
	}
}
