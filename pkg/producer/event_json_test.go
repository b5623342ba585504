package producer

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/securelog/securelog/pkg/wire"
)

func checkEventJSON(t *testing.T, m wire.EventMsg) {
	t.Helper()
	want, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if got := marshalEvent(&m); !bytes.Equal(got, want) {
		t.Fatalf("marshalEvent(%+v)\n got %s\nwant %s", m, got, want)
	}
}

func TestMarshalEvent(t *testing.T) {
	enc := "json"
	for _, tc := range []struct {
		name string
		m    wire.EventMsg
	}{
		{"text payload", wire.NewEventMsg("login", wire.Notice, "auth", []byte("user=alice"))},
		{"binary payload", wire.NewEventMsg("blob", wire.Info, "p", []byte{0xff, 0x00, 0x10})},
		{"empty payload", wire.NewEventMsg("", wire.Info, "", []byte{})},
		{"no payload", wire.EventMsg{Type: "t", Severity: "info", Producer: "p"}},
		{"encoding", func() wire.EventMsg {
			m := wire.NewEventMsg("t", wire.Info, "p", []byte(`{"a":1}`))
			m.PayloadEncoding = &enc
			return m
		}()},
		{"escapes", wire.NewEventMsg("a<b>&\"c\"", wire.Info, "tab\t\\ é \u2028", []byte("nul \x00 del \x7f </script>"))},
		{"invalid utf-8 in text fields", wire.EventMsg{Type: "\xff", Severity: "info", Producer: "x\xfe"}},
	} {
		t.Run(tc.name, func(t *testing.T) { checkEventJSON(t, tc.m) })
	}
}

func FuzzMarshalEvent(f *testing.F) {
	f.Add("login", "auth", []byte("user=alice"), "")
	f.Add("<t>", "\xff", []byte{0xff, 0}, "cbor")
	f.Add("a", "b", []byte("nul \x00 del \x7f </script> \u2028 é"), "")
	f.Fuzz(func(t *testing.T, typ, prod string, payload []byte, enc string) {
		m := wire.NewEventMsg(typ, wire.Warning, prod, payload)
		var e *string
		if enc != "" {
			m.PayloadEncoding, e = &enc, &enc
		}
		checkEventJSON(t, m)
		// The publish path encodes from the event's fields directly.
		if got, want := marshalEventOf(typ, wire.Warning, prod, payload, e), marshalEvent(&m); !bytes.Equal(got, want) {
			t.Fatalf("marshalEventOf\n got %s\nwant %s", got, want)
		}
	})
}
