package securelog

import (
	"bytes"
	"strings"
	"sync"

	"github.com/securelog/securelog/pkg/wire"
)

// DefaultClosedSegments bounds the segments a ClosedSegments remembers
// (NewClosedSegments). A signer that falls further behind than this signs
// the older segments with the full check (checkSegment), as without one.
const DefaultClosedSegments = 4096

// ClosedSegments remembers, for one store, the segments that a Log of this
// process closed and the checkpoint it computed for each. A Log closes a
// segment only after verifying the entries it seals (verifyOpenRows: every
// entry hash recomputed from the entry's canonical bytes, every chain link
// checked from the previous segment's last entry), and computes the Merkle
// root, the last entry hash and the previous checkpoint hash from them.
//
// A Log that signs segments of the same store in the same process and holds
// the same ClosedSegments (Options.Closed; securelog up: the ingester's Log
// closes, the signer's Log signs over the store RPC) uses that record
// instead of reading and re-hashing the segment's entries again: when the
// segment row the store returns now is exactly the row the closing Log
// stored (id, stream, range, root, last entry hash, previous checkpoint
// hash, closing time), it signs the checkpoint the closing Log computed.
// Anything else gets the full check before signing:
//
//   - a segment this process did not close (a forged segment inserted by a
//     raw store client, or one closed by another process or before a
//     restart);
//   - a stored segment row that differs from the one closed (a tampered
//     store, or one answering with a different row).
//
// Entries changed in the store after the close do not change what is
// signed: the checkpoint covers the entries as they were verified at the
// close, so the changed entries fail verification against it (as any entry
// changed after signing does). Nothing is signed that this process did not
// verify.
//
// Cost: memory for at most the bound's segment rows; safe for concurrent
// use. Share one only between Logs of the same store.
type ClosedSegments struct {
	mu   sync.Mutex
	segs *lru[uint64, closedSegment]
}

// closedSegment is one segment as its closing Log stored it.
type closedSegment struct {
	row    wire.SegmentRow // without signature
	fields wire.CheckpointFields
}

// NewClosedSegments returns an empty record of at most max segments
// (max ≤ 0: DefaultClosedSegments).
func NewClosedSegments(max int) *ClosedSegments {
	return &ClosedSegments{segs: newLRU[uint64, closedSegment](max, DefaultClosedSegments, nil)}
}

// add records a segment the caller closed after verifying its entries,
// with its checkpoint fields.
func (c *ClosedSegments) add(seg wire.SegmentRow, f wire.CheckpointFields) {
	if c == nil {
		return
	}
	// Own copies: the closing Log's values may alias a scan's buffer,
	// which a record kept for long would pin.
	seg = wire.SegmentRow{SegmentID: seg.SegmentID, StreamID: strings.Clone(seg.StreamID), SeqStart: seg.SeqStart, SeqEnd: seg.SeqEnd,
		MerkleRoot: bytes.Clone(seg.MerkleRoot), LastEntryHash: bytes.Clone(seg.LastEntryHash),
		PrevCheckpointHash: bytes.Clone(seg.PrevCheckpointHash), ClosedAt: strings.Clone(seg.ClosedAt)}
	f.StreamID, f.BootID, f.SessionID, f.Timestamp = strings.Clone(f.StreamID), strings.Clone(f.BootID), strings.Clone(f.SessionID), strings.Clone(f.Timestamp)
	f.MerkleRoot, f.LastEntryHash, f.PrevCheckpointHash = bytes.Clone(f.MerkleRoot), bytes.Clone(f.LastEntryHash), bytes.Clone(f.PrevCheckpointHash)
	f.PolicyHash = bytes.Clone(f.PolicyHash)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.segs.put(seg.SegmentID, closedSegment{row: seg, fields: f})
}

// match returns the checkpoint fields computed at the close of seg when
// seg, as the store returns it now, is the row that was closed.
func (c *ClosedSegments) match(seg wire.SegmentRow) (wire.CheckpointFields, bool) {
	if c == nil {
		return wire.CheckpointFields{}, false
	}
	c.mu.Lock()
	rec, ok := c.segs.get(seg.SegmentID)
	c.mu.Unlock()
	if !ok || !sameSegment(rec.row, seg) {
		return wire.CheckpointFields{}, false
	}
	return rec.fields, true
}

// sameSegment reports whether a and b agree on every field a checkpoint
// covers (SPEC §8.1), ignoring the signature.
func sameSegment(a, b wire.SegmentRow) bool {
	return a.SegmentID == b.SegmentID && a.StreamID == b.StreamID &&
		a.SeqStart == b.SeqStart && a.SeqEnd == b.SeqEnd &&
		bytesEqual(a.MerkleRoot, b.MerkleRoot) && bytesEqual(a.LastEntryHash, b.LastEntryHash) &&
		bytesEqual(a.PrevCheckpointHash, b.PrevCheckpointHash) && a.ClosedAt == b.ClosedAt
}
