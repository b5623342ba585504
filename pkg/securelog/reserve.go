package securelog

import (
	"context"
	"math"
	"sort"

	"github.com/securelog/securelog/pkg/seal"
	"github.com/securelog/securelog/pkg/wire"
)

// DECISIONS 5: an entry sealed under segment key k must end up in the
// segment whose id is k, under any interleaving of streams.
//
// Every store of this module keeps segment-id reservations
// (store.SegmentReserver, issue 9 item 2): the first sealed append of a
// stream's open segment reserves its id in the store, later appends read
// it back, and the store gives that id to the stream's next segment and
// never to another stream's. A close then closes exactly the named stream.
//
// For a store without reservations (a third-party backend), segment ids are
// allocated by the store, globally, as max+1, and we make the id of every
// open sealed segment a pure function of store state:
//
//   - a stream is "pending" when its tier seals payloads and it has entries
//     after its last segment; pending streams are ranked by the seqno of
//     their first open entry;
//   - the open segment of the pending stream with rank r (1-based) will get
//     id maxSegmentID + r.
//
// CloseSegment keeps that promise by first closing every pending stream of
// lower rank (or all of them, when the stream being closed is not pending),
// so the store hands out exactly the reserved ids. No reservation is stored
// anywhere: after a restart the same ids are recomputed from the store.

// openSegmentID returns the id that sealed entries of stream's open segment
// are sealed under: the store's reservation, or (without reservations) the
// computed one.
func (r *Reader) openSegmentID(ctx context.Context, stream string) (uint64, error) {
	if res, ok := r.st.(segmentReservations); ok {
		id, ok, err := res.SegmentReservation(ctx, stream)
		if err != nil {
			return 0, storageErr(err, "segment reservation of stream %q", stream)
		}
		if !ok {
			return 0, wire.Storagef(nil, "stream %q has sealed entries after its last segment but no reserved segment id (written without reservations?)", stream)
		}
		return id, nil
	}
	if r.writeMu != nil {
		r.writeMu.Lock()
		defer r.writeMu.Unlock()
	}
	p, err := r.pendingSealed(ctx)
	if err != nil {
		return 0, err
	}
	return r.reservedSegmentID(ctx, p, stream, true)
}

// segmentReservations is the read half of store.SegmentReserver.
type segmentReservations interface {
	SegmentReservation(ctx context.Context, stream string) (uint64, bool, error)
}

// pendingSet is the ranked list of pending sealed streams.
type pendingSet struct {
	names []string
}

func (p *pendingSet) rank(name string) int {
	for i, n := range p.names {
		if n == name {
			return i + 1
		}
	}
	return 0
}

// pendingSealed computes the pending set from the store.
func (r *Reader) pendingSealed(ctx context.Context) (*pendingSet, error) {
	streams, err := r.st.StreamList(ctx)
	if err != nil {
		return nil, storageErr(err, "list streams")
	}
	type cand struct {
		name  string
		first uint64
	}
	var cands []cand
	for _, s := range streams {
		tier, err := seal.ParseTier(s.Tier)
		if err != nil || tier == seal.TierPublic {
			continue
		}
		last, _, err := r.st.SegmentLastSeqno(ctx, s.Name)
		if err != nil {
			return nil, storageErr(err, "segment last seqno of %q", s.Name)
		}
		head, ok, err := r.st.Head(ctx, s.Name)
		if err != nil {
			return nil, storageErr(err, "head of %q", s.Name)
		}
		if !ok || head <= last {
			continue
		}
		first, err := r.firstOpenSeqno(ctx, s.Name, last+1, head)
		if err != nil {
			return nil, err
		}
		if first == 0 {
			continue
		}
		cands = append(cands, cand{s.Name, first})
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].first < cands[j].first })
	p := &pendingSet{}
	for _, c := range cands {
		p.names = append(p.names, c.name)
	}
	return p, nil
}

// reservedSegmentID returns the segment id the open segment of stream will
// get. With add, a stream not yet pending joins at the end (its first open
// entry is being appended now, so it has the highest first seqno).
func (r *Reader) reservedSegmentID(ctx context.Context, p *pendingSet, stream string, add bool) (uint64, error) {
	rank := p.rank(stream)
	if rank == 0 {
		if !add {
			return 0, nil
		}
		p.names = append(p.names, stream)
		rank = len(p.names)
	}
	maxID, err := r.maxSegmentID(ctx)
	if err != nil {
		return 0, err
	}
	return maxID + uint64(rank), nil
}

// maxSegmentID returns the highest allocated segment id. Ids are dense
// (1..max, never reused), so it probes upward from the cached value with an
// exponential then binary search: O(log n) point reads the first time, one
// read afterwards.
func (r *Reader) maxSegmentID(ctx context.Context) (uint64, error) {
	exists := func(id uint64) (bool, error) {
		_, ok, err := r.st.SegmentGet(ctx, id)
		if err != nil {
			return false, storageErr(err, "get segment %d", id)
		}
		return ok, nil
	}
	lo := r.maxSeg.Load() // known to exist (or 0)
	step := uint64(1)
	hi := lo + step
	for {
		ok, err := exists(hi)
		if err != nil {
			return 0, err
		}
		if !ok {
			break
		}
		lo = hi
		if step < math.MaxUint32 {
			step *= 2
		}
		hi = lo + step
	}
	// lo exists (or is 0), hi does not: binary search the boundary.
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		ok, err := exists(mid)
		if err != nil {
			return 0, err
		}
		if ok {
			lo = mid
		} else {
			hi = mid
		}
	}
	r.sawSegment(lo)
	return lo, nil
}

// sawSegment records that segment id exists (maxSegmentID starts there).
func (r *Reader) sawSegment(id uint64) {
	for {
		cur := r.maxSeg.Load()
		if id <= cur || r.maxSeg.CompareAndSwap(cur, id) {
			return
		}
	}
}

// firstOpenSeqno returns the stream's lowest seqno in [from, head], or 0,
// reading growing windows so a large open segment is not read whole.
func (r *Reader) firstOpenSeqno(ctx context.Context, stream string, from, head uint64) (uint64, error) {
	for w := uint64(64); from <= head; w *= 4 {
		to := head
		if head-from >= w {
			to = from + w - 1
		}
		rows, err := r.st.Range(ctx, stream, from, to)
		if err != nil {
			return 0, storageErr(err, "range of %q", stream)
		}
		if len(rows) > 0 {
			return rows[0].Seqno, nil
		}
		if to == head {
			break
		}
		from = to + 1
	}
	return 0, nil
}
