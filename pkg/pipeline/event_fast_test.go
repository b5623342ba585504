package pipeline

import (
	"bytes"
	"fmt"
	"reflect"
	"testing"

	"github.com/securelog/securelog/pkg/wire"
)

// eventSamples are events the fast path takes and ones it must leave to
// wire.ParseEventMsg.
var eventSamples = []string{
	`{"type":"t","severity":"info","producer":"p","payload":"hello"}`,
	` { "type" : "t" , "severity" : "notice" , "producer" : "p" , "payload_b64" : "aGk=" } `,
	`{"severity":"info"}`,
	`{"severity":"info","payload":"","payload_encoding":"json"}`,
	`{"type":"t","severity":"info","producer":"p","payload":"héllo ✓"}`,
	`{"type":"t","severity":"info","producer":"p","payload":"a\"b"}`,
	`{"type":"t","severity":"info","producer":"p","payload":"a\u0041"}`,
	`{"Type":"t","severity":"info","producer":"p","payload":"x"}`,
	`{"type":"t","type":"u","severity":"info","producer":"p"}`,
	`{"type":"t","severity":"info","producer":"p","payload":"x","payload_b64":"eA=="}`,
	`{"type":"t","severity":"loud","producer":"p"}`,
	`{"type":"t","severity":"info","producer":"p","payload_b64":"not base64!"}`,
	`{"type":"t","severity":"info","producer":"p","payload":null}`,
	`{"type":1,"severity":"info"}`,
	`{"type":"t","severity":"info","extra":"x"}`,
	`{"type":"t","severity":"info"}x`,
	`{"type":"t","severity":"info",}`,
	`{}`,
	`[]`,
	``,
	`{"type":"t","severity":"info","producer":"p","payload":"` + "\xff\xfe" + `"}`,
	`{"type":"t","severity":"info","producer":"p","payload":"` + "tab\there" + `"}`,
	`{"type":"t","severity":"info","producer":"p","payload":"0123456789abcdef0123"}`,
}

// TestParseEventMatchesWire: parseEvent returns exactly what
// wire.ParseEventMsg returns, value and error, for every sample and with a
// payload limit that some samples exceed.
func TestParseEventMatchesWire(t *testing.T) {
	fast := 0
	for _, limit := range []int{0, 16} {
		for _, s := range eventSamples {
			got, gerr := parseEvent([]byte(s), limit)
			want, werr := wire.ParseEventMsg([]byte(s), limit)
			if fmt.Sprint(gerr) != fmt.Sprint(werr) {
				t.Errorf("%q (limit %d): error %v, want %v", s, limit, gerr, werr)
				continue
			}
			if !sameEvent(got, want) {
				t.Errorf("%q (limit %d): %+v, want %+v", s, limit, got, want)
			}
			if _, ok := parseEventFast([]byte(s), limit); ok {
				fast++
			}
		}
	}
	if fast < 8 {
		t.Fatalf("the fast path took only %d samples", fast)
	}
}

func sameEvent(a, b wire.ParsedEvent) bool {
	if (a.Encoding == nil) != (b.Encoding == nil) || (a.Encoding != nil && *a.Encoding != *b.Encoding) {
		return false
	}
	if !bytes.Equal(a.Payload, b.Payload) || (a.Payload == nil) != (b.Payload == nil) {
		return false
	}
	a.Encoding, b.Encoding, a.Payload, b.Payload = nil, nil, nil, nil
	return reflect.DeepEqual(a, b)
}

// FuzzParseEvent: on any input the fast path agrees with wire.ParseEventMsg.
func FuzzParseEvent(f *testing.F) {
	for _, s := range eventSamples {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, gerr := parseEvent(data, 64)
		want, werr := wire.ParseEventMsg(data, 64)
		if fmt.Sprint(gerr) != fmt.Sprint(werr) || !sameEvent(got, want) {
			t.Fatalf("%q: got %+v %v, want %+v %v", data, got, gerr, want, werr)
		}
	})
}

func TestAckSeqs(t *testing.T) {
	for _, tc := range []struct {
		reply string
		s, c  uint64
		ts    int64
		ok    bool
	}{
		{"$JS.ACK.SECURELOG_IN.securelog-ingester.1.42.7.1700000000000000000.0", 42, 7, 1700000000000000000, true},
		{"$JS.ACK.dom.ACCHASH.SECURELOG_IN.securelog-ingester.1.42.7.1700000000000000001.0.rand", 42, 7, 1700000000000000001, true},
		{"$JS.ACK.SECURELOG_IN.securelog-ingester.1.42.7.x.0", 42, 7, 0, true},
		{"$JS.ACK.SECURELOG_IN.c.1.x.7.1.0", 0, 0, 0, false},
		{"_INBOX.abc", 0, 0, 0, false},
		{"$JS.ACK.a.b.c", 0, 0, 0, false},
	} {
		s, c, ts, ok := ackSeqs(tc.reply)
		if s != tc.s || c != tc.c || ts != tc.ts || ok != tc.ok {
			t.Errorf("%q: %d %d %d %v, want %d %d %d %v", tc.reply, s, c, ts, ok, tc.s, tc.c, tc.ts, tc.ok)
		}
	}
}

func BenchmarkParseEvent(b *testing.B) {
	data := []byte(`{"type":"bench","severity":"info","producer":"bench","payload":"` + string(bytes.Repeat([]byte("a"), 256)) + `"}`)
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := parseEvent(data, 0); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("wire", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := wire.ParseEventMsg(data, 0); err != nil {
				b.Fatal(err)
			}
		}
	})
}
