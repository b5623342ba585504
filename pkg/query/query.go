// Package query is the pure logic of entry queries: the filter a caller
// asks for (stream, time range, event type exact or prefix, producer,
// minimum severity, order, limit), its parsing from URL parameters, the
// order entries are returned in, the opaque cursor that continues a query,
// and the JSON rendering of a payload. It does no I/O; stores evaluate a
// Filter with their indexes (store.EntryQuerier) or by scanning (Select).
//
// Order: entries are ordered by their position (Key): the timestamp in
// nanoseconds since the epoch, then the seqno. Newest first is descending
// position, oldest first ascending. The log stamps entries when it commits
// them, so this is commit order up to wall-clock steps.
package query

import (
	"cmp"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/securelog/securelog/pkg/wire"
)

// DefaultLimit is the page size when the caller names none.
const DefaultLimit = 100

// MaxLimit caps a page: a larger limit is lowered to it.
const MaxLimit = 1000

// Order is the direction of a query.
type Order uint8

// The two orders. The zero value is Newest.
const (
	// Newest returns the most recent entries first (descending Key).
	Newest Order = iota
	// Oldest returns the oldest entries first (ascending Key).
	Oldest
)

// String returns "newest" or "oldest".
func (o Order) String() string {
	if o == Oldest {
		return "oldest"
	}
	return "newest"
}

// Position is the sort key of an entry: timestamp (Unix nanoseconds, see
// TimeKey), then seqno.
type Position struct {
	Time  int64
	Seqno uint64
}

// Compare orders positions ascending: -1, 0 or +1.
func (p Position) Compare(q Position) int {
	if c := cmp.Compare(p.Time, q.Time); c != 0 {
		return c
	}
	return cmp.Compare(p.Seqno, q.Seqno)
}

// TimeKey returns the timestamp's Unix nanoseconds; a timestamp that does
// not parse as RFC 3339 (or lies outside the int64 range) sorts first
// (math.MinInt64).
func TimeKey(ts string) int64 {
	t, err := wire.ParseTime(ts)
	if err != nil {
		return math.MinInt64
	}
	return timeNanos(t)
}

// timeNanos is t's Unix nanoseconds, clamped to the int64 range.
func timeNanos(t time.Time) int64 {
	const maxSec = math.MaxInt64 / int64(time.Second)
	switch s := t.Unix(); {
	case s >= maxSec:
		return math.MaxInt64
	case s <= -maxSec:
		return math.MinInt64 + 1 // MinInt64 is kept for unparseable timestamps
	}
	return t.UnixNano()
}

// Key returns the entry's position.
func Key(row wire.EntryRow) Position { return Position{Time: TimeKey(row.Timestamp), Seqno: row.Seqno} }

// Filter is one page of an entry query. The zero value of each field means
// "no constraint" (Limit 0 means DefaultLimit).
type Filter struct {
	// Stream is the stream queried (required).
	Stream string
	// Since (inclusive) and Until (exclusive) bound the timestamp, in Unix
	// nanoseconds; HasSince/HasUntil say whether they are set.
	Since, Until       int64
	HasSince, HasUntil bool
	// Type is the event_type: exact, or with TypePrefix every type that
	// starts with it.
	Type       string
	TypePrefix bool
	// Producer is the exact producer.
	Producer string
	// MinSeverity keeps entries this urgent or more (lower ordinal);
	// HasSeverity says whether it is set.
	MinSeverity wire.Severity
	HasSeverity bool
	// Order is the direction; Limit the page size (0 → DefaultLimit, capped
	// at MaxLimit by Parse).
	Order Order
	Limit int
	// After, when HasAfter, continues a query: only positions strictly
	// after it in Order are returned.
	After    Position
	HasAfter bool
}

// PageSize is the number of rows a page holds at most.
func (f Filter) PageSize() int {
	if f.Limit <= 0 {
		return DefaultLimit
	}
	return f.Limit
}

// MatchFields reports whether the entry's fields pass the filter's type,
// producer and severity constraints (not time, stream or cursor).
func (f Filter) MatchFields(row wire.EntryRow) bool {
	if f.Type != "" || f.TypePrefix {
		if f.TypePrefix {
			if !strings.HasPrefix(row.EventType, f.Type) {
				return false
			}
		} else if row.EventType != f.Type {
			return false
		}
	}
	if f.Producer != "" && row.Producer != f.Producer {
		return false
	}
	if f.HasSeverity && row.Severity > f.MinSeverity {
		return false
	}
	return true
}

// InRange reports whether a position passes the time bounds and the cursor.
func (f Filter) InRange(p Position) bool {
	if f.HasSince && p.Time < f.Since {
		return false
	}
	if f.HasUntil && p.Time >= f.Until {
		return false
	}
	if f.HasAfter {
		c := p.Compare(f.After)
		if f.Order == Oldest && c <= 0 || f.Order == Newest && c >= 0 {
			return false
		}
	}
	return true
}

// Match reports whether the row belongs to the filter's result (stream,
// fields, time range and cursor).
func (f Filter) Match(row wire.EntryRow) bool {
	return row.StreamID == f.Stream && f.MatchFields(row) && f.InRange(Key(row))
}

// Before reports whether a comes before b in the filter's order.
func (f Filter) Before(a, b Position) bool {
	if f.Order == Oldest {
		return a.Compare(b) < 0
	}
	return a.Compare(b) > 0
}

// Select is the reference evaluation of a filter over any rows: the
// matching rows in order, at most PageSize of them, plus whether more
// matched. Stores without indexes use it; indexed stores must agree with it.
func Select(rows []wire.EntryRow, f Filter) (page []wire.EntryRow, more bool) {
	type keyed struct {
		p   Position
		row wire.EntryRow
	}
	var hits []keyed
	for _, r := range rows {
		if !f.Match(r) {
			continue
		}
		hits = append(hits, keyed{Key(r), r})
	}
	slices.SortFunc(hits, func(a, b keyed) int {
		c := a.p.Compare(b.p)
		if f.Order == Newest {
			c = -c
		}
		return c
	})
	n := f.PageSize()
	more = len(hits) > n
	if more {
		hits = hits[:n]
	}
	page = make([]wire.EntryRow, len(hits))
	for i, h := range hits {
		page[i] = h.row
	}
	return page, more
}
