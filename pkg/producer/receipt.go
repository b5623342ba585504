package producer

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strconv"
	"sync"

	"github.com/securelog/securelog/pkg/wire"
)

// receiptItem is one item of a commit receipt. The msg id and the entry
// hash of the fast path point into the receipt's bytes (every client of a
// stream receives every receipt of the stream, so a string is made and a
// hash decoded only for the items this client awaits); the items are valid
// until releaseItems.
type receiptItem struct {
	msgID        []byte
	jsSeq, seqno uint64
	hash         []byte // decoded (slow path)
	hashHex      []byte // hex text, validated (fast path)
	errMsg       string
}

// entryHash returns the item's decoded entry hash (nil if it had none).
func (it *receiptItem) entryHash() wire.Hex {
	if it.hashHex != nil {
		h, _ := hex.DecodeString(string(it.hashHex)) // validated by the parser
		return h
	}
	return it.hash
}

// itemPool recycles the item slices of parsed receipts (releaseItems).
var itemPool = sync.Pool{New: func() any { return new([]receiptItem) }}

// releaseItems returns items, from parseReceipt, for reuse.
func releaseItems(items []receiptItem) {
	clear(items) // drop the references into the receipt
	items = items[:0]
	itemPool.Put(&items)
}

// parseReceipt decodes a wire.CommitReceipt. The ingester's receipts take a
// fast path; anything it does not handle exactly like encoding/json (escapes,
// non-ASCII, unknown or differently cased keys, nulls, non-integer numbers)
// goes through encoding/json, so the two never disagree. Pass the items to
// releaseItems when done.
func parseReceipt(data []byte) (string, []receiptItem, error) {
	if stream, items, ok := fastReceipt(data); ok {
		return stream, items, nil
	}
	var r wire.CommitReceipt
	if err := json.Unmarshal(data, &r); err != nil {
		return "", nil, err
	}
	items := make([]receiptItem, len(r.Items))
	for i, it := range r.Items {
		items[i] = receiptItem{msgID: []byte(it.MsgID), jsSeq: it.JSSeq, seqno: it.Seqno, hash: it.EntryHash, errMsg: it.Error}
	}
	return r.Stream, items, nil
}

// receiptScanner is a strict scanner for the subset of JSON the fast path
// accepts. Any surprise sets ok to false.
type receiptScanner struct {
	b  []byte
	i  int
	ok bool
}

func (s *receiptScanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// eat consumes c (after whitespace) and reports whether it was there.
func (s *receiptScanner) eat(c byte) bool {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// str reads a string of printable ASCII without escapes.
func (s *receiptScanner) str() []byte {
	if !s.eat('"') {
		s.ok = false
		return nil
	}
	start := s.i
	n := bytes.IndexByte(s.b[start:], '"')
	if n < 0 {
		s.ok = false
		return nil
	}
	v := s.b[start : start+n]
	for _, c := range v {
		if charClass[c]&plain == 0 {
			s.ok = false
			return nil
		}
	}
	s.i = start + n + 1
	return v
}

// Character classes of the fast path (charClass).
const (
	plain    = 1 << iota // in a string without escaping: ASCII ≥ 0x20, not '\\'
	hexDigit             // 0-9, a-f, A-F
)

// charClass classifies every byte for str and isHex.
var charClass = func() (t [256]byte) {
	for c := 0x20; c < 0x80; c++ {
		if c != '\\' {
			t[c] |= plain
		}
	}
	for _, c := range []byte("0123456789abcdefABCDEF") {
		t[c] |= hexDigit
	}
	return t
}()

// uint reads a non-negative JSON integer that fits a uint64.
func (s *receiptScanner) uint() uint64 {
	s.ws()
	start := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	d := s.b[start:s.i]
	if len(d) == 0 || (len(d) > 1 && d[0] == '0') {
		s.ok = false
		return 0
	}
	if s.i < len(s.b) {
		switch s.b[s.i] {
		case '.', 'e', 'E':
			s.ok = false
			return 0
		}
	}
	v, err := strconv.ParseUint(string(d), 10, 64)
	if err != nil {
		s.ok = false
	}
	return v
}

// fields reads the keys of an object, calling field after each key's
// colon, until the end or a failure.
func (s *receiptScanner) fields(field func(key []byte)) {
	if !s.eat('{') {
		s.ok = false
		return
	}
	if s.eat('}') {
		return
	}
	for s.ok {
		key := s.str()
		if !s.ok || !s.eat(':') {
			s.ok = false
			return
		}
		field(key)
		if !s.ok || s.eat('}') {
			return
		}
		if !s.eat(',') {
			s.ok = false
		}
	}
}

// item reads one receipt item into it.
func (s *receiptScanner) item(it *receiptItem) {
	s.fields(func(key []byte) {
		switch string(key) {
		case "msg_id":
			v := s.str()
			it.msgID = v[:len(v):len(v)]
		case "js_seq":
			it.jsSeq = s.uint()
		case "seqno":
			it.seqno = s.uint()
		case "entry_hash":
			h := s.str()
			if s.ok && !isHex(h) {
				s.ok = false
			}
			it.hashHex = h[:len(h):len(h)]
		case "error":
			it.errMsg = string(s.str())
		default:
			s.ok = false
		}
	})
}

// items reads an array of receipt items into dst[:0].
func (s *receiptScanner) items(dst []receiptItem) []receiptItem {
	dst = dst[:0]
	if !s.eat('[') {
		s.ok = false
		return dst
	}
	if s.eat(']') {
		return dst
	}
	for s.ok {
		dst = append(dst, receiptItem{})
		s.item(&dst[len(dst)-1])
		if !s.ok || s.eat(']') {
			return dst
		}
		if !s.eat(',') {
			s.ok = false
		}
	}
	return dst
}

func isHex(b []byte) bool {
	if len(b)%2 != 0 {
		return false
	}
	for _, c := range b {
		if charClass[c]&hexDigit == 0 {
			return false
		}
	}
	return true
}

func fastReceipt(data []byte) (string, []receiptItem, bool) {
	s := &receiptScanner{b: data, ok: true}
	var stream string
	// One '{' per item plus the receipt's own: room for all without regrowth.
	buf := itemPool.Get().(*[]receiptItem)
	items := slices.Grow((*buf)[:0], bytes.Count(data, []byte{'{'}))
	s.fields(func(key []byte) {
		switch string(key) {
		case "stream":
			stream = string(s.str())
		case "items":
			items = s.items(items)
		default:
			s.ok = false
		}
	})
	s.ws()
	if !s.ok || s.i != len(s.b) {
		releaseItems(items)
		return "", nil, false
	}
	return stream, items, true
}
