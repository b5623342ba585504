package sqlitestore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/securelog/securelog/pkg/query"
	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/wire"
)

var (
	_ store.EntryQuerier = (*Store)(nil)
	_ store.EntryCounter = (*Store)(nil)
)

// timeText is the writer format (SPEC §5.4) of Unix nanoseconds. Stored
// timestamps in that format compare as text in time order, which is what
// the indexes of migration 7 (stream_id, timestamp, seqno) rely on.
func timeText(ns int64) string { return wire.FormatTime(time.Unix(0, ns)) }

// urgentTerm is the WHERE term of the urgent index (migrations 9, 10): the
// severities warning and more urgent (wire.Warning and below), as SQL
// literals.
var urgentTerm = "severity IN ('" + strings.Join(wire.SeverityNames()[:wire.Warning+1], "', '") + "')"

// prefixEnd is the smallest string greater than every string starting with
// p, or "" if there is none.
func prefixEnd(p string) string {
	b := []byte(p)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] != 0xFF {
			b[i]++
			return string(b[:i+1])
		}
	}
	return ""
}

// QueryEntries answers one page of the filter with the SQL indexes of
// migration 7. Entries are ordered by the stored timestamp text, then
// seqno: time order for timestamps in the writer format the log writes.
func (s *Store) QueryEntries(ctx context.Context, f query.Filter) ([]wire.EntryRow, bool, error) {
	stmt, args, err := querySQL(f)
	if err != nil {
		return nil, false, err
	}
	rows, err := s.queryEntries(ctx, "query stream "+f.Stream, stmt, args...)
	if err != nil {
		return nil, false, err
	}
	if limit := f.PageSize(); len(rows) > limit {
		return rows[:limit], true, nil
	}
	return rows, false, nil
}

// querySQL is the SELECT of one page of the filter (one row more than the
// page, to tell whether more follow).
func querySQL(f query.Filter) (string, []any, error) {
	where := []string{"stream_id = ?"}
	args := []any{f.Stream}
	switch {
	case f.TypePrefix && f.Type != "":
		where = append(where, "event_type >= ?")
		args = append(args, f.Type)
		if end := prefixEnd(f.Type); end != "" {
			where = append(where, "event_type < ?")
			args = append(args, end)
		}
	case !f.TypePrefix && f.Type != "":
		where = append(where, "event_type = ?")
		args = append(args, f.Type)
	}
	if f.Producer != "" {
		where = append(where, "producer = ?")
		args = append(args, f.Producer)
	}
	urgent := f.HasSeverity && f.MinSeverity <= wire.Warning
	if f.HasSeverity {
		names := wire.SeverityNames()[:f.MinSeverity+1]
		where = append(where, "severity IN (?"+strings.Repeat(",?", len(names)-1)+")")
		for _, n := range names {
			args = append(args, n)
		}
		if urgent {
			// The partial index's own term, verbatim: SQLite uses a partial
			// index only when the query's WHERE contains its WHERE term.
			where = append(where, urgentTerm)
		}
	}
	// A cursor at or past a time bound makes that bound redundant; leaving
	// it in would let SQLite start its index range at the bound and filter
	// every row up to the cursor.
	if f.HasAfter && f.Order == query.Oldest && f.HasSince && f.After.Time >= f.Since {
		f.HasSince = false
	}
	if f.HasAfter && f.Order == query.Newest && f.HasUntil && f.After.Time < f.Until {
		f.HasUntil = false
	}
	if f.HasSince {
		where = append(where, "timestamp >= ?")
		args = append(args, timeText(f.Since))
	}
	if f.HasUntil {
		where = append(where, "timestamp < ?")
		args = append(args, timeText(f.Until))
	}
	dir, cmp := "DESC", "<"
	if f.Order == query.Oldest {
		dir, cmp = "ASC", ">"
	}
	if f.HasAfter {
		seqno, err := toInt64("cursor seqno", f.After.Seqno)
		if err != nil {
			return "", nil, err
		}
		where = append(where, "(timestamp, seqno) "+cmp+" (?, ?)")
		args = append(args, timeText(f.After.Time), seqno)
	}
	args = append(args, f.PageSize()+1)
	// A type prefix is a range of event_type: on the stream+type index
	// SQLite would read every entry of the range and sort them by time.
	// Walking an index that is already in time order (the producer's, else
	// the urgent one's for a minimum severity of warning or more, else the
	// stream's) and filtering stops after one page. A minimum severity
	// alone walks the urgent index: the stream's would read every info
	// and debug entry in between.
	from := "secure_log"
	switch {
	case f.TypePrefix && f.Type != "" && f.Producer != "":
		from = "secure_log INDEXED BY idx_secure_log_stream_producer_time"
	case (f.TypePrefix || f.Type == "") && f.Producer == "" && urgent:
		from = "secure_log INDEXED BY idx_secure_log_stream_urgent_time_severity"
	case f.TypePrefix && f.Type != "":
		from = "secure_log INDEXED BY idx_secure_log_stream_time"
	}
	return `SELECT ` + entryColumns + ` FROM ` + from + ` WHERE ` + strings.Join(where, " AND ") +
		` ORDER BY timestamp ` + dir + `, seqno ` + dir + ` LIMIT ?`, args, nil
}

// CountEntries counts the stream's entries with the stream index.
func (s *Store) CountEntries(ctx context.Context, stream string) (uint64, error) {
	db, release, err := s.handle()
	if err != nil {
		return 0, err
	}
	defer release()
	var n int64
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM secure_log WHERE stream_id = ?`, stream).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlite store: count entries of %q: %w", stream, err)
	}
	return fromInt64("entry count", n)
}
