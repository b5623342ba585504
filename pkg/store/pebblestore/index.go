package pebblestore

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/securelog/securelog/pkg/query"
	"github.com/securelog/securelog/pkg/wire"
)

// Secondary indexes of the entries (issue 12), written in the same synced
// batch as the entry. Keys end in the entry's position (query.Position:
// timestamp, then seqno) so each index scans in query order; the value is
// the entry's severity (one byte), so a severity filter needs no row read.
//
//	xt/<stream><time><seqno>              stream + time
//	xy/<stream><event_type><time><seqno>  stream + type (escaped like a stream name)
//	xp/<stream><producer><time><seqno>    stream + producer
//	xs/<stream><severity><time><seqno>    stream + severity + time of the urgent
//	                                      entries only (severity warning or more,
//	                                      one byte; schema 5)
//
// Urgent entries are few in an audit trail, so xs costs little to write and
// answers a minimum-severity filter (warning … emergency: a merge of the
// ranges of that severity and the more urgent ones) without walking the
// many info and debug entries of xt.
//
// <time> is the timestamp's Unix nanoseconds (query.TimeKey) as be64 with the
// sign bit flipped, so byte order is numeric order.
var (
	prefixIdxTime     = "xt/"
	prefixIdxType     = "xy/"
	prefixIdxProducer = "xp/"
	prefixIdxUrgent   = "xs/"
	prefixCount       = "cn/"
)

// appendPos appends the position suffix of an index key.
func appendPos(dst []byte, p query.Position) []byte {
	dst = binary.BigEndian.AppendUint64(dst, uint64(p.Time)^(1<<63))
	return binary.BigEndian.AppendUint64(dst, p.Seqno)
}

// decodePos reads the 16-byte position suffix of an index key.
func decodePos(k []byte) (query.Position, bool) {
	if len(k) < 16 {
		return query.Position{}, false
	}
	s := k[len(k)-16:]
	return query.Position{Time: int64(binary.BigEndian.Uint64(s) ^ (1 << 63)), Seqno: binary.BigEndian.Uint64(s[8:])}, true
}

// timeBound is the index key prefix of every position at time t.
func timeBound(prefix []byte, t int64) []byte {
	return binary.BigEndian.AppendUint64(append([]byte{}, prefix...), uint64(t)^(1<<63))
}

// urgentMax is the least urgent severity the urgent index (xs/) holds.
const urgentMax = wire.Warning

// setUrgent adds the row's urgent index record to b when its severity is
// urgentMax or more urgent, reusing buf.
func setUrgent(b *pebble.Batch, buf []byte, row wire.EntryRow) ([]byte, error) {
	if row.Severity > urgentMax {
		return buf, nil
	}
	buf = append(appendEscStream(append(buf[:0], prefixIdxUrgent...), row.StreamID), byte(row.Severity))
	buf = appendPos(buf, query.Key(row))
	return buf, b.Set(buf, []byte{byte(row.Severity)}, nil)
}

// setIndexes adds the row's index records to b, reusing buf.
func setIndexes(b *pebble.Batch, buf []byte, row wire.EntryRow) ([]byte, error) {
	pos := query.Key(row)
	val := []byte{byte(row.Severity)}
	buf = appendPos(appendEscStream(append(buf[:0], prefixIdxTime...), row.StreamID), pos)
	if err := b.Set(buf, val, nil); err != nil {
		return buf, err
	}
	buf = appendPos(appendEscStream(appendEscStream(append(buf[:0], prefixIdxType...), row.StreamID), row.EventType), pos)
	if err := b.Set(buf, val, nil); err != nil {
		return buf, err
	}
	buf = appendPos(appendEscStream(appendEscStream(append(buf[:0], prefixIdxProducer...), row.StreamID), row.Producer), pos)
	if err := b.Set(buf, val, nil); err != nil {
		return buf, err
	}
	return setUrgent(b, buf, row)
}

// What an older schema lacks (backfill).
const (
	fillIndexes = 1 << iota // every index record (schema 1)
	fillCounts              // the per-stream entry counts (schemas 1 and 2)
	fillUrgent              // the urgent index records (schemas 1 to 3)
	dropUrgent              // delete schema 4's urgent records (keyed without the severity) first
)

// backfill writes what an older schema lacks for every stored entry (the
// fill* bits of what), committing every chunk rows.
func backfill(db *pebble.DB, chunk int, what int) error {
	if what&dropUrgent != 0 {
		p := []byte(prefixIdxUrgent)
		if err := db.DeleteRange(p, upperBound(p), pebble.Sync); err != nil {
			return err
		}
	}
	p := []byte(prefixStreamEntry)
	b := db.NewBatch()
	defer func() { _ = b.Close() }()
	var buf []byte
	counts := map[string]uint64{}
	n := 0
	err := scan(db, p, upperBound(p), false, func(k, v []byte) (bool, error) {
		stream, _, err := unescStream(k[len(p):])
		if err != nil {
			return false, err
		}
		counts[stream]++
		if what&(fillIndexes|fillUrgent) == 0 {
			return true, nil
		}
		row, err := decodeEntry(v)
		if err != nil {
			return false, err
		}
		if what&fillIndexes != 0 {
			buf, err = setIndexes(b, buf, row)
		} else {
			buf, err = setUrgent(b, buf, row)
		}
		if err != nil {
			return false, err
		}
		if n++; n%chunk == 0 {
			if err := b.Commit(pebble.Sync); err != nil {
				return false, err
			}
			_ = b.Close()
			b = db.NewBatch()
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	for stream, c := range counts {
		if what&fillCounts == 0 {
			break
		}
		if err := b.Set(key(prefixCount, escStream(stream)), be64(c), nil); err != nil {
			return err
		}
	}
	return b.Commit(pebble.Sync)
}

// addCounts adds the rows to their streams' entry counts in b. The caller
// holds s.cmu until b is committed.
func addCounts(r pebble.Reader, b *pebble.Batch, rows []wire.EntryRow) error {
	per := map[string]uint64{}
	for _, row := range rows {
		per[row.StreamID]++
	}
	for stream, n := range per {
		k := key(prefixCount, escStream(stream))
		v, found, err := get(r, k)
		if err != nil {
			return err
		}
		var cur uint64
		if found {
			if cur, err = u64(v); err != nil {
				return fmt.Errorf("entry count of %q: %w", stream, err)
			}
		}
		if err := b.Set(k, be64(cur+n), nil); err != nil {
			return err
		}
	}
	return nil
}

// maxMergeTypes bounds the distinct event types a prefix query merges;
// beyond it the query scans the time index and filters rows.
const maxMergeTypes = 64

// source is one ordered index range being merged.
type source struct {
	it     *pebble.Iterator
	prefix []byte // the index range's key prefix (for seeks)
	seek   []byte // seek key buffer
	ok     bool
	pos    query.Position
	sev    wire.Severity
	desc   bool
}

func (s *source) load() {
	for s.ok {
		pos, ok := decodePos(s.it.Key())
		v := s.it.Value()
		if ok && len(v) == 1 {
			s.pos, s.sev = pos, wire.Severity(v[0])
			return
		}
		s.step() // a malformed record is skipped
	}
}

func (s *source) step() {
	if s.desc {
		s.ok = s.it.Prev()
	} else {
		s.ok = s.it.Next()
	}
}

// openSource opens the index range under prefix that the filter's time
// bounds and cursor allow, positioned at its first record in order.
func openSource(r pebble.Reader, prefix []byte, f query.Filter) (*source, error) {
	lo, hi := append([]byte{}, prefix...), upperBound(prefix)
	if f.HasSince {
		lo = timeBound(prefix, f.Since)
	}
	if f.HasUntil {
		hi = timeBound(prefix, f.Until)
	}
	if f.HasAfter {
		k := appendPos(append([]byte{}, prefix...), f.After)
		if f.Order == query.Oldest {
			if k = append(k, 0); string(k) > string(lo) { // smallest key after the cursor
				lo = k
			}
		} else if hi == nil || string(k) < string(hi) {
			hi = k
		}
	}
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return nil, err
	}
	s := &source{it: it, prefix: prefix, desc: f.Order == query.Newest}
	if s.desc {
		s.ok = it.Last()
	} else {
		s.ok = it.First()
	}
	s.load()
	return s, nil
}

// distinctTypes lists the stream's event types that start with prefix, by
// skipping from one type to the next; more reports that there are more
// than limit.
func distinctTypes(r pebble.Reader, stream, prefix string, limit int) (types []string, more bool, err error) {
	base := appendEscStream(append([]byte{}, prefixIdxType...), stream)
	lo := append(append([]byte{}, base...), escPrefix(prefix)...)
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: upperBound(lo)})
	if err != nil {
		return nil, false, err
	}
	defer func() { _ = it.Close() }()
	for ok := it.First(); ok; {
		typ, _, err := unescStream(it.Key()[len(base):])
		if err != nil {
			return nil, false, err
		}
		if len(types) == limit {
			return types, true, nil
		}
		types = append(types, typ)
		next := upperBound(appendEscStream(append([]byte{}, base...), typ))
		if next == nil {
			break
		}
		ok = it.SeekGE(next)
	}
	return types, false, it.Error()
}

// escPrefix is the escaped form of a name prefix, without the terminator:
// every name starting with prefix has keys starting with it.
func escPrefix(prefix string) []byte {
	e := appendEscStream(nil, prefix)
	return e[:len(e)-2]
}

// queryEntries evaluates the filter with the indexes (plan), walking the
// chosen index ranges in order and intersecting them (join.go); it reads
// only rows whose severity passes and that the indexes do not already
// decide.
func (s *Store) queryEntries(r pebble.Reader, f query.Filter) ([]wire.EntryRow, bool, error) {
	stream := appendEscStream(nil, f.Stream)
	plan, rowCheck, err := planQuery(r, f, stream)
	if err != nil {
		return nil, false, err
	}
	var groups []group
	defer func() {
		for _, g := range groups {
			for _, src := range g {
				_ = src.it.Close()
			}
		}
	}()
	for _, prefixes := range plan {
		g := make(group, 0, len(prefixes))
		for _, p := range prefixes {
			src, err := openSource(r, p, f)
			if err != nil {
				groups = append(groups, g)
				return nil, false, err
			}
			g = append(g, src)
		}
		groups = append(groups, g)
	}
	limit := f.PageSize()
	out := make([]wire.EntryRow, 0, min(limit, 128))
	rows := rowReader{r: r, key: key(prefixStreamEntry, stream)}
	defer rows.close()
	for {
		pos, sev, ok := nextMatch(groups, f)
		if !ok {
			return out, false, nil
		}
		if f.HasSeverity && sev > f.MinSeverity {
			continue
		}
		if len(out) == limit {
			if !rowCheck {
				return out, true, nil
			}
		}
		row, found, err := rows.read(pos.Seqno)
		if err != nil {
			return nil, false, err
		}
		if !found {
			continue // an index record without its row cannot be served
		}
		if rowCheck && !f.MatchFields(row) {
			continue
		}
		if len(out) == limit {
			return out, true, nil
		}
		out = append(out, row)
	}
}

// planQuery picks the index ranges of a filter: a list of groups, each a
// list of key prefixes whose records are merged (OR); the groups are
// intersected (AND). Exact type → its type range; a type prefix → the
// merge of its types' ranges (or, with more than maxMergeTypes types, the
// time index and a row check); a producer → its range; a minimum severity
// of warning or more → the urgent range; nothing of these → the time
// index. rowCheck says the rows must be checked against the filter's
// fields (the indexes do not decide them).
func planQuery(r pebble.Reader, f query.Filter, stream []byte) (plan [][][]byte, rowCheck bool, err error) {
	producer := func() [][]byte { return [][]byte{appendEscStream(key(prefixIdxProducer, stream), f.Producer)} }
	switch {
	case f.Type != "" && !f.TypePrefix:
		plan = [][][]byte{{appendEscStream(key(prefixIdxType, stream), f.Type)}}
	case f.TypePrefix && f.Type != "":
		types, more, err := distinctTypes(r, f.Stream, f.Type, maxMergeTypes)
		if err != nil {
			return nil, false, err
		}
		if more {
			rowCheck = true
			if f.Producer != "" {
				return [][][]byte{producer()}, true, nil
			}
			plan = [][][]byte{{key(prefixIdxTime, stream)}}
			break
		}
		g := make([][]byte, 0, len(types))
		for _, t := range types {
			g = append(g, appendEscStream(key(prefixIdxType, stream), t))
		}
		plan = [][][]byte{g}
	}
	if f.Producer != "" {
		plan = append(plan, producer())
	}
	if f.HasSeverity && f.MinSeverity <= urgentMax && !rowCheck {
		g := make([][]byte, 0, f.MinSeverity+1)
		for sev := range f.MinSeverity + 1 {
			g = append(g, append(key(prefixIdxUrgent, stream), byte(sev)))
		}
		plan = append(plan, g)
	}
	if len(plan) == 0 {
		plan = [][][]byte{{key(prefixIdxTime, stream)}}
	}
	return plan, rowCheck, nil
}

// rowReader reads a stream's rows by seqno with one iterator over the
// stream's row keys: a page's rows are mostly neighbours, so each seek
// usually lands in the data block the previous one loaded, where a Get per
// row would build an iterator and look the block up again each time.
type rowReader struct {
	r    pebble.Reader
	key  []byte // s/<stream>, then the seqno of the last read
	base int
	it   *pebble.Iterator
	in   interner
}

// read returns the stream's row with the seqno.
func (rr *rowReader) read(seqno uint64) (wire.EntryRow, bool, error) {
	if rr.it == nil {
		rr.base = len(rr.key)
		it, err := rr.r.NewIter(&pebble.IterOptions{LowerBound: rr.key, UpperBound: upperBound(rr.key)})
		if err != nil {
			return wire.EntryRow{}, false, err
		}
		rr.it = it
	}
	rr.key = binary.BigEndian.AppendUint64(rr.key[:rr.base], seqno)
	if !rr.it.SeekGE(rr.key) || !bytes.Equal(rr.it.Key(), rr.key) {
		return wire.EntryRow{}, false, rr.it.Error()
	}
	v, err := rr.it.ValueAndErr()
	if err != nil {
		return wire.EntryRow{}, false, err
	}
	row, err := decodeEntryInto(v, &rr.in)
	if err != nil {
		return wire.EntryRow{}, false, fmt.Errorf("seqno %d: %w", seqno, err)
	}
	return row, true, nil
}

func (rr *rowReader) close() {
	if rr.it != nil {
		_ = rr.it.Close()
	}
}
