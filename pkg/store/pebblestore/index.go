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
// batch as the entries. Each index is a set of key ranges, one per stream
// and index value, holding the entries' positions (query.Position:
// timestamp, then seqno) in order:
//
//	i/t<stream><run><pos>              stream + time
//	i/y<stream><event_type><run><pos>  stream + type (escaped like a stream name)
//	i/p<stream><producer><run><pos>    stream + producer
//	i/s<stream><severity><run><pos>    stream + severity + time of the urgent
//	                                   entries only (severity warning or more,
//	                                   one byte)
//	mc/<stream>                        the stream's entry count and high mark
//
// One record per batch and range, not one per entry (schema 6): the
// record of run runInOrder is a list of the batch's entries in that range,
// keyed by the position of its first one; its value is the first entry's
// severity, then for each further entry the zigzag varint of its seqno's
// difference to the previous one, the uvarint of its time's difference
// (never negative) and its severity (listMax entries at most, then a new
// list starts). An entry is in order when its position is after every
// position of its stream's earlier in-order entries (the stream's high
// mark, kept beside its count): the in-order entries of a stream rise in
// position with every record written, so a range's lists never overlap and
// their keys sort them. An entry that is not in order (the clock stepped
// back, or Insert of an older entry) gets its own record of run runLate,
// valued its severity alone: a list of one. A query merges the two runs of
// a range (source.go).
//
// Where the records sit (schema 7): before the meta records (m/) and the
// rows (s/), next to the other small records every batch writes (e/, m/).
// Pebble compacts the level-0 tables of a flush together when their key
// ranges overlap earlier ones': with the indexes after the rows (schema 6's
// xt/, xy/, xp/, xs/ and cn/), every flushed table that ended in them
// spanned the newest rows too, so the rows were compacted out of level 0
// early and again below — compactions wrote twice the bytes of a store
// without indexes (BenchmarkIndexWrite, pipeline workload: 740 against 335
// bytes per entry). Here the rows' tables stay apart as they are without
// indexes (332 against 343).
//
// Fewer, larger records are what make the indexes cheap: pebble's cost —
// memtable inserts, flushes and compactions — grows with the number of
// records more than with their bytes.
//
// Urgent entries are few in an audit trail, so i/s costs little to write
// and answers a minimum-severity filter (warning … emergency: a merge of
// the ranges of that severity and the more urgent ones) without walking
// the many info and debug entries of i/t.
//
// <pos> is the timestamp's Unix nanoseconds (query.TimeKey) as be64 with
// the sign bit flipped, so byte order is numeric order, then the seqno
// (be64).
var (
	prefixIdxTime     = "i/t"
	prefixIdxType     = "i/y"
	prefixIdxProducer = "i/p"
	prefixIdxUrgent   = "i/s"
	prefixCount       = "mc/"
	// legacyIdxPrefixes are the index records and counts of schemas 2 to 6.
	legacyIdxPrefixes = []string{"xt/", "xy/", "xp/", "xs/", "cn/"}
)

// The runs of an index range.
const (
	runInOrder = 'o'
	runLate    = 'l'
)

// listMax is the most entries one list record holds: a query that seeks
// into a list decodes at most this many.
const listMax = 128

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

// urgentMax is the least urgent severity the urgent index (xs/) holds.
const urgentMax = wire.Warning

// streamMark is what mc/<stream> holds: the stream's entry count and the
// high mark of its in-order entries (be64 count ‖ be64 time ‖ be64 seqno;
// count only, 8 bytes, before schema 6).
type streamMark struct {
	count  uint64
	high   query.Position
	hasAny bool // high is set (the stream has an in-order entry)
}

func (m streamMark) encode() []byte {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 24), m.count)
	if !m.hasAny {
		return b
	}
	b = binary.BigEndian.AppendUint64(b, uint64(m.high.Time))
	return binary.BigEndian.AppendUint64(b, m.high.Seqno)
}

func decodeMark(v []byte) (streamMark, error) {
	switch len(v) {
	case 8:
		return streamMark{count: binary.BigEndian.Uint64(v)}, nil
	case 24:
		return streamMark{count: binary.BigEndian.Uint64(v), hasAny: true,
			high: query.Position{Time: int64(binary.BigEndian.Uint64(v[8:])), Seqno: binary.BigEndian.Uint64(v[16:])}}, nil
	}
	return streamMark{}, fmt.Errorf("want 8 or 24 bytes (count, high mark), got %d", len(v))
}

// indexer turns batches of rows into index records and entry counts.
// Marks are the streams' counts and high marks as of the last batch; a
// stream missing from it is read from r (or starts empty without r).
type indexer struct {
	r     pebble.Reader
	marks map[string]*streamMark
	lists map[string]*list // in-order lists of the batch by range prefix
	order []*list
	buf   []byte
}

// list is one in-order list record being built.
type list struct {
	key  []byte // range prefix ‖ runInOrder ‖ first position
	val  []byte
	last query.Position
	n    int
}

// mark returns the stream's mark, loading it on first use.
func (ix *indexer) mark(stream string) (*streamMark, error) {
	if m, ok := ix.marks[stream]; ok {
		return m, nil
	}
	m := &streamMark{}
	if ix.r != nil {
		v, found, err := get(ix.r, key(prefixCount, escStream(stream)))
		if err != nil {
			return nil, err
		}
		if found {
			if *m, err = decodeMark(v); err != nil {
				return nil, fmt.Errorf("entry count of %q: %w", stream, err)
			}
		}
	}
	if ix.marks == nil {
		ix.marks = map[string]*streamMark{}
	}
	ix.marks[stream] = m
	return m, nil
}

// add adds the rows' index records to b and counts them; flush writes the
// lists, counts writes the marks.
func (ix *indexer) add(b *pebble.Batch, rows []wire.EntryRow) error {
	for _, row := range rows {
		m, err := ix.mark(row.StreamID)
		if err != nil {
			return err
		}
		m.count++
		pos := query.Key(row)
		late := m.hasAny && pos.Compare(m.high) <= 0
		if !late {
			m.high, m.hasAny = pos, true
		}
		ix.buf = appendEscStream(append(ix.buf[:0], prefixIdxTime...), row.StreamID)
		if err := ix.record(b, ix.buf, pos, row.Severity, late); err != nil {
			return err
		}
		ix.buf = appendEscStream(appendEscStream(append(ix.buf[:0], prefixIdxType...), row.StreamID), row.EventType)
		if err := ix.record(b, ix.buf, pos, row.Severity, late); err != nil {
			return err
		}
		ix.buf = appendEscStream(appendEscStream(append(ix.buf[:0], prefixIdxProducer...), row.StreamID), row.Producer)
		if err := ix.record(b, ix.buf, pos, row.Severity, late); err != nil {
			return err
		}
		if row.Severity <= urgentMax {
			ix.buf = append(appendEscStream(append(ix.buf[:0], prefixIdxUrgent...), row.StreamID), byte(row.Severity))
			if err := ix.record(b, ix.buf, pos, row.Severity, late); err != nil {
				return err
			}
		}
	}
	return nil
}

// record adds the entry at pos to the range with prefix p: a late record
// at once, else to the range's list of this batch.
func (ix *indexer) record(b *pebble.Batch, p []byte, pos query.Position, sev wire.Severity, late bool) error {
	if late {
		k := appendPos(append(p, runLate), pos)
		return b.Set(k, []byte{byte(sev)}, nil)
	}
	l := ix.lists[string(p)]
	if l != nil && l.n == listMax {
		if err := b.Set(l.key, l.val, nil); err != nil {
			return err
		}
		l.n = 0
	}
	if l == nil {
		if ix.lists == nil {
			ix.lists = map[string]*list{}
		}
		l = &list{}
		ix.lists[string(p)] = l
		ix.order = append(ix.order, l)
	}
	if l.n == 0 {
		l.key = appendPos(append(append(l.key[:0], p...), runInOrder), pos)
		l.val = append(l.val[:0], byte(sev))
	} else {
		l.val = binary.AppendVarint(l.val, int64(pos.Seqno-l.last.Seqno))
		l.val = binary.AppendUvarint(l.val, uint64(pos.Time-l.last.Time))
		l.val = append(l.val, byte(sev))
	}
	l.last = pos
	l.n++
	return nil
}

// flush writes the lists built since the last flush to b.
func (ix *indexer) flush(b *pebble.Batch) error {
	for _, l := range ix.order {
		if l.n == 0 {
			continue
		}
		if err := b.Set(l.key, l.val, nil); err != nil {
			return err
		}
	}
	clear(ix.lists)
	ix.order = ix.order[:0]
	return nil
}

// counts writes the streams' marks (counts and high marks) to b.
func (ix *indexer) counts(b *pebble.Batch) error {
	for stream, m := range ix.marks {
		if err := b.Set(key(prefixCount, escStream(stream)), m.encode(), nil); err != nil {
			return err
		}
	}
	return nil
}

// indexBatch adds the rows' index records and the new counts of their
// streams to b. The caller holds s.cmu until b is committed (the marks
// are read-modify-write records).
func indexBatch(r pebble.Reader, b *pebble.Batch, rows []wire.EntryRow) error {
	ix := indexer{r: r}
	if err := ix.add(b, rows); err != nil {
		return err
	}
	if err := ix.flush(b); err != nil {
		return err
	}
	return ix.counts(b)
}

// rebuildIndexes drops every index record and count and writes them anew
// from the stored entries (the upgrade from an older schema), committing
// every chunk rows.
func rebuildIndexes(db *pebble.DB, chunk int) error {
	for _, p := range append([]string{prefixIdxTime, prefixIdxType, prefixIdxProducer, prefixIdxUrgent, prefixCount}, legacyIdxPrefixes...) {
		if err := db.DeleteRange([]byte(p), upperBound([]byte(p)), pebble.Sync); err != nil {
			return err
		}
	}
	p := []byte(prefixStreamEntry)
	b := db.NewBatch()
	defer func() { _ = b.Close() }()
	ix := indexer{}
	rows := make([]wire.EntryRow, 0, chunk)
	write := func() error {
		if err := ix.add(b, rows); err != nil {
			return err
		}
		rows = rows[:0]
		if err := ix.flush(b); err != nil {
			return err
		}
		if err := b.Commit(pebble.Sync); err != nil {
			return err
		}
		_ = b.Close()
		b = db.NewBatch()
		return nil
	}
	err := scan(db, p, upperBound(p), false, func(_, v []byte) (bool, error) {
		row, err := decodeEntry(v)
		if err != nil {
			return false, err
		}
		if rows = append(rows, row); len(rows) == chunk {
			return true, write()
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	if err := ix.add(b, rows); err != nil {
		return err
	}
	if err := ix.flush(b); err != nil {
		return err
	}
	if err := ix.counts(b); err != nil {
		return err
	}
	return b.Commit(pebble.Sync)
}

// maxMergeTypes bounds the distinct event types a prefix query merges;
// beyond it the query scans the time index and filters rows.
const maxMergeTypes = 64

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
		g := make(group, 0, 2*len(prefixes))
		for _, p := range prefixes {
			for _, run := range []byte{runInOrder, runLate} {
				src, err := openSource(r, append(append(make([]byte, 0, len(p)+1), p...), run), f)
				if err != nil {
					groups = append(groups, g)
					return nil, false, err
				}
				g = append(g, src)
			}
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
// list of range prefixes whose records (both runs of each) are merged
// (OR); the groups are
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
