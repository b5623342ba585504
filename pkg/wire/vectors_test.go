package wire_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"testing"

	"github.com/securelog/securelog/internal/vectors"
	"github.com/securelog/securelog/pkg/wire"
)

// checkEntryVector checks encoding, length, hash and decoding of one entry vector.
func checkEntryVector(t *testing.T, e vectors.Entry) {
	t.Helper()
	f := e.Fields.Wire(t)
	got := wire.EncodeEntry(f)
	if want := vectors.Hex(t, e.CBORHex); !bytes.Equal(got, want) {
		t.Fatalf("%s: encoding\n got %x\nwant %x", e.Name, got, want)
	}
	if len(got) != e.CBORLen {
		t.Errorf("%s: length %d, want %d", e.Name, len(got), e.CBORLen)
	}
	h := sha256.Sum256(got)
	if hex.EncodeToString(h[:]) != e.EntryHashHex {
		t.Errorf("%s: entry hash %x, want %s", e.Name, h, e.EntryHashHex)
	}
	dec, err := wire.DecodeEntry(got)
	if err != nil {
		t.Fatalf("%s: DecodeEntry: %v", e.Name, err)
	}
	if !equalEntry(dec, f) {
		t.Errorf("%s: decoded %+v, want %+v", e.Name, dec, f)
	}
}

func equalEntry(a, b wire.EntryFields) bool {
	return a.Version == b.Version && a.StreamID == b.StreamID && a.SessionID == b.SessionID &&
		a.BootID == b.BootID && a.Seqno == b.Seqno && a.Timestamp == b.Timestamp &&
		a.EventType == b.EventType && a.Severity == b.Severity && a.Producer == b.Producer &&
		a.PayloadEncoding == b.PayloadEncoding && bytes.Equal(a.Payload, b.Payload) &&
		bytes.Equal(a.PrevEntryHash, b.PrevEntryHash)
}

func TestVectorEntries(t *testing.T) {
	v := vectors.Load(t)
	if len(v.Entries) < 8 {
		t.Fatalf("vectors.json has %d entries, want at least 8", len(v.Entries))
	}
	for _, e := range v.Entries {
		t.Run(e.Name, func(t *testing.T) { checkEntryVector(t, e) })
	}
}

func TestVectorSeverityVariants(t *testing.T) {
	v := vectors.Load(t)
	if len(v.SeverityVariants.Variants) != 8 {
		t.Fatalf("got %d severity variants, want 8", len(v.SeverityVariants.Variants))
	}
	var base vectors.Entry
	for _, e := range v.Entries {
		if e.Name == "reference_unit_sample_seqno0" {
			base = e
		}
	}
	if base.Name == "" {
		t.Fatal("base entry reference_unit_sample_seqno0 not found")
	}
	for i, sv := range v.SeverityVariants.Variants {
		f := base.Fields.Wire(t)
		f.Seqno = 1
		sev, err := wire.ParseSeverity(sv.Severity)
		if err != nil {
			t.Fatal(err)
		}
		if sev != wire.Severity(i) {
			t.Errorf("variant %d is %q, ordinal %d", i, sv.Severity, sev)
		}
		f.Severity = sev
		enc := wire.EncodeEntry(f)
		// The severity item follows the event type item (a short text here).
		if len(f.EventType) >= 24 {
			t.Fatalf("base event type %q too long for this check", f.EventType)
		}
		want := append(append([]byte{0x60 | byte(len(f.EventType))}, f.EventType...), vectors.Hex(t, sv.SeverityCBORHex)...)
		if !bytes.Contains(enc, want) {
			t.Errorf("%s: encoding %x lacks event type + severity bytes %x", sv.Severity, enc, want)
		}
		h := sha256.Sum256(enc)
		if hex.EncodeToString(h[:]) != sv.EntryHashHex {
			t.Errorf("%s: entry hash %x, want %s", sv.Severity, h, sv.EntryHashHex)
		}
		dec, err := wire.DecodeEntry(enc)
		if err != nil || dec.Severity != sev {
			t.Errorf("%s: decoded severity %v, err %v", sv.Severity, dec.Severity, err)
		}
	}
}

func TestVectorChainEntries(t *testing.T) {
	v := vectors.Load(t)
	if len(v.Chain.Entries) != 5 {
		t.Fatalf("chain has %d entries, want 5", len(v.Chain.Entries))
	}
	for _, e := range v.Chain.Entries {
		t.Run(e.Name, func(t *testing.T) { checkEntryVector(t, e) })
	}
}

func TestVectorEncryptedEntry(t *testing.T) {
	e := vectors.Load(t).AEAD.EncryptedEntry
	if e.Fields.PayloadEncoding != wire.AEADEncoding {
		t.Errorf("encrypted entry payload_encoding %q, want %q", e.Fields.PayloadEncoding, wire.AEADEncoding)
	}
	checkEntryVector(t, e)
}

func TestVectorCheckpoints(t *testing.T) {
	v := vectors.Load(t)
	sc := v.SegmentsAndCheckpoints
	if len(sc.Checkpoints) < 4 {
		t.Fatalf("got %d checkpoints, want at least 4", len(sc.Checkpoints))
	}
	for _, c := range sc.Checkpoints {
		t.Run(c.Name, func(t *testing.T) {
			f := c.Fields.Wire(t)
			got := wire.EncodeCheckpoint(f)
			if want := vectors.Hex(t, c.CBORHex); !bytes.Equal(got, want) {
				t.Fatalf("encoding\n got %x\nwant %x", got, want)
			}
			if len(got) != c.CBORLen {
				t.Errorf("length %d, want %d", len(got), c.CBORLen)
			}
			h := sha256.Sum256(got)
			if hex.EncodeToString(h[:]) != c.CheckpointHashHex {
				t.Errorf("checkpoint hash %x, want %s", h, c.CheckpointHashHex)
			}
			dec, err := wire.DecodeCheckpoint(got)
			if err != nil {
				t.Fatalf("DecodeCheckpoint: %v", err)
			}
			if !bytes.Equal(wire.EncodeCheckpoint(dec), got) || dec.BootID != f.BootID || dec.SessionID != f.SessionID {
				t.Errorf("decoded %+v, want %+v", dec, f)
			}
		})
	}
	// The named checkpoint hashes agree with the checkpoint list, and chain.
	byHash := map[string]vectors.Checkpoint{}
	for _, c := range sc.Checkpoints {
		byHash[c.CheckpointHashHex] = c
	}
	for name, h := range sc.CheckpointHashes {
		if _, ok := byHash[h]; !ok {
			t.Errorf("checkpoint_hashes[%s] = %s matches no checkpoint", name, h)
		}
	}
	seg3 := byHash[sc.CheckpointHashes["segment3"]]
	if seg3.Fields.PrevCheckpointHashHex != sc.CheckpointHashes["segment1"] {
		t.Errorf("segment3 prev_checkpoint_hash %s, want segment1 hash %s",
			seg3.Fields.PrevCheckpointHashHex, sc.CheckpointHashes["segment1"])
	}
}

func TestVectorWireExamples(t *testing.T) {
	v := vectors.Load(t)
	ex := v.WireExamples
	row := v.Chain.Entries[0].Row(t)
	want := func(key string) string {
		t.Helper()
		s, ok := ex[key]
		if !ok {
			t.Fatalf("wire_examples has no %q", key)
		}
		return s
	}
	marshal := func(x any) string {
		t.Helper()
		b, err := json.Marshal(x)
		if err != nil {
			t.Fatalf("json.Marshal(%#v): %v", x, err)
		}
		return string(b)
	}

	params := marshal([]wire.EntryRow{row})
	if w := want("insert_params_json"); params != w {
		t.Errorf("insert params\n got %s\nwant %s", params, w)
	}
	body := marshal(struct {
		Method string          `json:"method"`
		Params json.RawMessage `json:"params"`
	}{wire.MethodInsert, json.RawMessage(params)})
	if w := want("insert_http_body"); body != w {
		t.Errorf("insert body\n got %s\nwant %s", body, w)
	}
	line := marshal(map[string]wire.EntryRow{"InsertEntry": row})
	if w := want("jsonl_insert_entry_line"); line != w {
		t.Errorf("jsonl line\n got %s\nwant %s", line, w)
	}
	if got, w := marshal([]any{"default", uint64(1), uint64(10)}), want("range_params_json"); got != w {
		t.Errorf("range params %s, want %s", got, w)
	}
	if !wire.ZeroArgMethods[wire.MethodGlobalHead] {
		t.Errorf("%s is not listed as a zero-argument method", wire.MethodGlobalHead)
	}
	var noArgs []any
	if got, w := marshal(noArgs), want("global_head_params_json"); got != w {
		t.Errorf("global head params %s, want %s", got, w)
	}
	var none *uint64
	if got, w := marshal(none), want("global_head_result_json_empty_store"); got != w {
		t.Errorf("global head result %s, want %s", got, w)
	}
	keep := uint32(5)
	if got, w := marshal([]any{(*string)(nil), &keep, (*string)(nil)}), want("witness_gc_params_json"); got != w {
		t.Errorf("witness gc params %s, want %s", got, w)
	}
	if got, w := marshal(row.Seqno), want("insert_result_json"); got != w {
		t.Errorf("insert result %s, want %s", got, w)
	}

	// The examples read back into the same row.
	var back []wire.EntryRow
	if err := json.Unmarshal([]byte(want("insert_params_json")), &back); err != nil {
		t.Fatalf("unmarshal insert params: %v", err)
	}
	if len(back) != 1 || marshal(back[0]) != marshal(row) {
		t.Errorf("insert params round trip: %+v", back)
	}
	var op map[string]wire.EntryRow
	if err := json.Unmarshal([]byte(want("jsonl_insert_entry_line")), &op); err != nil {
		t.Fatalf("unmarshal jsonl line: %v", err)
	}
	if r, ok := op["InsertEntry"]; !ok || !bytes.Equal(wire.EncodeEntry(r.Fields()), wire.EncodeEntry(row.Fields())) {
		t.Errorf("jsonl line round trip: %+v", op)
	}
}
