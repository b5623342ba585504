package wire

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

const fastEntry = `{"seqno":7,"stream_id":"s","session_id":"a","boot_id":"b","timestamp_rfc3339":"2026-04-10T00:00:00.000001Z","event_type":"e","severity":"info","producer":"p","payload_encoding":"cbor","payload":[1,0,255],"prev_entry_hash":[0,1],"entry_hash":[]}`

// TestEntryRowDecoderPaths: what the fast path takes it decodes exactly as
// encoding/json does, and everything else falls back (same result, same
// error).
func TestEntryRowDecoderPaths(t *testing.T) {
	tests := []struct {
		name string
		in   string
		fast bool
	}{
		{"as written", fastEntry, true},
		{"whitespace", strings.NewReplacer(`,`, " ,\n ", `:`, " : ", `[`, "[ ", `]`, " ]").Replace(fastEntry), true},
		{"utf-8 text", strings.Replace(fastEntry, `"p"`, `"prödücer"`, 1), true},
		{"escape", strings.Replace(fastEntry, `"p"`, `"p\n"`, 1), false},
		{"invalid utf-8", strings.Replace(fastEntry, `"p"`, "\"p\xff\"", 1), false},
		{"unknown member", strings.Replace(fastEntry, `{`, `{"x":1,`, 1), false},
		{"capitalised name", strings.Replace(fastEntry, `"seqno"`, `"Seqno"`, 1), false},
		{"duplicate member", strings.Replace(fastEntry, `{`, `{"seqno":8,`, 1), false},
		{"missing member", strings.Replace(fastEntry, `"seqno":7,`, ``, 1), false},
		{"null seqno", strings.Replace(fastEntry, `"seqno":7`, `"seqno":null`, 1), false},
		{"float seqno", strings.Replace(fastEntry, `"seqno":7`, `"seqno":7.0`, 1), false},
		{"negative seqno", strings.Replace(fastEntry, `"seqno":7`, `"seqno":-7`, 1), false},
		{"huge seqno", strings.Replace(fastEntry, `"seqno":7`, `"seqno":18446744073709551616`, 1), false},
		{"leading zero", strings.Replace(fastEntry, `[1,0,255]`, `[01]`, 1), false},
		{"byte too big", strings.Replace(fastEntry, `[1,0,255]`, `[256]`, 1), false},
		{"byte four digits", strings.Replace(fastEntry, `[1,0,255]`, `[1000]`, 1), false},
		{"null bytes", strings.Replace(fastEntry, `[1,0,255]`, `null`, 1), false},
		{"bad severity", strings.Replace(fastEntry, `"info"`, `"loud"`, 1), false},
		{"trailing comma", strings.Replace(fastEntry, `[1,0,255]`, `[1,]`, 1), false},
		{"trailing data", fastEntry + `x`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d EntryRowDecoder
			var fast EntryRow
			if got := d.fast([]byte(tt.in), &fast); got != tt.fast {
				t.Fatalf("fast path taken = %v, want %v", got, tt.fast)
			}
			var want EntryRow
			werr := json.Unmarshal([]byte(tt.in), &want)
			var got EntryRow
			gerr := d.Decode([]byte(tt.in), &got)
			if (werr == nil) != (gerr == nil) || (werr != nil && werr.Error() != gerr.Error()) {
				t.Fatalf("decode error %v, encoding/json %v", gerr, werr)
			}
			if werr == nil && !reflect.DeepEqual(got, want) {
				t.Fatalf("decoded %+v, encoding/json %+v", got, want)
			}
		})
	}
}

// FuzzEntryRowDecoder: whenever the fast path accepts an input, encoding/json
// accepts it too and decodes the same row.
func FuzzEntryRowDecoder(f *testing.F) {
	f.Add(fastEntry)
	f.Add(strings.Replace(fastEntry, `"seqno":7`, `"seqno":0`, 1))
	f.Add(`{}`)
	f.Fuzz(func(t *testing.T, s string) {
		var d EntryRowDecoder
		var fast EntryRow
		if !d.fast([]byte(s), &fast) {
			return
		}
		var want EntryRow
		if err := json.Unmarshal([]byte(s), &want); err != nil {
			t.Fatalf("fast path accepted %q, encoding/json: %v", s, err)
		}
		if !reflect.DeepEqual(fast, want) {
			t.Fatalf("%q: fast %+v, encoding/json %+v", s, fast, want)
		}
	})
}

func TestHasSpecial(t *testing.T) {
	for c := 0; c < 256; c++ {
		for pos := 0; pos < 8; pos++ {
			b := []byte("aaaaaaaa")
			b[pos] = byte(c)
			w := uint64(0)
			for k := 7; k >= 0; k-- {
				w = w<<8 | uint64(b[k])
			}
			if got, want := hasSpecial(w), special[c]; got != want {
				t.Fatalf("byte %#x at %d: hasSpecial %v, want %v", c, pos, got, want)
			}
		}
	}
}

// FuzzEntryRowsRPC: the RPC's fast encoding of []EntryRow is byte-identical
// to encoding/json's, and its fast decoding agrees with encoding/json.
func FuzzEntryRowsRPC(f *testing.F) {
	f.Add(uint64(7), "s", "t", "e", uint8(6), "p", "cbor", []byte{1, 2}, []byte{})
	f.Add(uint64(0), "s\"x", "t\n", "é", uint8(9), "<p>", "", []byte(nil), []byte{0})
	f.Fuzz(func(t *testing.T, seqno uint64, stream, ts, evType string, sev uint8, producer, enc string, payload, hash []byte) {
		rows := []EntryRow{
			{Seqno: seqno, StreamID: stream, SessionID: "sess", BootID: "boot", Timestamp: ts, EventType: evType,
				Severity: Severity(sev), Producer: producer, PayloadEncoding: enc, Payload: payload, PrevEntryHash: hash, EntryHash: hash},
			{Seqno: seqno + 1, StreamID: "default", Timestamp: "2026-01-01T00:00:00Z", Severity: Info, Payload: []byte{3}},
		}
		want, werr := marshalNoEscape(rows)
		got, gerr := EncodeResult(rows)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("encode errors differ: %v / %v", gerr, werr)
		}
		if werr != nil {
			return
		}
		if string(got) != string(want) {
			t.Fatalf("fast encoding\n%s\nencoding/json\n%s", got, want)
		}
		var wantRows []EntryRow
		werr = json.Unmarshal(want, &wantRows)
		gotRows, gerr := DecodeResult[[]EntryRow]("secure-log-range", want)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("decode errors differ: %v / %v", gerr, werr)
		}
		if werr == nil && !reflect.DeepEqual(gotRows, wantRows) {
			t.Fatalf("fast decoding %+v, encoding/json %+v", gotRows, wantRows)
		}
	})
}

// benchRows are 1,000 rows as the pipeline writes them (256-byte payloads).
func benchRows() []EntryRow {
	rows := make([]EntryRow, 1000)
	for i := range rows {
		p := make([]byte, 256)
		for j := range p {
			p[j] = byte(i*7 + j*13)
		}
		h := make([]byte, 32)
		for j := range h {
			h[j] = byte(i + j*31)
		}
		rows[i] = EntryRow{Seqno: uint64(i + 1), StreamID: "bench", SessionID: "0123456789abcdef", BootID: "fedcba9876543210",
			Timestamp: "2026-11-30T01:00:00.123456Z", EventType: "bench", Severity: Info, Producer: "bench", PayloadEncoding: "json",
			Payload: p, PrevEntryHash: h, EntryHash: h}
	}
	return rows
}

// BenchmarkEncodeEntryRows: the store RPC's range result (what the signer
// reads back for every segment it signs), per 1,000 rows.
func BenchmarkEncodeEntryRows(b *testing.B) {
	rows := benchRows()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := EncodeResult(rows); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeEntryRows: the remote store's side of the same result.
func BenchmarkDecodeEntryRows(b *testing.B) {
	raw, err := EncodeResult(benchRows())
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeResult[[]EntryRow]("secure-log-range", raw); err != nil {
			b.Fatal(err)
		}
	}
}

// TestByteArrayCanonicalPath: byte arrays as the encoders write them take
// the canonical loop, and whatever it accepts decodes as encoding/json
// does; everything else is left to the general loop (same results).
func TestByteArrayCanonicalPath(t *testing.T) {
	for _, in := range []string{"0", "1,22,255", "255,0,9", "00", "01", "256", "1000", "1,", ",1", "1,,2", "1 ,2", " 1", "1\n", "-1", "1.0", "2a"} {
		out := make([]byte, 0, len(in)+1)
		got, ok := canonicalBytes([]byte(in), out)
		var want []byte
		werr := json.Unmarshal([]byte("["+in+"]"), &want)
		canonical := !strings.ContainsAny(in, " \n") && werr == nil
		if ok != canonical {
			t.Errorf("%q: canonical path %v, want %v (encoding/json: %v)", in, ok, canonical, werr)
			continue
		}
		if ok && string(got) != string(want) {
			t.Errorf("%q: %v, encoding/json %v", in, got, want)
		}
		// The whole decoder agrees with encoding/json either way.
		row := strings.Replace(fastEntry, `[1,0,255]`, "["+in+"]", 1)
		var d EntryRowDecoder
		var fast, slow EntryRow
		gerr := d.Decode([]byte(row), &fast)
		serr := json.Unmarshal([]byte(row), &slow)
		if (gerr == nil) != (serr == nil) || (gerr == nil && !reflect.DeepEqual(fast, slow)) {
			t.Errorf("%q: decoder %+v %v, encoding/json %+v %v", in, fast.Payload, gerr, slow.Payload, serr)
		}
	}
}

// decodeSeq decodes the objects one after another with one decoder.
func decodeSeq(objs []string, share bool) ([]EntryRow, []error) {
	d := EntryRowDecoder{ShareLinks: share}
	rows, errs := make([]EntryRow, len(objs)), make([]error, len(objs))
	for i, o := range objs {
		errs[i] = d.Decode([]byte(o), &rows[i])
	}
	return rows, errs
}

// TestEntryRowDecoderShareLinks: with ShareLinks, a prev_entry_hash
// written exactly as the previous row's entry_hash shares its bytes, and
// every row decodes as without it (a different text, a tampered link, is
// parsed).
func TestEntryRowDecoderShareLinks(t *testing.T) {
	h1, h2 := `[1,2,3,255]`, `[9,8,7]`
	obj := func(prev, hash string) string {
		return strings.Replace(strings.Replace(fastEntry, `"prev_entry_hash":[0,1]`, `"prev_entry_hash":`+prev, 1), `"entry_hash":[]`, `"entry_hash":`+hash, 1)
	}
	objs := []string{obj(`[0]`, h1), obj(h1, h2), obj(`[9,8,6]`, h1), obj(`[1,2,3,255,4]`, h2), obj(h2, `[ 1]`), obj(`[ 1]`, h1), obj(h1+` `, h2)}
	want, werrs := decodeSeq(objs, false)
	got, gerrs := decodeSeq(objs, true)
	if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(gerrs, werrs) {
		t.Fatalf("shared %+v %v\nunshared %+v %v", got, gerrs, want, werrs)
	}
	shared := func(i int) bool { return &got[i].PrevEntryHash[0] == &got[i-1].EntryHash[0] }
	for i, want := range []bool{false, true, false, false, true, true, true} {
		if i > 0 && shared(i) != want {
			t.Errorf("row %d: shared %v, want %v", i, shared(i), want)
		}
	}
}

// FuzzEntryRowDecoderShareLinks: decoding a sequence of objects with
// ShareLinks gives the rows and errors it gives without.
func FuzzEntryRowDecoderShareLinks(f *testing.F) {
	f.Add(fastEntry, strings.Replace(fastEntry, `"prev_entry_hash":[0,1]`, `"prev_entry_hash":[]`, 1), fastEntry)
	f.Add(strings.Replace(fastEntry, `"entry_hash":[]`, `"entry_hash":[1,2]`, 1), strings.Replace(fastEntry, `"prev_entry_hash":[0,1]`, `"prev_entry_hash":[1,2]]`, 1), `{}`)
	f.Fuzz(func(t *testing.T, a, b, c string) {
		objs := []string{a, b, c, b}
		want, werrs := decodeSeq(objs, false)
		got, gerrs := decodeSeq(objs, true)
		if !reflect.DeepEqual(got, want) || fmt.Sprint(gerrs) != fmt.Sprint(werrs) {
			t.Fatalf("shared %+v %v\nunshared %+v %v", got, gerrs, want, werrs)
		}
	})
}
