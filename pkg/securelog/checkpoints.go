package securelog

import (
	"context"
	"errors"
	"fmt"

	"github.com/securelog/securelog/pkg/checkpoint"
	"github.com/securelog/securelog/pkg/wire"
)

// checkpointFields builds the checkpoint of seg (SPEC §8.1 step 4) given
// the previous checkpoint hash and the entry at seq_end.
func checkpointFields(seg wire.SegmentRow, prev []byte, last wire.EntryRow) wire.CheckpointFields {
	return wire.CheckpointFields{
		Version: wire.CheckpointVersion, StreamID: seg.StreamID, SegmentID: seg.SegmentID,
		SeqStart: seg.SeqStart, SeqEnd: seg.SeqEnd, MerkleRoot: seg.MerkleRoot,
		LastEntryHash: seg.LastEntryHash, PrevCheckpointHash: prev,
		BootID: last.BootID, SessionID: last.SessionID, PolicyHash: wire.ZeroHash,
		Timestamp: seg.ClosedAt,
	}
}

// cacheCheckpoint computes the hash of f, the checkpoint of segment id,
// and keeps it (bounded: the least recently used hash is evicted).
func (r *Reader) cacheCheckpoint(id uint64, f wire.CheckpointFields) []byte {
	h := checkpoint.Hash(f)
	r.ckMu.Lock()
	if old, ok := r.ck.get(id); ok {
		delete(r.ckByHash, string(old.hash))
	}
	r.ck.put(id, ckEntry{stream: f.StreamID, hash: h})
	r.ckByHash[string(h)] = id
	r.ckMu.Unlock()
	return h
}

// cachedHash returns the cached checkpoint hash of segment id, or nil.
func (r *Reader) cachedHash(id uint64) []byte {
	r.ckMu.Lock()
	defer r.ckMu.Unlock()
	e, _ := r.ck.get(id)
	return e.hash
}

// cachedPrev returns seg's previous checkpoint hash and the id of the
// segment it belongs to, without listing the stream's segments, when this
// instance has computed the checkpoint that seg's stored
// prev_checkpoint_hash names: an earlier segment of the same stream. The
// value used is then one we recomputed from the store, never the stored
// bytes on trust (SPEC §8.1). If the store was tampered with so that seg
// names a non-adjacent predecessor, the checkpoint we compute differs from
// the one a verifier recomputes, and verification fails.
func (r *Reader) cachedPrev(seg wire.SegmentRow) ([]byte, uint64) {
	if len(seg.PrevCheckpointHash) != wire.HashLen || bytesEqual(seg.PrevCheckpointHash, wire.ZeroHash) {
		return nil, 0
	}
	r.ckMu.Lock()
	defer r.ckMu.Unlock()
	id, ok := r.ckByHash[string(seg.PrevCheckpointHash)]
	if !ok || id >= seg.SegmentID {
		return nil, 0
	}
	e, ok := r.ck.get(id)
	if !ok || e.stream != seg.StreamID {
		return nil, 0
	}
	return e.hash, id
}

// fieldsFor recomputes seg's checkpoint fields from the store (SPEC §8.1).
func (r *Reader) fieldsFor(ctx context.Context, seg wire.SegmentRow, prev []byte) (wire.CheckpointFields, error) {
	for _, h := range []struct {
		b    []byte
		name string
	}{{seg.MerkleRoot, "merkle_root"}, {seg.LastEntryHash, "last_entry_hash"}} {
		if err := check32(h.b, fmt.Sprintf("%s of segment %d", h.name, seg.SegmentID)); err != nil {
			return wire.CheckpointFields{}, err
		}
	}
	last, ok, err := r.st.Get(ctx, seg.SeqEnd)
	if err != nil {
		return wire.CheckpointFields{}, storageErr(err, "get seqno %d", seg.SeqEnd)
	}
	if !ok {
		return wire.CheckpointFields{}, &wire.EntryNotFoundError{Seqno: seg.SeqEnd}
	}
	return checkpointFields(seg, prev, last), nil
}

// chainWalk visits the stream's segments in id order with the checkpoint
// hash each recomputes to (linear total time, DECISIONS 19), stopping after
// segment upTo (0 = all). With cached, hashes computed earlier by this
// instance are reused; verification paths pass cached=false.
func (r *Reader) chainWalk(ctx context.Context, stream string, upTo uint64, cached bool,
	visit func(seg wire.SegmentRow, f wire.CheckpointFields, hash []byte) error) error {
	segs, err := r.st.SegmentsList(ctx, stream)
	if err != nil {
		return storageErr(err, "list segments of %q", stream)
	}
	prev := wire.ZeroHash
	for _, seg := range segs {
		normaliseSignature(&seg)
		var h []byte
		var f wire.CheckpointFields
		if cached {
			h = r.cachedHash(seg.SegmentID)
		}
		if h == nil || seg.SegmentID == upTo {
			f, err = r.fieldsFor(ctx, seg, prev)
			if err != nil {
				return err
			}
			h = r.cacheCheckpoint(seg.SegmentID, f)
		}
		if visit != nil {
			if err := visit(seg, f, h); err != nil {
				return err
			}
		}
		prev = h
		if seg.SegmentID == upTo {
			break
		}
	}
	return nil
}

// Checkpoint recomputes the checkpoint fields and hash of a segment from the
// store (SPEC §8.1–8.2; compute_checkpoint_hash_for).
func (r *Reader) Checkpoint(ctx context.Context, segID uint64) (wire.SegmentRow, wire.CheckpointFields, []byte, error) {
	seg, err := r.ReadSegment(ctx, segID)
	if err != nil {
		return wire.SegmentRow{}, wire.CheckpointFields{}, nil, err
	}
	if prev, _ := r.cachedPrev(seg); prev != nil {
		f, err := r.fieldsFor(ctx, seg, prev)
		if err != nil {
			return seg, f, nil, err
		}
		return seg, f, r.cacheCheckpoint(segID, f), nil
	}
	var outF wire.CheckpointFields
	var outH []byte
	err = r.chainWalk(ctx, seg.StreamID, segID, true, func(s wire.SegmentRow, f wire.CheckpointFields, h []byte) error {
		if s.SegmentID == segID {
			outF, outH = f, h
		}
		return nil
	})
	if err != nil {
		return seg, outF, nil, err
	}
	if outH == nil {
		return seg, outF, nil, &wire.SegmentNotFoundError{SegmentID: segID}
	}
	return seg, outF, outH, nil
}

// VerifySegmentSignature verifies a segment's signature against the trust
// configuration (SPEC §8.5) and returns its checkpoint hash.
func (r *Reader) VerifySegmentSignature(ctx context.Context, segID uint64) ([]byte, error) {
	seg, err := r.ReadSegment(ctx, segID)
	if err != nil {
		return nil, err
	}
	if err := presentSignature(seg); err != nil {
		return nil, err
	}
	_, _, h, err := r.Checkpoint(ctx, segID)
	if err != nil {
		return nil, err
	}
	return h, r.verifySig(ctx, seg, h)
}

func presentSignature(seg wire.SegmentRow) error {
	if !seg.Signed() {
		return wire.Invalidf("segment %d is not signed", seg.SegmentID)
	}
	if seg.SignerIdentity == nil {
		return wire.Invalidf("segment %d has signature but no signer identity", seg.SegmentID)
	}
	return nil
}

func (r *Reader) verifySig(ctx context.Context, seg wire.SegmentRow, h []byte) error {
	if r.trust == nil {
		return wire.Invalidf("verify failed: no trust file configured")
	}
	err := r.trust.Verify(seg.Signer(), h, seg.Signature)
	if err == nil {
		return nil
	}
	if errors.Is(err, checkpoint.ErrDoesNotVerify) {
		return &wire.ChainBrokenError{Seqno: seg.SeqEnd, Reason: fmt.Sprintf("checkpoint signature of segment %d does not verify", seg.SegmentID)}
	}
	return wire.Invalidf("verify failed: %v", err)
}

// VerifyCheckpointChain verifies linkage and every signature of the
// stream's checkpoints in one pass (SPEC §8.6) and returns how many
// segments it walked.
func (r *Reader) VerifyCheckpointChain(ctx context.Context, stream string) (uint32, error) {
	var n uint32
	expected := wire.ZeroHash
	err := r.chainWalk(ctx, stream, 0, false, func(seg wire.SegmentRow, _ wire.CheckpointFields, h []byte) error {
		if err := check32(seg.PrevCheckpointHash, fmt.Sprintf("prev_checkpoint_hash of segment %d", seg.SegmentID)); err != nil {
			return err
		}
		if !bytesEqual(seg.PrevCheckpointHash, expected) {
			return &wire.ChainBrokenError{Seqno: seg.SeqEnd, Reason: fmt.Sprintf(
				"segment %d prev_checkpoint_hash drift: stored=%s expected=%s", seg.SegmentID, hexs(seg.PrevCheckpointHash), hexs(expected))}
		}
		if err := presentSignature(seg); err != nil {
			return err
		}
		if err := r.verifySig(ctx, seg, h); err != nil {
			return err
		}
		expected = h
		n++
		return nil
	})
	if err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, &wire.StreamNotFoundError{Stream: stream}
	}
	return n, nil
}
