package bundle_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/securelog/securelog/pkg/bundle"
	"github.com/securelog/securelog/pkg/wire"
)

const hash0 = "[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]"

func segJSON(id, stream, members string) string {
	return `{"segment_id":` + id + `,"stream_id":"` + stream + `","seq_start":1,"seq_end":1,"merkle_root":` + hash0 +
		`,"last_entry_hash":` + hash0 + `,"prev_checkpoint_hash":` + hash0 + `,"closed_at_rfc3339":"t","signature":null,"signer_identity":null` + members + `}`
}

const entryJSON = `{"seqno":1,"stream_id":"s","session_id":"a","boot_id":"b","timestamp_rfc3339":"t","event_type":"e","severity":"info","producer":"p","payload_encoding":"cbor","payload":[1],"prev_entry_hash":` + hash0 + `,"entry_hash":` + hash0 + `}`

func doc(entries, segments, extra string) string {
	return `{"format":"securelog-bundle/v1","stream":"s","entries":[` + entries + `],"segments":[` + segments + `]` + extra + `}`
}

func TestNewReaderRejects(t *testing.T) {
	okSeg := segJSON("1", "s", `,"entries":[[1,0]]`)
	tests := []struct{ name, doc, want string }{
		{"not an object", `[]`, "expected '{'"},
		{"format", strings.Replace(doc("", "", ""), "bundle/v1", "bundle/v2", 1), `format is "securelog-bundle/v2"`},
		{"missing format", `{"stream":"s","entries":[],"segments":[]}`, `member "format" is missing`},
		{"missing segments", `{"format":"securelog-bundle/v1","stream":"s","entries":[]}`, `member "segments" is missing`},
		{"empty stream", strings.Replace(doc("", "", ""), `"stream":"s"`, `"stream":""`, 1), "stream is empty"},
		{"duplicate member", doc("", "", `,"entries":[]`), `member "entries" appears twice`},
		{"unknown member", doc("", "", `,"extra":1`), `unknown top-level member "extra"`},
		{"trailing data", doc("", "", "") + `{}`, "data after the closing"},
		{"entry not object", doc(`1`, "", ""), "entries[0]: not a JSON object"},
		{"entries not array", strings.Replace(doc("", "", ""), `"entries":[]`, `"entries":{}`, 1), "expected '['"},
		{"segment id zero", doc("", segJSON("0", "s", `,"entries":[]`), ""), "segments[0]: segment_id is missing or 0"},
		{"segment other stream", doc("", segJSON("1", "x", `,"entries":[[1,0]]`), ""), `segment 1 (segments[0]): stream_id "x"`},
		{"segment no membership", doc("", segJSON("1", "s", ""), ""), `segment 1 (segments[0]): membership "entries" is missing`},
		{"leaf index", doc("", segJSON("1", "s", `,"entries":[[1,1]]`), ""), "membership entries[0] has leaf_index 1, want 0"},
		{"bad membership pair", doc("", segJSON("1", "s", `,"entries":[[1]]`), ""), "segment 1 (segments[0]): entries: "},
		{"duplicate segment", doc("", okSeg+","+okSeg, ""), "segment 1 (segments[1]): segment_id appears twice"},
		{"bad segment field", doc("", strings.Replace(okSeg, `"seq_end":1`, `"seq_end":"x"`, 1), ""), "segments[0]: segment row"},
		{"trust hex", doc("", "", `,"trust":[{"identity":"a","algorithm":"ed25519","public_key":"zz"}]`), "trust[0]: public_key"},
		{"receipt", doc("", "", `,"witness_receipts":[{"segment_id":"x"}]`), "witness_receipts[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := bundle.NewReader(strings.NewReader(tt.doc), int64(len(tt.doc)))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want error containing %q", err, tt.want)
			}
		})
	}
}

func TestReaderEntriesAndMembership(t *testing.T) {
	bad := strings.Replace(entryJSON, `"severity":"info"`, `"severity":"loud"`, 1)
	d := doc(entryJSON+",\n"+entryJSON+","+bad, "\n  "+segJSON("3", "s", `,"entries":[[1,0],[2,1]]`)+" ,\n"+segJSON("5", "s", `,"entries":[[9,0]]`), `,"trust":[]`)
	r, err := bundle.NewReader(strings.NewReader(d), int64(len(d)))
	if err != nil {
		t.Fatal(err)
	}
	if r.Stream() != "s" || r.EntryCount() != 3 || len(r.SegmentRows()) != 2 {
		t.Fatalf("stream %q entries %d segments %d", r.Stream(), r.EntryCount(), len(r.SegmentRows()))
	}
	ctx := context.Background()
	for id, want := range map[uint64][]uint64{3: {1, 2}, 5: {9}} {
		got, err := r.SegmentSeqnos(ctx, id)
		if err != nil || len(got) != len(want) || got[0] != want[0] {
			t.Errorf("segment %d: %v %v, want %v", id, got, err, want)
		}
	}
	if _, err := r.SegmentSeqnos(ctx, 4); err == nil {
		t.Error("segment 4 is not in the bundle")
	}
	var n int
	err = r.Entries(ctx, "s", func(row wire.EntryRow) error { n++; return nil })
	if n != 2 || err == nil || !strings.Contains(err.Error(), "entries[2]") {
		t.Fatalf("got %d rows and %v, want 2 rows then an entries[2] error", n, err)
	}
	if err := r.Entries(ctx, "other", func(wire.EntryRow) error { return nil }); err == nil {
		t.Error("Entries of another stream should fail")
	}
	if id, ok := r.SegmentForSeqno(1); !ok || id != 3 {
		t.Errorf("SegmentForSeqno(1) = %d %v", id, ok)
	}
}

// FuzzNewReader: no input makes the reader panic, and whatever it accepts
// streams without panicking either.
func FuzzNewReader(f *testing.F) {
	f.Add(doc(entryJSON, segJSON("1", "s", `,"entries":[[1,0]]`), `,"trust":[],"witness_receipts":[]`))
	f.Add(doc("", "", ""))
	f.Add(`{"format":"securelog-bundle/v1"`)
	f.Add(`{}`)
	f.Fuzz(func(t *testing.T, s string) {
		r, err := bundle.NewReader(bytes.NewReader([]byte(s)), int64(len(s)))
		if err != nil {
			return
		}
		ctx := context.Background()
		_ = r.Entries(ctx, r.Stream(), func(wire.EntryRow) error { return nil })
		for _, seg := range r.SegmentRows() {
			if _, err := r.SegmentSeqnos(ctx, seg.SegmentID); err != nil {
				t.Fatalf("segment %d accepted by the first pass but not re-read: %v", seg.SegmentID, err)
			}
		}
	})
}
