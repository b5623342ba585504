// Package sqlitestore is the SQLite backend of store.Store: the relational
// schema of SPEC §18 on the pure-Go driver modernc.org/sqlite (no cgo).
//
// The Init config is a database file path or ":memory:". File databases run
// with journal_mode=WAL, synchronous=FULL (a write that returned is on disk),
// foreign_keys=ON and a busy timeout, so several processes may share a file.
// Writes from one Store are serialised by a mutex; reads run concurrently.
//
// Differences from the reference backend (DECISIONS 10, 18, 22): each schema
// migration runs in its own transaction; the seeded "default" stream gets an
// RFC 3339 created_at written from Go; stream lists are in creation order;
// witness GC compares parsed times; u64 values above 2^63−1 are rejected
// instead of wrapping. Migration 5 adds a key/value table for store.Batcher.
package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/wire"
)

// MemoryConfig is the Init config of a private in-memory database.
const MemoryConfig = ":memory:"

// DefaultBusyTimeout is how long a statement waits for a lock held by
// another connection or process before failing with SQLITE_BUSY.
const DefaultBusyTimeout = 10 * time.Second

const (
	defaultStream            = "default"
	defaultStreamTier        = "public"
	defaultStreamDescription = "Default stream created automatically at init."
)

// Store is the SQLite store. The zero value is not usable; call New, then Init.
type Store struct {
	mu  sync.RWMutex // guards db against Init/Close
	wmu sync.Mutex   // serialises write transactions of this Store
	db  *sql.DB
	// now is the clock used for the default stream's created_at.
	now func() time.Time
}

var (
	_ store.Store            = (*Store)(nil)
	_ store.Batcher          = (*Store)(nil)
	_ store.SegmentTreeStore = (*Store)(nil)
	_ store.SegmentReserver  = (*Store)(nil)
)

// New returns an uninitialised SQLite store.
func New() *Store { return &Store{now: time.Now} }

// Init opens the database named by config (a file path or ":memory:"),
// applies the schema migrations and seeds the "default" stream if absent.
func (s *Store) Init(ctx context.Context, config string) error {
	if config == "" {
		return errors.New("sqlite store: init config is empty; pass a database path or \":memory:\"")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db != nil {
		return errors.New("sqlite store: already initialized")
	}
	dsn, memory, err := buildDSN(config)
	if err != nil {
		return err
	}
	if !memory {
		if err := createPrivate(config); err != nil {
			return err
		}
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return fmt.Errorf("sqlite store: open %q: %w", config, err)
	}
	if memory {
		// Every connection to ":memory:" is its own database: use one.
		db.SetMaxOpenConns(1)
	}
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return fmt.Errorf("sqlite store: open %q: %w", config, err)
	}
	if err := migrate(ctx, db); err != nil {
		_ = db.Close()
		return fmt.Errorf("sqlite store: schema setup of %q: %w", config, err)
	}
	_, err = db.ExecContext(ctx, `INSERT INTO secure_log_streams (name, tier, description, created_at, deprecated_at)
		VALUES (?, ?, ?, ?, NULL) ON CONFLICT(name) DO NOTHING`,
		defaultStream, defaultStreamTier, defaultStreamDescription, wire.FormatTime(s.now()))
	if err != nil {
		_ = db.Close()
		return fmt.Errorf("sqlite store: seed default stream in %q: %w", config, err)
	}
	s.db = db
	return nil
}

// FileMode is the permission of a database file Init creates; SQLite gives
// its -wal and -shm files the same mode.
const FileMode = 0o600

// createPrivate creates the database file with FileMode if it does not
// exist yet, so SQLite never creates it with the process umask (0644).
func createPrivate(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, FileMode)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("sqlite store: create %q: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("sqlite store: create %q: %w", path, err)
	}
	return nil
}

// buildDSN turns the config into a driver DSN that applies the pragmas on
// every pooled connection.
func buildDSN(config string) (dsn string, memory bool, err error) {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", DefaultBusyTimeout.Milliseconds()))
	q.Add("_pragma", "foreign_keys(1)")
	if config == MemoryConfig {
		return MemoryConfig + "?" + q.Encode(), true, nil
	}
	abs, err := filepath.Abs(config)
	if err != nil {
		return "", false, fmt.Errorf("sqlite store: database path %q: %w", config, err)
	}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Set("_txlock", "immediate")
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs), RawQuery: q.Encode()}
	// url.URL writes "file:///abs/path?..." with '?', '#' and '%' in the
	// path escaped, which SQLite's URI parser decodes.
	return u.String(), false, nil
}

// Close closes the database. Operations after Close fail with
// store.ErrNotInitialized.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil {
		return nil
	}
	err := s.db.Close()
	s.db = nil
	if err != nil {
		return fmt.Errorf("sqlite store: close: %w", err)
	}
	return nil
}

// handle returns the open database, read-locking s.mu until release runs.
func (s *Store) handle() (db *sql.DB, release func(), err error) {
	s.mu.RLock()
	if s.db == nil {
		s.mu.RUnlock()
		return nil, nil, store.ErrNotInitialized
	}
	return s.db, s.mu.RUnlock, nil
}

// write runs fn in one transaction, serialised with the Store's other
// writes, and commits it (durably, on a file database).
func (s *Store) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	db, release, err := s.handle()
	if err != nil {
		return err
	}
	defer release()
	s.wmu.Lock()
	defer s.wmu.Unlock()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite store: begin: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite store: commit: %w", err)
	}
	return nil
}

// toInt64 converts a u64 for storage, rejecting values SQLite cannot hold.
func toInt64(what string, v uint64) (int64, error) {
	if v > math.MaxInt64 {
		return 0, fmt.Errorf("sqlite store: %s %d exceeds the SQLite integer range (max %d)", what, v, int64(math.MaxInt64))
	}
	return int64(v), nil
}

// fromInt64 converts a stored integer back to u64; negative values (written
// by a backend that wrapped u64s) are reported, not reinterpreted.
func fromInt64(what string, v int64) (uint64, error) {
	if v < 0 {
		return 0, fmt.Errorf("sqlite store: stored %s %d is negative", what, v)
	}
	return uint64(v), nil
}

// clampKey maps a u64 lookup key to int64; keys above the SQLite range
// cannot exist, reported as ok=false.
func clampKey(v uint64) (int64, bool) {
	if v > math.MaxInt64 {
		return 0, false
	}
	return int64(v), true
}

// isUniqueViolation reports whether err is a SQLite primary-key or unique
// constraint failure.
func isUniqueViolation(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	const constraintPrimaryKey, constraintUnique = 1555, 2067 // SQLITE_CONSTRAINT_*
	return se.Code() == constraintPrimaryKey || se.Code() == constraintUnique
}

// nonNil returns b, or an empty slice if b is nil (NOT NULL blob columns).
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
