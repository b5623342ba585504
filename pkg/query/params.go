package query

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/securelog/securelog/pkg/wire"
)

// ParamError is a query parameter the caller got wrong; it names the
// parameter, the value and the reason (an HTTP API answers it with 400).
type ParamError struct {
	Param  string
	Value  string
	Reason string
}

// Error names the parameter, its value and the reason.
func (e *ParamError) Error() string {
	v := e.Value
	if len(v) > 64 {
		v = v[:64] + "…"
	}
	return fmt.Sprintf("bad query parameter %s=%q: %s", e.Param, v, e.Reason)
}

// Params are the URL parameters Parse accepts.
var Params = []string{"since", "until", "type", "producer", "severity", "after", "limit", "order"}

// Parse reads a filter for stream from URL parameters:
//
//	since, until  RFC 3339 timestamp, or a Go duration (e.g. 90m, 24h)
//	              meaning that long before now; since ≤ timestamp < until
//	type          exact event_type, or a prefix ending in '*' (auth.*)
//	producer      exact producer
//	severity      minimum severity: that one or more urgent (warning →
//	              emergency … warning)
//	after         the opaque cursor of a previous page ("next")
//	limit         page size, 1 or more (default 100; above 1000 → 1000)
//	order         newest (default) or oldest
//
// Any other parameter, a repeated one, or a value that does not parse is a
// *ParamError.
func Parse(stream string, v url.Values, now time.Time) (Filter, error) {
	f := Filter{Stream: stream}
	names := make([]string, 0, len(v))
	for k := range v {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if !known(k) {
			return Filter{}, &ParamError{Param: k, Value: v.Get(k), Reason: "unknown parameter (known: " + strings.Join(Params, ", ") + ")"}
		}
		if len(v[k]) > 1 {
			return Filter{}, &ParamError{Param: k, Value: v.Get(k), Reason: "given more than once"}
		}
	}
	var err error
	if s := v.Get("since"); s != "" {
		if f.Since, err = parseTime("since", s, now); err != nil {
			return Filter{}, err
		}
		f.HasSince = true
	}
	if s := v.Get("until"); s != "" {
		if f.Until, err = parseTime("until", s, now); err != nil {
			return Filter{}, err
		}
		f.HasUntil = true
	}
	if f.HasSince && f.HasUntil && f.Until <= f.Since {
		return Filter{}, &ParamError{Param: "until", Value: v.Get("until"), Reason: "must be later than since"}
	}
	if s := v.Get("type"); s != "" {
		if f.Type, f.TypePrefix, err = ParseType(s); err != nil {
			return Filter{}, err
		}
	}
	f.Producer = v.Get("producer")
	if s := v.Get("severity"); s != "" {
		sev, err := wire.ParseSeverity(s)
		if err != nil {
			return Filter{}, &ParamError{Param: "severity", Value: s, Reason: "want one of " + strings.Join(wire.SeverityNames(), ", ")}
		}
		f.MinSeverity, f.HasSeverity = sev, true
	}
	switch s := v.Get("order"); s {
	case "", "newest", "desc":
		f.Order = Newest
	case "oldest", "asc":
		f.Order = Oldest
	default:
		return Filter{}, &ParamError{Param: "order", Value: s, Reason: "want newest or oldest"}
	}
	f.Limit = DefaultLimit
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return Filter{}, &ParamError{Param: "limit", Value: s, Reason: "want a whole number of 1 or more"}
		}
		f.Limit = min(n, MaxLimit)
	}
	if s := v.Get("after"); s != "" {
		p, err := DecodeCursor(s, f)
		if err != nil {
			return Filter{}, err
		}
		f.After, f.HasAfter = p, true
	}
	return f, nil
}

func known(k string) bool {
	for _, p := range Params {
		if p == k {
			return true
		}
	}
	return false
}

// ParseType reads a type filter: an exact event_type, or a prefix followed
// by one trailing '*' ("*" alone matches every type). A '*' anywhere else
// is a *ParamError.
func ParseType(s string) (typ string, prefix bool, err error) {
	if p, ok := strings.CutSuffix(s, "*"); ok {
		typ, prefix = p, true
	} else {
		typ = s
	}
	if strings.Contains(typ, "*") {
		return "", false, &ParamError{Param: "type", Value: s, Reason: "'*' is only allowed once, at the end (a prefix match)"}
	}
	return typ, prefix, nil
}

// parseTime reads an RFC 3339 timestamp or a duration before now.
func parseTime(param, s string, now time.Time) (int64, error) {
	if t, err := wire.ParseTime(s); err == nil {
		return timeNanos(t), nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return 0, &ParamError{Param: param, Value: s, Reason: "a duration means that long before now and must not be negative"}
		}
		return timeNanos(now.Add(-d)), nil
	}
	return 0, &ParamError{Param: param, Value: s, Reason: "want an RFC 3339 timestamp (2026-01-02T15:04:05Z) or a duration before now (90m, 24h)"}
}

// Cursor layout (before base64url without padding): version 1, order,
// timestamp (be64, two's complement), seqno (be64), and the CRC-32 of the
// filter it continues (fingerprint), so a cursor cannot be replayed against
// another query.
const (
	cursorVersion = 1
	cursorLen     = 1 + 1 + 8 + 8 + 4
)

// fingerprint binds a cursor to the query it continues: stream, bounds,
// type, producer, severity and order (not limit, which may change between
// pages).
func (f Filter) fingerprint() uint32 {
	h := crc32.NewIEEE()
	fmt.Fprintf(h, "%q|%t|%d|%t|%d|%q|%t|%q|%t|%d|%d",
		f.Stream, f.HasSince, f.Since, f.HasUntil, f.Until, f.Type, f.TypePrefix, f.Producer, f.HasSeverity, f.MinSeverity, f.Order)
	return h.Sum32()
}

// Cursor returns the opaque token that continues the query after the
// entry at position p (the last entry of a page).
func (f Filter) Cursor(p Position) string {
	b := make([]byte, 0, cursorLen)
	b = append(b, cursorVersion, byte(f.Order))
	b = binary.BigEndian.AppendUint64(b, uint64(p.Time))
	b = binary.BigEndian.AppendUint64(b, p.Seqno)
	b = binary.BigEndian.AppendUint32(b, f.fingerprint())
	return base64.RawURLEncoding.EncodeToString(b)
}

// DecodeCursor reads a token made by Cursor for the same query (f's
// cursor fields are ignored). A token that is malformed, or that another
// query issued, is a *ParamError.
func DecodeCursor(token string, f Filter) (Position, error) {
	bad := func(reason string) error { return &ParamError{Param: "after", Value: token, Reason: reason} }
	if len(token) != base64.RawURLEncoding.EncodedLen(cursorLen) {
		return Position{}, bad("not a cursor (use the \"next\" value of a previous page)")
	}
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(b) != cursorLen {
		return Position{}, bad("not a cursor (use the \"next\" value of a previous page)")
	}
	if b[0] != cursorVersion {
		return Position{}, bad(fmt.Sprintf("unknown cursor version %d", b[0]))
	}
	if b[1] > byte(Oldest) {
		return Position{}, bad(fmt.Sprintf("unknown order %d in cursor", b[1]))
	}
	if Order(b[1]) != f.Order {
		return Position{}, bad("the cursor was issued for order=" + Order(b[1]).String() + "; repeat the query's parameters with it")
	}
	if binary.BigEndian.Uint32(b[18:]) != f.fingerprint() {
		return Position{}, bad("the cursor was issued for a different query; repeat the query's parameters with it")
	}
	return Position{Time: int64(binary.BigEndian.Uint64(b[2:])), Seqno: binary.BigEndian.Uint64(b[10:])}, nil
}
