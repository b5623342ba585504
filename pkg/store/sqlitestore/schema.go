package sqlitestore

import (
	"context"
	"database/sql"
	"fmt"
)

// migration is one schema step of SPEC §18, recorded in
// _secure_log_migrations once applied.
type migration struct {
	version int
	stmts   []string
}

// migrations are SPEC §18 M1–M4 (table, column and index names exact) plus
// M5, the key/value table behind store.Batcher meta records, and M6, the
// stored Merkle tree chunks of store.SegmentTreeStore, M7, the
// secondary indexes of entry queries (stream+time, stream+type,
// stream+producer; query.go), M8, the segment-id reservations of
// store.SegmentReserver, and M9, the urgent index: stream+time of the
// entries of severity warning or more only (a partial index, the
// counterpart of the pebble store's urgent records), which M10 replaces
// with one that also holds the severity, so that a rare severity is
// checked in the index and not in each row. The reference's
// M4 seed row is written by Init instead, with an RFC 3339 created_at
// (DECISIONS 22).
var migrations = []migration{
	{1, []string{
		`CREATE TABLE IF NOT EXISTS secure_log (
			seqno            INTEGER PRIMARY KEY,
			stream_id        TEXT NOT NULL,
			session_id       TEXT NOT NULL,
			boot_id          TEXT NOT NULL,
			timestamp        TEXT NOT NULL,
			event_type       TEXT NOT NULL,
			severity         TEXT NOT NULL,
			producer         TEXT NOT NULL,
			payload_encoding TEXT NOT NULL,
			payload          BLOB NOT NULL,
			prev_entry_hash  BLOB NOT NULL,
			entry_hash       BLOB NOT NULL
		)`,
		`CREATE INDEX IF NOT EXISTS idx_secure_log_stream ON secure_log (stream_id, seqno)`,
		`CREATE INDEX IF NOT EXISTS idx_secure_log_type ON secure_log (event_type)`,
	}},
	{2, []string{
		`CREATE TABLE IF NOT EXISTS secure_log_segments (
			segment_id           INTEGER PRIMARY KEY AUTOINCREMENT,
			stream_id            TEXT NOT NULL,
			seq_start            INTEGER NOT NULL,
			seq_end              INTEGER NOT NULL,
			merkle_root          BLOB NOT NULL,
			last_entry_hash      BLOB NOT NULL,
			prev_checkpoint_hash BLOB NOT NULL,
			closed_at            TEXT NOT NULL,
			signature            BLOB,
			signer_identity      TEXT
		)`,
		`CREATE INDEX IF NOT EXISTS idx_secure_log_segments_stream ON secure_log_segments (stream_id, segment_id)`,
		`CREATE TABLE IF NOT EXISTS secure_log_segment_entries (
			segment_id INTEGER NOT NULL REFERENCES secure_log_segments(segment_id),
			seqno      INTEGER NOT NULL,
			leaf_index INTEGER NOT NULL,
			PRIMARY KEY (segment_id, seqno)
		)`,
		`CREATE INDEX IF NOT EXISTS idx_secure_log_segment_entries_seqno ON secure_log_segment_entries (seqno)`,
	}},
	{3, []string{
		`CREATE TABLE IF NOT EXISTS witness_log (
			id                  INTEGER PRIMARY KEY AUTOINCREMENT,
			stream_id           TEXT NOT NULL,
			segment_id          INTEGER NOT NULL,
			seq_start           INTEGER NOT NULL,
			seq_end             INTEGER NOT NULL,
			checkpoint_hash_hex TEXT NOT NULL,
			signature_hex       TEXT NOT NULL,
			signer_identity     TEXT NOT NULL,
			received_at         TEXT NOT NULL DEFAULT (datetime('now'))
		)`,
		`CREATE INDEX IF NOT EXISTS idx_witness_log_stream ON witness_log (stream_id, segment_id)`,
	}},
	{4, []string{
		`CREATE TABLE IF NOT EXISTS secure_log_streams (
			name          TEXT PRIMARY KEY,
			tier          TEXT NOT NULL DEFAULT 'public',
			description   TEXT,
			created_at    TEXT NOT NULL DEFAULT (datetime('now')),
			deprecated_at TEXT
		)`,
	}},
	{5, []string{
		`CREATE TABLE IF NOT EXISTS _secure_log_meta (
			key   TEXT PRIMARY KEY,
			value BLOB NOT NULL
		)`,
	}},
	{6, []string{
		`CREATE TABLE IF NOT EXISTS _secure_log_segment_tree (
			segment_id INTEGER NOT NULL,
			level      INTEGER NOT NULL,
			chunk      INTEGER NOT NULL,
			nodes      BLOB NOT NULL,
			PRIMARY KEY (segment_id, level, chunk)
		)`,
	}},
	{7, []string{
		`CREATE INDEX IF NOT EXISTS idx_secure_log_stream_time ON secure_log (stream_id, timestamp, seqno)`,
		`CREATE INDEX IF NOT EXISTS idx_secure_log_stream_type_time ON secure_log (stream_id, event_type, timestamp, seqno)`,
		`CREATE INDEX IF NOT EXISTS idx_secure_log_stream_producer_time ON secure_log (stream_id, producer, timestamp, seqno)`,
	}},
	{8, []string{
		`CREATE TABLE IF NOT EXISTS _secure_log_segment_reservations (
			stream_id  TEXT PRIMARY KEY,
			segment_id INTEGER NOT NULL UNIQUE
		)`,
	}},
	{9, []string{
		`CREATE INDEX IF NOT EXISTS idx_secure_log_stream_urgent_time ON secure_log (stream_id, timestamp, seqno) WHERE ` + urgentTerm,
	}},
	{10, []string{
		`DROP INDEX IF EXISTS idx_secure_log_stream_urgent_time`,
		`CREATE INDEX IF NOT EXISTS idx_secure_log_stream_urgent_time_severity ON secure_log (stream_id, timestamp, seqno, severity) WHERE ` + urgentTerm,
	}},
}

// migrate creates the migrations table and applies every migration not yet
// recorded, each in its own transaction so a failure leaves no partial step.
func migrate(ctx context.Context, db *sql.DB) error {
	_, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS _secure_log_migrations (
		version INTEGER PRIMARY KEY,
		applied TEXT NOT NULL DEFAULT (datetime('now'))
	)`)
	if err != nil {
		return fmt.Errorf("create _secure_log_migrations: %w", err)
	}
	for _, m := range migrations {
		if err := applyMigration(ctx, db, m); err != nil {
			return fmt.Errorf("migration %d: %w", m.version, err)
		}
	}
	return nil
}

func applyMigration(ctx context.Context, db *sql.DB, m migration) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }() // no-op after Commit
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM _secure_log_migrations WHERE version = ?`, m.version).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	for _, stmt := range m.stmts {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO _secure_log_migrations (version) VALUES (?)`, m.version); err != nil {
		return err
	}
	return tx.Commit()
}
