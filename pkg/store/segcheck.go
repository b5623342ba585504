package store

import (
	"fmt"
	"sort"

	"github.com/securelog/securelog/pkg/wire"
)

// StreamTail is what SegmentInsert must know of a stream, read atomically
// with the insert: the highest seq_end of its stored segments and its lowest
// entry seqno after that (its first unsealed entry).
type StreamTail struct {
	LastSealed    uint64
	HasSealed     bool
	FirstUnsealed uint64
	HasUnsealed   bool
}

// TailOf builds a StreamTail from the stream's segment ends and its entry
// seqnos in ascending order (for backends that hold both in memory).
func TailOf(segEnds []uint64, seqnos []uint64) StreamTail {
	var t StreamTail
	for _, end := range segEnds {
		t.LastSealed, t.HasSealed = max(t.LastSealed, end), true
	}
	i := 0
	if t.HasSealed {
		i = sort.Search(len(seqnos), func(i int) bool { return seqnos[i] > t.LastSealed })
	}
	if i < len(seqnos) {
		t.FirstUnsealed, t.HasUnsealed = seqnos[i], true
	}
	return t
}

// CheckSegment is the rule every backend's SegmentInsert enforces, atomically
// with the insert, so that a stream's segments always partition its entries:
// the range is not reversed, it starts after the stream's last sealed seqno
// (no overlap) and not after its first unsealed entry (no gap), and every
// member seqno lies inside the range, once. A violation is
// *SegmentOverlapError.
func CheckSegment(row wire.SegmentRow, entries []wire.SegmentEntry, tail StreamTail) error {
	fail := func(format string, args ...any) error {
		return &SegmentOverlapError{Stream: row.StreamID, SeqStart: row.SeqStart, SeqEnd: row.SeqEnd, Reason: fmt.Sprintf(format, args...)}
	}
	switch {
	case row.SeqStart == 0 || row.SeqEnd < row.SeqStart:
		return fail("empty or reversed range")
	case tail.HasSealed && row.SeqStart <= tail.LastSealed:
		return fail("overlaps the stream's sealed seqnos up to %d", tail.LastSealed)
	case tail.HasUnsealed && tail.FirstUnsealed < row.SeqStart:
		return fail("skips unsealed seqno %d (segments must start right after the last sealed seqno)", tail.FirstUnsealed)
	}
	seen := make(map[uint64]struct{}, len(entries))
	for _, e := range entries {
		if e.Seqno < row.SeqStart || e.Seqno > row.SeqEnd {
			return fail("member seqno %d is outside the range", e.Seqno)
		}
		if _, dup := seen[e.Seqno]; dup {
			return fail("member seqno %d is listed twice", e.Seqno)
		}
		seen[e.Seqno] = struct{}{}
	}
	return nil
}
