package wire

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestParseEventMsg(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     string // payload, or "" with wantErr
		wantErr  bool
	}{
		{"text", `{"type":"t","severity":"info","producer":"p","payload":"héllo"}`, "héllo", false},
		{"b64", `{"type":"t","severity":"debug","producer":"p","payload_b64":"AAEC"}`, "\x00\x01\x02", false},
		{"empty payload", `{"type":"","severity":"error","producer":""}`, "", false},
		{"both", `{"severity":"info","payload":"a","payload_b64":"YQ=="}`, "", true},
		{"bad b64", `{"severity":"info","payload_b64":"!!"}`, "", true},
		{"bad severity", `{"severity":"INFO","payload":"a"}`, "", true},
		{"missing severity", `{"payload":"a"}`, "", true},
		{"not json", `nope`, "", true},
		{"array", `[1]`, "", true},
		{"too big", `{"severity":"info","payload":"12345678901"}`, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := ParseEventMsg([]byte(tc.in), 10)
			if tc.wantErr {
				var inv *InvalidError
				if !errors.As(err, &inv) {
					t.Fatalf("want *InvalidError, got %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(ev.Payload) != tc.want || ev.Payload == nil {
				t.Fatalf("payload %q, want %q", ev.Payload, tc.want)
			}
		})
	}
}

func TestNewEventMsgRoundTrip(t *testing.T) {
	for _, p := range [][]byte{[]byte("text"), {0xff, 0x00, 0x80}, {}} {
		b, err := json.Marshal(NewEventMsg("t", Warning, "p", p))
		if err != nil {
			t.Fatal(err)
		}
		ev, err := ParseEventMsg(b, 0)
		if err != nil {
			t.Fatal(err)
		}
		if string(ev.Payload) != string(p) || ev.Severity != Warning || ev.Type != "t" || ev.Producer != "p" {
			t.Fatalf("round trip of %x: %+v", p, ev)
		}
	}
}

func TestStreamOf(t *testing.T) {
	for _, tc := range []struct {
		kind, subject, want string
		ok                  bool
	}{
		{KindIn, "securelog.in.default", "default", true},
		{KindIn, "securelog.in.a.b", "", false},
		{KindIn, "securelog.in.", "", false},
		{KindCommitted, "securelog.in.x", "", false},
		{KindClose, "securelog.close.pay-ments_1", "pay-ments_1", true},
	} {
		got, ok := StreamOf(tc.kind, tc.subject)
		if got != tc.want || ok != tc.ok {
			t.Errorf("StreamOf(%q, %q) = %q, %v; want %q, %v", tc.kind, tc.subject, got, ok, tc.want, tc.ok)
		}
		if ok && SubjectFor(tc.kind, got) != tc.subject {
			t.Errorf("SubjectFor does not invert StreamOf for %q", tc.subject)
		}
	}
	for _, bad := range []string{"", "a.b", "a*", "a>", "a b", "a\x01"} {
		if CheckStreamToken(bad) == nil {
			t.Errorf("CheckStreamToken(%q) accepted", bad)
		}
	}
}

func TestErrorCode(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&EmptySegmentError{Stream: "s"}, "empty-segment"},
		{Invalidf("x"), "invalid"},
		{Storagef(errors.New("disk"), "y"), "storage"},
		{&ChainBrokenError{Seqno: 1}, "chain-broken"},
		{errors.New("other"), "error"},
	} {
		if got := ErrorCode(tc.err); got != tc.want {
			t.Errorf("ErrorCode(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

func FuzzParseEventMsg(f *testing.F) {
	f.Add([]byte(`{"type":"t","severity":"info","producer":"p","payload":"x"}`))
	f.Add([]byte(`{"severity":"debug","payload_b64":"AAEC","payload_encoding":"raw"}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := ParseEventMsg(data, 1<<16)
		if err != nil {
			return
		}
		if !ev.Severity.Valid() || ev.Payload == nil || len(ev.Payload) > 1<<16 {
			t.Fatalf("accepted an invalid event: %+v", ev)
		}
		b, err := json.Marshal(NewEventMsg(ev.Type, ev.Severity, ev.Producer, ev.Payload))
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseEventMsg(b, 1<<16)
		if err != nil || string(back.Payload) != string(ev.Payload) || back.Type != ev.Type {
			t.Fatalf("re-encoding changed the event: %v", err)
		}
	})
}

// TestParseEventMsgRejectsInvalidUTF8 reproduces issue 9 item 11: invalid
// UTF-8 in an event (in "payload" or any other string) was silently
// replaced by U+FFFD and stored; it is now rejected, so the ingester sends
// the event to the DLQ with the reason.
func TestParseEventMsgRejectsInvalidUTF8(t *testing.T) {
	for _, in := range []string{
		"{\"severity\":\"info\",\"payload\":\"a\xffb\"}",
		"{\"severity\":\"info\",\"type\":\"t\xc3\",\"payload\":\"ok\"}",
		"{\"severity\":\"info\",\"producer\":\"\xed\xa0\x80\"}", // a UTF-16 surrogate encoded in UTF-8
	} {
		_, err := ParseEventMsg([]byte(in), 0)
		var inv *InvalidError
		if !errors.As(err, &inv) || !strings.Contains(err.Error(), "UTF-8") {
			t.Errorf("ParseEventMsg(%q) = %v, want an invalid-input error naming UTF-8", in, err)
		}
	}
	// Escaped code points stay accepted.
	if ev, err := ParseEventMsg([]byte(`{"severity":"info","payload":"caf\u00e9 \u2713"}`), 0); err != nil || string(ev.Payload) != "café ✓" {
		t.Errorf("escaped text: %q %v", ev.Payload, err)
	}
}

// TestCheckStreamTokenUnicode reproduces issue 9 item 11's stream names:
// bidi-override, other format/control characters and Unicode spaces were
// accepted, so a stream could display as another one.
func TestCheckStreamTokenUnicode(t *testing.T) {
	for _, bad := range []string{"pay\u202Eyap", "a\u2066b", "a\u200Fb", "a\u0085b", "a\u00A0b", "a\u3000b", "a\u200Bb", "a\uFEFFb", strings.Repeat("s", 256)} {
		if err := CheckStreamToken(bad); err == nil {
			t.Errorf("CheckStreamToken(%q) accepted", bad)
		}
	}
	for _, good := range []string{"payments", "pay-ments_1", "zahlungen-ä", "支付", strings.Repeat("s", 255)} {
		if err := CheckStreamToken(good); err != nil {
			t.Errorf("CheckStreamToken(%q): %v", good, err)
		}
	}
}
