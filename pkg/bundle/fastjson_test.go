package bundle

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/securelog/securelog/pkg/wire"
)

const fastEntry = `{"seqno":7,"stream_id":"s","session_id":"a","boot_id":"b","timestamp_rfc3339":"2026-04-10T00:00:00.000001Z","event_type":"e","severity":"info","producer":"p","payload_encoding":"cbor","payload":[1,0,255],"prev_entry_hash":[0,1],"entry_hash":[]}`

// TestEntryDecoderPaths: what the fast path takes it decodes exactly as
// encoding/json does, and everything else falls back (same result, same
// error).
func TestEntryDecoderPaths(t *testing.T) {
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
			var d entryDecoder
			var fast wire.EntryRow
			if got := d.fast([]byte(tt.in), &fast); got != tt.fast {
				t.Fatalf("fast path taken = %v, want %v", got, tt.fast)
			}
			var want wire.EntryRow
			werr := json.Unmarshal([]byte(tt.in), &want)
			var got wire.EntryRow
			gerr := d.decode([]byte(tt.in), &got)
			if (werr == nil) != (gerr == nil) || (werr != nil && werr.Error() != gerr.Error()) {
				t.Fatalf("decode error %v, encoding/json %v", gerr, werr)
			}
			if werr == nil && !reflect.DeepEqual(got, want) {
				t.Fatalf("decoded %+v, encoding/json %+v", got, want)
			}
		})
	}
}

// FuzzEntryDecoder: whenever the fast path accepts an input, encoding/json
// accepts it too and decodes the same row.
func FuzzEntryDecoder(f *testing.F) {
	f.Add(fastEntry)
	f.Add(strings.Replace(fastEntry, `"seqno":7`, `"seqno":0`, 1))
	f.Add(`{}`)
	f.Fuzz(func(t *testing.T, s string) {
		var d entryDecoder
		var fast wire.EntryRow
		if !d.fast([]byte(s), &fast) {
			return
		}
		var want wire.EntryRow
		if err := json.Unmarshal([]byte(s), &want); err != nil {
			t.Fatalf("fast path accepted %q, encoding/json: %v", s, err)
		}
		if !reflect.DeepEqual(fast, want) {
			t.Fatalf("%q: fast %+v, encoding/json %+v", s, fast, want)
		}
	})
}

const fastSegment = `{"segment_id":3,"stream_id":"s","seq_start":1,"seq_end":2,"merkle_root":[1],"last_entry_hash":[2],"prev_checkpoint_hash":[3],"closed_at_rfc3339":"t","signature":null,"signer_identity":"x\"y","entries":[[1,0],[2,1]]}`

// FuzzSegmentFast: whenever parseSegmentFast accepts an input, encoding/json
// decodes the same row and membership.
func FuzzSegmentFast(f *testing.F) {
	f.Add(fastSegment)
	f.Add(strings.Replace(fastSegment, `"entries"`, `"Entries"`, 1))
	f.Add(strings.Replace(fastSegment, `[[1,0],[2,1]]`, `[ [1 , 0] ,[2,1] ]`, 1))
	f.Fuzz(func(t *testing.T, s string) {
		row, members, ok := parseSegmentFast([]byte(s))
		if !ok {
			return
		}
		var want wire.SegmentRow
		var m segmentMembers
		if err := json.Unmarshal([]byte(s), &want); err != nil {
			t.Fatalf("fast path accepted %q, encoding/json: %v", s, err)
		}
		if err := json.Unmarshal([]byte(s), &m); err != nil || m.Entries == nil {
			t.Fatalf("fast path accepted %q, encoding/json membership: %v", s, err)
		}
		if !reflect.DeepEqual(row, want) || !reflect.DeepEqual(members, *m.Entries) {
			t.Fatalf("%q: fast %+v %v, encoding/json %+v %v", s, row, members, want, *m.Entries)
		}
	})
}

func TestSegmentFastPaths(t *testing.T) {
	if _, _, ok := parseSegmentFast([]byte(fastSegment)); !ok {
		t.Fatal("the fast path does not take the shape Write produces")
	}
	for _, in := range []string{
		strings.Replace(fastSegment, `"entries"`, `"Entries"`, 1),
		strings.Replace(fastSegment, `{`, `{"entries":[],`, 1),
		strings.Replace(fastSegment, `[[1,0],[2,1]]`, `null`, 1),
		strings.Replace(fastSegment, `[[1,0],[2,1]]`, `[[1]]`, 1),
		strings.Replace(fastSegment, `[[1,0],[2,1]]`, `[[1,0.5]]`, 1),
	} {
		if _, _, ok := parseSegmentFast([]byte(in)); ok {
			t.Errorf("fast path took %s", in)
		}
	}
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
