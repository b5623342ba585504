package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"

	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/wire"
)

const entryColumns = `seqno, stream_id, session_id, boot_id, timestamp, event_type, severity, producer,
	payload_encoding, payload, prev_entry_hash, entry_hash`

// Insert stores an entry row; a missing or duplicate seqno is an error.
func (s *Store) Insert(ctx context.Context, row wire.EntryRow) (uint64, error) {
	err := s.write(ctx, func(tx *sql.Tx) error { return insertEntry(ctx, tx, row) })
	if err != nil {
		return 0, err
	}
	return row.Seqno, nil
}

// CommitBatch stores every entry and meta record in one transaction; a
// duplicate seqno fails the whole batch and nothing is written.
func (s *Store) CommitBatch(ctx context.Context, b store.Batch) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		for _, row := range b.Entries {
			if err := insertEntry(ctx, tx, row); err != nil {
				return err
			}
		}
		for k, v := range b.Meta {
			_, err := tx.ExecContext(ctx, `INSERT INTO _secure_log_meta (key, value) VALUES (?, ?)
				ON CONFLICT(key) DO UPDATE SET value = excluded.value`, k, nonNil(v))
			if err != nil {
				return fmt.Errorf("sqlite store: put meta %q: %w", k, err)
			}
		}
		return nil
	})
}

// GetMeta returns a meta record written by CommitBatch.
func (s *Store) GetMeta(ctx context.Context, key string) ([]byte, bool, error) {
	db, release, err := s.handle()
	if err != nil {
		return nil, false, err
	}
	defer release()
	var v []byte
	err = db.QueryRowContext(ctx, `SELECT value FROM _secure_log_meta WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("sqlite store: get meta %q: %w", key, err)
	}
	return nonNil(v), true, nil
}

func insertEntry(ctx context.Context, tx *sql.Tx, row wire.EntryRow) error {
	if row.Seqno == 0 {
		return store.ErrMissingSeqno
	}
	seqno, err := toInt64("seqno", row.Seqno)
	if err != nil {
		return err
	}
	if !row.Severity.Valid() {
		return fmt.Errorf("sqlite store: insert seqno %d: invalid severity ordinal %d", row.Seqno, uint8(row.Severity))
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO secure_log (`+entryColumns+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)`,
		seqno, row.StreamID, row.SessionID, row.BootID, row.Timestamp, row.EventType, row.Severity.String(),
		row.Producer, row.PayloadEncoding, nonNil(row.Payload), nonNil(row.PrevEntryHash), nonNil(row.EntryHash))
	if isUniqueViolation(err) {
		return &store.DuplicateSeqnoError{Seqno: row.Seqno}
	}
	if err != nil {
		return fmt.Errorf("sqlite store: insert seqno %d: %w", row.Seqno, err)
	}
	return nil
}

// GlobalHead returns the highest seqno over all streams.
func (s *Store) GlobalHead(ctx context.Context) (uint64, bool, error) {
	return s.maxQuery(ctx, "global head", `SELECT MAX(seqno) FROM secure_log`)
}

// Head returns the highest seqno of the stream.
func (s *Store) Head(ctx context.Context, stream string) (uint64, bool, error) {
	return s.maxQuery(ctx, "head of "+stream, `SELECT MAX(seqno) FROM secure_log WHERE stream_id = ?`, stream)
}

// maxQuery runs a one-value MAX query; NULL means none.
func (s *Store) maxQuery(ctx context.Context, what, query string, args ...any) (uint64, bool, error) {
	db, release, err := s.handle()
	if err != nil {
		return 0, false, err
	}
	defer release()
	var v sql.NullInt64
	if err := db.QueryRowContext(ctx, query, args...).Scan(&v); err != nil {
		return 0, false, fmt.Errorf("sqlite store: %s: %w", what, err)
	}
	if !v.Valid {
		return 0, false, nil
	}
	u, err := fromInt64(what, v.Int64)
	if err != nil {
		return 0, false, err
	}
	return u, true, nil
}

// Get returns the row with the seqno.
func (s *Store) Get(ctx context.Context, seqno uint64) (wire.EntryRow, bool, error) {
	key, ok := clampKey(seqno)
	if !ok {
		return wire.EntryRow{}, false, nil
	}
	rows, err := s.queryEntries(ctx, fmt.Sprintf("get seqno %d", seqno),
		`SELECT `+entryColumns+` FROM secure_log WHERE seqno = ?`, key)
	if err != nil || len(rows) == 0 {
		return wire.EntryRow{}, false, err
	}
	return rows[0], true, nil
}

// Range returns the stream's rows with from ≤ seqno ≤ to, ascending.
func (s *Store) Range(ctx context.Context, stream string, from, to uint64) ([]wire.EntryRow, error) {
	if to > math.MaxInt64 {
		to = math.MaxInt64
	}
	if from > to {
		return []wire.EntryRow{}, nil
	}
	return s.queryEntries(ctx, fmt.Sprintf("range %s [%d, %d]", stream, from, to),
		`SELECT `+entryColumns+` FROM secure_log WHERE stream_id = ? AND seqno BETWEEN ? AND ? ORDER BY seqno`,
		stream, int64(from), int64(to))
}

// Last returns the row with the highest seqno of the stream.
func (s *Store) Last(ctx context.Context, stream string) (wire.EntryRow, bool, error) {
	rows, err := s.queryEntries(ctx, "last of "+stream,
		`SELECT `+entryColumns+` FROM secure_log WHERE stream_id = ? ORDER BY seqno DESC LIMIT 1`, stream)
	if err != nil || len(rows) == 0 {
		return wire.EntryRow{}, false, err
	}
	return rows[0], true, nil
}

func (s *Store) queryEntries(ctx context.Context, what, query string, args ...any) ([]wire.EntryRow, error) {
	db, release, err := s.handle()
	if err != nil {
		return nil, err
	}
	defer release()
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: %s: %w", what, err)
	}
	defer func() { _ = rows.Close() }()
	out := []wire.EntryRow{}
	for rows.Next() {
		var (
			r        wire.EntryRow
			seqno    int64
			severity string
		)
		err := rows.Scan(&seqno, &r.StreamID, &r.SessionID, &r.BootID, &r.Timestamp, &r.EventType, &severity,
			&r.Producer, &r.PayloadEncoding, &r.Payload, &r.PrevEntryHash, &r.EntryHash)
		if err != nil {
			return nil, fmt.Errorf("sqlite store: %s: %w", what, err)
		}
		if r.Seqno, err = fromInt64("seqno", seqno); err != nil {
			return nil, err
		}
		if r.Severity, err = wire.ParseSeverity(severity); err != nil {
			return nil, fmt.Errorf("sqlite store: %s: seqno %d: %w", what, seqno, err)
		}
		r.Payload, r.PrevEntryHash, r.EntryHash = nonNil(r.Payload), nonNil(r.PrevEntryHash), nonNil(r.EntryHash)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite store: %s: %w", what, err)
	}
	return out, nil
}
