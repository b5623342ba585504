package bundle

import (
	"encoding/json"
	"strings"

	"github.com/securelog/securelog/pkg/wire"
)

// Helpers of the fast paths (see wire.EntryRowDecoder).
var (
	skipWS    = wire.SkipJSONSpace
	scanValue = wire.SkipJSONValue
)

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
		key, j, ok := wire.ParseJSONString(b, i)
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
		if e.Seqno, i, ok = wire.ParseJSONUint(b, skipWS(b, i+1)); !ok {
			return nil, false
		}
		if i = skipWS(b, i); i >= len(b) || b[i] != ',' {
			return nil, false
		}
		if e.LeafIndex, i, ok = wire.ParseJSONUint(b, skipWS(b, i+1)); !ok {
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
