package pebblestore

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	"github.com/cockroachdb/pebble/v2"

	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/wire"
)

// SegmentInsert checks the segment against its stream (store.CheckSegment)
// under the write lock, assigns the next global id and stores the row, its
// indexes, its membership records and the id counter in one synced batch.
// The lock is held until the batch is committed, so no other insert can
// slip between the check and the commit (pebble allows one process).
func (s *Store) SegmentInsert(ctx context.Context, row wire.SegmentRow, entries []wire.SegmentEntry) (uint64, error) {
	return s.segmentInsert(ctx, row, entries, nil)
}

// SegmentInsertTree is SegmentInsert that also stores the segment's Merkle
// tree chunks and each member's leaf index and tree size, in the same
// synced batch (store.SegmentTreeStore).
func (s *Store) SegmentInsertTree(ctx context.Context, row wire.SegmentRow, entries []wire.SegmentEntry, chunks []store.TreeChunk) (uint64, error) {
	if chunks == nil {
		chunks = []store.TreeChunk{}
	}
	return s.segmentInsert(ctx, row, entries, chunks)
}

// segmentInsert inserts a segment; with non-nil chunks, its tree too.
func (s *Store) segmentInsert(ctx context.Context, row wire.SegmentRow, entries []wire.SegmentEntry, chunks []store.TreeChunk) (uint64, error) {
	db, err := s.acquire(ctx)
	if err != nil {
		return 0, err
	}
	defer s.release()
	s.wmu.Lock()
	defer s.wmu.Unlock()
	tail, err := s.streamTail(db, row.StreamID)
	if err != nil {
		return 0, err
	}
	if err := store.CheckSegment(row, entries, tail); err != nil {
		return 0, err
	}
	b := db.NewBatch()
	defer b.Close()
	resKey := key(prefixSegReserved, escStream(row.StreamID))
	id, reserved, err := reservation(db, resKey)
	if err != nil {
		return 0, err
	}
	if reserved {
		// The reservation ends with the insert, in the same batch.
		if err := b.Delete(resKey, nil); err != nil {
			return 0, err
		}
	} else {
		if s.lastSeg == math.MaxUint64 {
			return 0, fmt.Errorf("pebble store %q: segment ids exhausted", s.dir)
		}
		id = s.lastSeg + 1
	}
	row.SegmentID = id
	ops := []struct{ k, v []byte }{
		{key(prefixSegment, be64(id)), encodeSegment(row)},
		{key(prefixStreamSeg, escStream(row.StreamID), be64(id)), be64(row.SeqEnd)},
		{keySegCounter, be64(max(s.lastSeg, id))},
	}
	for _, op := range ops {
		if err := b.Set(op.k, op.v, nil); err != nil {
			return 0, err
		}
	}
	// Two records per member; Set copies key and value into the batch,
	// so one scratch buffer serves them all.
	var k, leaf []byte
	for _, e := range entries {
		k = binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(append(k[:0], prefixSegEntry...), id), e.LeafIndex)
		k = binary.BigEndian.AppendUint64(k, e.Seqno)
		if err := b.Set(k, nil, nil); err != nil {
			return 0, err
		}
		leaf = leaf[:0]
		if chunks != nil {
			leaf = binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(leaf, e.LeafIndex), uint64(len(entries)))
		}
		k = binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(append(k[:0], prefixSeqnoSeg...), e.Seqno), id)
		if err := b.Set(k, leaf, nil); err != nil {
			return 0, err
		}
	}
	for _, c := range chunks {
		if err := b.Set(treeKey(id, c.Level, c.Chunk), c.Nodes, nil); err != nil {
			return 0, err
		}
	}
	if err := s.commit(b, fmt.Sprintf("insert segment %d", id)); err != nil {
		return 0, err
	}
	s.lastSeg = max(s.lastSeg, id)
	s.noteSealed(row.StreamID, row.SeqEnd)
	return id, nil
}

// lastSealed returns the highest seq_end of the stream's segments (false:
// it has none), from Store.sealedEnd or, the first time, from a scan of the
// stream's segment index (O(segments of the stream)); a close then costs no
// scan that grows with the stream's segments.
func (s *Store) lastSealed(db pebble.Reader, stream string) (uint64, bool, error) {
	s.tmu.Lock()
	end, ok := s.sealedEnd[stream]
	gen := s.sealedGen
	s.tmu.Unlock()
	if ok {
		return end, end != 0, nil
	}
	err := streamSegments(db, stream, func(_, e uint64) error {
		end = max(end, e)
		return nil
	})
	if err != nil {
		return 0, false, err
	}
	s.tmu.Lock()
	defer s.tmu.Unlock()
	if s.sealedEnd == nil || s.sealedGen != gen {
		// Cleared meanwhile: a segment inserted during the scan may have
		// been recorded and dropped, so the scan is not kept.
		return end, end != 0, nil
	}
	// A segment inserted during the scan was recorded by noteSealed; the
	// higher of the two is the stream's.
	if cur, ok := s.sealedEnd[stream]; ok {
		end = max(end, cur)
	} else if len(s.sealedEnd) >= maxSealedEnds {
		s.clearSealed()
	}
	s.sealedEnd[stream] = end
	return end, end != 0, nil
}

// clearSealed empties sealedEnd (s.tmu held).
func (s *Store) clearSealed() {
	clear(s.sealedEnd)
	s.sealedGen++
}

// noteSealed records a segment of stream ending at seqEnd, just committed:
// the stream's highest seq_end, since store.CheckSegment admits a segment
// only after the stream's last sealed entry. Called with s.wmu held.
func (s *Store) noteSealed(stream string, seqEnd uint64) {
	s.tmu.Lock()
	defer s.tmu.Unlock()
	if s.sealedEnd == nil {
		return
	}
	if _, ok := s.sealedEnd[stream]; !ok && len(s.sealedEnd) >= maxSealedEnds {
		s.clearSealed()
	}
	s.sealedEnd[stream] = max(s.sealedEnd[stream], seqEnd)
}

// reservation reads a stream's segment-id reservation.
func reservation(db pebble.Reader, resKey []byte) (uint64, bool, error) {
	v, ok, err := get(db, resKey)
	if err != nil || !ok {
		return 0, false, err
	}
	id, err := u64(v)
	if err != nil {
		return 0, false, fmt.Errorf("segment reservation %q: %w", resKey, err)
	}
	return id, true, nil
}

// SegmentReserve returns the stream's reserved segment id, reserving the
// next id if it holds none: the reservation and the id counter are written
// in one synced batch under the write lock (store.SegmentReserver).
func (s *Store) SegmentReserve(ctx context.Context, stream string) (uint64, error) {
	db, err := s.acquire(ctx)
	if err != nil {
		return 0, err
	}
	defer s.release()
	s.wmu.Lock()
	defer s.wmu.Unlock()
	resKey := key(prefixSegReserved, escStream(stream))
	id, ok, err := reservation(db, resKey)
	if err != nil || ok {
		return id, err
	}
	if s.lastSeg == math.MaxUint64 {
		return 0, fmt.Errorf("pebble store %q: segment ids exhausted", s.dir)
	}
	id = s.lastSeg + 1
	b := db.NewBatch()
	defer b.Close()
	if err := b.Set(resKey, be64(id), nil); err != nil {
		return 0, err
	}
	if err := b.Set(keySegCounter, be64(id), nil); err != nil {
		return 0, err
	}
	if err := s.commit(b, fmt.Sprintf("reserve segment %d for stream %q", id, stream)); err != nil {
		return 0, err
	}
	s.lastSeg = id
	return id, nil
}

// SegmentReservation returns the stream's reserved segment id, if any.
func (s *Store) SegmentReservation(ctx context.Context, stream string) (uint64, bool, error) {
	db, err := s.acquire(ctx)
	if err != nil {
		return 0, false, err
	}
	defer s.release()
	return reservation(db, key(prefixSegReserved, escStream(stream)))
}

// streamTail reads the stream's last sealed seqno and first unsealed entry.
func (s *Store) streamTail(db pebble.Reader, stream string) (store.StreamTail, error) {
	var t store.StreamTail
	var err error
	t.LastSealed, t.HasSealed, err = s.lastSealed(db, stream)
	if err != nil || (t.HasSealed && t.LastSealed == math.MaxUint64) {
		return t, err
	}
	p := key(prefixStreamEntry, escStream(stream))
	from := p
	if t.HasSealed {
		from = key(string(p), be64(t.LastSealed+1))
	}
	err = scan(db, from, upperBound(p), false, func(k, _ []byte) (bool, error) {
		n, err := u64(k[len(p):])
		t.FirstUnsealed, t.HasUnsealed = n, err == nil
		return false, err
	})
	return t, err
}

func (s *Store) segment(db pebble.Reader, id uint64) (wire.SegmentRow, bool, error) {
	v, found, err := get(db, key(prefixSegment, be64(id)))
	if err != nil || !found {
		return wire.SegmentRow{}, false, err
	}
	row, err := decodeSegment(v)
	if err != nil {
		return wire.SegmentRow{}, false, fmt.Errorf("segment %d: %w", id, err)
	}
	return row, true, nil
}

func treeKey(id uint64, level int, chunk uint64) []byte {
	return key(prefixSegTree, be64(id), []byte{byte(level)}, be64(chunk))
}

// SegmentLeaf returns the segment, leaf index and tree size of seqno when
// its segment's tree was stored (store.SegmentTreeStore).
func (s *Store) SegmentLeaf(ctx context.Context, seqno uint64) (store.SegmentLeaf, bool, error) {
	db, err := s.acquire(ctx)
	if err != nil {
		return store.SegmentLeaf{}, false, err
	}
	defer s.release()
	p := key(prefixSeqnoSeg, be64(seqno))
	var out store.SegmentLeaf
	var found bool
	err = scan(db, p, upperBound(p), false, func(k, v []byte) (bool, error) {
		if len(v) != 16 {
			return false, nil // stored without a tree
		}
		id, err := u64(k[len(p):])
		out, found = store.SegmentLeaf{SegmentID: id, Index: binary.BigEndian.Uint64(v), Size: binary.BigEndian.Uint64(v[8:])}, err == nil
		return false, err
	})
	return out, found, err
}

// SegmentTreeChunk returns one stored chunk of a segment's Merkle tree.
func (s *Store) SegmentTreeChunk(ctx context.Context, id uint64, level int, chunk uint64) ([]byte, bool, error) {
	db, err := s.acquire(ctx)
	if err != nil {
		return nil, false, err
	}
	defer s.release()
	return get(db, treeKey(id, level, chunk))
}

// SegmentTreeNodes reads nodes of a segment's stored tree with one
// iterator: the chunks are sought in key order (level, chunk), which pebble
// serves mostly by stepping, and only each node's 32 bytes are copied.
func (s *Store) SegmentTreeNodes(ctx context.Context, id uint64, nodes []store.TreeNode) ([][]byte, error) {
	db, err := s.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer s.release()
	order := make([]int, len(nodes))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		if c := cmp.Compare(nodes[a].Level, nodes[b].Level); c != 0 {
			return c
		}
		return cmp.Compare(nodes[a].Index, nodes[b].Index)
	})
	p := key(prefixSegTree, be64(id))
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: upperBound(p)})
	if err != nil {
		return nil, fmt.Errorf("tree of segment %d: %w", id, err)
	}
	out := make([][]byte, len(nodes))
	k := make([]byte, 0, len(p)+9)
	for _, i := range order {
		n := nodes[i]
		if n.Level < 0 || n.Level > 255 {
			continue
		}
		k = append(append(append(k[:0], p...), byte(n.Level)), be64(n.Index/store.TreeChunkNodes)...)
		if !it.SeekGE(k) || !bytes.Equal(it.Key(), k) {
			continue
		}
		v, err := it.ValueAndErr()
		if err != nil {
			_ = it.Close()
			return nil, fmt.Errorf("tree chunk %d/%d of segment %d: %w", n.Level, n.Index/store.TreeChunkNodes, id, err)
		}
		out[i] = store.NodeFromChunk(v, n.Index)
	}
	if err := it.Close(); err != nil {
		return nil, fmt.Errorf("tree of segment %d: %w", id, err)
	}
	return out, nil
}

// SegmentGet returns a segment by id.
func (s *Store) SegmentGet(ctx context.Context, id uint64) (wire.SegmentRow, bool, error) {
	db, err := s.acquire(ctx)
	if err != nil {
		return wire.SegmentRow{}, false, err
	}
	defer s.release()
	return s.segment(db, id)
}

// streamSegments calls fn with the id and seq_end of each of the stream's
// segments, by ascending id.
func streamSegments(db pebble.Reader, stream string, fn func(id, seqEnd uint64) error) error {
	p := key(prefixStreamSeg, escStream(stream))
	return scan(db, p, upperBound(p), false, func(k, v []byte) (bool, error) {
		id, err := u64(k[len(p):])
		if err != nil {
			return false, err
		}
		end, err := u64(v)
		if err != nil {
			return false, err
		}
		return true, fn(id, end)
	})
}

// SegmentsList returns the stream's segments by ascending id.
func (s *Store) SegmentsList(ctx context.Context, stream string) ([]wire.SegmentRow, error) {
	db, err := s.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer s.release()
	snap := db.NewSnapshot()
	defer snap.Close()
	out := []wire.SegmentRow{}
	err = streamSegments(snap, stream, func(id, _ uint64) error {
		row, found, err := s.segment(snap, id)
		if err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("pebble store %q: segment %d indexed for stream %q but missing", s.dir, id, stream)
		}
		out = append(out, row)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// SegmentLastSeqno returns the highest seq_end over the stream's segments.
func (s *Store) SegmentLastSeqno(ctx context.Context, stream string) (uint64, bool, error) {
	db, err := s.acquire(ctx)
	if err != nil {
		return 0, false, err
	}
	defer s.release()
	return s.lastSealed(db, stream)
}

// SegmentEntrySeqnos returns the segment's member seqnos by leaf index.
func (s *Store) SegmentEntrySeqnos(ctx context.Context, id uint64) ([]uint64, error) {
	db, err := s.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer s.release()
	p := key(prefixSegEntry, be64(id))
	out := []uint64{}
	err = scan(db, p, upperBound(p), false, func(k, _ []byte) (bool, error) {
		if len(k) != len(p)+16 {
			return false, fmt.Errorf("pebble store %q: bad membership key %x", s.dir, k)
		}
		n, err := u64(k[len(p)+8:])
		out = append(out, n)
		return true, err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// SegmentForSeqno returns the lowest id of a segment containing the seqno.
func (s *Store) SegmentForSeqno(ctx context.Context, seqno uint64) (uint64, bool, error) {
	db, err := s.acquire(ctx)
	if err != nil {
		return 0, false, err
	}
	defer s.release()
	p := key(prefixSeqnoSeg, be64(seqno))
	var id uint64
	var found bool
	err = scan(db, p, upperBound(p), false, func(k, _ []byte) (bool, error) {
		id, err = u64(k[len(p):])
		found = err == nil
		return false, err
	})
	return id, found, err
}

// SegmentSetSignature overwrites the segment's signature and signer identity.
func (s *Store) SegmentSetSignature(ctx context.Context, id uint64, sig []byte, signer string) error {
	db, err := s.acquire(ctx)
	if err != nil {
		return err
	}
	defer s.release()
	s.wmu.Lock()
	defer s.wmu.Unlock()
	row, found, err := s.segment(db, id)
	if err != nil {
		return err
	}
	if !found {
		return &store.SegmentNotFoundError{SegmentID: id}
	}
	row.Signature, row.SignerIdentity = append([]byte{}, sig...), &signer
	b := db.NewBatch()
	defer b.Close()
	if err := b.Set(key(prefixSegment, be64(id)), encodeSegment(row), nil); err != nil {
		return err
	}
	return s.commit(b, fmt.Sprintf("sign segment %d", id))
}

// WitnessInsert assigns the next global id and stores the row.
func (s *Store) WitnessInsert(ctx context.Context, row wire.WitnessRow) (int64, error) {
	db, err := s.acquire(ctx)
	if err != nil {
		return 0, err
	}
	defer s.release()
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.lastWit == math.MaxInt64 {
		return 0, fmt.Errorf("pebble store %q: witness ids exhausted", s.dir)
	}
	row.ID = s.lastWit + 1
	b := db.NewBatch()
	defer b.Close()
	if err := b.Set(key(prefixWitness, escStream(row.StreamID), be64(uint64(row.ID))), encodeWitness(row), nil); err != nil {
		return 0, err
	}
	if err := b.Set(keyWitnessCounter, be64(uint64(row.ID)), nil); err != nil {
		return 0, err
	}
	if err := s.commit(b, fmt.Sprintf("insert witness %d", row.ID)); err != nil {
		return 0, err
	}
	s.lastWit = row.ID
	return row.ID, nil
}

// witnessRows calls fn for the stream's rows (with their keys) by id,
// ascending or descending.
func witnessRows(db pebble.Reader, stream string, reverse bool, fn func(k []byte, row wire.WitnessRow) bool) error {
	p := key(prefixWitness, escStream(stream))
	return scan(db, p, upperBound(p), reverse, func(k, v []byte) (bool, error) {
		row, err := decodeWitness(v)
		if err != nil {
			return false, fmt.Errorf("witness %x: %w", k, err)
		}
		return fn(k, row), nil
	})
}

// WitnessLatest returns the stream's row with the highest id.
func (s *Store) WitnessLatest(ctx context.Context, stream string) (wire.WitnessRow, bool, error) {
	db, err := s.acquire(ctx)
	if err != nil {
		return wire.WitnessRow{}, false, err
	}
	defer s.release()
	var out wire.WitnessRow
	var found bool
	err = witnessRows(db, stream, true, func(_ []byte, row wire.WitnessRow) bool {
		out, found = row, true
		return false
	})
	return out, found, err
}

// WitnessList returns the stream's rows by ascending id.
func (s *Store) WitnessList(ctx context.Context, stream string) ([]wire.WitnessRow, error) {
	db, err := s.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer s.release()
	out := []wire.WitnessRow{}
	err = witnessRows(db, stream, false, func(_ []byte, row wire.WitnessRow) bool {
		out = append(out, row)
		return true
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// WitnessStreamIDs returns the streams with witness rows, ascending: one
// seek per stream (keys are grouped by escaped name in byte order).
func (s *Store) WitnessStreamIDs(ctx context.Context) ([]string, error) {
	db, err := s.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer s.release()
	return witnessStreams(db)
}

func witnessStreams(db pebble.Reader) ([]string, error) {
	p := []byte(prefixWitness)
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: upperBound(p)})
	if err != nil {
		return nil, err
	}
	out := []string{}
	for valid := it.First(); valid; {
		name, _, err := unescStream(it.Key()[len(p):])
		if err != nil {
			_ = it.Close()
			return nil, err
		}
		out = append(out, name)
		next := escStream(name)
		next[len(next)-1] = 2 // just past every key of this stream
		valid = it.SeekGE(key(prefixWitness, next))
	}
	if err := it.Close(); err != nil {
		return nil, err
	}
	return out, nil
}

// WitnessGC deletes witness rows by store.WitnessGCPolicy in one synced
// batch.
func (s *Store) WitnessGC(ctx context.Context, stream *string, keepLatest *uint32, olderThan *string) (uint32, error) {
	policy, err := store.NewWitnessGCPolicy(keepLatest, olderThan)
	if err != nil {
		return 0, err
	}
	db, err := s.acquire(ctx)
	if err != nil {
		return 0, err
	}
	defer s.release()
	if policy.DeletesNothing() {
		return 0, nil
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	var streams []string
	if stream != nil {
		streams = []string{*stream}
	} else if streams, err = witnessStreams(db); err != nil {
		return 0, err
	}
	b := db.NewBatch()
	defer b.Close()
	var deleted uint32
	for _, st := range streams {
		var rows []wire.WitnessRow
		if err := witnessRows(db, st, false, func(_ []byte, row wire.WitnessRow) bool {
			rows = append(rows, row)
			return true
		}); err != nil {
			return 0, err
		}
		for _, id := range policy.Victims(rows) {
			if err := b.Delete(key(prefixWitness, escStream(st), be64(uint64(id))), nil); err != nil {
				return 0, err
			}
			deleted++
		}
	}
	if deleted == 0 {
		return 0, nil
	}
	if err := s.commit(b, "witness gc"); err != nil {
		return 0, err
	}
	return deleted, nil
}
