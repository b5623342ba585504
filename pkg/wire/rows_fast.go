package wire

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"strconv"
	"unicode/utf8"
	"unsafe"
)

// Entry rows are most of the bytes of an export bundle and of range
// results, so EntryRowDecoder decodes them without encoding/json's
// reflection: its fast path accepts the shape MarshalJSON produces (all
// twelve members once, lowercase names, strings without escapes, byte
// strings as arrays of 0–255) and yields exactly what EntryRow.UnmarshalJSON
// would; anything else (escapes, unknown or missing members, null, a bad
// value) goes to encoding/json, so every input decodes, and fails, as
// before. FuzzEntryRowDecoder checks both paths agree.

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

// EntryRowDecoder decodes entry row objects in bulk: strings repeated from
// the previous row (stream, session, producer, ...) are shared, and the
// rest is copied into large blocks, so decoding allocates per block rather
// than per field. The zero value is ready; not safe for concurrent use.
type EntryRowDecoder struct {
	// ShareLinks lets a row's PrevEntryHash share the bytes of an earlier
	// row's EntryHash when their JSON texts are identical (as they are
	// along a chain), sparing the parse: rows must then not be modified.
	ShareLinks bool

	ar   arena
	last [7]string // interned strings of the previous row, by member
	// The text of the last entry_hash array parsed (a copy) and its bytes.
	hashText, hash []byte
}

// Decode parses one JSON object (the whole of obj) into row.
func (d *EntryRowDecoder) Decode(obj []byte, row *EntryRow) error {
	if d.fast(obj, row) {
		return nil
	}
	*row = EntryRow{}
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

// memberKeys are the member names as MarshalJSON writes them, in wire
// order, quoted.
var memberKeys = func() (k [12][]byte) {
	for i, n := range []string{"seqno", "stream_id", "session_id", "boot_id", "timestamp_rfc3339", "event_type",
		"severity", "producer", "payload_encoding", "payload", "prev_entry_hash", "entry_hash"} {
		k[i] = []byte(`"` + n + `"`)
		if memberIndex(k[i][1:len(k[i])-1]) != i {
			panic("wire: memberKeys out of order")
		}
	}
	return k
}()

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
func (d *EntryRowDecoder) intern(k int, b []byte) string {
	if d.last[k] != string(b) {
		d.last[k] = string(b)
	}
	return d.last[k]
}

// str copies b into the arena as a string.
func (d *EntryRowDecoder) str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	c := d.ar.alloc(len(b))
	copy(c, b)
	return unsafe.String(&c[0], len(c))
}

// fast is the fast path for a whole input: it reports false (row in any
// state) for anything it does not decode exactly as encoding/json would.
func (d *EntryRowDecoder) fast(b []byte, row *EntryRow) bool {
	end, ok := d.fastAt(b, 0, row)
	return ok && SkipJSONSpace(b, end) == len(b)
}

// Next decodes the object starting at b[i] and returns the index just
// past it: fast path, else encoding/json on the object's bytes.
func (d *EntryRowDecoder) Next(b []byte, i int, row *EntryRow) (int, error) {
	if end, ok := d.fastAt(b, i, row); ok {
		return end, nil
	}
	end := SkipJSONValue(b, i)
	if end < 0 {
		return 0, errors.New("unexpected end of JSON input")
	}
	*row = EntryRow{}
	return end, json.Unmarshal(b[i:end], row)
}

// fastAt is the fast path for the object at b[i]: the index just past it,
// or false.
func (d *EntryRowDecoder) fastAt(b []byte, i int, row *EntryRow) (int, bool) {
	var seen int
	next := mSeqno // the member expected next
	i = SkipJSONSpace(b, i)
	if i >= len(b) || b[i] != '{' {
		return 0, false
	}
	i = SkipJSONSpace(b, i+1)
	for {
		if i >= len(b) || b[i] != '"' {
			return 0, false
		}
		var m int
		if next < len(memberKeys) && bytes.HasPrefix(b[i:], memberKeys[next]) {
			// The member MarshalJSON writes next: no need to find the
			// name's end and look it up.
			m = next
			i += len(memberKeys[next]) - 1 // at the closing quote
		} else {
			j := i + 1
			for j < len(b) && b[j] != '"' && b[j] != '\\' {
				j++
			}
			if j >= len(b) || b[j] != '"' {
				return 0, false
			}
			m = memberIndex(b[i+1 : j])
			i = j
		}
		next = m + 1
		if m < 0 || seen&(1<<m) != 0 {
			return 0, false
		}
		seen |= 1 << m
		i = SkipJSONSpace(b, i+1)
		if i >= len(b) || b[i] != ':' {
			return 0, false
		}
		i = SkipJSONSpace(b, i+1)
		var ok bool
		var s []byte
		switch m {
		case mSeqno:
			row.Seqno, i, ok = ParseJSONUint(b, i)
		case mPayload:
			row.Payload, i, ok = d.byteArray(b, i)
		case mPrev:
			if d.ShareLinks && len(d.hashText) > 0 && bytes.HasPrefix(b[i:], d.hashText) {
				// byteArray's result is a function of the text up to the
				// first ']': the same text, the same bytes.
				row.PrevEntryHash, i, ok = d.hash, i+len(d.hashText), true
				break
			}
			row.PrevEntryHash, i, ok = d.byteArray(b, i)
		case mHash:
			start := i
			if row.EntryHash, i, ok = d.byteArray(b, i); ok && d.ShareLinks {
				d.hashText, d.hash = append(d.hashText[:0], b[start:i]...), row.EntryHash
			}
		default:
			if s, i, ok = ParseJSONString(b, i); !ok {
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
				sev, err := ParseSeverity(d.intern(6, s))
				if err != nil {
					return 0, false
				}
				row.Severity = sev
			}
		}
		if !ok {
			return 0, false
		}
		i = SkipJSONSpace(b, i)
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
		i = SkipJSONSpace(b, i+1)
	}
	return i, seen == mAll
}

// ParseJSONUint parses the JSON number at b[i] if it is a non-negative
// integer fitting uint64, as encoding/json would into a uint64 (false for
// anything else), and returns the index after it.
func ParseJSONUint(b []byte, i int) (uint64, int, bool) {
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

// ParseJSONString returns the bytes of the JSON string at b[i] and the
// index after it, if it has no escapes or control characters and is valid
// UTF-8 (encoding/json would replace invalid bytes); false otherwise.
func ParseJSONString(b []byte, i int) ([]byte, int, bool) {
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

// byteArray parses an array of integers 0–255 (Bytes) into the arena.
func (d *EntryRowDecoder) byteArray(b []byte, i int) ([]byte, int, bool) {
	if i >= len(b) || b[i] != '[' {
		return nil, i, false
	}
	end := bytes.IndexByte(b[i+1:], ']')
	if end < 0 {
		return nil, i, false
	}
	end += i + 1
	// One element per comma, plus one (an empty array reserves a byte).
	out := d.ar.alloc(bytes.Count(b[i+1:end], comma) + 1)[:0]
	if r, ok := canonicalBytes(b[i+1:end], out); ok {
		return r, end + 1, true
	}
	i = SkipJSONSpace(b, i+1)
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
		i = SkipJSONSpace(b, i)
		if i >= len(b) {
			return nil, i, false
		}
		switch b[i] {
		case ',':
			i = SkipJSONSpace(b, i+1)
		case ']':
			return out[:len(out):len(out)], i + 1, true
		default:
			return nil, i, false
		}
	}
}

var comma = []byte{','}

// canonicalBytes parses the inside of a byte array as the encoders write
// it ("1,22,255": no whitespace, no leading zeros) into out, which has
// room for every element; false for anything else (byteArray's general
// loop then decides).
func canonicalBytes(s, out []byte) ([]byte, bool) {
	if len(s) == 0 {
		return nil, false
	}
	j := 0
	for {
		// s[j] is the first digit of an element.
		c := s[j]
		if c < '0' || c > '9' {
			return nil, false
		}
		v := uint(c - '0')
		j++
		for k := 0; k < 2 && j < len(s) && s[j] >= '0' && s[j] <= '9'; k++ {
			if v == 0 {
				return nil, false // leading zero
			}
			v = v*10 + uint(s[j]-'0')
			j++
		}
		if v > 255 {
			return nil, false
		}
		out = append(out, byte(v))
		if j == len(s) {
			return out[:len(out):len(out)], true
		}
		if s[j] != ',' || j+1 == len(s) {
			return nil, false
		}
		j++
	}
}

// SkipJSONSpace returns the index of the first byte at or after i that is
// not JSON whitespace.
func SkipJSONSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\t' || b[i] == '\r') {
		i++
	}
	return i
}

// special marks the bytes SkipJSONValue stops at.
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

// SkipJSONValue returns the index just past the JSON object or array that
// starts at b[i], matching brackets outside strings (it does not validate
// the contents: decoding does), or -1 if b ends first.
func SkipJSONValue(b []byte, i int) int {
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

// plainJSON reports whether s is written by encoding/json (without HTML
// escaping) verbatim between quotes: printable ASCII without '"' or '\'.
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x80 || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// appendEntryRowFast appends the JSON of r exactly as MarshalJSON writes
// it, for rows whose text needs no escaping and whose severity is valid;
// false (dst unchanged) otherwise.
func appendEntryRowFast(dst []byte, r *EntryRow) ([]byte, bool) {
	if !r.Severity.Valid() {
		return dst, false
	}
	for _, s := range [...]string{r.StreamID, r.SessionID, r.BootID, r.Timestamp, r.EventType, r.Producer, r.PayloadEncoding} {
		if !plainJSON(s) {
			return dst, false
		}
	}
	str := func(b []byte, key, v string) []byte {
		b = append(append(b, key...), '"')
		return append(append(b, v...), '"')
	}
	dst = append(dst, `{"seqno":`...)
	if r.Seqno == 0 {
		dst = append(dst, "null"...)
	} else {
		dst = strconv.AppendUint(dst, r.Seqno, 10)
	}
	dst = str(dst, `,"stream_id":`, r.StreamID)
	dst = str(dst, `,"session_id":`, r.SessionID)
	dst = str(dst, `,"boot_id":`, r.BootID)
	dst = str(dst, `,"timestamp_rfc3339":`, r.Timestamp)
	dst = str(dst, `,"event_type":`, r.EventType)
	dst = str(dst, `,"severity":`, r.Severity.String())
	dst = str(dst, `,"producer":`, r.Producer)
	dst = str(dst, `,"payload_encoding":`, r.PayloadEncoding)
	dst = appendIntArray(append(dst, `,"payload":`...), r.Payload)
	dst = appendIntArray(append(dst, `,"prev_entry_hash":`...), r.PrevEntryHash)
	dst = appendIntArray(append(dst, `,"entry_hash":`...), r.EntryHash)
	return append(dst, '}'), true
}

// encodeEntryRows writes rows as a JSON array, byte-identical to
// marshalNoEscape(rows), without reflection for rows that need no escaping.
func encodeEntryRows(rows []EntryRow) ([]byte, error) {
	n := 2
	for i := range rows { // room for everything: one allocation
		n += EntryRowJSONBound(&rows[i])
	}
	dst := make([]byte, 0, n)
	dst = append(dst, '[')
	for i := range rows {
		if i > 0 {
			dst = append(dst, ',')
		}
		var ok bool
		if dst, ok = appendEntryRowFast(dst, &rows[i]); !ok {
			b, err := marshalNoEscape(rows[i])
			if err != nil {
				return nil, err
			}
			dst = append(dst, b...)
		}
	}
	return append(dst, ']'), nil
}

// decodeEntryRows is the fast path of DecodeResult for []EntryRow: false
// for anything the decoder's fast path does not take (then encoding/json
// decodes, and fails, as before).
func decodeEntryRows(raw []byte) ([]EntryRow, bool) {
	var d EntryRowDecoder
	i := SkipJSONSpace(raw, 0)
	if i >= len(raw) || raw[i] != '[' {
		return nil, false
	}
	rows := make([]EntryRow, 0, len(raw)/600+1)
	i = SkipJSONSpace(raw, i+1)
	if i < len(raw) && raw[i] == ']' {
		return rows, SkipJSONSpace(raw, i+1) == len(raw)
	}
	for {
		rows = append(rows, EntryRow{})
		end, ok := d.fastAt(raw, i, &rows[len(rows)-1])
		if !ok {
			return nil, false
		}
		if i = SkipJSONSpace(raw, end); i >= len(raw) {
			return nil, false
		}
		switch raw[i] {
		case ',':
			i = SkipJSONSpace(raw, i+1)
		case ']':
			return rows, SkipJSONSpace(raw, i+1) == len(raw)
		default:
			return nil, false
		}
	}
}
