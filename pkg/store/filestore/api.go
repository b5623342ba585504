package filestore

import (
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/wire"
)

// Insert appends an InsertEntry line; a missing or duplicate seqno is an error.
func (s *Store) Insert(_ context.Context, row wire.EntryRow) (uint64, error) {
	if err := s.commit(op{kind: kindInsertEntry, entry: row}); err != nil {
		return 0, err
	}
	return row.Seqno, nil
}

// GlobalHead returns the highest seqno over all streams.
func (s *Store) GlobalHead(context.Context) (head uint64, ok bool, err error) {
	err = s.read(func(m *model) { head, ok = m.globalHead, len(m.entries) > 0 })
	return head, ok, err
}

// Get returns the row with the seqno.
func (s *Store) Get(_ context.Context, seqno uint64) (row wire.EntryRow, ok bool, err error) {
	err = s.read(func(m *model) {
		row, ok = m.entries[seqno]
		row = row.Clone()
	})
	return row, ok, err
}

// Range returns the stream's rows with from ≤ seqno ≤ to, ascending.
func (s *Store) Range(_ context.Context, stream string, from, to uint64) ([]wire.EntryRow, error) {
	out := []wire.EntryRow{}
	if from > to {
		return out, s.read(func(*model) {})
	}
	err := s.read(func(m *model) {
		seqnos := m.entryStream[stream]
		i, _ := slices.BinarySearch(seqnos, from)
		for ; i < len(seqnos) && seqnos[i] <= to; i++ {
			out = append(out, m.entries[seqnos[i]].Clone())
		}
	})
	return out, err
}

// Head returns the highest seqno of the stream.
func (s *Store) Head(_ context.Context, stream string) (head uint64, ok bool, err error) {
	err = s.read(func(m *model) {
		if seqnos := m.entryStream[stream]; len(seqnos) > 0 {
			head, ok = seqnos[len(seqnos)-1], true
		}
	})
	return head, ok, err
}

// Last returns the row with the highest seqno of the stream.
func (s *Store) Last(_ context.Context, stream string) (row wire.EntryRow, ok bool, err error) {
	err = s.read(func(m *model) {
		if seqnos := m.entryStream[stream]; len(seqnos) > 0 {
			row, ok = m.entries[seqnos[len(seqnos)-1]].Clone(), true
		}
	})
	return row, ok, err
}

// SegmentInsert assigns the stream's reserved segment id, or the next one
// above every stored and reserved id, and appends an InsertSegment line
// holding the row and its membership records.
func (s *Store) SegmentInsert(_ context.Context, row wire.SegmentRow, entries []wire.SegmentEntry) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		return 0, store.ErrNotInitialized
	}
	id, reserved := s.reserved[row.StreamID]
	if !reserved {
		var err error
		if id, err = s.nextSegmentID(); err != nil {
			return 0, err
		}
	}
	row.SegmentID = id
	if err := s.commitLocked(op{kind: kindInsertSegment, segment: row, members: entries}); err != nil {
		return 0, err
	}
	if reserved {
		s.endReservation(row.StreamID)
	}
	return row.SegmentID, nil
}

// SegmentGet returns a segment by id.
func (s *Store) SegmentGet(_ context.Context, id uint64) (row wire.SegmentRow, ok bool, err error) {
	err = s.read(func(m *model) {
		row, ok = m.segments[id]
		row = row.Clone()
	})
	return row, ok, err
}

// SegmentsList returns the stream's segments by ascending id.
func (s *Store) SegmentsList(_ context.Context, stream string) ([]wire.SegmentRow, error) {
	out := []wire.SegmentRow{}
	err := s.read(func(m *model) {
		for _, id := range m.segStream[stream] {
			out = append(out, m.segments[id].Clone())
		}
	})
	return out, err
}

// SegmentLastSeqno returns the highest seq_end over the stream's segments.
func (s *Store) SegmentLastSeqno(_ context.Context, stream string) (last uint64, ok bool, err error) {
	err = s.read(func(m *model) {
		for _, id := range m.segStream[stream] {
			last, ok = max(last, m.segments[id].SeqEnd), true
		}
	})
	return last, ok, err
}

// SegmentEntrySeqnos returns the segment's member seqnos ordered by leaf
// index; an unknown segment has none.
func (s *Store) SegmentEntrySeqnos(_ context.Context, id uint64) ([]uint64, error) {
	out := []uint64{}
	err := s.read(func(m *model) {
		for _, e := range m.members[id] {
			out = append(out, e.Seqno)
		}
	})
	return out, err
}

// SegmentForSeqno returns the id of a segment containing the seqno (the
// lowest id if several do).
func (s *Store) SegmentForSeqno(_ context.Context, seqno uint64) (id uint64, ok bool, err error) {
	err = s.read(func(m *model) { id, ok = m.segOfSeqno[seqno] })
	return id, ok, err
}

// SegmentSetSignature appends a SetSegmentSignature line; a missing segment
// is an error "segment not found: <id>".
func (s *Store) SegmentSetSignature(_ context.Context, id uint64, sig []byte, signer string) error {
	return s.commit(op{kind: kindSetSegmentSignature,
		segment: wire.SegmentRow{SegmentID: id, Signature: nonNil(sig), SignerIdentity: &signer}})
}

// WitnessInsert assigns the next witness id and appends an InsertWitness line.
func (s *Store) WitnessInsert(_ context.Context, row wire.WitnessRow) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		return 0, store.ErrNotInitialized
	}
	if s.m.maxWitID == math.MaxInt64 {
		return 0, fmt.Errorf("file store: witness ids exhausted")
	}
	row.ID = s.m.maxWitID + 1
	if err := s.commitLocked(op{kind: kindInsertWitness, witness: row}); err != nil {
		return 0, err
	}
	return row.ID, nil
}

// WitnessLatest returns the stream's row with the highest id.
func (s *Store) WitnessLatest(_ context.Context, stream string) (row wire.WitnessRow, ok bool, err error) {
	err = s.read(func(m *model) {
		if ids := m.witStream[stream]; len(ids) > 0 {
			row, ok = m.witnesses[ids[len(ids)-1]], true
		}
	})
	return row, ok, err
}

// WitnessList returns the stream's rows by ascending id.
func (s *Store) WitnessList(_ context.Context, stream string) ([]wire.WitnessRow, error) {
	out := []wire.WitnessRow{}
	err := s.read(func(m *model) {
		for _, id := range m.witStream[stream] {
			out = append(out, m.witnesses[id])
		}
	})
	return out, err
}

// WitnessStreamIDs returns the distinct stream ids with witness rows, ascending.
func (s *Store) WitnessStreamIDs(context.Context) ([]string, error) {
	out := []string{}
	err := s.read(func(m *model) {
		for stream := range m.witStream {
			out = append(out, stream)
		}
	})
	slices.Sort(out)
	return out, err
}

// WitnessGC deletes witness rows by store.WitnessGCPolicy, appending one
// DeleteWitness line per deleted row in a single synced write.
func (s *Store) WitnessGC(_ context.Context, stream *string, keepLatest *uint32, olderThan *string) (uint32, error) {
	policy, err := store.NewWitnessGCPolicy(keepLatest, olderThan)
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		return 0, store.ErrNotInitialized
	}
	if policy.DeletesNothing() {
		return 0, nil
	}
	streams := []string{}
	if stream != nil {
		streams = append(streams, *stream)
	} else {
		for st := range s.m.witStream {
			streams = append(streams, st)
		}
		slices.Sort(streams)
	}
	var ops []op
	for _, st := range streams {
		ids := s.m.witStream[st]
		rows := make([]wire.WitnessRow, len(ids))
		for i, id := range ids {
			rows[i] = s.m.witnesses[id]
		}
		for _, id := range policy.Victims(rows) {
			ops = append(ops, op{kind: kindDeleteWitness, witnessID: id})
		}
	}
	if err := s.commitLocked(ops...); err != nil {
		return 0, err
	}
	return uint32(min(len(ops), math.MaxUint32)), nil
}

// StreamUpsert appends a StreamUpsert line: the row replaces an existing
// row of that name in place (keeping its creation-order position).
func (s *Store) StreamUpsert(_ context.Context, row wire.StreamRow) error {
	return s.commit(op{kind: kindStreamUpsert, stream: row})
}

// StreamGet returns the stream row by name.
func (s *Store) StreamGet(_ context.Context, name string) (row wire.StreamRow, ok bool, err error) {
	err = s.read(func(m *model) {
		var i int
		if i, ok = m.streamIdx[name]; ok {
			row = m.streams[i].Clone()
		}
	})
	return row, ok, err
}

// StreamList returns all stream rows in creation order (DECISIONS 10).
func (s *Store) StreamList(context.Context) ([]wire.StreamRow, error) {
	out := []wire.StreamRow{}
	err := s.read(func(m *model) {
		for _, r := range m.streams {
			out = append(out, r.Clone())
		}
	})
	return out, err
}

// StreamSetTier appends a StreamSetTier line; a missing stream is an error
// "stream not found: <name>".
func (s *Store) StreamSetTier(_ context.Context, name, tier string) error {
	return s.commit(op{kind: kindStreamSetTier, stream: wire.StreamRow{Name: name, Tier: tier}})
}

// StreamDeprecate appends a StreamDeprecate line; a missing stream is an
// error "stream not found: <name>".
func (s *Store) StreamDeprecate(_ context.Context, name, deprecatedAt string) error {
	return s.commit(op{kind: kindStreamDeprecate, stream: wire.StreamRow{Name: name, DeprecatedAt: &deprecatedAt}})
}
