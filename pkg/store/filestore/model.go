package filestore

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/wire"
)

// model is the in-memory state rebuilt from the log file; every read is
// served from it. It is not safe for concurrent use (Store locks it).
type model struct {
	entries     map[uint64]wire.EntryRow
	entryStream map[string][]uint64 // ascending seqnos per stream
	globalHead  uint64

	segments   map[uint64]wire.SegmentRow
	segStream  map[string][]uint64            // ascending ids per stream
	members    map[uint64][]wire.SegmentEntry // per segment, by leaf index
	segOfSeqno map[uint64]uint64              // lowest segment id holding the seqno
	maxSegID   uint64

	witnesses map[int64]wire.WitnessRow
	witStream map[string][]int64 // ascending ids per stream
	maxWitID  int64

	streams   []wire.StreamRow // creation order
	streamIdx map[string]int
}

func newModel() *model {
	return &model{
		entries: map[uint64]wire.EntryRow{}, entryStream: map[string][]uint64{},
		segments: map[uint64]wire.SegmentRow{}, segStream: map[string][]uint64{},
		members: map[uint64][]wire.SegmentEntry{}, segOfSeqno: map[uint64]uint64{},
		witnesses: map[int64]wire.WitnessRow{}, witStream: map[string][]int64{},
		streamIdx: map[string]int{},
	}
}

// check validates a write against the model (SPEC §17.2). An op that passes
// check is applied without error.
func (m *model) check(o op) error {
	switch o.kind {
	case kindInsertEntry:
		if o.entry.Seqno == 0 {
			return store.ErrMissingSeqno
		}
		if _, dup := m.entries[o.entry.Seqno]; dup {
			return &store.DuplicateSeqnoError{Seqno: o.entry.Seqno}
		}
	case kindInsertSegment:
		return store.CheckSegment(o.segment, o.members, m.tail(o.segment.StreamID))
	case kindSetSegmentSignature:
		if _, ok := m.segments[o.segment.SegmentID]; !ok {
			return &store.SegmentNotFoundError{SegmentID: o.segment.SegmentID}
		}
	case kindStreamSetTier, kindStreamDeprecate:
		if _, ok := m.streamIdx[o.stream.Name]; !ok {
			return &store.StreamNotFoundError{Name: o.stream.Name}
		}
	}
	return nil
}

// tail returns the stream's last sealed seqno and first unsealed entry.
func (m *model) tail(stream string) store.StreamTail {
	ids := m.segStream[stream]
	ends := make([]uint64, len(ids))
	for i, id := range ids {
		ends[i] = m.segments[id].SeqEnd
	}
	return store.TailOf(ends, m.entryStream[stream])
}

// apply applies an op with the replay semantics of SPEC §17.3. Errors are
// replay corruption: a seqno, segment id or witness id that appears twice
// (no writer produces that; the reference would silently keep both).
func (m *model) apply(o op) error {
	switch o.kind {
	case kindInsertEntry:
		r := o.entry
		if _, dup := m.entries[r.Seqno]; dup {
			return fmt.Errorf("duplicate seqno %d", r.Seqno)
		}
		m.entries[r.Seqno] = r.Clone()
		m.entryStream[r.StreamID] = insertSorted(m.entryStream[r.StreamID], r.Seqno)
		m.globalHead = max(m.globalHead, r.Seqno)
	case kindInsertSegment:
		r := o.segment
		if _, dup := m.segments[r.SegmentID]; dup {
			return fmt.Errorf("duplicate segment_id %d", r.SegmentID)
		}
		m.segments[r.SegmentID] = r.Clone()
		m.segStream[r.StreamID] = insertSorted(m.segStream[r.StreamID], r.SegmentID)
		members := slices.Clone(o.members)
		slices.SortStableFunc(members, func(a, b wire.SegmentEntry) int {
			return cmp.Compare(a.LeafIndex, b.LeafIndex)
		})
		m.members[r.SegmentID] = members
		for _, e := range members {
			if cur, ok := m.segOfSeqno[e.Seqno]; !ok || r.SegmentID < cur {
				m.segOfSeqno[e.Seqno] = r.SegmentID
			}
		}
		m.maxSegID = max(m.maxSegID, r.SegmentID)
	case kindSetSegmentSignature:
		if r, ok := m.segments[o.segment.SegmentID]; ok {
			signer := o.segment.Signer()
			r.Signature, r.SignerIdentity = slices.Clone(nonNil(o.segment.Signature)), &signer
			m.segments[r.SegmentID] = r
		}
	case kindInsertWitness:
		r := o.witness
		if _, dup := m.witnesses[r.ID]; dup {
			return fmt.Errorf("duplicate witness id %d", r.ID)
		}
		m.witnesses[r.ID] = r
		m.witStream[r.StreamID] = insertSorted(m.witStream[r.StreamID], r.ID)
		m.maxWitID = max(m.maxWitID, r.ID)
	case kindDeleteWitness:
		r, ok := m.witnesses[o.witnessID]
		if !ok {
			return nil
		}
		delete(m.witnesses, o.witnessID)
		ids := m.witStream[r.StreamID]
		if i, found := slices.BinarySearch(ids, o.witnessID); found {
			ids = slices.Delete(ids, i, i+1)
		}
		if len(ids) == 0 {
			delete(m.witStream, r.StreamID)
		} else {
			m.witStream[r.StreamID] = ids
		}
	case kindStreamUpsert:
		r := o.stream.Clone()
		if i, ok := m.streamIdx[r.Name]; ok {
			m.streams[i] = r
		} else {
			m.streamIdx[r.Name] = len(m.streams)
			m.streams = append(m.streams, r)
		}
	case kindStreamSetTier:
		if i, ok := m.streamIdx[o.stream.Name]; ok {
			m.streams[i].Tier = o.stream.Tier
		}
	case kindStreamDeprecate:
		if i, ok := m.streamIdx[o.stream.Name]; ok {
			at := *o.stream.DeprecatedAt
			m.streams[i].DeprecatedAt = &at
		}
	}
	return nil
}

// insertSorted inserts v into the ascending slice s (appends in the common
// case of increasing values).
func insertSorted[T int64 | uint64](s []T, v T) []T {
	if n := len(s); n == 0 || s[n-1] < v {
		return append(s, v)
	}
	i, _ := slices.BinarySearch(s, v)
	return slices.Insert(s, i, v)
}
