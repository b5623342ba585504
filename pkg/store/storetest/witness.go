package storetest

import (
	"fmt"
	"slices"
	"testing"

	"github.com/securelog/securelog/pkg/wire"
)

// gcFixture is the witness table of the GC matrix: stream x has ids 1..5,
// stream y ids 6..7. Rows 2 and 5 use offsets whose string order differs
// from their time order (DECISIONS 18).
var gcFixture = []struct {
	stream, at string
}{
	{"x", "2026-01-01T10:00:00+00:00"}, // 1: 10:00Z
	{"x", "2026-01-01T11:30:00+02:00"}, // 2: 09:30Z, sorts after the cutoff as a string
	{"x", "2026-01-01T10:30:00Z"},      // 3: 10:30Z
	{"x", "2026-01-01T12:00:00+00:00"}, // 4: 12:00Z
	{"x", "2026-01-01T09:45:00-01:00"}, // 5: 10:45Z, sorts before the cutoff as a string
	{"y", "2026-01-01T08:00:00+00:00"}, // 6
	{"y", "2026-01-01T13:00:00+00:00"}, // 7
}

const gcCutoff = "2026-01-01T10:40:00+00:00"

func (h *harness) testWitness(t *testing.T) {
	t.Run("IDsLatestListStreams", func(t *testing.T) {
		s := h.open(t)
		ids, err := s.WitnessStreamIDs(ctx(t))
		if err != nil || len(ids) != 0 {
			t.Fatalf("WitnessStreamIDs on empty store = (%v, %v)", ids, err)
		}
		rows := []wire.WitnessRow{
			witness("b", 1, "2026-01-01T00:00:01+00:00"), witness("a", 2, "2026-01-01T00:00:02+00:00"),
			witness("b", 3, "not a time"), witness("c", 4, ""), witness("b", 5, "2026-01-01T00:00:05+00:00"),
		}
		for i, r := range rows {
			mustWitness(t, s, r, int64(i+1))
			rows[i].ID = int64(i + 1)
		}
		ids, err = s.WitnessStreamIDs(ctx(t))
		if err != nil || !slices.Equal(ids, []string{"a", "b", "c"}) {
			t.Fatalf("WitnessStreamIDs = (%v, %v), want [a b c]", ids, err)
		}
		list, err := s.WitnessList(ctx(t), "b")
		if err != nil {
			t.Fatalf("WitnessList(b): %v", err)
		}
		want := []wire.WitnessRow{rows[0], rows[2], rows[4]}
		if !slices.Equal(list, want) {
			t.Fatalf("WitnessList(b) = %+v, want %+v", list, want)
		}
		latest, ok, err := s.WitnessLatest(ctx(t), "b")
		if err != nil || !ok || latest != rows[4] {
			t.Fatalf("WitnessLatest(b) = (%+v, %v, %v), want %+v", latest, ok, err, rows[4])
		}
		if got, ok, err := s.WitnessLatest(ctx(t), "zz"); err != nil || ok {
			t.Fatalf("WitnessLatest(zz) = (%+v, %v, %v), want absent", got, ok, err)
		}
		if list, err := s.WitnessList(ctx(t), "zz"); err != nil || len(list) != 0 {
			t.Fatalf("WitnessList(zz) = (%v, %v), want empty", list, err)
		}
	})

	u32 := func(v uint32) *uint32 { return &v }
	sp := func(v string) *string { return &v }
	cases := []struct {
		stream  *string
		keep    *uint32
		older   *string
		deleted []int64
	}{
		{nil, nil, nil, nil},
		{sp("x"), nil, nil, nil},
		{nil, u32(0), nil, nil},
		{sp("x"), u32(0), nil, nil},
		{sp("x"), u32(2), nil, []int64{1, 2, 3}},
		{sp("x"), u32(5), nil, nil},
		{sp("x"), u32(10), nil, nil},
		{nil, u32(1), nil, []int64{1, 2, 3, 4, 6}},
		{sp("x"), nil, sp(gcCutoff), []int64{1, 2, 3}},
		{nil, nil, sp(gcCutoff), []int64{1, 2, 3, 6}},
		{sp("x"), u32(0), sp(gcCutoff), []int64{1, 2, 3}},
		{sp("x"), u32(4), sp(gcCutoff), []int64{1}},
		{sp("y"), u32(1), sp(gcCutoff), []int64{6}},
		{nil, u32(2), sp(gcCutoff), []int64{1, 2, 3}},
		{nil, u32(0), sp("2099-01-01T00:00:00+00:00"), []int64{1, 2, 3, 4, 5, 6, 7}},
		{nil, nil, sp("2026-01-01T10:30:00.5+00:00"), []int64{1, 2, 3, 6}},
		{nil, nil, sp("2026-01-01T09:30:00Z"), []int64{6}}, // row 2 is equal, not older
		{sp("zz"), u32(1), sp(gcCutoff), nil},
		{sp("zz"), nil, nil, nil},
	}
	for _, c := range cases {
		name := fmt.Sprintf("GC:stream=%s,keep=%s,older=%s", optS(c.stream), optU(c.keep), optS(c.older))
		t.Run(name, func(t *testing.T) {
			s := h.open(t)
			for i, r := range gcFixture {
				mustWitness(t, s, witness(r.stream, uint64(i+1), r.at), int64(i+1))
			}
			n, err := s.WitnessGC(ctx(t), c.stream, c.keep, c.older)
			if err != nil {
				t.Fatalf("WitnessGC: %v", err)
			}
			var remaining []int64
			for id := int64(1); id <= int64(len(gcFixture)); id++ {
				if !slices.Contains(c.deleted, id) {
					remaining = append(remaining, id)
				}
			}
			got := append(witnessIDs(t, s, "x"), witnessIDs(t, s, "y")...)
			if !slices.Equal(got, remaining) {
				t.Fatalf("remaining ids = %v, want %v", got, remaining)
			}
			if int(n) != len(c.deleted) {
				t.Fatalf("WitnessGC returned %d, want %d", n, len(c.deleted))
			}
		})
	}

	t.Run("GCBadCutoffFailsAndDeletesNothing", func(t *testing.T) {
		s := h.open(t)
		for i, r := range gcFixture {
			mustWitness(t, s, witness(r.stream, uint64(i+1), r.at), int64(i+1))
		}
		if n, err := s.WitnessGC(ctx(t), nil, nil, sp("yesterday")); err == nil {
			t.Fatalf("WitnessGC(older_than=yesterday) = %d, nil; want an error", n)
		}
		if got := witnessIDs(t, s, "x"); len(got) != 5 {
			t.Fatalf("ids after failed GC = %v, want all 5", got)
		}
	})

	t.Run("GCUnparseableRowIsNotOlder", func(t *testing.T) {
		s := h.open(t)
		mustWitness(t, s, witness("z", 1, "not a time"), 1)
		mustWitness(t, s, witness("z", 2, "2020-01-01T00:00:00+00:00"), 2)
		mustWitness(t, s, witness("z", 3, ""), 3)
		n, err := s.WitnessGC(ctx(t), sp("z"), nil, sp(gcCutoff))
		if err != nil || n != 1 {
			t.Fatalf("WitnessGC = (%d, %v), want (1, nil)", n, err)
		}
		if got := witnessIDs(t, s, "z"); !slices.Equal(got, []int64{1, 3}) {
			t.Fatalf("remaining = %v, want [1 3]", got)
		}
		// keep_latest alone ignores timestamps.
		n, err = s.WitnessGC(ctx(t), sp("z"), u32(1), nil)
		if err != nil || n != 1 {
			t.Fatalf("WitnessGC(keep 1) = (%d, %v), want (1, nil)", n, err)
		}
	})

	t.Run("IDsNotReusedAfterGC", func(t *testing.T) {
		s := h.open(t)
		for i := range 3 {
			mustWitness(t, s, witness("x", uint64(i), "2020-01-01T00:00:00+00:00"), int64(i+1))
		}
		if n, err := s.WitnessGC(ctx(t), nil, nil, sp(gcCutoff)); err != nil || n != 3 {
			t.Fatalf("WitnessGC = (%d, %v), want (3, nil)", n, err)
		}
		if ids, err := s.WitnessStreamIDs(ctx(t)); err != nil || len(ids) != 0 {
			t.Fatalf("WitnessStreamIDs after deleting all = (%v, %v), want empty", ids, err)
		}
		if _, ok, err := s.WitnessLatest(ctx(t), "x"); err != nil || ok {
			t.Fatalf("WitnessLatest after deleting all = (_, %v, %v), want absent", ok, err)
		}
		mustWitness(t, s, witness("x", 9, "2026-01-01T00:00:00+00:00"), 4)
	})
}

func optS(s *string) string {
	if s == nil {
		return "none"
	}
	return *s
}

func optU(u *uint32) string {
	if u == nil {
		return "none"
	}
	return fmt.Sprint(*u)
}
