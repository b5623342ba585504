// Package store defines the storage seam of securelog: the Store interface
// with the store operations of SPEC §15 (init + 23), its read side
// ReadStore (all that reading, verifying and proving need), the optional
// interfaces a backend may add (Batcher, SegmentTreeStore,
// SegmentReserver, the query indexes) and the seam's typed errors. The
// backends live in the subpackages and share no code; the conformance
// suite (storetest) keeps them consistent.
//
// Hashing and chaining are done by the log (package securelog); a store
// enforces key uniqueness and one invariant of the log itself: a stream's
// segments partition its entries (SegmentInsert refuses an overlapping or
// gapped segment atomically, see CheckSegment). Contract errors are typed
// (errors.go) in every backend. Every backend must pass the conformance
// suite in package storetest.
package store

import (
	"context"
	"errors"

	"github.com/securelog/securelog/pkg/wire"
)

// ErrNotInitialized is returned by every operation before Init succeeded.
var ErrNotInitialized = errors.New("store not initialized: call init first")

// ReadStore is the read side of the seam: what reading, verifying and
// proving need (securelog.Reader), and nothing that writes. Every Store is
// a ReadStore; a read-only client (a producer awaiting a proof, a query
// API, a witness cross-check) needs no more.
//
// Implementations must be safe for concurrent use. Rows returned are owned
// by the caller.
type ReadStore interface {
	// Get returns the row with the seqno.
	Get(ctx context.Context, seqno uint64) (wire.EntryRow, bool, error)
	// Range returns the stream's rows with from ≤ seqno ≤ to, ascending; from > to → empty.
	Range(ctx context.Context, stream string, from, to uint64) ([]wire.EntryRow, error)
	// Head returns the highest seqno of the stream.
	Head(ctx context.Context, stream string) (uint64, bool, error)

	// SegmentGet returns a segment by id.
	SegmentGet(ctx context.Context, id uint64) (wire.SegmentRow, bool, error)
	// SegmentsList returns the stream's segments by ascending id.
	SegmentsList(ctx context.Context, stream string) ([]wire.SegmentRow, error)
	// SegmentLastSeqno returns the highest seq_end over the stream's segments.
	SegmentLastSeqno(ctx context.Context, stream string) (uint64, bool, error)
	// SegmentEntrySeqnos returns the segment's member seqnos ordered by leaf index.
	SegmentEntrySeqnos(ctx context.Context, id uint64) ([]uint64, error)
	// SegmentForSeqno returns the id of the segment containing the seqno.
	SegmentForSeqno(ctx context.Context, seqno uint64) (uint64, bool, error)

	// StreamGet returns the stream row by name.
	StreamGet(ctx context.Context, name string) (wire.StreamRow, bool, error)
	// StreamList returns all stream rows. Order: creation order (DECISIONS 10).
	StreamList(ctx context.Context) ([]wire.StreamRow, error)
}

// Store is the persistence seam (SPEC §15): the reads of ReadStore and the
// writes. Errors are diagnostics; the log wraps them as storage errors.
//
// Implementations must be safe for concurrent use. A mutating operation that
// has returned nil is durable (fsynced, or the backend's equivalent).
// Rows passed in and returned are owned by the caller (implementations copy).
type Store interface {
	ReadStore

	// Init opens and configures the store from its config value (an empty
	// config is an error), runs schema setup and seeds the "default" stream
	// if absent.
	Init(ctx context.Context, config string) error

	// Insert stores an entry row. row.Seqno must be non-zero
	// (ErrMissingSeqno); a duplicate seqno is *DuplicateSeqnoError.
	// Returns the seqno.
	Insert(ctx context.Context, row wire.EntryRow) (uint64, error)
	// GlobalHead returns the highest seqno over all streams.
	GlobalHead(ctx context.Context) (uint64, bool, error)
	// Last returns the row with the highest seqno of the stream.
	Last(ctx context.Context, stream string) (wire.EntryRow, bool, error)

	// SegmentInsert assigns a new global segment id (ignoring row.SegmentID),
	// stores the row and one membership record per pair atomically, and
	// returns the id. Atomically with the insert it refuses, with
	// *SegmentOverlapError, a segment that overlaps one of the stream's
	// segments or does not start at the stream's first unsealed entry
	// (CheckSegment).
	SegmentInsert(ctx context.Context, row wire.SegmentRow, entries []wire.SegmentEntry) (uint64, error)
	// SegmentSetSignature overwrites the segment's signature and signer
	// identity; a missing segment is *SegmentNotFoundError.
	SegmentSetSignature(ctx context.Context, id uint64, sig []byte, signer string) error

	// WitnessInsert assigns a new global id (ignoring row.ID, starting at 1),
	// stores the row and returns the id.
	WitnessInsert(ctx context.Context, row wire.WitnessRow) (int64, error)
	// WitnessLatest returns the stream's row with the highest id.
	WitnessLatest(ctx context.Context, stream string) (wire.WitnessRow, bool, error)
	// WitnessList returns the stream's rows by ascending id.
	WitnessList(ctx context.Context, stream string) ([]wire.WitnessRow, error)
	// WitnessStreamIDs returns the distinct stream ids with witness rows, ascending.
	WitnessStreamIDs(ctx context.Context) ([]string, error)
	// WitnessGC deletes witness rows per SPEC §15.5 with DECISIONS 18 (times
	// compared parsed, keep_latest 0 keeps none; WitnessGCPolicy) and
	// returns how many.
	WitnessGC(ctx context.Context, stream *string, keepLatest *uint32, olderThan *string) (uint32, error)

	// StreamUpsert inserts or replaces the stream row by name.
	StreamUpsert(ctx context.Context, row wire.StreamRow) error
	// StreamSetTier sets the tier; a missing stream is *StreamNotFoundError.
	StreamSetTier(ctx context.Context, name, tier string) error
	// StreamDeprecate sets deprecated_at; a missing stream is *StreamNotFoundError.
	StreamDeprecate(ctx context.Context, name, deprecatedAt string) error

	// Close releases the store's resources.
	Close() error
}

// Batch is a group of writes committed atomically and durably in one write.
// Meta holds small key/value records (for example a consumer position) that
// must commit together with the entries.
type Batch struct {
	Entries []wire.EntryRow
	Meta    map[string][]byte
}

// Batcher is implemented by stores that can commit a Batch in one synced
// write. The log uses it for batch appends; stores without it get one Insert
// per entry.
type Batcher interface {
	// CommitBatch stores every entry and meta record atomically; duplicate
	// seqnos fail the whole batch and nothing is written.
	CommitBatch(ctx context.Context, b Batch) error
	// GetMeta returns a meta record written by CommitBatch.
	GetMeta(ctx context.Context, key string) ([]byte, bool, error)
}
