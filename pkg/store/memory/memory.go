// Package memory is an in-memory store.Store and store.Batcher: maps and
// sorted per-stream slices behind one RWMutex. Nothing survives Close; it is
// meant for tests, benchmarks and ephemeral logs.
//
// Init accepts any non-empty config (it only names the instance). Importing
// the package registers it as backend "memory" for store.Open.
//
// Semantics are those of the conformance suite (package storetest): SPEC §15
// with DECISIONS 10 (streams in creation order) and 18 (witness GC compares
// parsed times).
package memory

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/wire"
)

func init() {
	store.Register("memory", func() store.Store { return New() })
}

// Store is the in-memory store. The zero value is not usable; call New.
type Store struct {
	mu     sync.RWMutex
	inited bool
	closed bool
	name   string

	entries   map[uint64]wire.EntryRow // owned copies
	byStream  map[string][]uint64      // ascending seqnos per stream
	globalMax uint64

	segments   map[uint64]*segment
	segStreams map[string][]uint64 // ascending ids per stream
	forSeqno   map[uint64]uint64   // seqno -> lowest segment id containing it
	lastSegID  uint64              // highest stored or reserved segment id
	reserved   map[string]uint64   // stream -> reserved segment id

	witnesses   map[int64]wire.WitnessRow
	witStreams  map[string][]int64 // ascending ids per stream
	lastWitness int64

	streams    []wire.StreamRow // creation order
	streamsPos map[string]int

	meta map[string][]byte
}

type segment struct {
	row     wire.SegmentRow
	members []uint64 // seqnos ordered by leaf index
	// tree holds the stored Merkle tree chunks by level and chunk number
	// (nil if the segment was inserted without a tree).
	tree map[treePos][]byte
}

type treePos struct {
	level int
	chunk uint64
}

// Compile-time interface checks.
var (
	_ store.Store            = (*Store)(nil)
	_ store.Batcher          = (*Store)(nil)
	_ store.SegmentTreeStore = (*Store)(nil)
	_ store.SegmentReserver  = (*Store)(nil)
)

// New returns an uninitialised memory store; call Init before use.
func New() *Store { return &Store{} }

// Init initialises the store; config must be non-empty and is only kept as
// the instance name. A second Init is an error.
func (s *Store) Init(_ context.Context, config string) error {
	if config == "" {
		return fmt.Errorf("init memory store: empty config (want any non-empty name)")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inited || s.closed {
		return fmt.Errorf("init memory store %q: already initialised", config)
	}
	s.name = config
	s.entries = map[uint64]wire.EntryRow{}
	s.byStream = map[string][]uint64{}
	s.segments = map[uint64]*segment{}
	s.segStreams = map[string][]uint64{}
	s.forSeqno = map[uint64]uint64{}
	s.reserved = map[string]uint64{}
	s.witnesses = map[int64]wire.WitnessRow{}
	s.witStreams = map[string][]int64{}
	s.streamsPos = map[string]int{}
	s.meta = map[string][]byte{}
	desc := defaultDescription
	s.putStream(wire.StreamRow{Name: "default", Tier: "public", Description: &desc, CreatedAt: wire.FormatTime(time.Now())})
	s.inited = true
	return nil
}

const defaultDescription = "Default stream created automatically at init."

// Close releases the maps. Later operations fail.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inited, s.closed = false, true
	s.entries, s.byStream, s.segments, s.segStreams, s.forSeqno = nil, nil, nil, nil, nil
	s.witnesses, s.witStreams, s.streams, s.streamsPos, s.meta = nil, nil, nil, nil, nil
	return nil
}

func (s *Store) ready() error {
	if !s.inited {
		return store.ErrNotInitialized
	}
	return nil
}

// rlock takes the read lock and checks initialisation; on error the lock
// is already released.
func (s *Store) rlock() error {
	s.mu.RLock()
	if err := s.ready(); err != nil {
		s.mu.RUnlock()
		return err
	}
	return nil
}

func (s *Store) lock() error {
	s.mu.Lock()
	if err := s.ready(); err != nil {
		s.mu.Unlock()
		return err
	}
	return nil
}

func duplicateErr(seqno uint64) error { return &store.DuplicateSeqnoError{Seqno: seqno} }

var errNoSeqno = store.ErrMissingSeqno

// Insert stores a copy of the row.
func (s *Store) Insert(_ context.Context, row wire.EntryRow) (uint64, error) {
	if row.Seqno == 0 {
		return 0, errNoSeqno
	}
	if err := s.lock(); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	if _, dup := s.entries[row.Seqno]; dup {
		return 0, duplicateErr(row.Seqno)
	}
	s.putEntry(row.Clone())
	return row.Seqno, nil
}

// putEntry adds an owned row; the caller holds the write lock and checked
// uniqueness.
func (s *Store) putEntry(row wire.EntryRow) {
	s.entries[row.Seqno] = row
	list := s.byStream[row.StreamID]
	if n := len(list); n == 0 || list[n-1] < row.Seqno {
		list = append(list, row.Seqno) // the common, ascending case
	} else {
		i, _ := slices.BinarySearch(list, row.Seqno)
		list = slices.Insert(list, i, row.Seqno)
	}
	s.byStream[row.StreamID] = list
	s.globalMax = max(s.globalMax, row.Seqno)
}

// CommitBatch stores every entry and meta record, or nothing.
func (s *Store) CommitBatch(_ context.Context, b store.Batch) error {
	if err := s.lock(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	seen := make(map[uint64]struct{}, len(b.Entries))
	for _, r := range b.Entries {
		if r.Seqno == 0 {
			return fmt.Errorf("commit batch: %w", errNoSeqno)
		}
		if _, dup := s.entries[r.Seqno]; dup {
			return fmt.Errorf("commit batch: %w", duplicateErr(r.Seqno))
		}
		if _, dup := seen[r.Seqno]; dup {
			return fmt.Errorf("commit batch: %w", duplicateErr(r.Seqno))
		}
		seen[r.Seqno] = struct{}{}
	}
	for _, r := range b.Entries {
		s.putEntry(r.Clone())
	}
	for k, v := range b.Meta {
		s.meta[k] = append([]byte{}, v...)
	}
	return nil
}

// GetMeta returns a copy of a meta record.
func (s *Store) GetMeta(_ context.Context, key string) ([]byte, bool, error) {
	if err := s.rlock(); err != nil {
		return nil, false, err
	}
	defer s.mu.RUnlock()
	v, ok := s.meta[key]
	if !ok {
		return nil, false, nil
	}
	return append([]byte{}, v...), true, nil
}

// GlobalHead returns the highest seqno stored.
func (s *Store) GlobalHead(context.Context) (uint64, bool, error) {
	if err := s.rlock(); err != nil {
		return 0, false, err
	}
	defer s.mu.RUnlock()
	return s.globalMax, s.globalMax != 0, nil
}

// Get returns a copy of the row with the seqno.
func (s *Store) Get(_ context.Context, seqno uint64) (wire.EntryRow, bool, error) {
	if err := s.rlock(); err != nil {
		return wire.EntryRow{}, false, err
	}
	defer s.mu.RUnlock()
	r, ok := s.entries[seqno]
	if !ok {
		return wire.EntryRow{}, false, nil
	}
	return r.Clone(), true, nil
}

// Range returns copies of the stream's rows with from ≤ seqno ≤ to, found
// by binary search in the stream's sorted seqnos.
func (s *Store) Range(_ context.Context, stream string, from, to uint64) ([]wire.EntryRow, error) {
	if err := s.rlock(); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	if from > to {
		return []wire.EntryRow{}, nil
	}
	list := s.byStream[stream]
	lo, _ := slices.BinarySearch(list, from)
	hi := lo + sort.Search(len(list)-lo, func(i int) bool { return list[lo+i] > to })
	out := make([]wire.EntryRow, 0, hi-lo)
	for _, n := range list[lo:hi] {
		out = append(out, s.entries[n].Clone())
	}
	return out, nil
}

// Head returns the stream's highest seqno.
func (s *Store) Head(_ context.Context, stream string) (uint64, bool, error) {
	if err := s.rlock(); err != nil {
		return 0, false, err
	}
	defer s.mu.RUnlock()
	list := s.byStream[stream]
	if len(list) == 0 {
		return 0, false, nil
	}
	return list[len(list)-1], true, nil
}

// Last returns a copy of the stream's row with the highest seqno.
func (s *Store) Last(_ context.Context, stream string) (wire.EntryRow, bool, error) {
	if err := s.rlock(); err != nil {
		return wire.EntryRow{}, false, err
	}
	defer s.mu.RUnlock()
	list := s.byStream[stream]
	if len(list) == 0 {
		return wire.EntryRow{}, false, nil
	}
	return s.entries[list[len(list)-1]].Clone(), true, nil
}
