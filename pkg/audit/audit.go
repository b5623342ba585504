// Package audit is the full offline verification of a stream: the hash
// chain, each segment's membership, Merkle root, last entry hash and
// checkpoint linkage, every checkpoint signature (public keys only), and
// the head file. It reads through a Source so the same code audits a live
// store (`securelog verify`) and an exported bundle (`securelog audit`).
//
// Memory is bounded by the largest segment: entries are streamed in seqno
// order and only the current segment's leaves are held.
package audit

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/securelog/securelog/pkg/chain"
	"github.com/securelog/securelog/pkg/checkpoint"
	"github.com/securelog/securelog/pkg/merkle"
	"github.com/securelog/securelog/pkg/wire"
	"github.com/securelog/securelog/pkg/witness"
)

// Source provides the rows of one stream.
type Source interface {
	// Entries calls fn for every entry of the stream in ascending seqno order.
	Entries(ctx context.Context, stream string, fn func(wire.EntryRow) error) error
	// Segments returns the stream's segments in ascending id order.
	Segments(ctx context.Context, stream string) ([]wire.SegmentRow, error)
	// SegmentSeqnos returns a segment's member seqnos ordered by leaf index.
	SegmentSeqnos(ctx context.Context, segmentID uint64) ([]uint64, error)
}

// BatchSource is a Source that hands its entries over in batches, in
// ascending seqno order, for example decoded on several cores
// (chain.Batch.Fill). Stream uses it instead of Entries when present.
type BatchSource interface {
	EntryBatches(ctx context.Context, stream string, send func(*chain.Batch) bool) error
}

// errStopped ends Source.Entries when the checks stopped.
var errStopped = errors.New("audit stopped")

// batchRows is how many entries one core hashes at a time.
const batchRows = 1024

// Verifier checks a checkpoint signature by signer identity (a trust file).
type Verifier interface {
	Verify(identity string, msg, sig []byte) error
}

// Options tunes an audit.
type Options struct {
	// Trust verifies signatures; required unless SkipSignatures.
	Trust Verifier
	// SkipSignatures audits everything but signatures.
	SkipSignatures bool
	// AllowUnsignedTail accepts unsigned segments after the last signed one
	// (a pipeline that has sealed but not yet signed).
	AllowUnsignedTail bool
	// Head, if set, is the head-file record the stream must agree with.
	Head *witness.HeadRecord
	// Progress, if set, is called after every entry with the count so far.
	Progress func(entries uint64)
	// Entry, if set, is called with every entry in order before it is
	// checked (to say where a failure is), and Verified after it passed.
	Entry, Verified func(r *wire.EntryRow)
	// Workers is how many goroutines recompute entry hashes (≤ 0: one per
	// core); the checks themselves run in order on the caller's goroutine.
	Workers int
}

// Report summarises a successful audit.
type Report struct {
	Stream         string `json:"stream"`
	Entries        uint64 `json:"entries"`
	Segments       int    `json:"segments"`
	Signed         int    `json:"signed_segments"`
	OpenEntries    uint64 `json:"open_entries"`
	HeadSegment    uint64 `json:"head_segment,omitempty"`
	LastCheckpoint string `json:"last_checkpoint_hash,omitempty"`
	// Checkpoints maps segment id → recomputed checkpoint hash (hex).
	Checkpoints map[uint64]string `json:"-"`
}

// Failure is the first thing that does not hold, naming the spot.
type Failure struct {
	Seqno     uint64 // 0 if not about an entry
	SegmentID uint64 // 0 if not about a segment
	Reason    string
	Err       error
}

func (f *Failure) Error() string {
	switch {
	case f.SegmentID != 0:
		return fmt.Sprintf("segment %d: %s", f.SegmentID, f.Reason)
	case f.Seqno != 0:
		return fmt.Sprintf("seqno %d: %s", f.Seqno, f.Reason)
	}
	return f.Reason
}

func (f *Failure) Unwrap() error { return f.Err }

func segFail(seg wire.SegmentRow, format string, args ...any) error {
	return &Failure{SegmentID: seg.SegmentID, Seqno: seg.SeqEnd, Reason: fmt.Sprintf(format, args...)}
}

// Stream audits one stream and returns a report, or the first *Failure.
func Stream(ctx context.Context, src Source, stream string, opts Options) (Report, error) {
	rep := Report{Stream: stream, Checkpoints: map[uint64]string{}}
	if opts.Trust == nil && !opts.SkipSignatures {
		return rep, errors.New("audit: no trust file: signatures cannot be verified without public keys")
	}
	segs, err := src.Segments(ctx, stream)
	if err != nil {
		return rep, fmt.Errorf("list segments of %q: %w", stream, err)
	}
	for i := 1; i < len(segs); i++ {
		if segs[i].SegmentID <= segs[i-1].SegmentID {
			return rep, segFail(segs[i-1], "segment ids out of order: %d is listed before %d", segs[i-1].SegmentID, segs[i].SegmentID)
		}
	}
	lastSigned := -1
	for i, s := range segs {
		if len(s.Signature) > 0 {
			lastSigned = i
		}
	}
	a := &auditor{ctx: ctx, src: src, opts: opts, segs: segs, rep: &rep, prevCk: wire.ZeroHash, lastSigned: lastSigned}
	cv := chain.NewVerifier(wire.ZeroHash)
	produce := func(send func(*chain.Batch) bool) error {
		if bs, ok := src.(BatchSource); ok {
			return bs.EntryBatches(ctx, stream, send)
		}
		b := &chain.Batch{Rows: make([]wire.EntryRow, 0, batchRows)}
		err := src.Entries(ctx, stream, func(r wire.EntryRow) error {
			b.Rows = append(b.Rows, r)
			if len(b.Rows) == batchRows {
				if !send(b) {
					return errStopped // Stream returns the consumer's error
				}
				b = &chain.Batch{Rows: make([]wire.EntryRow, 0, batchRows)}
			}
			return nil
		})
		if err == nil && len(b.Rows) > 0 {
			send(b)
		}
		if err == errStopped {
			return nil
		}
		return err
	}
	err = chain.HashParallel(ctx, opts.Workers, produce, func(r *wire.EntryRow, sum *chain.Sum) error {
		if opts.Entry != nil {
			opts.Entry(r)
		}
		if r.StreamID != stream {
			return &Failure{Seqno: r.Seqno, Reason: fmt.Sprintf("entry belongs to stream %q, not %q", r.StreamID, stream)}
		}
		if err := cv.NextSum(r, sum); err != nil {
			return &Failure{Seqno: r.Seqno, Reason: err.Error(), Err: err}
		}
		rep.Entries++
		if opts.Progress != nil {
			opts.Progress(rep.Entries)
		}
		if err := a.entry(r); err != nil {
			return err
		}
		if opts.Verified != nil {
			opts.Verified(r)
		}
		return nil
	})
	if err != nil {
		return rep, err
	}
	if err := a.finish(); err != nil {
		return rep, err
	}
	if opts.Head != nil {
		if err := a.checkHead(*opts.Head); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

type auditor struct {
	ctx        context.Context
	src        Source
	opts       Options
	segs       []wire.SegmentRow
	rep        *Report
	cur        int // index of the segment being filled
	leaves     [][]byte
	seqnos     []uint64
	last       wire.EntryRow
	prevCk     []byte
	lastSigned int
}

// entry assigns an entry to the current segment (or to the open tail).
func (a *auditor) entry(r *wire.EntryRow) error {
	for a.cur < len(a.segs) && r.Seqno > a.segs[a.cur].SeqEnd {
		if err := a.closeSegment(); err != nil {
			return err
		}
	}
	if a.cur >= len(a.segs) {
		a.rep.OpenEntries++
		return nil
	}
	seg := a.segs[a.cur]
	if r.Seqno < seg.SeqStart {
		return &Failure{Seqno: r.Seqno, SegmentID: seg.SegmentID, Reason: fmt.Sprintf(
			"seqno %d is not covered by any segment (segment %d starts at seqno %d)", r.Seqno, seg.SegmentID, seg.SeqStart)}
	}
	a.leaves = append(a.leaves, r.EntryHash)
	a.seqnos = append(a.seqnos, r.Seqno)
	a.last = *r
	return nil
}

func (a *auditor) finish() error {
	for a.cur < len(a.segs) {
		if err := a.closeSegment(); err != nil {
			return err
		}
	}
	return nil
}

// closeSegment checks the segment whose entries were just collected.
func (a *auditor) closeSegment() error {
	seg := a.segs[a.cur]
	leaves, seqnos, last := a.leaves, a.seqnos, a.last
	a.leaves, a.seqnos = a.leaves[:0:0], a.seqnos[:0:0]
	a.cur++
	if len(seqnos) == 0 {
		return segFail(seg, "covers seqnos %d..%d but the stream has no entries there", seg.SeqStart, seg.SeqEnd)
	}
	if seqnos[0] != seg.SeqStart || seqnos[len(seqnos)-1] != seg.SeqEnd {
		return segFail(seg, "range %d..%d does not match its entries %d..%d", seg.SeqStart, seg.SeqEnd, seqnos[0], seqnos[len(seqnos)-1])
	}
	members, err := a.src.SegmentSeqnos(a.ctx, seg.SegmentID)
	if err != nil {
		return fmt.Errorf("membership of segment %d: %w", seg.SegmentID, err)
	}
	if len(members) != len(seqnos) {
		return segFail(seg, "membership lists %d entries but the stream has %d in its range", len(members), len(seqnos))
	}
	for i := range members {
		if members[i] != seqnos[i] {
			return segFail(seg, "membership leaf %d is seqno %d, expected %d", i, members[i], seqnos[i])
		}
	}
	for _, h := range []struct {
		b    []byte
		name string
	}{{seg.MerkleRoot, "merkle_root"}, {seg.LastEntryHash, "last_entry_hash"}, {seg.PrevCheckpointHash, "prev_checkpoint_hash"}} {
		if len(h.b) != wire.HashLen {
			return segFail(seg, "%s is %d bytes, want 32", h.name, len(h.b))
		}
	}
	if root := merkle.Root(leaves); string(root) != string(seg.MerkleRoot) {
		return segFail(seg, "merkle root mismatch: stored=%x recomputed=%x", seg.MerkleRoot, root)
	}
	if string(seg.LastEntryHash) != string(leaves[len(leaves)-1]) {
		return segFail(seg, "last_entry_hash %x is not the hash of seqno %d", seg.LastEntryHash, seg.SeqEnd)
	}
	if string(seg.PrevCheckpointHash) != string(a.prevCk) {
		return segFail(seg, "prev_checkpoint_hash drift: stored=%x expected=%x", seg.PrevCheckpointHash, a.prevCk)
	}
	f := wire.CheckpointFields{
		Version: wire.CheckpointVersion, StreamID: seg.StreamID, SegmentID: seg.SegmentID,
		SeqStart: seg.SeqStart, SeqEnd: seg.SeqEnd, MerkleRoot: seg.MerkleRoot, LastEntryHash: seg.LastEntryHash,
		PrevCheckpointHash: a.prevCk, BootID: last.BootID, SessionID: last.SessionID,
		PolicyHash: wire.ZeroHash, Timestamp: seg.ClosedAt,
	}
	h := checkpoint.Hash(f)
	a.rep.Checkpoints[seg.SegmentID] = hex.EncodeToString(h)
	a.rep.Segments++
	a.rep.LastCheckpoint = hex.EncodeToString(h)
	if !a.opts.SkipSignatures {
		switch {
		case len(seg.Signature) == 0:
			if a.cur-1 <= a.lastSigned {
				return segFail(seg, "is not signed, but a later segment is")
			}
			if !a.opts.AllowUnsignedTail {
				return segFail(seg, "is not signed (it is after the last signed segment: if a signer is still catching up, --allow-unsigned-tail accepts unsigned tail segments)")
			}
		case seg.SignerIdentity == nil:
			return segFail(seg, "has a signature but no signer identity")
		default:
			if err := a.opts.Trust.Verify(*seg.SignerIdentity, h, seg.Signature); err != nil {
				if errors.Is(err, checkpoint.ErrDoesNotVerify) {
					return &Failure{SegmentID: seg.SegmentID, Seqno: seg.SeqEnd, Reason: fmt.Sprintf("checkpoint signature by %q does not verify", *seg.SignerIdentity), Err: err}
				}
				return &Failure{SegmentID: seg.SegmentID, Seqno: seg.SeqEnd, Reason: fmt.Sprintf("signature by %q cannot be verified: %v", *seg.SignerIdentity, err), Err: err}
			}
			a.rep.Signed++
		}
	}
	a.prevCk = h
	return nil
}

func (a *auditor) checkHead(rec witness.HeadRecord) error {
	var highest uint64
	for _, s := range a.segs {
		highest = max(highest, s.SegmentID)
	}
	if highest < rec.SegmentID {
		return &Failure{Seqno: rec.SeqEnd, Reason: fmt.Sprintf("rollback detected: head file records segment %d but the log only has up to %d", rec.SegmentID, highest)}
	}
	got, ok := a.rep.Checkpoints[rec.SegmentID]
	if !ok {
		return &Failure{SegmentID: rec.SegmentID, Reason: "head file records a segment that is not in this stream"}
	}
	if got != rec.CheckpointHashHex {
		return &Failure{SegmentID: rec.SegmentID, Seqno: rec.SeqEnd, Reason: fmt.Sprintf("rollback detected: checkpoint recomputes to %s but head file records %s", got, rec.CheckpointHashHex)}
	}
	a.rep.HeadSegment = rec.SegmentID
	return nil
}
