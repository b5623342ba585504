package producer

import (
	"encoding/base64"
	"encoding/json"
	"unicode/utf8"

	"github.com/securelog/securelog/pkg/wire"
)

// appendJSONString appends s as encoding/json would: printable ASCII that
// needs no escaping verbatim, anything else through json.Marshal.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendJSONBytes appends b as a JSON string, as appendJSONString does
// for string(b).
func appendJSONBytes(dst, b []byte) []byte {
	for _, c := range b {
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return appendJSONString(dst, string(b))
		}
	}
	dst = append(dst, '"')
	dst = append(dst, b...)
	return append(dst, '"')
}

// marshalEventOf returns marshalEvent of wire.NewEventMsg(typ, sev,
// producer, payload) with PayloadEncoding enc, byte for byte, without
// copying the payload into a string first (one allocation per event).
func marshalEventOf(typ string, sev wire.Severity, producer string, payload []byte, enc *string) []byte {
	text := utf8.Valid(payload)
	n := 64 + len(typ) + len(producer) + 24 + base64.StdEncoding.EncodedLen(len(payload))
	if enc != nil {
		n += 24 + len(*enc)
	}
	b := make([]byte, 0, n)
	b = append(b, `{"type":`...)
	b = appendJSONString(b, typ)
	b = append(b, `,"severity":`...)
	b = appendJSONString(b, sev.String())
	b = append(b, `,"producer":`...)
	b = appendJSONString(b, producer)
	if text {
		b = append(b, `,"payload":`...)
		b = appendJSONBytes(b, payload)
	} else {
		// Base64 text needs no JSON escaping.
		b = append(b, `,"payload_b64":"`...)
		b = base64.StdEncoding.AppendEncode(b, payload)
		b = append(b, '"')
	}
	if enc != nil {
		b = append(b, `,"payload_encoding":`...)
		b = appendJSONString(b, *enc)
	}
	return append(b, '}')
}

// marshalEvent returns the same bytes as json.Marshal(m) without
// reflection (one event per publish).
func marshalEvent(m *wire.EventMsg) []byte {
	n := 64 + len(m.Type) + len(m.Severity) + len(m.Producer)
	for _, p := range []*string{m.Payload, m.PayloadB64, m.PayloadEncoding} {
		if p != nil {
			n += 24 + len(*p)
		}
	}
	b := make([]byte, 0, n)
	b = append(b, `{"type":`...)
	b = appendJSONString(b, m.Type)
	b = append(b, `,"severity":`...)
	b = appendJSONString(b, m.Severity)
	b = append(b, `,"producer":`...)
	b = appendJSONString(b, m.Producer)
	if m.Payload != nil {
		b = append(b, `,"payload":`...)
		b = appendJSONString(b, *m.Payload)
	}
	if m.PayloadB64 != nil {
		b = append(b, `,"payload_b64":`...)
		b = appendJSONString(b, *m.PayloadB64)
	}
	if m.PayloadEncoding != nil {
		b = append(b, `,"payload_encoding":`...)
		b = appendJSONString(b, *m.PayloadEncoding)
	}
	return append(b, '}')
}
