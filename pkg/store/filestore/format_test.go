package filestore

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/securelog/securelog/internal/vectors"
	"github.com/securelog/securelog/pkg/wire"
)

var update = flag.Bool("update", false, "rewrite testdata/golden.jsonl")

// fixedClock is the seed time of the golden file.
var fixedClock = time.Date(2026, 4, 10, 0, 0, 0, 500_000_000, time.UTC)

func openAt(t testing.TB, path string, now time.Time) *Store {
	t.Helper()
	s := New()
	s.now = func() time.Time { return now }
	if err := s.Init(context.Background(), path); err != nil {
		t.Fatalf("Init(%s): %v", path, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func goldenEntry(seqno uint64, stream, eventType string) wire.EntryRow {
	return wire.EntryRow{
		Seqno: seqno, StreamID: stream, SessionID: "sess-1", BootID: "boot-1",
		Timestamp: "2026-04-10T00:00:0" + string(rune('0'+seqno)) + "+00:00", EventType: eventType,
		Severity: wire.Severity(seqno % 8), Producer: "authd", PayloadEncoding: "cbor",
		Payload: []byte{byte(seqno), 0, 255}, PrevEntryHash: bytes.Repeat([]byte{byte(seqno - 1)}, 4),
		EntryHash: bytes.Repeat([]byte{byte(seqno)}, 4),
	}
}

// writeGolden performs the fixed operation sequence of the golden file.
func writeGolden(t *testing.T, path string) {
	t.Helper()
	ctx := context.Background()
	s := openAt(t, path, fixedClock)
	_, err := s.Insert(ctx, goldenEntry(1, "default", "user.login"))
	must(t, err)
	// Characters encoding/json escapes but the reference writer does not.
	_, err = s.Insert(ctx, goldenEntry(2, "audit", "a<b>&c \u2028 \"q\" \\ \n é"))
	must(t, err)
	id, err := s.SegmentInsert(ctx, wire.SegmentRow{
		SegmentID: 77, StreamID: "default", SeqStart: 1, SeqEnd: 1, MerkleRoot: []byte{1, 2},
		LastEntryHash: []byte{1}, PrevCheckpointHash: []byte{0}, ClosedAt: "2026-04-10T00:00:03.250+00:00",
	}, []wire.SegmentEntry{{Seqno: 1, LeafIndex: 0}})
	must(t, err)
	if id != 1 {
		t.Fatalf("segment id = %d, want 1", id)
	}
	_, err = s.SegmentInsert(ctx, wire.SegmentRow{StreamID: "audit", SeqStart: 2, SeqEnd: 2,
		MerkleRoot: []byte{}, LastEntryHash: []byte{}, PrevCheckpointHash: []byte{}, ClosedAt: "x"}, nil)
	must(t, err)
	must(t, s.SegmentSetSignature(ctx, 1, []byte{9, 8, 7}, "dev-key"))
	for i, at := range []string{"2026-04-10T00:00:04+00:00", "2026-04-10T00:00:06+00:00"} {
		_, err := s.WitnessInsert(ctx, wire.WitnessRow{ID: 50, StreamID: "default", SegmentID: 1, SeqStart: 1,
			SeqEnd: 1, CheckpointHashHex: strings.Repeat("ab", 32), SignatureHex: "0102", SignerIdentity: "w" + string(rune('1'+i)),
			ReceivedAt: at})
		must(t, err)
	}
	cutoff := "2026-04-10T00:00:05+00:00"
	n, err := s.WitnessGC(ctx, nil, nil, &cutoff)
	must(t, err)
	if n != 1 {
		t.Fatalf("WitnessGC deleted %d, want 1", n)
	}
	desc := "audit trail"
	must(t, s.StreamUpsert(ctx, wire.StreamRow{Name: "audit", Tier: "public", Description: &desc,
		CreatedAt: "2026-04-10T00:00:07+00:00"}))
	must(t, s.StreamUpsert(ctx, wire.StreamRow{Name: "audit", Tier: "public", CreatedAt: "2026-04-10T00:00:07+00:00"}))
	must(t, s.StreamSetTier(ctx, "audit", "protected"))
	must(t, s.StreamDeprecate(ctx, "audit", "2026-04-10T00:00:08.123456+00:00"))
	must(t, s.Close())
}

// TestGolden compares the file written by a fixed operation sequence with
// testdata/golden.jsonl byte for byte (go test -update rewrites it).
func TestGolden(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log.jsonl")
	writeGolden(t, path)
	got, err := os.ReadFile(path)
	must(t, err)
	golden := filepath.Join("testdata", "golden.jsonl")
	if *update {
		must(t, os.WriteFile(golden, got, 0o644))
	}
	want, err := os.ReadFile(golden)
	must(t, err)
	if !bytes.Equal(got, want) {
		gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
		for i := range max(len(gl), len(wl)) {
			var g, w string
			if i < len(gl) {
				g = gl[i]
			}
			if i < len(wl) {
				w = wl[i]
			}
			if g != w {
				t.Fatalf("line %d differs:\n got  %s\n want %s", i+1, g, w)
			}
		}
		t.Fatal("files differ")
	}
	// Every line is one externally tagged object that encoding/json accepts.
	for i, line := range bytes.Split(bytes.TrimSuffix(got, []byte("\n")), []byte("\n")) {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(line, &m); err != nil || len(m) != 1 {
			t.Fatalf("line %d is not a one-key JSON object: %v", i+1, err)
		}
	}
	// Replaying the golden file gives the state the operations built.
	s := openAt(t, path, time.Time{})
	checkGoldenState(t, s)
	after, err := os.ReadFile(path)
	must(t, err)
	if !bytes.Equal(after, got) {
		t.Fatal("reopening the golden file changed it")
	}
}

func checkGoldenState(t *testing.T, s *Store) {
	t.Helper()
	ctx := context.Background()
	row, ok, err := s.Get(ctx, 2)
	if err != nil || !ok || row.EventType != "a<b>&c \u2028 \"q\" \\ \n é" || row.Severity != wire.Critical {
		t.Fatalf("Get(2) = %+v, %v, %v", row, ok, err)
	}
	seg, ok, err := s.SegmentGet(ctx, 1)
	if err != nil || !ok || !bytes.Equal(seg.Signature, []byte{9, 8, 7}) || seg.Signer() != "dev-key" || seg.ClosedAt != "2026-04-10T00:00:03.250+00:00" {
		t.Fatalf("SegmentGet(1) = %+v, %v, %v", seg, ok, err)
	}
	if seg2, _, _ := s.SegmentGet(ctx, 2); seg2.Signature != nil || seg2.SignerIdentity != nil {
		t.Fatalf("segment 2 = %+v, want unsigned", seg2)
	}
	ws, err := s.WitnessList(ctx, "default")
	if err != nil || len(ws) != 1 || ws[0].ID != 2 || ws[0].SignerIdentity != "w2" {
		t.Fatalf("WitnessList = %+v, %v", ws, err)
	}
	streams, err := s.StreamList(ctx)
	if err != nil || len(streams) != 2 {
		t.Fatalf("StreamList = %+v, %v", streams, err)
	}
	def, audit := streams[0], streams[1]
	if def.Name != "default" || def.CreatedAt != "2026-04-10T00:00:00.500+00:00" {
		t.Fatalf("default stream = %+v", def)
	}
	if audit.Name != "audit" || audit.Tier != "protected" || audit.Description != nil ||
		audit.DeprecatedAt == nil || *audit.DeprecatedAt != "2026-04-10T00:00:08.123456+00:00" {
		t.Fatalf("audit stream = %+v", audit)
	}
}

// TestVectorInsertEntryLine checks the line written for the vector's row
// against wire_examples.jsonl_insert_entry_line.
func TestVectorInsertEntryLine(t *testing.T) {
	ex := vectors.Load(t).WireExamples
	want, params := ex["jsonl_insert_entry_line"], ex["insert_params_json"]
	if want == "" || params == "" {
		t.Fatal("vectors.json lacks wire_examples.jsonl_insert_entry_line or insert_params_json")
	}
	var rows []wire.EntryRow
	if err := json.Unmarshal([]byte(params), &rows); err != nil || len(rows) != 1 {
		t.Fatalf("decode insert_params_json: %v (%d rows)", err, len(rows))
	}
	path := filepath.Join(t.TempDir(), "log.jsonl")
	s := openAt(t, path, fixedClock)
	_, err := s.Insert(context.Background(), rows[0])
	must(t, err)
	data, err := os.ReadFile(path)
	must(t, err)
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if got := lines[len(lines)-1]; got != want {
		t.Fatalf("InsertEntry line:\n got  %s\n want %s", got, want)
	}
}

// TestReplayReferenceFile replays a file in the reference writer's style:
// the seeded default stream with an empty created_at, blank and indented
// lines, and update ops for missing targets (ignored).
func TestReplayReferenceFile(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("testdata", "reference.jsonl"))
	must(t, err)
	path := filepath.Join(t.TempDir(), "ref.jsonl")
	must(t, os.WriteFile(path, src, 0o600))
	s := openAt(t, path, fixedClock)
	ctx := context.Background()

	streams, err := s.StreamList(ctx)
	must(t, err)
	if len(streams) != 2 || streams[0].Name != "default" || streams[0].CreatedAt != "" || streams[1].Name != "audit" ||
		streams[1].Tier != "protected" || streams[1].DeprecatedAt == nil || *streams[1].DeprecatedAt != "2026-04-10T00:00:09+00:00" {
		t.Fatalf("streams = %+v", streams)
	}
	if g, ok, err := s.GlobalHead(ctx); err != nil || !ok || g != 3 {
		t.Fatalf("GlobalHead = %d, %v, %v", g, ok, err)
	}
	rows, err := s.Range(ctx, "default", 1, 10)
	if err != nil || len(rows) != 2 || rows[0].Seqno != 1 || rows[1].Seqno != 3 || string(rows[0].Payload) != "alice" {
		t.Fatalf("Range(default) = %+v, %v", rows, err)
	}
	seg, ok, err := s.SegmentGet(ctx, 1)
	if err != nil || !ok || !bytes.Equal(seg.Signature, []byte{1, 2, 3}) || seg.Signer() != "label" {
		t.Fatalf("segment 1 = %+v, %v, %v", seg, ok, err)
	}
	if seqs, err := s.SegmentEntrySeqnos(ctx, 1); err != nil || !slices.Equal(seqs, []uint64{1, 3}) {
		t.Fatalf("SegmentEntrySeqnos(1) = %v, %v", seqs, err)
	}
	if id, ok, _ := s.SegmentForSeqno(ctx, 3); !ok || id != 1 {
		t.Fatalf("SegmentForSeqno(3) = %d, %v", id, ok)
	}
	if ws, err := s.WitnessList(ctx, "default"); err != nil || len(ws) != 1 || ws[0].ID != 4 {
		t.Fatalf("witness rows = %+v, %v; want only id 4", ws, err)
	}
	// The default stream existed, so nothing was appended.
	after, err := os.ReadFile(path)
	must(t, err)
	if !bytes.Equal(after, src) {
		t.Fatalf("replay changed the file:\n%s", after)
	}
	// Ids continue after the highest seen, deleted or not.
	if id, err := s.SegmentInsert(ctx, wire.SegmentRow{StreamID: "audit", SeqStart: 1000, SeqEnd: 1000}, nil); err != nil || id != 6 {
		t.Fatalf("next segment id = %d, %v; want 6", id, err)
	}
	if id, err := s.WitnessInsert(ctx, wire.WitnessRow{StreamID: "audit"}); err != nil || id != 5 {
		t.Fatalf("next witness id = %d, %v; want 5", id, err)
	}
}

func TestAppendUnescapedHTML(t *testing.T) {
	for _, s := range []string{"", "plain", "<>&", `\u003c`, `\\u003c`, "\u2028\u2029", "\x00\x1f\b\f\n\r\t\"\\", "\xff", "é日本"} {
		raw, err := json.Marshal(s)
		must(t, err)
		out := appendUnescapedHTML(nil, raw)
		var back string
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("%q: unescaped %s does not decode: %v", s, out, err)
		}
		var orig string
		must(t, json.Unmarshal(raw, &orig))
		if back != orig {
			t.Fatalf("%q: decodes to %q, want %q", s, back, orig)
		}
		if bytes.Contains(out, []byte(`\u003c`)) && !strings.Contains(s, `\u003c`) {
			t.Fatalf("%q: %s still escapes '<'", s, out)
		}
	}
}

func FuzzAppendUnescapedHTML(f *testing.F) {
	for _, s := range []string{"<a href=\"x\">&amp;</a>", `\u003c`, "\u2028", "\x01"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		raw, err := json.Marshal(s)
		if err != nil {
			t.Skip()
		}
		var want, got string
		must(t, json.Unmarshal(raw, &want))
		if err := json.Unmarshal(appendUnescapedHTML(nil, raw), &got); err != nil || got != want {
			t.Fatalf("%q: got %q, %v; want %q", s, got, err, want)
		}
	})
}

// FuzzDecodeLine checks that decoding never panics and that a decoded line
// re-encodes to a line that decodes to the same operation.
func FuzzDecodeLine(f *testing.F) {
	for _, name := range []string{"golden.jsonl", "reference.jsonl"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		for line := range bytes.SplitSeq(data, []byte("\n")) {
			f.Add(line)
		}
	}
	f.Add([]byte(`{"DeleteWitness":null}`))
	f.Add([]byte(`{"InsertEntry":{"seqno":null}}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		o, err := decodeLine(line)
		if err != nil {
			return
		}
		enc, err := o.encode()
		if err != nil {
			return // e.g. an out-of-range severity cannot be re-encoded
		}
		o2, err := decodeLine(bytes.TrimSuffix(enc, []byte("\n")))
		if err != nil {
			t.Fatalf("re-encoded line %s does not decode: %v", enc, err)
		}
		enc2, err := o2.encode()
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("round trip differs:\n%s\n%s (%v)", enc, enc2, err)
		}
	})
}
