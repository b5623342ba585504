package pebblestore

import (
	"bytes"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/securelog/securelog/pkg/wire"
)

func strp(s string) *string { return &s }

func TestCodecRoundTrip(t *testing.T) {
	entries := []wire.EntryRow{
		{},
		{Seqno: 1, StreamID: "s", SessionID: "x", BootID: "b", Timestamp: "2026-08-04T10:11:12+00:00", EventType: "e",
			Severity: wire.Severity(7), Producer: "p", PayloadEncoding: "json", Payload: []byte("{}"),
			PrevEntryHash: make([]byte, 32), EntryHash: bytes.Repeat([]byte{0xab}, 32)},
		{Seqno: math.MaxUint64, StreamID: "ü\x00✓", Payload: []byte{}},
	}
	for _, r := range entries {
		got, err := decodeEntry(encodeEntry(r))
		if err != nil {
			t.Fatalf("decodeEntry: %v", err)
		}
		want := r
		for _, p := range []*[]byte{&want.Payload, &want.PrevEntryHash, &want.EntryHash} {
			if *p == nil {
				*p = []byte{}
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("entry round trip:\n got %+v\nwant %+v", got, want)
		}
	}
	segments := []wire.SegmentRow{
		{SegmentID: 3, StreamID: "a", SeqStart: 1, SeqEnd: 9, MerkleRoot: []byte{1}, LastEntryHash: []byte{2},
			PrevCheckpointHash: []byte{3}, ClosedAt: "t", Signature: []byte{4}, SignerIdentity: strp("k")},
		{SegmentID: 4, MerkleRoot: []byte{}, LastEntryHash: []byte{}, PrevCheckpointHash: []byte{}},
		{SegmentID: 5, MerkleRoot: []byte{}, LastEntryHash: []byte{}, PrevCheckpointHash: []byte{},
			Signature: []byte{}, SignerIdentity: strp("")},
	}
	for _, r := range segments {
		got, err := decodeSegment(encodeSegment(r))
		if err != nil || !reflect.DeepEqual(got, r) {
			t.Fatalf("segment round trip: got %+v, %v; want %+v", got, err, r)
		}
	}
	w := wire.WitnessRow{ID: math.MaxInt64, StreamID: "a", SegmentID: 2, SeqStart: 3, SeqEnd: 4,
		CheckpointHashHex: "ab", SignatureHex: "cd", SignerIdentity: "k", ReceivedAt: "t"}
	if got, err := decodeWitness(encodeWitness(w)); err != nil || got != w {
		t.Fatalf("witness round trip: got %+v, %v", got, err)
	}
	for _, r := range []wire.StreamRow{{Name: "n", Tier: "public"},
		{Name: "n", Tier: "x", Description: strp(""), CreatedAt: "c", DeprecatedAt: strp("d")}} {
		if got, err := decodeStream(encodeStream(r)); err != nil || !reflect.DeepEqual(got, r) {
			t.Fatalf("stream round trip: got %+v, %v; want %+v", got, err, r)
		}
	}
}

func TestCodecRejectsBadValues(t *testing.T) {
	good := encodeSegment(wire.SegmentRow{SegmentID: 1, StreamID: "a", Signature: []byte{1}})
	cases := map[string][]byte{
		"empty":          nil,
		"unknown format": append([]byte{2}, good[1:]...),
		"truncated":      good[:len(good)-1],
		"trailing":       append(slices.Clone(good), 0),
		"bad option":     append(slices.Clone(good[:len(good)-1]), 7),
		"huge length":    {codecVersion, 1, 0xff, 0xff, 0xff, 0xff, 0x0f},
	}
	for name, b := range cases {
		if _, err := decodeSegment(b); err == nil || !strings.Contains(err.Error(), "segment") {
			t.Errorf("%s: decodeSegment error = %v, want a segment decode error", name, err)
		}
	}
}

func TestStreamKeyEscaping(t *testing.T) {
	names := []string{"", "a", "a\x00", "a\x00b", "a\x01", "ab", "b", "\x00", "\xff", "a\xff", "日本"}
	for _, a := range names {
		ea := escStream(a)
		back, rest, err := unescStream(append(slices.Clone(ea), 9, 9))
		if err != nil || back != a || !bytes.Equal(rest, []byte{9, 9}) {
			t.Fatalf("unescStream(escStream(%q)) = %q, %v, %v", a, back, rest, err)
		}
		for _, b := range names {
			eb := escStream(b)
			if got, want := bytes.Compare(ea, eb), strings.Compare(a, b); got != want {
				t.Errorf("order of %q vs %q: escaped %d, names %d", a, b, got, want)
			}
			if a != b && bytes.HasPrefix(eb, ea) {
				t.Errorf("escaped %q is a prefix of escaped %q", a, b)
			}
		}
	}
	for _, bad := range [][]byte{{'a'}, {'a', 0}, {'a', 0, 5}} {
		if _, _, err := unescStream(bad); err == nil {
			t.Errorf("unescStream(%v) succeeded, want an error", bad)
		}
	}
}

func TestUpperBound(t *testing.T) {
	for _, c := range []struct{ in, want []byte }{
		{[]byte("s/"), []byte("s0")}, {[]byte{1, 0xff}, []byte{2}}, {[]byte{0xff, 0xff}, nil},
	} {
		if got := upperBound(c.in); !bytes.Equal(got, c.want) {
			t.Errorf("upperBound(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

// FuzzDecode checks that no value makes a decoder panic and that decoded
// rows survive a re-encode.
func FuzzDecode(f *testing.F) {
	f.Add(encodeEntry(wire.EntryRow{Seqno: 1, StreamID: "a", Payload: []byte("p")}))
	f.Add(encodeSegment(wire.SegmentRow{SegmentID: 1, Signature: []byte{1}, SignerIdentity: strp("k")}))
	f.Add(encodeWitness(wire.WitnessRow{ID: -1, StreamID: "w"}))
	f.Add(encodeStream(wire.StreamRow{Name: "n", Description: strp("d")}))
	f.Add([]byte{codecVersion, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		if r, err := decodeEntry(b); err == nil {
			if again, err := decodeEntry(encodeEntry(r)); err != nil || !reflect.DeepEqual(again, r) {
				t.Fatalf("entry re-encode: %+v vs %+v (%v)", again, r, err)
			}
		}
		if r, err := decodeSegment(b); err == nil {
			if again, err := decodeSegment(encodeSegment(r)); err != nil || !reflect.DeepEqual(again, r) {
				t.Fatalf("segment re-encode: %+v vs %+v (%v)", again, r, err)
			}
		}
		if r, err := decodeWitness(b); err == nil {
			if again, err := decodeWitness(encodeWitness(r)); err != nil || again != r {
				t.Fatalf("witness re-encode: %+v vs %+v (%v)", again, r, err)
			}
		}
		if r, err := decodeStream(b); err == nil {
			if again, err := decodeStream(encodeStream(r)); err != nil || !reflect.DeepEqual(again, r) {
				t.Fatalf("stream re-encode: %+v vs %+v (%v)", again, r, err)
			}
		}
	})
}

// FuzzStreamKey checks escStream/unescStream round trips for any name.
func FuzzStreamKey(f *testing.F) {
	for _, s := range []string{"", "a", "a\x00b", "\x00\x01", "\xff\x00\xff"} {
		f.Add(s, "b")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		ea, eb := escStream(a), escStream(b)
		back, rest, err := unescStream(ea)
		if err != nil || back != a || len(rest) != 0 {
			t.Fatalf("round trip of %q: %q %v %v", a, back, rest, err)
		}
		if bytes.Compare(ea, eb) != strings.Compare(a, b) {
			t.Fatalf("order of %q, %q not preserved", a, b)
		}
	})
}

// TestDecodeArena: rows decoded by one scan share arena storage, yet each
// decodes exactly as alone, the empty row included, and appending to one
// row's byte fields never changes another's.
func TestDecodeArena(t *testing.T) {
	var rows []wire.EntryRow
	for i := range 300 {
		rows = append(rows, wire.EntryRow{Seqno: uint64(i), StreamID: "s", Timestamp: strings.Repeat("t", i%3),
			Payload: bytes.Repeat([]byte{byte(i)}, i*7), PrevEntryHash: bytes.Repeat([]byte{1}, 32), EntryHash: bytes.Repeat([]byte{byte(i)}, 32)})
	}
	rows = append(rows, wire.EntryRow{}, wire.EntryRow{Payload: bytes.Repeat([]byte{9}, 3*arenaSize)})
	var in interner
	var got []wire.EntryRow
	for _, r := range rows {
		g, err := decodeEntryInto(encodeEntry(r), &in)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, g)
	}
	for i := range got {
		_ = append(got[i].Payload, 0xee)
		_ = append(got[i].PrevEntryHash, 0xee)
		_ = append(got[i].EntryHash, 0xee)
	}
	for i, r := range rows {
		want, _ := decodeEntry(encodeEntry(r))
		if !reflect.DeepEqual(got[i], want) {
			t.Fatalf("row %d decoded with the arena:\n got %+v\nwant %+v", i, got[i], want)
		}
	}
}
