package witnessd

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"

	"golang.org/x/mod/sumdb/tlog"

	// The pure-Go SQLite driver registers as "sqlite".
	_ "modernc.org/sqlite"
)

// TreeHead is a log's tree head as the tlog-witness cosigned it.
type TreeHead struct {
	// Size and Hash are the checkpoint's tree size and root hash.
	Size int64
	Hash tlog.Hash
	// Checkpoint is the signed checkpoint note as submitted (the log's
	// signatures; kept as evidence and for monitors).
	Checkpoint []byte
	// CosignedAt is the cosignature timestamp (POSIX seconds).
	CosignedAt int64
}

// TreeHeadConflictError is returned by TreeHeadStore.Advance when the
// origin's latest cosigned size is not the expected old size.
type TreeHeadConflictError struct {
	Origin  string
	Want    int64
	Current int64
}

func (e *TreeHeadConflictError) Error() string {
	return fmt.Sprintf("tlog-witness state: origin %q is at size %d, not %d", e.Origin, e.Current, e.Want)
}

// TreeHeadStore persists what the tlog-witness cosigned, per log origin.
// Implementations must be safe for concurrent use and serialisable across
// processes sharing them: Advance is a compare-and-swap.
type TreeHeadStore interface {
	// Latest returns the origin's latest cosigned tree head.
	Latest(ctx context.Context, origin string) (TreeHead, bool, error)
	// At returns the tree head cosigned at size, if any (the history the
	// witness keeps to recognise a second, different root at a size it
	// cosigned before).
	At(ctx context.Context, origin string, size int64) (TreeHead, bool, error)
	// Advance records next as the origin's latest cosigned head, and in
	// its history, if and only if the latest cosigned size is oldSize
	// (0 when the origin has none) — in one atomic step. Otherwise it
	// writes nothing and returns a *TreeHeadConflictError. It is durable
	// once it returns.
	Advance(ctx context.Context, origin string, oldSize int64, next TreeHead) error
	// Close releases the store.
	Close() error
}

// SQLiteTreeHeads is a TreeHeadStore in an SQLite database file (WAL,
// synchronous=FULL).
type SQLiteTreeHeads struct{ db *sql.DB }

// OpenTreeHeads opens (creating if needed) the tlog-witness state database
// at path (":memory:" for a private in-memory one).
func OpenTreeHeads(ctx context.Context, path string) (*SQLiteTreeHeads, error) {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(5000)")
	dsn := ":memory:?" + q.Encode()
	if path != ":memory:" {
		abs, err := filepath.Abs(path)
		if err != nil {
			return nil, fmt.Errorf("tlog-witness state %q: %w", path, err)
		}
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous(FULL)")
		q.Set("_txlock", "immediate")
		dsn = (&url.URL{Scheme: "file", Path: filepath.ToSlash(abs), RawQuery: q.Encode()}).String()
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("tlog-witness state %q: %w", path, err)
	}
	if path == ":memory:" {
		db.SetMaxOpenConns(1)
	}
	_, err = db.ExecContext(ctx, `
		CREATE TABLE IF NOT EXISTS tlog_head (
			origin TEXT PRIMARY KEY,
			size INTEGER NOT NULL,
			hash BLOB NOT NULL,
			checkpoint BLOB NOT NULL,
			cosigned_at INTEGER NOT NULL
		);
		CREATE TABLE IF NOT EXISTS tlog_history (
			origin TEXT NOT NULL,
			size INTEGER NOT NULL,
			hash BLOB NOT NULL,
			checkpoint BLOB NOT NULL,
			cosigned_at INTEGER NOT NULL,
			PRIMARY KEY (origin, size)
		);`)
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("tlog-witness state %q: schema: %w", path, err)
	}
	return &SQLiteTreeHeads{db: db}, nil
}

func scanHead(row *sql.Row) (TreeHead, bool, error) {
	var h TreeHead
	var hash []byte
	err := row.Scan(&h.Size, &hash, &h.Checkpoint, &h.CosignedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return TreeHead{}, false, nil
	}
	if err != nil {
		return TreeHead{}, false, err
	}
	if len(hash) != tlog.HashSize {
		return TreeHead{}, false, fmt.Errorf("stored root hash is %d bytes", len(hash))
	}
	h.Hash = tlog.Hash(hash)
	return h, true, nil
}

// Latest implements TreeHeadStore.
func (s *SQLiteTreeHeads) Latest(ctx context.Context, origin string) (TreeHead, bool, error) {
	h, ok, err := scanHead(s.db.QueryRowContext(ctx,
		`SELECT size, hash, checkpoint, cosigned_at FROM tlog_head WHERE origin = ?`, origin))
	if err != nil {
		return TreeHead{}, false, fmt.Errorf("tlog-witness state: latest head of %q: %w", origin, err)
	}
	return h, ok, nil
}

// At implements TreeHeadStore.
func (s *SQLiteTreeHeads) At(ctx context.Context, origin string, size int64) (TreeHead, bool, error) {
	h, ok, err := scanHead(s.db.QueryRowContext(ctx,
		`SELECT size, hash, checkpoint, cosigned_at FROM tlog_history WHERE origin = ? AND size = ?`, origin, size))
	if err != nil {
		return TreeHead{}, false, fmt.Errorf("tlog-witness state: head of %q at size %d: %w", origin, size, err)
	}
	return h, ok, nil
}

// Advance implements TreeHeadStore. The head row changes in one statement
// conditioned on the old size, so two racing submissions cannot both move
// it (the spec's rollback race); the history row commits in the same
// transaction.
func (s *SQLiteTreeHeads) Advance(ctx context.Context, origin string, oldSize int64, next TreeHead) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("tlog-witness state: begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	var res sql.Result
	if oldSize == 0 {
		// First contact inserts; a head cosigned at size 0 is replaced.
		res, err = tx.ExecContext(ctx, `
			INSERT INTO tlog_head (origin, size, hash, checkpoint, cosigned_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (origin) DO UPDATE SET size = excluded.size, hash = excluded.hash,
				checkpoint = excluded.checkpoint, cosigned_at = excluded.cosigned_at
			WHERE tlog_head.size = 0`,
			origin, next.Size, next.Hash[:], next.Checkpoint, next.CosignedAt)
	} else {
		res, err = tx.ExecContext(ctx, `
			UPDATE tlog_head SET size = ?, hash = ?, checkpoint = ?, cosigned_at = ?
			WHERE origin = ? AND size = ?`,
			next.Size, next.Hash[:], next.Checkpoint, next.CosignedAt, origin, oldSize)
	}
	if err != nil {
		return fmt.Errorf("tlog-witness state: advance %q from %d to %d: %w", origin, oldSize, next.Size, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		cur, _, lerr := scanHead(tx.QueryRowContext(ctx, `SELECT size, hash, checkpoint, cosigned_at FROM tlog_head WHERE origin = ?`, origin))
		if lerr != nil {
			return fmt.Errorf("tlog-witness state: advance %q: %w", origin, lerr)
		}
		return &TreeHeadConflictError{Origin: origin, Want: oldSize, Current: cur.Size}
	}
	_, err = tx.ExecContext(ctx, `
		INSERT INTO tlog_history (origin, size, hash, checkpoint, cosigned_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (origin, size) DO UPDATE SET cosigned_at = excluded.cosigned_at`,
		origin, next.Size, next.Hash[:], next.Checkpoint, next.CosignedAt)
	if err != nil {
		return fmt.Errorf("tlog-witness state: history of %q at %d: %w", origin, next.Size, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("tlog-witness state: commit %q at %d: %w", origin, next.Size, err)
	}
	return nil
}

// Close implements TreeHeadStore.
func (s *SQLiteTreeHeads) Close() error { return s.db.Close() }
