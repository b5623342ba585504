package storetest

import (
	"bytes"
	"testing"

	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/wire"
)

// checkStreams compares StreamList and StreamGet with want (in order).
func checkStreams(t *testing.T, s store.Store, want []wire.StreamRow) {
	t.Helper()
	got, err := s.StreamList(ctx(t))
	if err != nil {
		t.Fatalf("StreamList: %v", err)
	}
	names := func(rows []wire.StreamRow) []string {
		out := make([]string, len(rows))
		for i, r := range rows {
			out[i] = r.Name
		}
		return out
	}
	if len(got) != len(want) {
		t.Fatalf("StreamList names = %q, want %q", names(got), names(want))
	}
	for i := range want {
		if want[i].Name == "default" && want[i].CreatedAt == "" {
			want[i].CreatedAt = got[i].CreatedAt // seeded at Init
		}
		if d := diffStream(want[i], got[i]); d != "" {
			t.Fatalf("StreamList[%d] (names %q): %s", i, names(got), d)
		}
		one, ok, err := s.StreamGet(ctx(t), want[i].Name)
		if err != nil || !ok {
			t.Fatalf("StreamGet(%q) = (_, %v, %v)", want[i].Name, ok, err)
		}
		if d := diffStream(want[i], one); d != "" {
			t.Fatalf("StreamGet(%q): %s", want[i].Name, d)
		}
	}
}

func defaultRow() wire.StreamRow {
	return wire.StreamRow{Name: "default", Tier: "public", Description: strp(DefaultStreamDescription)}
}

func (h *harness) testStreams(t *testing.T) {
	zeta := wire.StreamRow{Name: "zeta", Tier: "protected", Description: strp("z"), CreatedAt: "2026-01-01T00:00:00+00:00"}
	alpha := wire.StreamRow{Name: "alpha", Tier: "public", CreatedAt: "2026-01-02T00:00:00+00:00"}
	uni := wire.StreamRow{Name: "日本/ストリーム ✓", Tier: "highly-restricted", Description: strp(""),
		CreatedAt: "2026-01-03T00:00:00.5+00:00", DeprecatedAt: strp("2026-02-01T00:00:00+00:00")}

	t.Run("UpsertGetListInCreationOrder", func(t *testing.T) {
		s := h.open(t)
		for _, r := range []wire.StreamRow{zeta, alpha, uni} {
			if err := s.StreamUpsert(ctx(t), r); err != nil {
				t.Fatalf("StreamUpsert(%q): %v", r.Name, err)
			}
		}
		checkStreams(t, s, []wire.StreamRow{defaultRow(), zeta, alpha, uni})
		if got, ok, err := s.StreamGet(ctx(t), "missing"); err != nil || ok {
			t.Fatalf("StreamGet(missing) = (%+v, %v, %v), want absent", got, ok, err)
		}
		// Upsert of an existing name replaces every field and keeps its position.
		alpha2 := wire.StreamRow{Name: "alpha", Tier: "protected", Description: strp("now described"),
			CreatedAt: "2026-03-03T00:00:00+00:00", DeprecatedAt: strp("2026-03-04T00:00:00+00:00")}
		if err := s.StreamUpsert(ctx(t), alpha2); err != nil {
			t.Fatalf("StreamUpsert(alpha again): %v", err)
		}
		uni2 := uni
		uni2.DeprecatedAt, uni2.Description = nil, nil
		if err := s.StreamUpsert(ctx(t), uni2); err != nil {
			t.Fatalf("StreamUpsert(uni again): %v", err)
		}
		checkStreams(t, s, []wire.StreamRow{defaultRow(), zeta, alpha2, uni2})
	})

	t.Run("SetTierAndDeprecate", func(t *testing.T) {
		s := h.open(t)
		if err := s.StreamUpsert(ctx(t), zeta); err != nil {
			t.Fatalf("StreamUpsert: %v", err)
		}
		if err := s.StreamSetTier(ctx(t), "zeta", "highly-restricted"); err != nil {
			t.Fatalf("StreamSetTier: %v", err)
		}
		z := zeta
		z.Tier = "highly-restricted"
		checkStreams(t, s, []wire.StreamRow{defaultRow(), z})
		for _, at := range []string{"2026-05-05T05:05:05+00:00", "2026-06-06T06:06:06.123+00:00"} {
			if err := s.StreamDeprecate(ctx(t), "zeta", at); err != nil {
				t.Fatalf("StreamDeprecate: %v", err)
			}
			z.DeprecatedAt = strp(at)
			checkStreams(t, s, []wire.StreamRow{defaultRow(), z})
		}
		if err := s.StreamSetTier(ctx(t), "default", "protected"); err != nil {
			t.Fatalf("StreamSetTier(default): %v", err)
		}
		d := defaultRow()
		d.Tier = "protected"
		checkStreams(t, s, []wire.StreamRow{d, z})

		err := s.StreamSetTier(ctx(t), "nope", "public")
		if e := wantErr[*store.StreamNotFoundError](t, "StreamSetTier(nope)", err); e.Name != "nope" {
			t.Fatalf("StreamSetTier(nope): error names stream %q", e.Name)
		}
		err = s.StreamDeprecate(ctx(t), "nöpe ✓", "2026-01-01T00:00:00+00:00")
		if e := wantErr[*store.StreamNotFoundError](t, "StreamDeprecate(nöpe ✓)", err); e.Name != "nöpe ✓" {
			t.Fatalf("StreamDeprecate(nöpe ✓): error names stream %q", e.Name)
		}
		checkStreams(t, s, []wire.StreamRow{d, z})
	})
}

func (h *harness) testCopies(t *testing.T) {
	s := h.open(t)
	in := entry(1, "a")
	mustInsert(t, s, in)
	want := entry(1, "a")
	in.Payload[0], in.EntryHash[0], in.PrevEntryHash[0] = 'X', ^in.EntryHash[0], ^in.PrevEntryHash[0]
	checkGet(t, s, 1, &want)

	got, _, _ := s.Get(ctx(t), 1)
	got.Payload[0], got.EntryHash[0], got.PrevEntryHash[0] = 'Y', ^got.EntryHash[0], ^got.PrevEntryHash[0]
	checkGet(t, s, 1, &want)
	rows, _ := s.Range(ctx(t), "a", 1, 1)
	rows[0].Payload[0] = 'Z'
	last, _, _ := s.Last(ctx(t), "a")
	last.EntryHash[1] ^= 0xff
	checkGet(t, s, 1, &want)

	seg := segment("a", 1, 1)
	seg.Signature, seg.SignerIdentity = []byte{1, 2}, strp("k")
	mustSegment(t, s, seg, members(1), 1)
	wantSeg := seg.Clone()
	wantSeg.SegmentID = 1
	seg.MerkleRoot[0] ^= 0xff
	seg.Signature[0] = 9
	*seg.SignerIdentity = "changed"
	g, _, _ := s.SegmentGet(ctx(t), 1)
	if d := diffSegment(wantSeg, g); d != "" {
		t.Fatalf("segment changed through the inserted row: %s", d)
	}
	g.MerkleRoot[0] ^= 0xff
	g.Signature[0] = 7
	*g.SignerIdentity = "changed"
	list, _ := s.SegmentsList(ctx(t), "a")
	list[0].LastEntryHash[0] ^= 0xff
	g, _, _ = s.SegmentGet(ctx(t), 1)
	if d := diffSegment(wantSeg, g); d != "" {
		t.Fatalf("segment changed through a returned row: %s", d)
	}
	sig := []byte{5, 5}
	if err := s.SegmentSetSignature(ctx(t), 1, sig, "k2"); err != nil {
		t.Fatalf("SegmentSetSignature: %v", err)
	}
	sig[0] = 0
	g, _, _ = s.SegmentGet(ctx(t), 1)
	if !bytes.Equal(g.Signature, []byte{5, 5}) {
		t.Fatalf("signature changed through the caller's slice: %v", g.Signature)
	}
	seqs, _ := s.SegmentEntrySeqnos(ctx(t), 1)
	seqs[0] = 99
	if again, _ := s.SegmentEntrySeqnos(ctx(t), 1); len(again) != 1 || again[0] != 1 {
		t.Fatalf("membership changed through a returned slice: %v", again)
	}

	st := wire.StreamRow{Name: "s", Tier: "public", Description: strp("d"), DeprecatedAt: strp("t")}
	if err := s.StreamUpsert(ctx(t), st); err != nil {
		t.Fatalf("StreamUpsert: %v", err)
	}
	*st.Description, *st.DeprecatedAt = "x", "y"
	r, _, _ := s.StreamGet(ctx(t), "s")
	if *r.Description != "d" || *r.DeprecatedAt != "t" {
		t.Fatalf("stream changed through the inserted row: %+v", r)
	}
	*r.Description = "x"
	all, _ := s.StreamList(ctx(t))
	*all[1].DeprecatedAt = "y"
	r, _, _ = s.StreamGet(ctx(t), "s")
	if *r.Description != "d" || *r.DeprecatedAt != "t" {
		t.Fatalf("stream changed through a returned row: %+v", r)
	}

	if b, ok := s.Store.(store.Batcher); ok {
		meta := []byte{1, 2, 3}
		row := entry(2, "a")
		if err := b.CommitBatch(ctx(t), store.Batch{Entries: []wire.EntryRow{row}, Meta: map[string][]byte{"m": meta}}); err != nil {
			t.Fatalf("CommitBatch: %v", err)
		}
		meta[0] = 9
		row.Payload[0], row.EntryHash[0] = 'X', ^row.EntryHash[0]
		want2 := entry(2, "a")
		checkGet(t, s, 2, &want2)
		v, _, _ := b.GetMeta(ctx(t), "m")
		if !bytes.Equal(v, []byte{1, 2, 3}) {
			t.Fatalf("meta changed through the caller's slice: %v", v)
		}
		v[0] = 8
		if v, _, _ := b.GetMeta(ctx(t), "m"); !bytes.Equal(v, []byte{1, 2, 3}) {
			t.Fatalf("meta changed through a returned slice: %v", v)
		}
	}
}
