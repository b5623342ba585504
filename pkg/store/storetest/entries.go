package storetest

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/wire"
)

func (h *harness) testLifecycle(t *testing.T) {
	t.Run("OperationsBeforeInitFail", func(t *testing.T) {
		s, _ := h.raw(t)
		c := ctx(t)
		str, one := "a", uint32(1)
		ops := map[string]func() error{
			"Insert":             func() error { _, err := s.Insert(c, entry(1, "a")); return err },
			"GlobalHead":         func() error { _, _, err := s.GlobalHead(c); return err },
			"Get":                func() error { _, _, err := s.Get(c, 1); return err },
			"Range":              func() error { _, err := s.Range(c, "a", 1, 2); return err },
			"Head":               func() error { _, _, err := s.Head(c, "a"); return err },
			"Last":               func() error { _, _, err := s.Last(c, "a"); return err },
			"SegmentInsert":      func() error { _, err := s.SegmentInsert(c, segment("a", 1, 1), members(1)); return err },
			"SegmentGet":         func() error { _, _, err := s.SegmentGet(c, 1); return err },
			"SegmentsList":       func() error { _, err := s.SegmentsList(c, "a"); return err },
			"SegmentLastSeqno":   func() error { _, _, err := s.SegmentLastSeqno(c, "a"); return err },
			"SegmentEntrySeqnos": func() error { _, err := s.SegmentEntrySeqnos(c, 1); return err },
			"SegmentForSeqno":    func() error { _, _, err := s.SegmentForSeqno(c, 1); return err },
			"SegmentSetSignature": func() error {
				return s.SegmentSetSignature(c, 1, []byte{1}, "k")
			},
			"WitnessInsert":    func() error { _, err := s.WitnessInsert(c, witness("a", 1, "x")); return err },
			"WitnessLatest":    func() error { _, _, err := s.WitnessLatest(c, "a"); return err },
			"WitnessList":      func() error { _, err := s.WitnessList(c, "a"); return err },
			"WitnessStreamIDs": func() error { _, err := s.WitnessStreamIDs(c); return err },
			"WitnessGC":        func() error { _, err := s.WitnessGC(c, &str, &one, nil); return err },
			"StreamUpsert":     func() error { return s.StreamUpsert(c, wire.StreamRow{Name: "a", Tier: "public"}) },
			"StreamGet":        func() error { _, _, err := s.StreamGet(c, "default"); return err },
			"StreamList":       func() error { _, err := s.StreamList(c); return err },
			"StreamSetTier":    func() error { return s.StreamSetTier(c, "default", "protected") },
			"StreamDeprecate":  func() error { return s.StreamDeprecate(c, "default", "2026-01-01T00:00:00+00:00") },
		}
		if b, ok := s.(store.Batcher); ok {
			ops["CommitBatch"] = func() error { return b.CommitBatch(c, store.Batch{Entries: []wire.EntryRow{entry(1, "a")}}) }
			ops["GetMeta"] = func() error { _, _, err := b.GetMeta(c, "k"); return err }
		}
		for name, op := range ops {
			if err := op(); err == nil {
				t.Errorf("%s before Init: no error", name)
			}
		}
	})

	t.Run("EmptyConfigFails", func(t *testing.T) {
		s, _ := h.raw(t)
		if err := s.Init(ctx(t), ""); err == nil {
			t.Fatal(`Init("") succeeded, want an error`)
		}
		if _, _, err := s.GlobalHead(ctx(t)); err == nil {
			t.Fatal(`GlobalHead after a failed Init("") succeeded, want an error`)
		}
	})

	t.Run("DefaultStreamSeeded", func(t *testing.T) {
		s := h.open(t)
		rows, err := s.StreamList(ctx(t))
		if err != nil {
			t.Fatalf("StreamList: %v", err)
		}
		if len(rows) != 1 || rows[0].Name != "default" {
			t.Fatalf("StreamList after Init = %+v, want only the default stream", rows)
		}
		checkDefaultStream(t, rows[0], "public")
		got, ok, err := s.StreamGet(ctx(t), "default")
		if err != nil || !ok {
			t.Fatalf("StreamGet(default) = (_, %v, %v), want present", ok, err)
		}
		if d := diffStream(rows[0], got); d != "" {
			t.Fatalf("StreamGet(default) differs from StreamList: %s", d)
		}
	})
}

// checkDefaultStream checks the seeded default stream (SPEC §15.2, DECISIONS 22).
func checkDefaultStream(t *testing.T, row wire.StreamRow, tier string) {
	t.Helper()
	if row.Name != "default" || row.Tier != tier {
		t.Fatalf("default stream = %q tier %q, want tier %q", row.Name, row.Tier, tier)
	}
	if row.Description == nil || *row.Description != DefaultStreamDescription {
		t.Fatalf("default stream description = %s, want %q", fmtOptString(row.Description), DefaultStreamDescription)
	}
	if row.DeprecatedAt != nil {
		t.Fatalf("default stream deprecated_at = %q, want absent", *row.DeprecatedAt)
	}
	if _, err := time.Parse(time.RFC3339Nano, row.CreatedAt); err != nil {
		t.Fatalf("default stream created_at %q is not RFC 3339 (DECISIONS 22): %v", row.CreatedAt, err)
	}
}

func (h *harness) testEntries(t *testing.T) {
	t.Run("EmptyStore", func(t *testing.T) {
		s := h.open(t)
		g, ok, err := s.GlobalHead(ctx(t))
		checkOptU64(t, "GlobalHead", g, ok, err, 0, false)
		checkGet(t, s, 1, nil)
		hd, ok, err := s.Head(ctx(t), "default")
		checkOptU64(t, "Head(default)", hd, ok, err, 0, false)
		if row, ok, err := s.Last(ctx(t), "default"); err != nil || ok {
			t.Fatalf("Last(default) = (%+v, %v, %v), want absent", row, ok, err)
		}
		checkRange(t, s, "default", 0, math.MaxUint64, nil)
	})

	t.Run("InsertRequiresSeqno", func(t *testing.T) {
		s := h.open(t)
		_, err := s.Insert(ctx(t), entry(0, "a"))
		if !errors.Is(err, store.ErrMissingSeqno) {
			t.Fatalf("Insert(seqno 0): error %v, want store.ErrMissingSeqno", err)
		}
		g, ok, err := s.GlobalHead(ctx(t))
		checkOptU64(t, "GlobalHead after rejected insert", g, ok, err, 0, false)
		checkRange(t, s, "a", 0, math.MaxUint64, nil)
	})

	t.Run("DuplicateSeqnoFailsAndChangesNothing", func(t *testing.T) {
		s := h.open(t)
		first := entry(5, "a")
		mustInsert(t, s, first)
		dup := entry(5, "b")
		dup.Payload = []byte("other")
		_, err := s.Insert(ctx(t), dup)
		checkDuplicate(t, "Insert(duplicate seqno 5)", err, 5)
		checkGet(t, s, 5, &first)
		checkRange(t, s, "b", 0, math.MaxUint64, nil)
		hd, ok, err := s.Head(ctx(t), "b")
		checkOptU64(t, "Head(b)", hd, ok, err, 0, false)
		checkRange(t, s, "a", 0, math.MaxUint64, []wire.EntryRow{first})
		g, ok, err := s.GlobalHead(ctx(t))
		checkOptU64(t, "GlobalHead", g, ok, err, 5, true)
	})

	t.Run("HeadsLastAndRange", func(t *testing.T) {
		s := h.open(t)
		// a: odd seqnos 1..19, b: even 2..20, inserted out of order.
		order := []uint64{2, 1, 4, 3, 6, 5, 20, 19, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15, 18, 17}
		rows := map[uint64]wire.EntryRow{}
		for _, n := range order {
			st := "a"
			if n%2 == 0 {
				st = "b"
			}
			rows[n] = entry(n, st)
			mustInsert(t, s, rows[n])
		}
		pick := func(ns ...uint64) []wire.EntryRow {
			out := make([]wire.EntryRow, len(ns))
			for i, n := range ns {
				out[i] = rows[n]
			}
			return out
		}
		g, ok, err := s.GlobalHead(ctx(t))
		checkOptU64(t, "GlobalHead", g, ok, err, 20, true)
		ha, ok, err := s.Head(ctx(t), "a")
		checkOptU64(t, "Head(a)", ha, ok, err, 19, true)
		hb, ok, err := s.Head(ctx(t), "b")
		checkOptU64(t, "Head(b)", hb, ok, err, 20, true)
		hx, ok, err := s.Head(ctx(t), "x")
		checkOptU64(t, "Head(x)", hx, ok, err, 0, false)
		last, ok, err := s.Last(ctx(t), "a")
		if err != nil || !ok {
			t.Fatalf("Last(a) = (_, %v, %v)", ok, err)
		}
		if d := diffEntry(rows[19], last); d != "" {
			t.Fatalf("Last(a): %s", d)
		}
		if _, ok, err := s.Last(ctx(t), "x"); err != nil || ok {
			t.Fatalf("Last(x) = (_, %v, %v), want absent", ok, err)
		}
		for _, n := range order {
			r := rows[n]
			checkGet(t, s, n, &r)
		}
		checkGet(t, s, 21, nil)
		checkGet(t, s, 0, nil)
		checkRange(t, s, "a", 1, 5, pick(1, 3, 5))
		checkRange(t, s, "a", 2, 4, pick(3))
		checkRange(t, s, "a", 5, 5, pick(5))
		checkRange(t, s, "a", 4, 4, nil)
		checkRange(t, s, "a", 6, 1, nil)
		checkRange(t, s, "a", 0, 0, nil)
		checkRange(t, s, "b", 15, math.MaxUint64, pick(16, 18, 20))
		checkRange(t, s, "a", 0, math.MaxUint64, pick(1, 3, 5, 7, 9, 11, 13, 15, 17, 19))
		checkRange(t, s, "x", 0, math.MaxUint64, nil)
		checkRange(t, s, "", 0, math.MaxUint64, nil)
	})

	t.Run("RoundTripEveryField", func(t *testing.T) {
		s := h.open(t)
		big := bytes.Repeat([]byte{0, 1, 2, 0xff}, 16<<10)
		cases := []wire.EntryRow{
			entry(1, "plain"),
			func() wire.EntryRow { r := entry(2, "plain"); r.Payload = []byte{}; return r }(),
			func() wire.EntryRow { r := entry(3, "plain"); r.Payload = nil; return r }(),
			func() wire.EntryRow { r := entry(4, "plain"); r.Payload = big; return r }(),
			func() wire.EntryRow {
				r := entry(5, "flux/ünïcødé ✓ 日本")
				r.EventType, r.Producer, r.SessionID = "évènement", "生产者", "sess\x00ion"
				r.Payload = []byte("\x00\xff\x00")
				return r
			}(),
			func() wire.EntryRow {
				r := entry(6, "a\x00b")
				r.PayloadEncoding, r.BootID, r.Timestamp = "", "", ""
				return r
			}(),
			entry(7, "a"),
			entry(math.MaxInt64, "plain"),
		}
		for sev := range 8 {
			r := entry(uint64(100+sev), "sev")
			r.Severity = wire.Severity(sev)
			cases = append(cases, r)
		}
		mustInsert(t, s, cases...)
		for _, r := range cases {
			checkGet(t, s, r.Seqno, &r)
		}
		// Streams whose names prefix each other stay apart.
		checkRange(t, s, "a", 0, math.MaxUint64, []wire.EntryRow{cases[6]})
		checkRange(t, s, "a\x00b", 0, math.MaxUint64, []wire.EntryRow{cases[5]})
		checkRange(t, s, "flux/ünïcødé ✓ 日本", 0, math.MaxUint64, []wire.EntryRow{cases[4]})
		g, ok, err := s.GlobalHead(ctx(t))
		checkOptU64(t, "GlobalHead", g, ok, err, math.MaxInt64, true)
		hd, ok, err := s.Head(ctx(t), "plain")
		checkOptU64(t, "Head(plain)", hd, ok, err, math.MaxInt64, true)
		got, _, err := s.Get(ctx(t), 2)
		if err != nil || len(got.Payload) != 0 {
			t.Fatalf("Get(2) empty payload = %v, %v", got.Payload, err)
		}
	})
}

// errorsText joins error texts for messages.
func errorsText(errs []error) string {
	var b strings.Builder
	for _, e := range errs {
		b.WriteString(e.Error())
		b.WriteString("; ")
	}
	return b.String()
}

// testRangeInto checks store.RangeIntoStore where a backend has it: with
// one RowBuffer reused call after call, every range (of two streams, with
// payloads of growing size so the buffer's storage grows) returns exactly
// what Range returns, and rows kept from an earlier call with another
// buffer are untouched.
func (h *harness) testRangeInto(t *testing.T) {
	s := h.open(t)
	ri, ok := s.Store.(store.RangeIntoStore)
	if !ok {
		t.Logf("%s has no RangeInto", h.f.Name)
		return
	}
	for n := uint64(1); n <= 60; n++ {
		r := entry(n, []string{"a", "b"}[n%2])
		r.Payload = bytes.Repeat([]byte{byte(n)}, int(n*n))
		mustInsert(t, s, r)
	}
	var buf, other store.RowBuffer
	kept, err := ri.RangeInto(ctx(t), "a", 1, 60, &other)
	if err != nil {
		t.Fatal(err)
	}
	keptWant, _ := s.Range(ctx(t), "a", 1, 60)
	for _, c := range [][3]any{{"a", 1, 10}, {"b", 1, 60}, {"a", 20, 60}, {"b", 5, 5}, {"a", 61, 90}, {"b", 30, 60}, {"a", 1, 60}} {
		stream, from, to := c[0].(string), uint64(c[1].(int)), uint64(c[2].(int))
		got, err := ri.RangeInto(ctx(t), stream, from, to, &buf)
		if err != nil {
			t.Fatalf("RangeInto(%s, %d, %d): %v", stream, from, to, err)
		}
		want, err := s.Range(ctx(t), stream, from, to)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("RangeInto(%s, %d, %d): %d rows, Range %d", stream, from, to, len(got), len(want))
		}
		for i := range want {
			if !reflect.DeepEqual(got[i], want[i]) {
				t.Fatalf("RangeInto(%s, %d, %d) row %d:\n got %+v\nwant %+v", stream, from, to, i, got[i], want[i])
			}
		}
		// Encodings, where the store makes them, are the rows' canonical
		// encodings.
		if len(buf.Encodings) != 0 && len(buf.Encodings) != len(got) {
			t.Fatalf("RangeInto(%s, %d, %d): %d encodings for %d rows", stream, from, to, len(buf.Encodings), len(got))
		}
		for i, enc := range buf.Encodings {
			if want := wire.EncodeEntry(want[i].Fields()); !bytes.Equal(enc, want) {
				t.Fatalf("RangeInto(%s, %d, %d) row %d: encoding\n got %x\nwant %x", stream, from, to, i, enc, want)
			}
		}
	}
	if !reflect.DeepEqual(kept, keptWant) {
		t.Fatal("rows of another RowBuffer changed")
	}
}
