package wire

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/securelog/securelog/internal/vectors/vectordata"
)

// wireExamples returns vectors.json's wire_examples (embedded by
// internal/vectors/vectordata, which has no dependencies, so this in-package
// test can import it).
func wireExamples(t *testing.T) map[string]string {
	t.Helper()
	b := vectordata.JSON
	var v struct {
		WireExamples map[string]string `json:"wire_examples"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("parse vectors: %v", err)
	}
	if len(v.WireExamples) == 0 {
		t.Fatal("vectors.json has no wire_examples")
	}
	return v.WireExamples
}

func example(t *testing.T, ex map[string]string, key string) string {
	t.Helper()
	s, ok := ex[key]
	if !ok {
		t.Fatalf("wire_examples has no %q", key)
	}
	return s
}

func vectorRow(t *testing.T) EntryRow {
	t.Helper()
	h, err := hex.DecodeString("ea548635b6fef11d3c95ea7bef9ff267116256ecdb4b1c542bfe63b1250e95c2")
	if err != nil {
		t.Fatal(err)
	}
	return EntryRow{
		Seqno: 1, StreamID: "default", SessionID: "sess-1", BootID: "boot-1",
		Timestamp: "2026-04-10T00:00:01+00:00", EventType: "user.login", Severity: Info,
		Producer: "authd", PayloadEncoding: "cbor", Payload: []byte("alice"),
		PrevEntryHash: make([]byte, 32), EntryHash: h,
	}
}

func TestWireExamplesByteExact(t *testing.T) {
	ex := wireExamples(t)
	row := vectorRow(t)
	gc := uint32(5)
	mustParams := func(p Params) string {
		t.Helper()
		b, err := EncodeParams(p)
		if err != nil {
			t.Fatalf("EncodeParams(%T): %v", p, err)
		}
		return string(b)
	}
	insert := mustParams(InsertParams{Row: row})
	body, err := EncodeEnvelope(MethodInsert, json.RawMessage(insert))
	if err != nil {
		t.Fatal(err)
	}
	one, err := EncodeResult(uint64(1))
	if err != nil {
		t.Fatal(err)
	}
	none, err := EncodeOptResult(uint64(0), false)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ key, got string }{
		{"insert_params_json", insert},
		{"insert_http_body", string(body)},
		{"range_params_json", mustParams(RangeParams{Stream: "default", From: 1, To: 10})},
		{"global_head_params_json", mustParams(GlobalHeadParams{})},
		{"witness_gc_params_json", mustParams(WitnessGCParams{KeepLatest: &gc})},
		{"insert_result_json", string(one)},
		{"global_head_result_json_empty_store", string(none)},
	}
	for _, tt := range tests {
		if want := example(t, ex, tt.key); tt.got != want {
			t.Errorf("%s:\n got %s\nwant %s", tt.key, tt.got, want)
		}
	}

	// The server side decodes the vector back to the same typed params.
	p, err := DecodeParams(MethodInsert, json.RawMessage(example(t, ex, "insert_params_json")))
	if err != nil {
		t.Fatal(err)
	}
	if got := p.(*InsertParams).Row; !reflect.DeepEqual(got, row) {
		t.Errorf("decoded insert row = %+v, want %+v", got, row)
	}
	env, err := DecodeEnvelope([]byte(example(t, ex, "insert_http_body")))
	if err != nil {
		t.Fatal(err)
	}
	if env.Method != MethodInsert || string(env.Params) != insert {
		t.Errorf("envelope = %q %s", env.Method, env.Params)
	}
}

func TestSegmentInsertShape(t *testing.T) {
	b, err := EncodeParams(SegmentInsertParams{Row: SegmentRow{
		StreamID: "default", SeqStart: 1, SeqEnd: 3, MerkleRoot: []byte{1}, LastEntryHash: []byte{2},
		PrevCheckpointHash: []byte{3}, ClosedAt: "t",
	}, Entries: []SegmentEntry{{1, 0}, {2, 1}, {3, 2}}})
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"segment_id":null,"stream_id":"default","seq_start":1,"seq_end":3,"merkle_root":[1],` +
		`"last_entry_hash":[2],"prev_checkpoint_hash":[3],"closed_at_rfc3339":"t","signature":null,` +
		`"signer_identity":null},[[1,0],[2,1],[3,2]]]`
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
	empty, err := EncodeParams(SegmentInsertParams{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(string(empty), ",[]]") {
		t.Errorf("nil entries must encode as [], got %s", empty)
	}
}

// sampleParams returns one non-trivial Params value per method.
func sampleParams() []Params {
	s, k, o := "s1", uint32(3), "2026-01-01T00:00:00Z"
	signer := "id"
	return []Params{
		InitParams{Config: ":memory:"},
		InsertParams{Row: EntryRow{Seqno: 7, StreamID: "s", Severity: Debug, Payload: []byte{0, 255},
			PrevEntryHash: []byte{}, EntryHash: []byte{9}}},
		GlobalHeadParams{},
		GetParams{Seqno: 1<<64 - 1},
		RangeParams{Stream: "a", From: 5, To: 2},
		HeadParams{Stream: "h"},
		LastParams{Stream: "l"},
		SegmentInsertParams{Row: SegmentRow{SegmentID: 4, StreamID: "x", SeqStart: 1, SeqEnd: 2,
			MerkleRoot: []byte{1}, LastEntryHash: []byte{2}, PrevCheckpointHash: []byte{3},
			Signature: []byte{4}, SignerIdentity: &signer}, Entries: []SegmentEntry{{1, 0}, {2, 1}}},
		SegmentGetParams{ID: 3},
		SegmentsListParams{Stream: "x"},
		SegmentLastSeqnoParams{Stream: "x"},
		SegmentEntrySeqnosParams{ID: 8},
		SegmentForSeqnoParams{Seqno: 9},
		SegmentSetSignatureParams{ID: 2, Signature: []byte{1, 2, 3}, Signer: "k"},
		WitnessInsertParams{Row: WitnessRow{ID: 2, StreamID: "w", SegmentID: 1, ReceivedAt: o}},
		WitnessLatestParams{Stream: "w"},
		WitnessListParams{Stream: "w"},
		WitnessStreamIDsParams{},
		WitnessGCParams{Stream: &s, KeepLatest: &k, OlderThan: &o},
		StreamUpsertParams{Row: StreamRow{Name: "n", Tier: "public", CreatedAt: o, DeprecatedAt: &o}},
		StreamGetParams{Name: "n"},
		StreamListParams{},
		StreamSetTierParams{Name: "n", Tier: "protected"},
		StreamDeprecateParams{Name: "n", DeprecatedAt: o},
		SegmentReserveParams{Stream: "s"},
		SegmentReservationParams{Stream: "s"},
		RangePageParams{Stream: "x", From: 1, To: 9, MaxBytes: 4096},
		SegmentEntrySeqnosPageParams{ID: 8, FromLeaf: 256, MaxCount: 100},
		SegmentInsertTreeParams{Row: SegmentRow{SegmentID: 7, StreamID: "x", MerkleRoot: []byte{1}, LastEntryHash: []byte{2}, PrevCheckpointHash: []byte{3},
			ClosedAt: o, Signature: []byte{4}, SignerIdentity: &signer}, Entries: []SegmentEntry{{1, 0}, {2, 1}},
			Chunks: []TreeChunk{{Level: 0, Chunk: 0, Nodes: []byte{1, 2}}, {Level: 1, Chunk: 3, Nodes: []byte{255}}}},
		SegmentLeafParams{Seqno: 9},
		SegmentTreeChunkParams{ID: 3, Level: 2, Chunk: 5},
		SegmentTreeNodesParams{ID: 3, Nodes: []TreeNodeRef{{0, 7}, {1, 2}}},
	}
}

func TestParamsRoundTripEveryMethod(t *testing.T) {
	seen := map[string]bool{}
	for _, p := range sampleParams() {
		m := p.Method()
		t.Run(m, func(t *testing.T) {
			seen[m] = true
			raw, err := EncodeParams(p)
			if err != nil {
				t.Fatal(err)
			}
			if ZeroArgMethods[m] != (string(raw) == "null") {
				t.Errorf("params of %s = %s; zero-arg methods (and only they) send null", m, raw)
			}
			got, err := DecodeParams(m, raw)
			if err != nil {
				t.Fatal(err)
			}
			if v := reflect.ValueOf(got).Elem().Interface(); !reflect.DeepEqual(v, p) {
				t.Errorf("round trip:\n got %#v\nwant %#v", v, p)
			}
		})
	}
	for _, m := range Methods {
		if !seen[m] {
			t.Errorf("method %s has no Params sample", m)
		}
	}
	if len(newParams) != len(Methods) {
		t.Errorf("newParams has %d methods, want %d", len(newParams), len(Methods))
	}
}

func TestDecodeParamsErrors(t *testing.T) {
	tests := []struct {
		method, params, want string
	}{
		{MethodGet, `[]`, "want 1 argument(s), got 0"},
		{MethodGet, `[1,2]`, "want 1 argument(s), got 2"},
		{MethodGet, `null`, "got null"},
		{MethodGet, ``, "got null"},
		{MethodGet, `{"seqno":1}`, "want a JSON array of 1 argument(s)"},
		{MethodGet, `[-1]`, "argument 1"},
		{MethodGet, `[1.5]`, "argument 1"},
		{MethodGet, `["1"]`, "argument 1"},
		{MethodGet, `[null]`, "argument 1: null is not allowed"},
		{MethodRange, `["s",1]`, "want 3 argument(s), got 2"},
		{MethodRange, `["s",1,2,3]`, "want 3 argument(s), got 4"},
		{MethodInsert, `[null]`, "null is not allowed"},
		{MethodInsert, `[{"seqno":1,"severity":"loud"}]`, "argument 1"},
		{MethodSegmentInsert, `[{},null]`, "argument 2: null is not allowed"},
		{MethodSegmentInsert, `[{},[[1]]]`, "argument 2"},
		{MethodSegmentSetSignature, `[1,[256],"k"]`, "argument 2"},
		{MethodSegmentSetSignature, `[1,null,"k"]`, "argument 2: null is not allowed"},
		{MethodWitnessGC, `[null,-1,null]`, "argument 2"},
		{MethodWitnessGC, `[null,4294967296,null]`, "argument 2"},
		{MethodWitnessGC, `[null,null]`, "want 3 argument(s), got 2"},
		{MethodGlobalHead, `[1]`, "takes no arguments"},
		{MethodStreamList, `{}`, "takes no arguments"},
		{MethodInit, `[null]`, "null is not allowed"},
		{MethodGet, `[1]x`, "want a JSON array"},
	}
	for _, tt := range tests {
		_, err := DecodeParams(tt.method, json.RawMessage(tt.params))
		if err == nil {
			t.Errorf("DecodeParams(%s, %s) succeeded, want error containing %q", tt.method, tt.params, tt.want)
			continue
		}
		if !strings.HasPrefix(err.Error(), "decode params: "+tt.method+": ") || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("DecodeParams(%s, %s) = %q, want prefix \"decode params: \" and %q", tt.method, tt.params, err, tt.want)
		}
	}
	_, err := DecodeParams("secure-log-nope", NullJSON)
	var um *UnknownMethodError
	if !errors.As(err, &um) || err.Error() != `unknown method "secure-log-nope"` {
		t.Errorf("unknown method error = %v", err)
	}
}

func TestZeroArgAcceptsNullAndEmptyArray(t *testing.T) {
	for m := range ZeroArgMethods {
		for _, p := range []string{`null`, `[]`, ` [ ] `, ``} {
			if _, err := DecodeParams(m, json.RawMessage(p)); err != nil {
				t.Errorf("DecodeParams(%s, %q) = %v", m, p, err)
			}
		}
	}
	// Optional arguments accept null.
	p, err := DecodeParams(MethodWitnessGC, json.RawMessage(`[null,null,null]`))
	if err != nil {
		t.Fatal(err)
	}
	if g := p.(*WitnessGCParams); g.Stream != nil || g.KeepLatest != nil || g.OlderThan != nil {
		t.Errorf("got %+v, want all nil", g)
	}
}

func TestEnvelope(t *testing.T) {
	b, err := EncodeEnvelope(MethodStreamList, nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"method":"secure-log-stream-list","params":null}` {
		t.Errorf("got %s", b)
	}
	if _, err := EncodeEnvelope(MethodGet, json.RawMessage(`[1`)); err == nil {
		t.Error("invalid params JSON accepted")
	}
	good := []struct{ body, method, params string }{
		{`{"method":"secure-log-get","params":[1]}`, MethodGet, `[1]`},
		{`{"params":null,"method":"x","extra":1}`, "x", `null`},
		{`{"method":"secure-log-global-head"}`, MethodGlobalHead, `null`},
	}
	for _, g := range good {
		env, err := DecodeEnvelope([]byte(g.body))
		if err != nil {
			t.Errorf("DecodeEnvelope(%s): %v", g.body, err)
			continue
		}
		if env.Method != g.method || string(env.Params) != g.params {
			t.Errorf("DecodeEnvelope(%s) = %q %s", g.body, env.Method, env.Params)
		}
	}
	for _, bad := range []string{``, `{`, `[]`, `null`, `{"params":[]}`, `{"method":""}`, `{"method":1}`, `{"method":"a"} x`} {
		_, err := DecodeEnvelope([]byte(bad))
		if err == nil || !strings.HasPrefix(err.Error(), "malformed request envelope: ") {
			t.Errorf("DecodeEnvelope(%q) = %v, want malformed request envelope", bad, err)
		}
	}
}

func TestResults(t *testing.T) {
	var rows []EntryRow
	b, err := EncodeResult(rows)
	if err != nil || string(b) != "[]" {
		t.Errorf("nil list = %s, %v; want []", b, err)
	}
	if v, err := DecodeResult[uint64](MethodInsert, json.RawMessage("42")); err != nil || v != 42 {
		t.Errorf("DecodeResult = %d, %v", v, err)
	}
	if _, ok, err := DecodeOptResult[uint64](MethodHead, NullJSON); ok || err != nil {
		t.Errorf("DecodeOptResult(null) = %v, %v", ok, err)
	}
	if v, ok, err := DecodeOptResult[EntryRow](MethodGet, json.RawMessage(`{"seqno":3,"severity":"info"}`)); !ok || err != nil || v.Seqno != 3 {
		t.Errorf("DecodeOptResult(row) = %+v, %v, %v", v, ok, err)
	}
	if err := DecodeUnitResult(MethodStreamUpsert, NullJSON); err != nil {
		t.Error(err)
	}
	bad := []struct {
		name string
		err  error
	}{
		{"u64 null", func() error { _, err := DecodeResult[uint64](MethodInsert, NullJSON); return err }()},
		{"u64 string", func() error { _, err := DecodeResult[uint64](MethodInsert, json.RawMessage(`"1"`)); return err }()},
		{"list null", func() error { _, err := DecodeResult[[]string](MethodInsert, NullJSON); return err }()},
		{"opt garbage", func() error { _, _, err := DecodeOptResult[uint64](MethodInsert, json.RawMessage(`x`)); return err }()},
		{"unit not null", DecodeUnitResult(MethodInsert, json.RawMessage(`1`))},
	}
	for _, b := range bad {
		if b.err == nil || !strings.HasPrefix(b.err.Error(), "decode result of "+MethodInsert+": ") {
			t.Errorf("%s: err = %v, want \"decode result of %s: …\"", b.name, b.err, MethodInsert)
		}
	}
}

func FuzzDecodeEnvelope(f *testing.F) {
	f.Add([]byte(`{"method":"secure-log-get","params":[1]}`))
	f.Add([]byte(`{"method":"secure-log-global-head","params":null}`))
	f.Add([]byte(`{"method":"witness-log-gc","params":[null,5,null]}`))
	f.Add([]byte(`{"method":"secure-log-range","params":["default",1,10]}`))
	f.Add([]byte(`{`))
	f.Fuzz(func(t *testing.T, body []byte) {
		env, err := DecodeEnvelope(body)
		if err != nil {
			return
		}
		p, err := DecodeParams(env.Method, env.Params)
		if err != nil {
			return
		}
		// Whatever decodes re-encodes, and decodes again to the same value.
		raw, err := EncodeParams(p)
		if err != nil {
			t.Fatalf("re-encode %T: %v", p, err)
		}
		again, err := DecodeParams(env.Method, raw)
		if err != nil {
			t.Fatalf("decode of re-encoded %s: %v", raw, err)
		}
		if !reflect.DeepEqual(reflect.ValueOf(again).Elem().Interface(), reflect.ValueOf(p).Elem().Interface()) {
			t.Fatalf("round trip differs for %s", raw)
		}
	})
}
