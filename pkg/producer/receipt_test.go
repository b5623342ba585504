package producer

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/securelog/securelog/pkg/wire"
)

func sampleReceipt(t testing.TB) []byte {
	t.Helper()
	b, err := json.Marshal(wire.CommitReceipt{Stream: "orders", Items: []wire.CommitItem{
		{MsgID: "a1", JSSeq: 7, Seqno: 41, EntryHash: bytes.Repeat([]byte{0xab}, 32)},
		{MsgID: "b2", JSSeq: 8, Error: "stream 'orders' is deprecated"},
		{MsgID: "c3", JSSeq: 18446744073709551615, Seqno: 1, EntryHash: []byte{}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sameAsJSON checks that parseReceipt agrees with encoding/json on data and
// reports whether the fast path took it.
func sameAsJSON(t *testing.T, data []byte) bool {
	t.Helper()
	var want wire.CommitReceipt
	wantErr := json.Unmarshal(data, &want)
	stream, items, fast := fastReceipt(data)
	if fast && wantErr != nil {
		t.Fatalf("fast path accepted %q, encoding/json rejects it: %v", data, wantErr)
	}
	if !fast {
		var err error
		stream, items, err = parseReceipt(data)
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("parseReceipt(%q) error %v, encoding/json %v", data, err, wantErr)
		}
	}
	if wantErr != nil {
		return fast
	}
	if stream != want.Stream || len(items) != len(want.Items) {
		t.Fatalf("parseReceipt(%q) = %q with %d items, want %q with %d", data, stream, len(items), want.Stream, len(want.Items))
	}
	for i, w := range want.Items {
		g := items[i]
		if string(g.msgID) != w.MsgID || g.jsSeq != w.JSSeq || g.seqno != w.Seqno || g.errMsg != w.Error || !bytes.Equal(g.entryHash(), w.EntryHash) {
			t.Fatalf("item %d of %q = %+v (hash %x), want %+v", i, data, g, g.entryHash(), w)
		}
	}
	return fast
}

func TestParseReceipt(t *testing.T) {
	for _, tc := range []struct {
		name string
		data string
		fast bool // the fast path must take it
	}{
		{"ingester receipt", string(sampleReceipt(t)), true},
		{"whitespace", " {\n\"stream\" : \"s\", \"items\" : [ { \"msg_id\" : \"x\" , \"seqno\" : 3 } ] }\t", true},
		{"empty items", `{"stream":"s","items":[]}`, true},
		{"duplicate key, last wins", `{"stream":"a","stream":"b","items":[{"seqno":1,"seqno":2}]}`, true},
		{"odd hex", `{"stream":"s","items":[{"entry_hash":"abc"}]}`, false},
		{"bad hex", `{"stream":"s","items":[{"entry_hash":"zz"}]}`, false},
		{"escape", `{"stream":"s\u0041","items":[]}`, false},
		{"non-ASCII", `{"stream":"é","items":[]}`, false},
		{"other case key", `{"Stream":"s","items":[]}`, false},
		{"unknown key", `{"stream":"s","items":[],"x":1}`, false},
		{"null items", `{"stream":"s","items":null}`, false},
		{"float", `{"stream":"s","items":[{"seqno":1.0}]}`, false},
		{"exponent", `{"stream":"s","items":[{"seqno":1e3}]}`, false},
		{"negative", `{"stream":"s","items":[{"seqno":-1}]}`, false},
		{"leading zero", `{"stream":"s","items":[{"seqno":01}]}`, false},
		{"overflow", `{"stream":"s","items":[{"seqno":18446744073709551616}]}`, false},
		{"trailing data", `{"stream":"s","items":[]} x`, false},
		{"truncated", `{"stream":"s","items":[{"msg_id":"a"}`, false},
		{"not an object", `[1]`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if fast := sameAsJSON(t, []byte(tc.data)); fast != tc.fast {
				t.Errorf("fast path took it: %v, want %v", fast, tc.fast)
			}
		})
	}
}

func FuzzParseReceipt(f *testing.F) {
	f.Add(sampleReceipt(f))
	f.Add([]byte(`{"stream":"s","items":[{"msg_id":"x","seqno":3,"entry_hash":"00ff"}]}`))
	f.Add([]byte(`{"stream":"s","items":[{"seqno":1e3}]}`))
	f.Add([]byte(`{"items":[],"stream":"\u00e9"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		sameAsJSON(t, data)
	})
}

func BenchmarkParseReceipt(b *testing.B) {
	items := make([]wire.CommitItem, 500)
	for i := range items {
		items[i] = wire.CommitItem{MsgID: NewMsgID(), JSSeq: uint64(1000 + i), Seqno: uint64(5000 + i), EntryHash: bytes.Repeat([]byte{byte(i)}, 32)}
	}
	data, err := json.Marshal(wire.CommitReceipt{Stream: "bench", Items: items})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, items, err := parseReceipt(data)
			if err != nil {
				b.Fatal(err)
			}
			releaseItems(items)
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		for b.Loop() {
			var r wire.CommitReceipt
			if err := json.Unmarshal(data, &r); err != nil {
				b.Fatal(err)
			}
		}
	})
}
