package pipeline

import (
	"encoding/base64"
	"unicode/utf8"

	"github.com/securelog/securelog/pkg/wire"
)

// parseEvent is wire.ParseEventMsg with a fast path for the shape
// producers send: one flat JSON object of known keys (exact spelling, each
// once) with string values free of escapes. Anything else — and every
// invalid event — takes wire.ParseEventMsg, so results and errors are
// exactly its own. The text payload aliases data (no copy).
func parseEvent(data []byte, maxPayload int) (wire.ParsedEvent, error) {
	if ev, ok := parseEventFast(data, maxPayload); ok {
		return ev, nil
	}
	return wire.ParseEventMsg(data, maxPayload)
}

// Keys of an event (wire.EventMsg), as bits.
const (
	keyType = 1 << iota
	keySeverity
	keyProducer
	keyPayload
	keyPayloadB64
	keyEncoding
)

// parseEventFast reports ok only for a valid event it decoded exactly as
// wire.ParseEventMsg would.
func parseEventFast(data []byte, maxPayload int) (ev wire.ParsedEvent, ok bool) {
	i := skipWS(data, 0)
	if i >= len(data) || data[i] != '{' {
		return ev, false
	}
	i = skipWS(data, i+1)
	var seen int
	var typ, sev, prod, payload, b64, enc []byte
	if i < len(data) && data[i] == '}' {
		return ev, false // no fields: invalid (no severity); the slow path says why
	}
	for {
		key, j, good := fastString(data, i)
		if !good {
			return ev, false
		}
		j = skipWS(data, j)
		if j >= len(data) || data[j] != ':' {
			return ev, false
		}
		val, k, good := fastString(data, skipWS(data, j+1))
		if !good {
			return ev, false
		}
		var bit int
		switch string(key) {
		case "type":
			bit, typ = keyType, val
		case "severity":
			bit, sev = keySeverity, val
		case "producer":
			bit, prod = keyProducer, val
		case "payload":
			bit, payload = keyPayload, val
		case "payload_b64":
			bit, b64 = keyPayloadB64, val
		case "payload_encoding":
			bit, enc = keyEncoding, val
		default:
			return ev, false // unknown or differently cased key
		}
		if seen&bit != 0 {
			return ev, false // repeated key
		}
		seen |= bit
		k = skipWS(data, k)
		if k >= len(data) {
			return ev, false
		}
		if data[k] == '}' {
			i = k + 1
			break
		}
		if data[k] != ',' {
			return ev, false
		}
		i = skipWS(data, k+1)
	}
	if skipWS(data, i) != len(data) {
		return ev, false
	}
	if seen&keyPayload != 0 && seen&keyPayloadB64 != 0 {
		return ev, false
	}
	s, err := wire.ParseSeverity(string(sev))
	if err != nil {
		return ev, false
	}
	ev = wire.ParsedEvent{Type: string(typ), Severity: s, Producer: string(prod), Payload: []byte{}}
	if seen&keyEncoding != 0 {
		e := string(enc)
		ev.Encoding = &e
	}
	switch {
	case seen&keyPayload != 0:
		ev.Payload = payload[:len(payload):len(payload)]
	case seen&keyPayloadB64 != 0:
		b, err := base64.StdEncoding.DecodeString(string(b64))
		if err != nil {
			return wire.ParsedEvent{}, false
		}
		ev.Payload = b
	}
	if maxPayload > 0 && len(ev.Payload) > maxPayload {
		return wire.ParsedEvent{}, false
	}
	return ev, true
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// fastString reads a JSON string at b[i] that needs no decoding: no
// escapes, no control characters, valid UTF-8. It returns the contents
// and the index after the closing quote.
func fastString(b []byte, i int) ([]byte, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, 0, false
	}
	start := i + 1
	ascii := true
	for j := start; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			s := b[start:j]
			if !ascii && !utf8.Valid(s) {
				return nil, 0, false
			}
			return s, j + 1, true
		case c == '\\' || c < 0x20:
			return nil, 0, false
		case c >= 0x80:
			ascii = false
		}
	}
	return nil, 0, false
}

// ackSeqs reads the stream and consumer sequences and the time the
// message was stored (Unix ns; 0 if unreadable) from a JetStream
// delivery's reply subject ($JS.ACK.<stream>.<consumer>.<delivered>.
// <stream seq>.<consumer seq>.<time>.<pending>, or the 12-token form with
// domain and account hash) without allocating; ok is false for any other
// shape (the caller then uses Msg.Metadata).
func ackSeqs(reply string) (stream, consumer uint64, stored int64, ok bool) {
	const prefix = "$JS.ACK."
	if len(reply) < len(prefix) || reply[:len(prefix)] != prefix {
		return 0, 0, 0, false
	}
	var tok [12]string
	n, start := 0, 0
	for i := 0; i <= len(reply); i++ {
		if i == len(reply) || reply[i] == '.' {
			if n == len(tok) {
				return 0, 0, 0, false
			}
			tok[n] = reply[start:i]
			n++
			start = i + 1
		}
	}
	var s, c, tm string
	switch {
	case n == 9:
		s, c, tm = tok[5], tok[6], tok[7]
	case n >= 11:
		s, c, tm = tok[7], tok[8], tok[9]
	default:
		return 0, 0, 0, false
	}
	stream, ok1 := parseUint(s)
	consumer, ok2 := parseUint(c)
	if !ok1 || !ok2 {
		return 0, 0, 0, false
	}
	if t, ok := parseUint(tm); ok && t <= 1<<62 {
		stored = int64(t)
	}
	return stream, consumer, stored, true
}

func parseUint(s string) (uint64, bool) {
	if s == "" || len(s) > 19 {
		return 0, false
	}
	var v uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	return v, true
}
