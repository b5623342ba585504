package pipeline

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"time"
)

// parseMsgGetReply decodes the JetStream API's answer to a message get
// into r. The shape nats-server writes for a found message
// ({"type":…,"message":{"subject":…,"seq":…,"hdrs":…,"data":…,"time":…}},
// keys in that order, hdrs and data optional, no escapes) is read without
// reflection: encoding/json was a quarter of the catch-up reader's CPU.
// Anything else (an error answer, another key order, escapes) takes
// encoding/json.
func parseMsgGetReply(b []byte, r *msgGetReply) error {
	if parseMsgGetFast(b, r) {
		return nil
	}
	*r = msgGetReply{}
	return json.Unmarshal(b, r)
}

// parseMsgGetFast reports ok only when it decoded b exactly as
// encoding/json would.
func parseMsgGetFast(b []byte, r *msgGetReply) bool {
	i := 0
	lit := func(s string) bool {
		if bytes.HasPrefix(b[i:], []byte(s)) {
			i += len(s)
			return true
		}
		return false
	}
	str := func() ([]byte, bool) {
		s, j, ok := fastString(b, i)
		if ok {
			i = j
		}
		return s, ok
	}
	b64 := func() ([]byte, bool) {
		s, ok := str()
		if !ok {
			return nil, false
		}
		out := make([]byte, base64.StdEncoding.DecodedLen(len(s)))
		n, err := base64.StdEncoding.Decode(out, s)
		if err != nil {
			return nil, false
		}
		return out[:n], true
	}
	if !lit(`{"type":`) {
		return false
	}
	if _, ok := str(); !ok || !lit(`,"message":{"subject":`) {
		return false
	}
	subj, ok := str()
	if !ok || !lit(`,"seq":`) {
		return false
	}
	start := i
	var seq uint64
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	if seq, ok = parseUint(string(b[start:i])); !ok {
		return false
	}
	var hdrs, data []byte
	if lit(`,"hdrs":`) {
		if hdrs, ok = b64(); !ok {
			return false
		}
	}
	if lit(`,"data":`) {
		if data, ok = b64(); !ok {
			return false
		}
	}
	if !lit(`,"time":`) {
		return false
	}
	ts, ok := str()
	if !ok || !lit(`}}`) || i != len(b) {
		return false
	}
	var t time.Time
	if err := t.UnmarshalText(ts); err != nil {
		return false
	}
	r.Error = nil
	r.Message = &msgGetMessage{Subject: string(subj), Seq: seq, Time: t, Hdrs: hdrs, Data: data}
	return true
}
