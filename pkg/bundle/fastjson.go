package bundle

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/securelog/securelog/pkg/wire"
)

// The entries of a bundle are most of its bytes, so they are decoded
// without encoding/json's reflection: entryDecoder's fast path accepts the
// shape Write produces (all twelve members once, lowercase names, strings
// without escapes, byte strings as arrays of 0–255) and yields exactly
// what wire.EntryRow.UnmarshalJSON would; anything else (escapes, unknown
// or missing members, null, a bad value) goes to encoding/json, so every
// input decodes, and fails, as before. FuzzEntryDecoder checks both paths
// agree.

// arena hands out byte ranges of large blocks that are never reused, so
// the rows' strings and byte slices made over them stay valid for as long
// as the rows are referenced, at one allocation per block instead of
// several per entry.
type arena struct{ buf []byte }

const arenaBlock = 256 << 10

func (a *arena) alloc(n int) []byte {
	if cap(a.buf)-len(a.buf) < n {
		a.buf = make([]byte, 0, max(n, arenaBlock))
	}
	s := len(a.buf)
	a.buf = a.buf[:s+n]
	return a.buf[s : s+n : s+n]
}

// entryDecoder decodes entry objects; not safe for concurrent use.
type entryDecoder struct {
	ar   arena
	last [7]string // interned strings of the previous row, by member
}

// decode parses one JSON object into row.
func (d *entryDecoder) decode(obj []byte, row *wire.EntryRow) error {
	if d.fast(obj, row) {
		return nil
	}
	*row = wire.EntryRow{}
	return json.Unmarshal(obj, row)
}

// Members of an entry object, in wire order.
const (
	mSeqno = iota
	mStream
	mSession
	mBoot
	mTimestamp
	mEventType
	mSeverity
	mProducer
	mEncoding
	mPayload
	mPrev
	mHash
	mAll = 1<<12 - 1
)

func memberIndex(key []byte) int {
	switch string(key) { // no allocation: the compiler switches on the bytes
	case "seqno":
		return mSeqno
	case "stream_id":
		return mStream
	case "session_id":
		return mSession
	case "boot_id":
		return mBoot
	case "timestamp_rfc3339":
		return mTimestamp
	case "event_type":
		return mEventType
	case "severity":
		return mSeverity
	case "producer":
		return mProducer
	case "payload_encoding":
		return mEncoding
	case "payload":
		return mPayload
	case "prev_entry_hash":
		return mPrev
	case "entry_hash":
		return mHash
	}
	return -1
}

// intern returns the string of b, reusing the previous row's string of
// slot k when equal.
func (d *entryDecoder) intern(k int, b []byte) string {
	if d.last[k] != string(b) {
		d.last[k] = string(b)
	}
	return d.last[k]
}

// str copies b into the arena as a string.
func (d *entryDecoder) str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	c := d.ar.alloc(len(b))
	copy(c, b)
	return unsafe.String(&c[0], len(c))
}

// fast is the fast path for a whole input: it reports false (row in any
// state) for anything it does not decode exactly as encoding/json would.
func (d *entryDecoder) fast(b []byte, row *wire.EntryRow) bool {
	end, ok := d.fastAt(b, 0, row)
	return ok && skipWS(b, end) == len(b)
}

// next decodes the object starting at b[i] and returns the index just
// past it: fast path, else encoding/json on the object's bytes.
func (d *entryDecoder) next(b []byte, i int, row *wire.EntryRow) (int, error) {
	if end, ok := d.fastAt(b, i, row); ok {
		return end, nil
	}
	end := scanValue(b, i)
	if end < 0 {
		return 0, errors.New("unexpected end of JSON input")
	}
	*row = wire.EntryRow{}
	return end, json.Unmarshal(b[i:end], row)
}

// fastAt is the fast path for the object at b[i]: the index just past it,
// or false.
func (d *entryDecoder) fastAt(b []byte, i int, row *wire.EntryRow) (int, bool) {
	var seen int
	i = skipWS(b, i)
	if i >= len(b) || b[i] != '{' {
		return 0, false
	}
	i = skipWS(b, i+1)
	for {
		if i >= len(b) || b[i] != '"' {
			return 0, false
		}
		j := i + 1
		for j < len(b) && b[j] != '"' && b[j] != '\\' {
			j++
		}
		if j >= len(b) || b[j] != '"' {
			return 0, false
		}
		m := memberIndex(b[i+1 : j])
		if m < 0 || seen&(1<<m) != 0 {
			return 0, false
		}
		seen |= 1 << m
		i = skipWS(b, j+1)
		if i >= len(b) || b[i] != ':' {
			return 0, false
		}
		i = skipWS(b, i+1)
		var ok bool
		var s []byte
		switch m {
		case mSeqno:
			row.Seqno, i, ok = parseUint(b, i)
		case mPayload:
			row.Payload, i, ok = d.byteArray(b, i)
		case mPrev:
			row.PrevEntryHash, i, ok = d.byteArray(b, i)
		case mHash:
			row.EntryHash, i, ok = d.byteArray(b, i)
		default:
			if s, i, ok = parseString(b, i); !ok {
				return 0, false
			}
			switch m {
			case mStream:
				row.StreamID = d.intern(0, s)
			case mSession:
				row.SessionID = d.intern(1, s)
			case mBoot:
				row.BootID = d.intern(2, s)
			case mTimestamp:
				row.Timestamp = d.str(s)
			case mEventType:
				row.EventType = d.intern(3, s)
			case mProducer:
				row.Producer = d.intern(4, s)
			case mEncoding:
				row.PayloadEncoding = d.intern(5, s)
			case mSeverity:
				sev, err := wire.ParseSeverity(d.intern(6, s))
				if err != nil {
					return 0, false
				}
				row.Severity = sev
			}
		}
		if !ok {
			return 0, false
		}
		i = skipWS(b, i)
		if i >= len(b) {
			return 0, false
		}
		if b[i] == '}' {
			i++
			break
		}
		if b[i] != ',' {
			return 0, false
		}
		i = skipWS(b, i+1)
	}
	return i, seen == mAll
}

// parseUint parses a JSON number that is a non-negative integer fitting
// uint64, as encoding/json would into a uint64.
func parseUint(b []byte, i int) (uint64, int, bool) {
	start := i
	var v uint64
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		d := uint64(b[i] - '0')
		if v > (1<<64-1-d)/10 {
			return 0, i, false
		}
		v = v*10 + d
		i++
	}
	n := i - start
	if n == 0 || (n > 1 && b[start] == '0') {
		return 0, i, false
	}
	if i < len(b) && (b[i] == '.' || b[i] == 'e' || b[i] == 'E') {
		return 0, i, false
	}
	return v, i, true
}

// parseString returns the bytes of a JSON string without escapes or
// control characters, in valid UTF-8 (encoding/json would replace invalid
// bytes).
func parseString(b []byte, i int) ([]byte, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, i, false
	}
	j := i + 1
	ascii := true
	for ; j < len(b); j++ {
		c := b[j]
		if c == '"' {
			break
		}
		if c == '\\' || c < 0x20 {
			return nil, j, false
		}
		if c >= 0x80 {
			ascii = false
		}
	}
	if j >= len(b) {
		return nil, j, false
	}
	s := b[i+1 : j]
	if !ascii && !utf8.Valid(s) {
		return nil, j, false
	}
	return s, j + 1, true
}

// byteArray parses an array of integers 0–255 (wire.Bytes) into the arena.
func (d *entryDecoder) byteArray(b []byte, i int) ([]byte, int, bool) {
	if i >= len(b) || b[i] != '[' {
		return nil, i, false
	}
	// Each element takes at least two bytes ("0," or "0]").
	end := i + 1
	for end < len(b) && b[end] != ']' {
		end++
	}
	out := d.ar.alloc((end-i)/2 + 1)[:0]
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == ']' {
		return out[:0:0], i + 1, true
	}
	for {
		start := i
		v := 0
		for i < len(b) && b[i] >= '0' && b[i] <= '9' && i-start < 3 {
			v = v*10 + int(b[i]-'0')
			i++
		}
		n := i - start
		if n == 0 || v > 255 || (n > 1 && b[start] == '0') || (i < len(b) && b[i] >= '0' && b[i] <= '9') {
			return nil, i, false
		}
		out = append(out, byte(v))
		i = skipWS(b, i)
		if i >= len(b) {
			return nil, i, false
		}
		switch b[i] {
		case ',':
			i = skipWS(b, i+1)
		case ']':
			return out[:len(out):len(out)], i + 1, true
		default:
			return nil, i, false
		}
	}
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\t' || b[i] == '\r') {
		i++
	}
	return i
}

// special marks the bytes scanValue stops at.
var special = func() (t [256]bool) {
	for _, c := range []byte(`{}[]"`) {
		t[c] = true
	}
	return t
}()

// hasSpecial reports whether any of the 8 bytes of w is one of {}[]"
// (SWAR: '[' and ']' become '{' and '}' with bit 0x20 set, and no other
// byte does).
func hasSpecial(w uint64) bool {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	zero := func(x uint64) uint64 { return (x - lo) &^ x & hi }
	u := w | 0x2020202020202020
	return zero(w^(lo*'"'))|zero(u^(lo*'{'))|zero(u^(lo*'}')) != 0
}

// scanValue returns the index just past the JSON object or array that
// starts at b[i], matching brackets outside strings (it does not validate
// the contents: decoding does), or -1 if b ends first.
func scanValue(b []byte, i int) int {
	depth := 0
	for i < len(b) {
		for i+8 <= len(b) && !hasSpecial(binary.LittleEndian.Uint64(b[i:])) {
			i += 8
		}
		for i < len(b) && !special[b[i]] {
			i++
		}
		if i >= len(b) {
			break
		}
		switch b[i] {
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return i + 1
			}
		case '"':
			i++
			for i < len(b) && b[i] != '"' {
				if b[i] == '\\' {
					i++
				}
				i++
			}
			if i >= len(b) {
				return -1
			}
		}
		i++
	}
	return -1
}

// parseSegmentFast is parseSegment's fast path for the shape Write
// produces: the membership array (most of a segment's bytes) is parsed
// without reflection and the rest of the object with encoding/json. It
// reports false for anything unusual (then parseSegment decodes all of it
// with encoding/json, as before).
func parseSegmentFast(raw []byte) (wire.SegmentRow, []wire.SegmentEntry, bool) {
	vs, ve, ok := entriesMember(raw)
	if !ok {
		return wire.SegmentRow{}, nil, false
	}
	members, ok := parsePairs(raw[vs:ve])
	if !ok {
		return wire.SegmentRow{}, nil, false
	}
	rest := make([]byte, 0, len(raw)-(ve-vs)+2)
	rest = append(append(append(rest, raw[:vs]...), "[]"...), raw[ve:]...)
	var row wire.SegmentRow
	if err := json.Unmarshal(rest, &row); err != nil {
		return wire.SegmentRow{}, nil, false
	}
	return row, members, true
}

// entriesMember returns where the value of the object's one member named
// "entries" starts and ends; false if there is none, more than one (in any
// letter case, as encoding/json matches names), or a name has escapes.
func entriesMember(b []byte) (start, end int, ok bool) {
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return 0, 0, false
	}
	i = skipWS(b, i+1)
	found := false
	for i < len(b) && b[i] != '}' {
		key, j, ok := parseString(b, i)
		if !ok {
			return 0, 0, false
		}
		i = skipWS(b, j)
		if i >= len(b) || b[i] != ':' {
			return 0, 0, false
		}
		i = skipWS(b, i+1)
		vs := i
		switch {
		case i >= len(b):
			return 0, 0, false
		case b[i] == '{' || b[i] == '[':
			if i = scanValue(b, i); i < 0 {
				return 0, 0, false
			}
		case b[i] == '"':
			for i++; i < len(b) && b[i] != '"'; i++ {
				if b[i] == '\\' {
					i++
				}
			}
			if i >= len(b) {
				return 0, 0, false
			}
			i++
		default:
			for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ' ' && b[i] != '\n' && b[i] != '\t' && b[i] != '\r' {
				i++
			}
		}
		if strings.EqualFold(string(key), "entries") {
			if found || string(key) != "entries" {
				return 0, 0, false
			}
			found, start, end = true, vs, i
		}
		i = skipWS(b, i)
		if i < len(b) && b[i] == ',' {
			i = skipWS(b, i+1)
		}
	}
	return start, end, found
}

// parsePairs parses [[seqno, leaf_index], ...] of non-negative integers.
func parsePairs(b []byte) ([]wire.SegmentEntry, bool) {
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '[' {
		return nil, false
	}
	out := make([]wire.SegmentEntry, 0, len(b)/8)
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == ']' {
		return out, skipWS(b, i+1) == len(b)
	}
	for {
		var e wire.SegmentEntry
		var ok bool
		if i >= len(b) || b[i] != '[' {
			return nil, false
		}
		if e.Seqno, i, ok = parseUint(b, skipWS(b, i+1)); !ok {
			return nil, false
		}
		if i = skipWS(b, i); i >= len(b) || b[i] != ',' {
			return nil, false
		}
		if e.LeafIndex, i, ok = parseUint(b, skipWS(b, i+1)); !ok {
			return nil, false
		}
		if i = skipWS(b, i); i >= len(b) || b[i] != ']' {
			return nil, false
		}
		out = append(out, e)
		if i = skipWS(b, i+1); i >= len(b) {
			return nil, false
		}
		switch b[i] {
		case ',':
			i = skipWS(b, i+1)
		case ']':
			return out, skipWS(b, i+1) == len(b)
		default:
			return nil, false
		}
	}
}
