// Package pebblestore is a durable store.Store and store.Batcher on
// CockroachDB's Pebble (github.com/cockroachdb/pebble/v2), an LSM key/value
// store. Init's config is a directory path, created (0700) if missing.
//
// Every mutation is one pebble batch committed with pebble.Sync, so it is
// atomic and durable (fsynced) when the call returns. Id counters are
// persisted in the same batch as the row they allocate, so ids are never
// reused, even after witness GC and reopen. Inserts check for a duplicate
// seqno and reserve it under a mutex, then commit outside it, so concurrent
// writers share fsyncs through pebble's group commit. The key layout is in
// keys.go, the value encoding in codec.go.
//
// Importing the package registers it as backend "pebble" for store.Open.
package pebblestore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/wire"
)

func init() {
	store.Register("pebble", func() store.Store { return New() })
}

// Memory defaults, sized for an audit log's append-mostly workload: the
// block cache holds recent segments' entries for sealing and proofs, and
// the memtables absorb bursts of appends while a flush runs. Pebble's
// memory is about CacheSize + MemTableSize × MemTableStopWritesThreshold.
const (
	// DefaultCacheSize is the default block cache size in bytes.
	DefaultCacheSize = 16 << 20
	// DefaultMemTableSize is the default size of one memtable in bytes.
	DefaultMemTableSize = 4 << 20
	// DefaultMemTableStopWritesThreshold is the default number of
	// memtables (one mutable, the rest queued for flush) at which writes
	// stall until a flush completes.
	DefaultMemTableStopWritesThreshold = 4
	// DefaultBlockSize is the default target size of a table's data
	// blocks (pebble's default is 4 KiB). Scans dominate the read side
	// (verify-chain, segment close, exports): with 32 KiB blocks a scan
	// reads, checksums and caches 8× fewer blocks. Measured on the 2-core
	// development machine (load 12-18): verify-chain 1.55-1.60 → 1.07-1.08
	// CPU µs per entry; the price is paid by point reads of blocks that
	// are not cached, which read up to 32 KiB: an inclusion proof in a
	// 300,000-entry segment 86 → 186 CPU µs. Tables written with another
	// size stay readable; compactions rewrite them.
	DefaultBlockSize = 32 << 10
)

// l0CompactionThreshold is how many L0 sublevels trigger a compaction
// into the base level (pebble's default is 4). Every batch of entries also
// writes index, count and meta records, so each flushed L0 table spans
// nearly the whole key space and every L0 compaction rewrites most of the
// base level: with pebble's default, compactions were ~60% of the CPU of
// 100,000 single appends from 256 goroutines (bench/pipeline -child
// group-commit). Letting 16 sublevels accumulate merges them in one pass:
// about half the CPU and 1.5× the appends/s in the same measurement, the
// same peak RSS. Writes stall at 3× this many sublevels.
const l0CompactionThreshold = 16

const defaultDescription = "Default stream created automatically at init."

// Option configures a Store.
type Option func(*options)

type options struct {
	cacheSize         int64
	memTableSize      uint64
	memTableStopWrite int
	blockSize         int
	logger            *slog.Logger
	noQueryIndexes    bool
}

// WithCacheSize sets pebble's block cache size in bytes (default
// DefaultCacheSize; ≤ 0 keeps the default).
func WithCacheSize(bytes int64) Option {
	return func(o *options) {
		if bytes > 0 {
			o.cacheSize = bytes
		}
	}
}

// WithMemTables sets the size of one memtable in bytes and the number of
// memtables at which writes stall (defaults DefaultMemTableSize and
// DefaultMemTableStopWritesThreshold; values ≤ 0 keep the default).
func WithMemTables(size int64, stopWritesThreshold int) Option {
	return func(o *options) {
		if size > 0 {
			o.memTableSize = uint64(size)
		}
		if stopWritesThreshold > 0 {
			o.memTableStopWrite = stopWritesThreshold
		}
	}
}

// WithBlockSize sets the target size in bytes of the data blocks of the
// tables pebble writes from now on (default DefaultBlockSize; ≤ 0 keeps
// the default). Existing tables keep theirs until compacted.
func WithBlockSize(bytes int) Option {
	return func(o *options) {
		if bytes > 0 {
			o.blockSize = bytes
		}
	}
}

// WithoutQueryIndexesForBenchmark makes the store write entries without
// their secondary index records and entry counts (issue 12), to measure
// what they cost (bench/pipeline -index-cost). It is for measurements only:
// such a store cannot answer QueryEntries or CountEntries, Init refuses to
// open a store that has entries unless it was written this way too, and a
// store written this way is marked so that Init without the option refuses
// it.
func WithoutQueryIndexesForBenchmark() Option { return func(o *options) { o.noQueryIndexes = true } }

// WithLogger sends pebble's messages to l: informational ones at debug
// level, errors at error level (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// Store is the Pebble store. Create it with New and call Init.
type Store struct {
	opts options

	// life is held shared by every operation and exclusively by Init and
	// Close, so Close waits for operations in flight.
	life sync.RWMutex
	db   *pebble.DB
	dir  string
	done bool // closed or init failed permanently

	// cmu is held from reading the entry counts of a batch's streams to
	// its commit (the counts are read-modify-write records).
	cmu sync.Mutex

	// smu guards streams, the stream rows by name that StreamGet returned
	// or a write stored (an appender reads its stream's row once per
	// batch; a point read is two gets through every level-0 sublevel).
	// Every stream write holds wmu and updates the cache after its
	// commit, and StreamGet fills it on a miss under wmu, so the cache
	// never holds a row older than the store's. Bounded: cleared when it
	// holds maxCachedStreams rows.
	smu     sync.Mutex
	streams map[string]wire.StreamRow

	// wmu serialises read-modify-write mutations and guards the fields below.
	wmu        sync.Mutex
	pending    map[uint64]struct{} // seqnos being committed
	maxSeen    uint64              // ≥ every seqno stored or pending
	lastSeg    uint64
	lastWit    int64
	lastStream uint64

	// tmu guards sealedEnd: per stream, the highest seq_end of its
	// segments, or 0 for none (lastSealed). Absent streams are read from
	// the index once; segmentInsert, the only writer of segments (pebble
	// allows one process), keeps the entries it touches current. Bounded:
	// cleared when it holds maxSealedEnds streams.
	tmu       sync.Mutex
	sealedEnd map[string]uint64
	sealedGen uint64 // counts the clears of sealedEnd
}

// maxSealedEnds bounds Store.sealedEnd; a stream dropped from it costs one
// scan of its segment index at its next close.
const maxSealedEnds = 1 << 16

// Compile-time interface checks.
var (
	_ store.EntryQuerier     = (*Store)(nil)
	_ store.EntryCounter     = (*Store)(nil)
	_ store.Store            = (*Store)(nil)
	_ store.SegmentTreeStore = (*Store)(nil)
	_ store.Batcher          = (*Store)(nil)
	_ store.SegmentReserver  = (*Store)(nil)
)

// New returns an uninitialised Pebble store.
func New(opts ...Option) *Store {
	o := options{cacheSize: DefaultCacheSize, memTableSize: DefaultMemTableSize,
		memTableStopWrite: DefaultMemTableStopWritesThreshold, blockSize: DefaultBlockSize, logger: slog.Default()}
	for _, f := range opts {
		f(&o)
	}
	return &Store{opts: o, pending: map[uint64]struct{}{}, streams: map[string]wire.StreamRow{}}
}

// Init opens (creating if needed) the pebble database in directory config,
// checks the schema version, loads the id counters and seeds the "default"
// stream if absent. A second Init is an error.
func (s *Store) Init(ctx context.Context, config string) error {
	if config == "" {
		return errors.New("init pebble store: empty config (want a directory path)")
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("open pebble store %q: %w", config, err)
	}
	s.life.Lock()
	defer s.life.Unlock()
	if s.db != nil || s.done {
		return fmt.Errorf("open pebble store %q: store already initialised or closed", config)
	}
	if err := os.MkdirAll(config, 0o700); err != nil {
		return fmt.Errorf("open pebble store %q: %w", config, err)
	}
	po := &pebble.Options{
		CacheSize:                   s.opts.cacheSize,
		MemTableSize:                s.opts.memTableSize,
		MemTableStopWritesThreshold: s.opts.memTableStopWrite,
		L0CompactionThreshold:       l0CompactionThreshold,
		L0StopWritesThreshold:       3 * l0CompactionThreshold,
		Logger:                      slogLogger{s.opts.logger},
	}
	po.Levels[0].BlockSize = s.opts.blockSize // the other levels inherit it
	db, err := pebble.Open(config, po)
	if err != nil {
		return fmt.Errorf("open pebble store %q: %w", config, err)
	}
	if err := s.setup(db); err != nil {
		_ = db.Close()
		return fmt.Errorf("open pebble store %q: %w", config, err)
	}
	s.db, s.dir = db, config
	return nil
}

// setup checks the schema, loads counters and seeds the default stream.
func (s *Store) setup(db *pebble.DB) error {
	b := db.NewBatch()
	defer b.Close()
	v, found, err := get(db, keyVersion)
	switch {
	case err != nil:
		return err
	case !found:
		if err := b.Set(keyVersion, []byte{schemaVersion}, nil); err != nil {
			return err
		}
	case len(v) == 1 && v[0] >= 1 && v[0] < schemaVersion:
		// Version 1 had no secondary indexes, 2 no entry counts, 3 no
		// urgent index, 4 keyed it without the severity, 5 wrote one index
		// record per entry and no high marks, 6 kept them after the rows:
		// drop them and build the current ones, then record the current
		// version (which older builds refuse, so they cannot add entries
		// without index records).
		if err := rebuildIndexes(db, 10000); err != nil {
			return fmt.Errorf("upgrade schema %d → %d (rebuild the entry indexes and counts): %w", v[0], schemaVersion, err)
		}
		if err := b.Set(keyVersion, []byte{schemaVersion}, nil); err != nil {
			return err
		}
	case len(v) != 1 || v[0] != schemaVersion:
		return fmt.Errorf("unsupported schema version %v (this build reads 1 to %d)", v, schemaVersion)
	}
	var wit uint64
	counters := []struct {
		key []byte
		dst *uint64
	}{{keySegCounter, &s.lastSeg}, {keyStreamCounter, &s.lastStream}, {keyWitnessCounter, &wit}}
	for _, c := range counters {
		v, found, err := get(db, c.key)
		if err != nil {
			return err
		}
		if found {
			if *c.dst, err = u64(v); err != nil {
				return fmt.Errorf("counter %q: %w", c.key, err)
			}
		}
	}
	s.lastWit = int64(wit)
	s.tmu.Lock()
	s.sealedEnd = map[string]uint64{}
	s.sealedGen++
	s.tmu.Unlock()
	p := []byte(prefixEntry)
	if err := scan(db, p, upperBound(p), true, func(k, _ []byte) (bool, error) {
		s.maxSeen, err = u64(k[len(p):])
		return false, err
	}); err != nil {
		return err
	}
	if err := s.checkNoIndexMark(db, b); err != nil {
		return err
	}
	if _, found, err := get(db, key(prefixStreamByName, []byte("default"))); err != nil {
		return err
	} else if !found {
		desc := defaultDescription
		row := wire.StreamRow{Name: "default", Tier: "public", Description: &desc, CreatedAt: wire.FormatTime(time.Now())}
		if err := s.putNewStream(b, row); err != nil {
			return err
		}
	}
	if b.Empty() {
		return nil
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	return nil
}

// checkNoIndexMark keeps stores with and without query indexes apart
// (WithoutQueryIndexesForBenchmark): it marks a new store written without
// them and refuses to mix the two kinds. The caller has loaded s.maxSeen.
func (s *Store) checkNoIndexMark(db *pebble.DB, b *pebble.Batch) error {
	_, marked, err := get(db, keyNoQueryIndexes)
	switch {
	case err != nil:
		return err
	case marked && !s.opts.noQueryIndexes:
		return errors.New("this store was written without query indexes (a benchmark store, pebblestore.WithoutQueryIndexesForBenchmark) and cannot be used")
	case !marked && s.opts.noQueryIndexes && s.maxSeen > 0:
		return errors.New("this store has query indexes: a benchmark without them needs a new store")
	case !marked && s.opts.noQueryIndexes:
		return b.Set(keyNoQueryIndexes, []byte{1}, nil)
	}
	return nil
}

// errNoQueryIndexes is the error of queries on a store written without
// query indexes.
var errNoQueryIndexes = errors.New("store written without query indexes (benchmark option)")

// Compact flushes the memtables and compacts the whole keyspace, waiting
// until done: after a bulk load, so that later reads (and measurements of
// them) do not share the machine with the load's background compactions.
func (s *Store) Compact(ctx context.Context) error {
	db, err := s.acquire(ctx)
	if err != nil {
		return err
	}
	defer s.release()
	if err := db.Flush(); err != nil {
		return fmt.Errorf("pebble store %q: flush: %w", s.dir, err)
	}
	if err := db.Compact(ctx, []byte{0}, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, true); err != nil {
		return fmt.Errorf("pebble store %q: compact: %w", s.dir, err)
	}
	return nil
}

// Close closes the database after operations in flight finished. Later
// operations fail; closing again is a no-op.
func (s *Store) Close() error {
	s.life.Lock()
	defer s.life.Unlock()
	s.done = true
	if s.db == nil {
		return nil
	}
	db := s.db
	s.db = nil
	if err := db.Close(); err != nil {
		return fmt.Errorf("close pebble store %q: %w", s.dir, err)
	}
	return nil
}

// acquire takes the shared life lock and returns the open database; the
// caller must call s.life.RUnlock when err is nil.
func (s *Store) acquire(ctx context.Context) (*pebble.DB, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.life.RLock()
	if s.db == nil {
		s.life.RUnlock()
		if s.done {
			return nil, fmt.Errorf("pebble store %q is closed", s.dir)
		}
		return nil, store.ErrNotInitialized
	}
	return s.db, nil
}

func (s *Store) release() { s.life.RUnlock() }

// get returns a copy of the value of k.
func get(r pebble.Reader, k []byte) ([]byte, bool, error) {
	v, closer, err := r.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("get %q: %w", k, err)
	}
	out := append([]byte{}, v...)
	if err := closer.Close(); err != nil {
		return nil, false, err
	}
	return out, true, nil
}

// scan calls fn for every key in [lo, hi) in order (reverse: descending)
// until fn returns false.
func scan(r pebble.Reader, lo, hi []byte, reverse bool, fn func(k, v []byte) (bool, error)) error {
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return fmt.Errorf("iterate %q: %w", lo, err)
	}
	step, valid := it.Next, it.First()
	if reverse {
		step, valid = it.Prev, it.Last()
	}
	for ; valid; valid = step() {
		v, err := it.ValueAndErr()
		if err != nil {
			_ = it.Close()
			return err
		}
		more, err := fn(it.Key(), v)
		if err != nil {
			_ = it.Close()
			return err
		}
		if !more {
			break
		}
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("iterate %q: %w", lo, err)
	}
	return nil
}

// commit commits b durably.
func (s *Store) commit(b *pebble.Batch, what string) error {
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("pebble store %q: %s: %w", s.dir, what, err)
	}
	return nil
}

// slogLogger adapts pebble's logger to slog.
type slogLogger struct{ l *slog.Logger }

func (g slogLogger) Infof(format string, args ...any) {
	g.l.Debug(fmt.Sprintf(format, args...), "component", "pebble")
}

func (g slogLogger) Errorf(format string, args ...any) {
	g.l.Error(fmt.Sprintf(format, args...), "component", "pebble")
}

func (g slogLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	g.l.Error(msg, "component", "pebble", "fatal", true)
	panic("pebble: " + msg)
}
