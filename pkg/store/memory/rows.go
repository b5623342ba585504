package memory

import (
	"context"
	"slices"

	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/wire"
)

// SegmentInsert checks the segment against its stream (store.CheckSegment),
// assigns the next global id and stores the row and its membership records,
// all under the write lock.
func (s *Store) SegmentInsert(ctx context.Context, row wire.SegmentRow, entries []wire.SegmentEntry) (uint64, error) {
	return s.segmentInsert(row, entries, nil)
}

// SegmentInsertTree is SegmentInsert that also keeps the segment's tree
// chunks (store.SegmentTreeStore).
func (s *Store) SegmentInsertTree(_ context.Context, row wire.SegmentRow, entries []wire.SegmentEntry, chunks []store.TreeChunk) (uint64, error) {
	tree := make(map[treePos][]byte, len(chunks))
	for _, c := range chunks {
		tree[treePos{c.Level, c.Chunk}] = slices.Clone(c.Nodes)
	}
	return s.segmentInsert(row, entries, tree)
}

// SegmentLeaf returns where seqno is in its segment's stored tree.
func (s *Store) SegmentLeaf(_ context.Context, seqno uint64) (store.SegmentLeaf, bool, error) {
	if err := s.rlock(); err != nil {
		return store.SegmentLeaf{}, false, err
	}
	defer s.mu.RUnlock()
	id, ok := s.forSeqno[seqno]
	if !ok || s.segments[id].tree == nil {
		return store.SegmentLeaf{}, false, nil
	}
	seg := s.segments[id]
	i, found := slices.BinarySearch(seg.members, seqno) // members normally ascend with the leaf index
	if !found {
		i = slices.Index(seg.members, seqno)
	}
	return store.SegmentLeaf{SegmentID: id, Index: uint64(i), Size: uint64(len(seg.members))}, true, nil
}

// SegmentTreeChunk returns one stored chunk of a segment's tree.
func (s *Store) SegmentTreeChunk(_ context.Context, id uint64, level int, chunk uint64) ([]byte, bool, error) {
	if err := s.rlock(); err != nil {
		return nil, false, err
	}
	defer s.mu.RUnlock()
	seg, ok := s.segments[id]
	if !ok {
		return nil, false, nil
	}
	b, ok := seg.tree[treePos{level, chunk}]
	return slices.Clone(b), ok, nil
}

// SegmentTreeNodes returns nodes of a segment's stored tree.
func (s *Store) SegmentTreeNodes(_ context.Context, id uint64, nodes []store.TreeNode) ([][]byte, error) {
	if err := s.rlock(); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	out := make([][]byte, len(nodes))
	seg, ok := s.segments[id]
	if !ok {
		return out, nil
	}
	for i, n := range nodes {
		if b, ok := seg.tree[treePos{n.Level, n.Index / store.TreeChunkNodes}]; ok {
			out[i] = store.NodeFromChunk(b, n.Index)
		}
	}
	return out, nil
}

func (s *Store) segmentInsert(row wire.SegmentRow, entries []wire.SegmentEntry, tree map[treePos][]byte) (uint64, error) {
	if err := s.lock(); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	if err := store.CheckSegment(row, entries, s.tail(row.StreamID)); err != nil {
		return 0, err
	}
	id, ok := s.reserved[row.StreamID]
	if ok {
		delete(s.reserved, row.StreamID)
	} else {
		s.lastSegID++
		id = s.lastSegID
	}
	row = row.Clone()
	row.SegmentID = id
	sorted := slices.Clone(entries)
	slices.SortStableFunc(sorted, func(a, b wire.SegmentEntry) int {
		switch {
		case a.LeafIndex < b.LeafIndex:
			return -1
		case a.LeafIndex > b.LeafIndex:
			return 1
		}
		return 0
	})
	seg := &segment{row: row, members: make([]uint64, len(sorted)), tree: tree}
	for i, e := range sorted {
		seg.members[i] = e.Seqno
		if _, ok := s.forSeqno[e.Seqno]; !ok {
			s.forSeqno[e.Seqno] = id
		}
	}
	s.segments[id] = seg
	s.segStreams[row.StreamID] = append(s.segStreams[row.StreamID], id)
	return id, nil
}

// SegmentReserve returns the stream's reserved segment id, reserving the
// next id if it holds none (store.SegmentReserver).
func (s *Store) SegmentReserve(_ context.Context, stream string) (uint64, error) {
	if err := s.lock(); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	if id, ok := s.reserved[stream]; ok {
		return id, nil
	}
	s.lastSegID++
	s.reserved[stream] = s.lastSegID
	return s.lastSegID, nil
}

// SegmentReservation returns the stream's reserved segment id, if any.
func (s *Store) SegmentReservation(_ context.Context, stream string) (uint64, bool, error) {
	if err := s.rlock(); err != nil {
		return 0, false, err
	}
	defer s.mu.RUnlock()
	id, ok := s.reserved[stream]
	return id, ok, nil
}

// tail returns the stream's last sealed seqno and first unsealed entry; the
// caller holds the lock.
func (s *Store) tail(stream string) store.StreamTail {
	ids := s.segStreams[stream]
	ends := make([]uint64, len(ids))
	for i, id := range ids {
		ends[i] = s.segments[id].row.SeqEnd
	}
	return store.TailOf(ends, s.byStream[stream])
}

// SegmentGet returns a copy of the segment.
func (s *Store) SegmentGet(_ context.Context, id uint64) (wire.SegmentRow, bool, error) {
	if err := s.rlock(); err != nil {
		return wire.SegmentRow{}, false, err
	}
	defer s.mu.RUnlock()
	seg, ok := s.segments[id]
	if !ok {
		return wire.SegmentRow{}, false, nil
	}
	return seg.row.Clone(), true, nil
}

// SegmentsList returns copies of the stream's segments by ascending id.
func (s *Store) SegmentsList(_ context.Context, stream string) ([]wire.SegmentRow, error) {
	if err := s.rlock(); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	ids := s.segStreams[stream]
	out := make([]wire.SegmentRow, len(ids))
	for i, id := range ids {
		out[i] = s.segments[id].row.Clone()
	}
	return out, nil
}

// SegmentLastSeqno returns the highest seq_end of the stream's segments.
func (s *Store) SegmentLastSeqno(_ context.Context, stream string) (uint64, bool, error) {
	if err := s.rlock(); err != nil {
		return 0, false, err
	}
	defer s.mu.RUnlock()
	ids := s.segStreams[stream]
	var last uint64
	for _, id := range ids {
		last = max(last, s.segments[id].row.SeqEnd)
	}
	return last, len(ids) > 0, nil
}

// SegmentEntrySeqnos returns the member seqnos by leaf index (empty for an
// unknown segment).
func (s *Store) SegmentEntrySeqnos(_ context.Context, id uint64) ([]uint64, error) {
	if err := s.rlock(); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	seg, ok := s.segments[id]
	if !ok {
		return []uint64{}, nil
	}
	return slices.Clone(seg.members), nil
}

// SegmentForSeqno returns the lowest id of a segment containing the seqno.
func (s *Store) SegmentForSeqno(_ context.Context, seqno uint64) (uint64, bool, error) {
	if err := s.rlock(); err != nil {
		return 0, false, err
	}
	defer s.mu.RUnlock()
	id, ok := s.forSeqno[seqno]
	return id, ok, nil
}

// SegmentSetSignature overwrites the signature and signer identity.
func (s *Store) SegmentSetSignature(_ context.Context, id uint64, sig []byte, signer string) error {
	if err := s.lock(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	seg, ok := s.segments[id]
	if !ok {
		return &store.SegmentNotFoundError{SegmentID: id}
	}
	seg.row.Signature = append([]byte{}, sig...)
	seg.row.SignerIdentity = &signer
	return nil
}

// WitnessInsert assigns the next global id and stores the row.
func (s *Store) WitnessInsert(_ context.Context, row wire.WitnessRow) (int64, error) {
	if err := s.lock(); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	s.lastWitness++
	row.ID = s.lastWitness
	s.witnesses[row.ID] = row
	s.witStreams[row.StreamID] = append(s.witStreams[row.StreamID], row.ID)
	return row.ID, nil
}

// WitnessLatest returns the stream's row with the highest id.
func (s *Store) WitnessLatest(_ context.Context, stream string) (wire.WitnessRow, bool, error) {
	if err := s.rlock(); err != nil {
		return wire.WitnessRow{}, false, err
	}
	defer s.mu.RUnlock()
	ids := s.witStreams[stream]
	if len(ids) == 0 {
		return wire.WitnessRow{}, false, nil
	}
	return s.witnesses[ids[len(ids)-1]], true, nil
}

// WitnessList returns the stream's rows by ascending id.
func (s *Store) WitnessList(_ context.Context, stream string) ([]wire.WitnessRow, error) {
	if err := s.rlock(); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	ids := s.witStreams[stream]
	out := make([]wire.WitnessRow, len(ids))
	for i, id := range ids {
		out[i] = s.witnesses[id]
	}
	return out, nil
}

// WitnessStreamIDs returns the streams with witness rows, ascending.
func (s *Store) WitnessStreamIDs(context.Context) ([]string, error) {
	if err := s.rlock(); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.witStreams))
	for st := range s.witStreams {
		out = append(out, st)
	}
	slices.Sort(out)
	return out, nil
}

// WitnessGC deletes witness rows by store.WitnessGCPolicy.
func (s *Store) WitnessGC(_ context.Context, stream *string, keepLatest *uint32, olderThan *string) (uint32, error) {
	policy, err := store.NewWitnessGCPolicy(keepLatest, olderThan)
	if err != nil {
		return 0, err
	}
	if err := s.lock(); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	var streams []string
	if stream != nil {
		streams = []string{*stream}
	} else {
		for st := range s.witStreams {
			streams = append(streams, st)
		}
	}
	var deleted uint32
	for _, st := range streams {
		ids := s.witStreams[st]
		rows := make([]wire.WitnessRow, len(ids))
		for i, id := range ids {
			rows[i] = s.witnesses[id]
		}
		victims := policy.Victims(rows)
		if len(victims) == 0 {
			continue
		}
		gone := make(map[int64]bool, len(victims))
		for _, id := range victims {
			delete(s.witnesses, id)
			gone[id] = true
			deleted++
		}
		kept := slices.DeleteFunc(slices.Clone(ids), func(id int64) bool { return gone[id] })
		if len(kept) == 0 {
			delete(s.witStreams, st)
		} else {
			s.witStreams[st] = kept
		}
	}
	return deleted, nil
}

// StreamUpsert inserts the row, or replaces every field of the existing row
// with that name while keeping its creation-order position.
func (s *Store) StreamUpsert(_ context.Context, row wire.StreamRow) error {
	if err := s.lock(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	s.putStream(row.Clone())
	return nil
}

func (s *Store) putStream(row wire.StreamRow) {
	if i, ok := s.streamsPos[row.Name]; ok {
		s.streams[i] = row
		return
	}
	s.streamsPos[row.Name] = len(s.streams)
	s.streams = append(s.streams, row)
}

// StreamGet returns a copy of the stream row.
func (s *Store) StreamGet(_ context.Context, name string) (wire.StreamRow, bool, error) {
	if err := s.rlock(); err != nil {
		return wire.StreamRow{}, false, err
	}
	defer s.mu.RUnlock()
	i, ok := s.streamsPos[name]
	if !ok {
		return wire.StreamRow{}, false, nil
	}
	return s.streams[i].Clone(), true, nil
}

// StreamList returns copies of all stream rows in creation order.
func (s *Store) StreamList(context.Context) ([]wire.StreamRow, error) {
	if err := s.rlock(); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	out := make([]wire.StreamRow, len(s.streams))
	for i, r := range s.streams {
		out[i] = r.Clone()
	}
	return out, nil
}

// StreamSetTier sets the stream's tier.
func (s *Store) StreamSetTier(_ context.Context, name, tier string) error {
	return s.updateStream(name, func(r *wire.StreamRow) { r.Tier = tier })
}

// StreamDeprecate sets the stream's deprecated_at.
func (s *Store) StreamDeprecate(_ context.Context, name, deprecatedAt string) error {
	return s.updateStream(name, func(r *wire.StreamRow) { r.DeprecatedAt = &deprecatedAt })
}

func (s *Store) updateStream(name string, f func(*wire.StreamRow)) error {
	if err := s.lock(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	i, ok := s.streamsPos[name]
	if !ok {
		return &store.StreamNotFoundError{Name: name}
	}
	f(&s.streams[i])
	return nil
}
