package wire_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/fxamacker/cbor/v2"

	"github.com/securelog/securelog/pkg/wire"
)

// edgeInts are the integer width boundaries of SPEC §4.1.
var edgeInts = []uint64{0, 1, 23, 24, 255, 256, 65535, 65536, math.MaxUint32, math.MaxUint32 + 1, math.MaxUint64}

// edgeLens are string/byte lengths at the same boundaries (bounded to sizes
// that are cheap to build).
var edgeLens = []int{0, 1, 23, 24, 255, 256, 65535, 65536}

func coreDet(t testing.TB) cbor.EncMode {
	t.Helper()
	em, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		t.Fatalf("EncMode: %v", err)
	}
	return em
}

// randText returns a valid UTF-8 string of exactly n bytes mixing ASCII and
// multi-byte runes.
func randText(r *rand.Rand, n int) string {
	runes := []rune{'a', 'Z', '0', '-', 'ü', 'é', '€', '中', '😀', '\u0000', '\u007f', '\u0080', '\u07ff', '\u0800', '\uffff', '\U00010000', '\U0010ffff'}
	var sb strings.Builder
	for sb.Len() < n {
		c := runes[r.IntN(len(runes))]
		if sb.Len()+utf8.RuneLen(c) > n {
			c = 'x'
		}
		sb.WriteRune(c)
	}
	return sb.String()
}

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// randLen mostly picks short lengths, sometimes a width edge.
func randLen(r *rand.Rand) int {
	if r.IntN(8) == 0 {
		return edgeLens[r.IntN(len(edgeLens))]
	}
	return r.IntN(40)
}

func randUint(r *rand.Rand) uint64 {
	switch r.IntN(3) {
	case 0:
		return edgeInts[r.IntN(len(edgeInts))]
	case 1:
		return r.Uint64() >> r.IntN(64)
	default:
		return r.Uint64()
	}
}

func randEntry(r *rand.Rand) wire.EntryFields {
	return wire.EntryFields{
		Version:         uint32(randUint(r)),
		StreamID:        randText(r, randLen(r)),
		SessionID:       randText(r, randLen(r)),
		BootID:          randText(r, randLen(r)),
		Seqno:           randUint(r),
		Timestamp:       randText(r, randLen(r)),
		EventType:       randText(r, randLen(r)),
		Severity:        wire.Severity(r.IntN(8)),
		Producer:        randText(r, randLen(r)),
		PayloadEncoding: randText(r, randLen(r)),
		Payload:         randBytes(r, randLen(r)),
		PrevEntryHash:   randBytes(r, []int{0, 32, 32, 33, randLen(r)}[r.IntN(5)]),
	}
}

func randCheckpoint(r *rand.Rand) wire.CheckpointFields {
	return wire.CheckpointFields{
		Version:            uint32(randUint(r)),
		StreamID:           randText(r, randLen(r)),
		SegmentID:          randUint(r),
		SeqStart:           randUint(r),
		SeqEnd:             randUint(r),
		MerkleRoot:         randBytes(r, randLen(r)),
		LastEntryHash:      randBytes(r, 32),
		PrevCheckpointHash: randBytes(r, randLen(r)),
		BootID:             randText(r, randLen(r)),
		SessionID:          randText(r, randLen(r)),
		PolicyHash:         randBytes(r, randLen(r)),
		Timestamp:          randText(r, randLen(r)),
	}
}

func nn(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

func libEntry(t testing.TB, em cbor.EncMode, f wire.EntryFields) []byte {
	t.Helper()
	b, err := em.Marshal([]any{uint64(f.Version), f.StreamID, f.SessionID, f.BootID, f.Seqno, f.Timestamp,
		f.EventType, f.Severity.String(), f.Producer, f.PayloadEncoding, nn(f.Payload), nn(f.PrevEntryHash)})
	if err != nil {
		t.Fatalf("library encode: %v", err)
	}
	return b
}

func libCheckpoint(t testing.TB, em cbor.EncMode, f wire.CheckpointFields) []byte {
	t.Helper()
	b, err := em.Marshal([]any{uint64(f.Version), f.StreamID, f.SegmentID, f.SeqStart, f.SeqEnd,
		nn(f.MerkleRoot), nn(f.LastEntryHash), nn(f.PrevCheckpointHash), f.BootID, f.SessionID,
		nn(f.PolicyHash), f.Timestamp})
	if err != nil {
		t.Fatalf("library encode: %v", err)
	}
	return b
}

// edgeEntries varies one integer or one length at a time over every edge.
func edgeEntries() []wire.EntryFields {
	base := wire.EntryFields{Version: 1, StreamID: "default", SessionID: "s", BootID: "b",
		Timestamp: "2026-04-10T00:00:00+00:00", EventType: "e", Severity: wire.Info, Producer: "p",
		PayloadEncoding: "cbor", Payload: []byte("x"), PrevEntryHash: wire.ZeroHash}
	var out []wire.EntryFields
	for _, v := range edgeInts {
		f := base
		f.Seqno = v
		out = append(out, f)
		if v <= math.MaxUint32 {
			f.Version = uint32(v)
			out = append(out, f)
		}
	}
	for _, n := range edgeLens {
		s := strings.Repeat("ü", n/2) + strings.Repeat("a", n%2)
		b := bytes.Repeat([]byte{0xab}, n)
		for i := 0; i < 9; i++ {
			f := base
			switch i {
			case 0:
				f.StreamID = s
			case 1:
				f.SessionID = s
			case 2:
				f.BootID = s
			case 3:
				f.Timestamp = s
			case 4:
				f.EventType = s
			case 5:
				f.Producer = s
			case 6:
				f.PayloadEncoding = s
			case 7:
				f.Payload = b
			case 8:
				f.PrevEntryHash = b
			}
			out = append(out, f)
		}
	}
	return out
}

func TestEncodeEntryMatchesCoreDeterministicLibrary(t *testing.T) {
	em := coreDet(t)
	r := rand.New(rand.NewPCG(1, 2))
	cases := edgeEntries()
	for range 1500 {
		cases = append(cases, randEntry(r))
	}
	for s := range wire.Severity(8) {
		f := cases[0]
		f.Severity = s
		cases = append(cases, f)
	}
	nilBytes := cases[0]
	nilBytes.Payload, nilBytes.PrevEntryHash = nil, nil
	cases = append(cases, nilBytes)
	for i, f := range cases {
		got := wire.EncodeEntry(f)
		want := libEntry(t, em, f)
		if !bytes.Equal(got, want) {
			t.Fatalf("case %d: hand-written encoding differs from library\n got %x\nwant %x", i, got, want)
		}
		if n := wire.EntrySize(f); n != len(got) {
			t.Fatalf("case %d: EntrySize = %d, encoding has %d bytes", i, n, len(got))
		}
		prefix := []byte("prefix")
		if app := wire.AppendEntry(prefix, f); !bytes.Equal(app[:6], prefix) || !bytes.Equal(app[6:], got) {
			t.Fatalf("case %d: AppendEntry does not append", i)
		}
		dec, err := wire.DecodeEntry(got)
		if err != nil {
			t.Fatalf("case %d: DecodeEntry of own encoding: %v", i, err)
		}
		if again := wire.EncodeEntry(dec); !bytes.Equal(again, got) {
			t.Fatalf("case %d: decode/encode round trip differs", i)
		}
	}
}

func TestEncodeCheckpointMatchesCoreDeterministicLibrary(t *testing.T) {
	em := coreDet(t)
	r := rand.New(rand.NewPCG(3, 4))
	var cases []wire.CheckpointFields
	for _, v := range edgeInts {
		f := randCheckpoint(r)
		f.SegmentID, f.SeqStart, f.SeqEnd = v, v, v
		cases = append(cases, f)
		if v <= math.MaxUint32 {
			f.Version = uint32(v)
			cases = append(cases, f)
		}
	}
	for _, n := range edgeLens {
		f := randCheckpoint(r)
		f.StreamID, f.BootID = randText(r, n), randText(r, n)
		f.MerkleRoot = randBytes(r, n)
		cases = append(cases, f)
	}
	for range 1500 {
		cases = append(cases, randCheckpoint(r))
	}
	for i, f := range cases {
		got := wire.EncodeCheckpoint(f)
		want := libCheckpoint(t, em, f)
		if !bytes.Equal(got, want) {
			t.Fatalf("case %d: hand-written encoding differs from library\n got %x\nwant %x", i, got, want)
		}
		if n := wire.CheckpointSize(f); n != len(got) {
			t.Fatalf("case %d: CheckpointSize = %d, encoding has %d bytes", i, n, len(got))
		}
		dec, err := wire.DecodeCheckpoint(got)
		if err != nil {
			t.Fatalf("case %d: DecodeCheckpoint of own encoding: %v", i, err)
		}
		if again := wire.EncodeCheckpoint(dec); !bytes.Equal(again, got) {
			t.Fatalf("case %d: decode/encode round trip differs", i)
		}
	}
}

func TestIntegerHeaders(t *testing.T) {
	tests := []struct {
		seqno uint64
		want  string
	}{
		{0, "00"}, {23, "17"}, {24, "1818"}, {255, "18ff"}, {256, "190100"}, {65535, "19ffff"},
		{65536, "1a00010000"}, {math.MaxUint32, "1affffffff"}, {math.MaxUint32 + 1, "1b0000000100000000"},
		{math.MaxUint64, "1bffffffffffffffff"},
	}
	for _, tc := range tests {
		f := wire.EntryFields{Version: 1, Seqno: tc.seqno, PrevEntryHash: nil}
		// 8c 01 60 60 60 <seqno> ...
		got := hex.EncodeToString(wire.EncodeEntry(f)[5:])
		if !strings.HasPrefix(got, tc.want+"60") {
			t.Errorf("seqno %d: encoding after header %s, want prefix %s", tc.seqno, got, tc.want)
		}
	}
}

// sampleEntry is a small valid entry used by the rejection tests.
func sampleEntry() wire.EntryFields {
	return wire.EntryFields{Version: 1, StreamID: "default", SessionID: "sess-1", BootID: "boot-1",
		Seqno: 1, Timestamp: "t", EventType: "e", Severity: wire.Info, Producer: "p",
		PayloadEncoding: "cbor", Payload: []byte("hi"), PrevEntryHash: wire.ZeroHash}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeEntryRejects(t *testing.T) {
	good := wire.EncodeEntry(sampleEntry())
	// body is everything after "8c 01".
	body := good[2:]
	lib := coreDet(t)
	mk := func(elems ...any) []byte {
		b, err := lib.Marshal(elems)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	zero := make([]byte, 32)
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"truncated", good[:len(good)-1]},
		{"trailing byte", append(append([]byte{}, good...), 0x00)},
		{"11 elements", mk(uint64(1), "a", "b", "c", uint64(1), "t", "e", "info", "p", "cbor", []byte{})},
		{"13 elements", mk(uint64(1), "a", "b", "c", uint64(1), "t", "e", "info", "p", "cbor", []byte{}, zero, uint64(0))},
		{"map", mustHex(t, "a0")},
		{"indefinite array", append(append([]byte{0x9f}, good[1:]...), 0xff)},
		{"non-shortest version", append([]byte{0x8c, 0x18, 0x01}, body...)},
		{"non-shortest array header", append([]byte{0x98, 0x0c, 0x01}, body...)},
		{"version too big for u32", mk(uint64(1)<<32, "a", "b", "c", uint64(1), "t", "e", "info", "p", "cbor", []byte{}, zero)},
		{"seqno as text", mk(uint64(1), "a", "b", "c", "1", "t", "e", "info", "p", "cbor", []byte{}, zero)},
		{"stream as bytes", mk(uint64(1), []byte("a"), "b", "c", uint64(1), "t", "e", "info", "p", "cbor", []byte{}, zero)},
		{"payload as text", mk(uint64(1), "a", "b", "c", uint64(1), "t", "e", "info", "p", "cbor", "hi", zero)},
		{"payload as int array", mk(uint64(1), "a", "b", "c", uint64(1), "t", "e", "info", "p", "cbor", []any{uint64(1)}, zero)},
		{"negative seqno", mk(uint64(1), "a", "b", "c", int64(-1), "t", "e", "info", "p", "cbor", []byte{}, zero)},
		{"float seqno", mk(uint64(1), "a", "b", "c", 1.0, "t", "e", "info", "p", "cbor", []byte{}, zero)},
		{"null seqno", mk(uint64(1), "a", "b", "c", nil, "t", "e", "info", "p", "cbor", []byte{}, zero)},
		{"null payload", mk(uint64(1), "a", "b", "c", uint64(1), "t", "e", "info", "p", "cbor", nil, zero)},
		{"uppercase severity", mk(uint64(1), "a", "b", "c", uint64(1), "t", "e", "INFO", "p", "cbor", []byte{}, zero)},
		{"unknown severity", mk(uint64(1), "a", "b", "c", uint64(1), "t", "e", "warn", "p", "cbor", []byte{}, zero)},
		{"invalid utf-8", mk(uint64(1), "a\xff", "b", "c", uint64(1), "t", "e", "info", "p", "cbor", []byte{}, zero)},
		{"tagged seqno", mk(uint64(1), "a", "b", "c", cbor.Tag{Number: 2, Content: []byte{1}}, "t", "e", "info", "p", "cbor", []byte{}, zero)},
		{"indefinite text", mustHex(t, "8c 01 7f 61 61 ff 61 62 61 63 01 61 74 61 65 64 696e666f 61 70 64 63626f72 40 40")},
		{"non-shortest text length", mustHex(t, "8c 01 78 01 61 61 62 61 63 01 61 74 61 65 64 696e666f 61 70 64 63626f72 40 40")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := wire.DecodeEntry(tc.in)
			if err == nil {
				t.Fatalf("DecodeEntry(%x) accepted invalid input", tc.in)
			}
			var inv *wire.InvalidError
			if !errors.As(err, &inv) {
				t.Fatalf("error %v is %T, want *wire.InvalidError", err, err)
			}
		})
	}
	// The well-formed base case of the table must decode (guards the table).
	if _, err := wire.DecodeEntry(mk(uint64(1), "a", "b", "c", uint64(1), "t", "e", "info", "p", "cbor", []byte{}, zero)); err != nil {
		t.Fatalf("valid library encoding rejected: %v", err)
	}
	if _, err := wire.DecodeEntry(mustHex(t, "8c 01 61 61 61 62 61 63 01 61 74 61 65 64 696e666f 61 70 64 63626f72 40 40")); err != nil {
		t.Fatalf("valid hand-written encoding rejected: %v", err)
	}
}

func TestDecodeCheckpointRejects(t *testing.T) {
	lib := coreDet(t)
	mk := func(elems ...any) []byte {
		b, err := lib.Marshal(elems)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	z := make([]byte, 32)
	valid := mk(uint64(1), "default", uint64(1), uint64(1), uint64(3), z, z, z, "boot", "sess", z, "t")
	if _, err := wire.DecodeCheckpoint(valid); err != nil {
		t.Fatalf("valid checkpoint rejected: %v", err)
	}
	entry := wire.EncodeEntry(sampleEntry())
	tests := []struct {
		name string
		in   []byte
	}{
		{"entry bytes", entry},
		{"trailing", append(append([]byte{}, valid...), 0xf6)},
		{"segment id as text", mk(uint64(1), "default", "1", uint64(1), uint64(3), z, z, z, "boot", "sess", z, "t")},
		{"root as text", mk(uint64(1), "default", uint64(1), uint64(1), uint64(3), "r", z, z, "boot", "sess", z, "t")},
		{"boot as bytes", mk(uint64(1), "default", uint64(1), uint64(1), uint64(3), z, z, z, []byte("b"), "sess", z, "t")},
		{"11 elements", mk(uint64(1), "default", uint64(1), uint64(1), uint64(3), z, z, z, "boot", "sess", z)},
		{"non-shortest seq_end", append(append(append([]byte{}, valid[:12]...), 0x18, 0x03), valid[13:]...)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := wire.DecodeCheckpoint(tc.in); err == nil {
				t.Fatalf("DecodeCheckpoint(%x) accepted invalid input", tc.in)
			}
		})
	}
}

func BenchmarkEncodeEntry(b *testing.B) {
	f := sampleEntry()
	f.Payload = bytes.Repeat([]byte{1}, 200)
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf = wire.AppendEntry(buf[:0], f)
	}
}

func BenchmarkDecodeEntry(b *testing.B) {
	enc := wire.EncodeEntry(sampleEntry())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := wire.DecodeEntry(enc); err != nil {
			b.Fatal(err)
		}
	}
}

// readCorpusFile parses a one-value "go test fuzz v1" corpus file.
func readCorpusFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 2 || lines[0] != "go test fuzz v1" ||
		!strings.HasPrefix(lines[1], "[]byte(") || !strings.HasSuffix(lines[1], ")") {
		t.Fatalf("%s: not a one-value []byte corpus file", path)
	}
	s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return []byte(s)
}

// TestFuzzSeedCorpus pins the decision for the checked-in seed corpus: files
// named valid_* must decode, every other file must be rejected.
func TestFuzzSeedCorpus(t *testing.T) {
	decoders := map[string]func([]byte) error{
		"FuzzDecodeEntry":      func(b []byte) error { _, err := wire.DecodeEntry(b); return err },
		"FuzzDecodeCheckpoint": func(b []byte) error { _, err := wire.DecodeCheckpoint(b); return err },
	}
	for target, decode := range decoders {
		files, err := filepath.Glob(filepath.Join("testdata", "fuzz", target, "*"))
		if err != nil || len(files) < 2 {
			t.Fatalf("%s: seed corpus missing (%v, %d files)", target, err, len(files))
		}
		for _, p := range files {
			err := decode(readCorpusFile(t, p))
			if valid := strings.HasPrefix(filepath.Base(p), "valid_"); valid != (err == nil) {
				t.Errorf("%s: valid=%v but decode error = %v", p, valid, err)
			}
		}
	}
}
