package pebblestore

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"

	"github.com/cockroachdb/pebble/v2"

	"github.com/securelog/securelog/pkg/query"
	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/wire"
)

var errNoSeqno = store.ErrMissingSeqno

func duplicateErr(seqno uint64) error { return &store.DuplicateSeqnoError{Seqno: seqno} }

// reserve checks that none of the seqnos is stored or being committed and
// marks them pending. On success the caller must call unreserve. A seqno
// above every seqno stored or reserved so far (the append pattern) needs no
// lookup.
func (s *Store) reserve(db *pebble.DB, seqnos []uint64) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	var inBatch map[uint64]struct{}
	if len(seqnos) > 1 {
		inBatch = make(map[uint64]struct{}, len(seqnos))
	}
	for _, n := range seqnos {
		if n == 0 {
			return errNoSeqno
		}
		if _, dup := s.pending[n]; dup {
			return duplicateErr(n)
		}
		if inBatch != nil {
			if _, dup := inBatch[n]; dup {
				return duplicateErr(n)
			}
			inBatch[n] = struct{}{}
		}
		if n > s.maxSeen {
			continue
		}
		_, found, err := get(db, key(prefixEntry, be64(n)))
		if err != nil {
			return err
		}
		if found {
			return duplicateErr(n)
		}
	}
	for _, n := range seqnos {
		s.pending[n] = struct{}{}
		s.maxSeen = max(s.maxSeen, n)
	}
	return nil
}

func (s *Store) unreserve(seqnos []uint64) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	for _, n := range seqnos {
		delete(s.pending, n)
	}
}

// entryWriter sets entry records in a batch, reusing its key and value
// buffers (pebble copies both into the batch).
type entryWriter struct {
	k, v []byte
}

// set adds the row and its seqno record to the batch (the secondary index
// records of a batch's rows are added by indexBatch, index.go).
func (w *entryWriter) set(b *pebble.Batch, row wire.EntryRow) error {
	w.k = binary.BigEndian.AppendUint64(append(w.k[:0], prefixEntry...), row.Seqno)
	w.v = append(w.v[:0], row.StreamID...)
	if err := b.Set(w.k, w.v, nil); err != nil {
		return err
	}
	w.k = binary.BigEndian.AppendUint64(appendEscStream(append(w.k[:0], prefixStreamEntry...), row.StreamID), row.Seqno)
	w.v = appendEntry(w.v[:0], row)
	return b.Set(w.k, w.v, nil)
}

// Insert stores the row durably.
func (s *Store) Insert(ctx context.Context, row wire.EntryRow) (uint64, error) {
	if row.Seqno == 0 {
		return 0, errNoSeqno
	}
	db, err := s.acquire(ctx)
	if err != nil {
		return 0, err
	}
	defer s.release()
	seqnos := []uint64{row.Seqno}
	if err := s.reserve(db, seqnos); err != nil {
		return 0, err
	}
	defer s.unreserve(seqnos)
	b := db.NewBatch()
	defer b.Close()
	var w entryWriter
	if err := w.set(b, row); err != nil {
		return 0, err
	}
	if !s.opts.noQueryIndexes {
		s.cmu.Lock()
		defer s.cmu.Unlock()
		if err := indexBatch(db, b, []wire.EntryRow{row}); err != nil {
			return 0, err
		}
	}
	if err := s.commit(b, fmt.Sprintf("insert seqno %d", row.Seqno)); err != nil {
		return 0, err
	}
	return row.Seqno, nil
}

// CommitBatch stores every entry and meta record in one synced batch, or
// nothing.
func (s *Store) CommitBatch(ctx context.Context, batch store.Batch) error {
	wait, err := s.StartBatch(ctx, batch)
	if err != nil {
		return err
	}
	return wait()
}

// StartBatch is CommitBatch in two steps, for a writer that pipelines its
// commits (the log's group commit prepares the next batch while this one
// syncs): it checks the batch's seqnos, writes the batch to pebble's
// write-ahead log and applies it, and returns without waiting for the
// log's sync; wait waits for it and returns nil once the batch is durable.
// It guarantees:
//
//   - When StartBatch returns, the batch's records are visible to reads,
//     as every pebble commit's are before its sync, so the next batch
//     (its entry counts, index high marks, duplicate checks) builds on it.
//   - Batches reach the write-ahead log in the order their StartBatch
//     calls returned, and pebble syncs the log in order and stops at its
//     first failed write or sync: a batch is never durable without the
//     batches started before it, and after a failed sync every later
//     batch's wait fails too.
//   - Batches started while another one syncs share the next sync.
//
// The caller must call wait exactly once (Close waits for it). An error
// from StartBatch means nothing was written.
func (s *Store) StartBatch(ctx context.Context, batch store.Batch) (wait func() error, err error) {
	db, err := s.acquire(ctx)
	if err != nil {
		return nil, err
	}
	seqnos := make([]uint64, len(batch.Entries))
	for i, r := range batch.Entries {
		seqnos[i] = r.Seqno
	}
	if len(seqnos) > 0 {
		if err := s.reserve(db, seqnos); err != nil {
			s.release()
			return nil, fmt.Errorf("commit batch: %w", err)
		}
	}
	b := db.NewBatch()
	done := func() {
		_ = b.Close()
		if len(seqnos) > 0 {
			s.unreserve(seqnos)
		}
		s.release()
	}
	if err := s.apply(db, b, batch); err != nil {
		done()
		return nil, err
	}
	return func() error {
		defer done()
		if err := b.SyncWait(); err != nil {
			return fmt.Errorf("pebble store %q: sync batch of %d entries: %w", s.dir, len(batch.Entries), err)
		}
		return nil
	}, nil
}

// apply adds the batch's records to b and applies b without waiting for
// its sync (b.SyncWait does); an empty b is left alone (SyncWait returns
// at once). The entry counts and index high marks are read-modify-write
// records: s.cmu is held from reading them to the apply, after which the
// next batch reads what this one wrote.
func (s *Store) apply(db *pebble.DB, b *pebble.Batch, batch store.Batch) error {
	var w entryWriter
	for _, r := range batch.Entries {
		if err := w.set(b, r); err != nil {
			return err
		}
	}
	for k, v := range batch.Meta {
		if err := b.Set(key(prefixMeta, []byte(k)), v, nil); err != nil {
			return err
		}
	}
	if b.Empty() {
		return nil
	}
	if len(batch.Entries) > 0 && !s.opts.noQueryIndexes {
		s.cmu.Lock()
		defer s.cmu.Unlock()
		if err := indexBatch(db, b, batch.Entries); err != nil {
			return err
		}
	}
	if err := db.ApplyNoSyncWait(b, pebble.Sync); err != nil {
		return fmt.Errorf("pebble store %q: commit batch of %d entries: %w", s.dir, len(batch.Entries), err)
	}
	return nil
}

// GetMeta returns a meta record written by CommitBatch.
func (s *Store) GetMeta(ctx context.Context, k string) ([]byte, bool, error) {
	db, err := s.acquire(ctx)
	if err != nil {
		return nil, false, err
	}
	defer s.release()
	return get(db, key(prefixMeta, []byte(k)))
}

// GlobalHead returns the highest seqno stored.
func (s *Store) GlobalHead(ctx context.Context) (uint64, bool, error) {
	db, err := s.acquire(ctx)
	if err != nil {
		return 0, false, err
	}
	defer s.release()
	p := []byte(prefixEntry)
	var head uint64
	var found bool
	err = scan(db, p, upperBound(p), true, func(k, _ []byte) (bool, error) {
		head, err = u64(k[len(p):])
		found = err == nil
		return false, err
	})
	return head, found, err
}

// Get returns the row with the seqno.
func (s *Store) Get(ctx context.Context, seqno uint64) (wire.EntryRow, bool, error) {
	db, err := s.acquire(ctx)
	if err != nil {
		return wire.EntryRow{}, false, err
	}
	defer s.release()
	stream, found, err := get(db, key(prefixEntry, be64(seqno)))
	if err != nil || !found {
		return wire.EntryRow{}, false, err
	}
	v, found, err := get(db, key(prefixStreamEntry, escStream(string(stream)), be64(seqno)))
	if err != nil {
		return wire.EntryRow{}, false, err
	}
	if !found {
		return wire.EntryRow{}, false, fmt.Errorf("pebble store %q: seqno %d indexed in stream %q but missing", s.dir, seqno, stream)
	}
	row, err := decodeEntry(v)
	if err != nil {
		return wire.EntryRow{}, false, fmt.Errorf("seqno %d: %w", seqno, err)
	}
	return row, true, nil
}

// Range returns the stream's rows with from ≤ seqno ≤ to in one ordered scan.
func (s *Store) Range(ctx context.Context, stream string, from, to uint64) ([]wire.EntryRow, error) {
	return s.rangeRows(ctx, stream, from, to, make([]wire.EntryRow, 0, min(to-from+1, 8192)), &interner{})
}

// RangeInto is Range decoding into buf (store.RangeIntoStore): its rows
// and arena are reused, growing the arena until one call's rows fit in it.
// Each row is copied out of pebble once, straight into its canonical CBOR
// encoding in the arena (buf.Encodings, which the row's fields alias).
func (s *Store) RangeInto(ctx context.Context, stream string, from, to uint64, buf *store.RowBuffer) ([]wire.EntryRow, error) {
	in := &interner{arena: buf.Arena[:0], grow: true, encode: true, encodings: buf.Encodings[:0]}
	rows, err := s.rangeRows(ctx, stream, from, to, buf.Rows[:0], in)
	buf.Rows, buf.Arena, buf.Encodings = rows, in.arena, in.encodings
	if err != nil {
		buf.Encodings = buf.Encodings[:0]
	}
	return rows, err
}

func (s *Store) rangeRows(ctx context.Context, stream string, from, to uint64, out []wire.EntryRow, in *interner) ([]wire.EntryRow, error) {
	db, err := s.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer s.release()
	if from > to {
		return out, nil
	}
	p := key(prefixStreamEntry, escStream(stream))
	hi := upperBound(p)
	if to < math.MaxUint64 {
		hi = key(string(p), be64(to+1))
	}
	err = scan(db, key(string(p), be64(from)), hi, false, func(_, v []byte) (bool, error) {
		decode := decodeEntryInto
		if in.encode {
			decode = decodeEntryEncoded
		}
		row, err := decode(v, in)
		if err != nil {
			return false, fmt.Errorf("stream %q: %w", stream, err)
		}
		out = append(out, row)
		return true, ctx.Err()
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Head returns the stream's highest seqno.
func (s *Store) Head(ctx context.Context, stream string) (uint64, bool, error) {
	db, err := s.acquire(ctx)
	if err != nil {
		return 0, false, err
	}
	defer s.release()
	p := key(prefixStreamEntry, escStream(stream))
	var head uint64
	var found bool
	err = scan(db, p, upperBound(p), true, func(k, _ []byte) (bool, error) {
		head, err = u64(k[len(p):])
		found = err == nil
		return false, err
	})
	return head, found, err
}

// Last returns the stream's row with the highest seqno.
func (s *Store) Last(ctx context.Context, stream string) (wire.EntryRow, bool, error) {
	db, err := s.acquire(ctx)
	if err != nil {
		return wire.EntryRow{}, false, err
	}
	defer s.release()
	p := key(prefixStreamEntry, escStream(stream))
	var row wire.EntryRow
	var found bool
	err = scan(db, p, upperBound(p), true, func(_, v []byte) (bool, error) {
		row, err = decodeEntry(v)
		found = err == nil
		return false, err
	})
	return row, found, err
}

// QueryEntries answers one page of the filter with the secondary indexes
// (index.go).
func (s *Store) QueryEntries(ctx context.Context, f query.Filter) ([]wire.EntryRow, bool, error) {
	db, err := s.acquire(ctx)
	if err != nil {
		return nil, false, err
	}
	defer s.release()
	if s.opts.noQueryIndexes {
		return nil, false, fmt.Errorf("pebble store %q: query stream %q: %w", s.dir, f.Stream, errNoQueryIndexes)
	}
	rows, more, err := s.queryEntries(db, f)
	if err != nil {
		return nil, false, fmt.Errorf("pebble store %q: query stream %q: %w", s.dir, f.Stream, err)
	}
	return rows, more, nil
}

// CountEntries returns the stream's entry count, kept in the entries'
// batches (one read).
func (s *Store) CountEntries(ctx context.Context, stream string) (uint64, error) {
	db, err := s.acquire(ctx)
	if err != nil {
		return 0, err
	}
	defer s.release()
	if s.opts.noQueryIndexes {
		return 0, fmt.Errorf("pebble store %q: count entries of %q: %w", s.dir, stream, errNoQueryIndexes)
	}
	v, found, err := get(db, key(prefixCount, escStream(stream)))
	if err != nil || !found {
		return 0, err
	}
	m, err := decodeMark(v)
	if err != nil {
		return 0, fmt.Errorf("pebble store %q: entry count of %q: %w", s.dir, stream, err)
	}
	return m.count, nil
}
