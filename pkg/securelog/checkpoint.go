package securelog

import (
	"context"
	"errors"
	"fmt"

	"github.com/securelog/securelog/pkg/checkpoint"
	"github.com/securelog/securelog/pkg/keystore"
	"github.com/securelog/securelog/pkg/wire"
	"github.com/securelog/securelog/pkg/witness"
)

// checkpointFields builds the checkpoint of seg (SPEC §8.1 step 4) given
// the previous checkpoint hash and the entry at seq_end.
func (l *Log) checkpointFields(seg wire.SegmentRow, prev []byte, last wire.EntryRow) wire.CheckpointFields {
	return wire.CheckpointFields{
		Version: wire.CheckpointVersion, StreamID: seg.StreamID, SegmentID: seg.SegmentID,
		SeqStart: seg.SeqStart, SeqEnd: seg.SeqEnd, MerkleRoot: seg.MerkleRoot,
		LastEntryHash: seg.LastEntryHash, PrevCheckpointHash: prev,
		BootID: last.BootID, SessionID: last.SessionID, PolicyHash: wire.ZeroHash,
		Timestamp: seg.ClosedAt,
	}
}

func (l *Log) cacheCheckpoint(id uint64, f wire.CheckpointFields) []byte {
	h := checkpoint.Hash(f)
	l.ckMu.Lock()
	l.ckCache[id] = h
	l.ckByHash[string(h)] = ckOwner{stream: f.StreamID, segmentID: id}
	l.ckMu.Unlock()
	return h
}

// ckOwner names the segment a cached checkpoint hash was computed for.
type ckOwner struct {
	stream    string
	segmentID uint64
}

// cachedPrev returns seg's previous checkpoint hash without listing the
// stream's segments, when this instance has computed the checkpoint that
// seg's stored prev_checkpoint_hash names: an earlier segment of the same
// stream. The value used is then one we recomputed from the store, never
// the stored bytes on trust (SPEC §8.1). If the store was tampered with so
// that seg names a non-adjacent predecessor, the checkpoint we compute
// differs from the one a verifier recomputes, and verification fails.
func (l *Log) cachedPrev(seg wire.SegmentRow) []byte {
	if len(seg.PrevCheckpointHash) != wire.HashLen || bytesEqual(seg.PrevCheckpointHash, wire.ZeroHash) {
		return nil
	}
	l.ckMu.Lock()
	defer l.ckMu.Unlock()
	o, ok := l.ckByHash[string(seg.PrevCheckpointHash)]
	if !ok || o.stream != seg.StreamID || o.segmentID >= seg.SegmentID {
		return nil
	}
	return l.ckCache[o.segmentID]
}

// fieldsFor recomputes seg's checkpoint fields from the store (SPEC §8.1).
func (l *Log) fieldsFor(ctx context.Context, seg wire.SegmentRow, prev []byte) (wire.CheckpointFields, error) {
	for _, h := range []struct {
		b    []byte
		name string
	}{{seg.MerkleRoot, "merkle_root"}, {seg.LastEntryHash, "last_entry_hash"}} {
		if err := check32(h.b, fmt.Sprintf("%s of segment %d", h.name, seg.SegmentID)); err != nil {
			return wire.CheckpointFields{}, err
		}
	}
	last, ok, err := l.st.Get(ctx, seg.SeqEnd)
	if err != nil {
		return wire.CheckpointFields{}, storageErr(err, "get seqno %d", seg.SeqEnd)
	}
	if !ok {
		return wire.CheckpointFields{}, &wire.EntryNotFoundError{Seqno: seg.SeqEnd}
	}
	return l.checkpointFields(seg, prev, last), nil
}

// chainWalk visits the stream's segments in id order with the checkpoint
// hash each recomputes to (linear total time, DECISIONS 19), stopping after
// segment upTo (0 = all). With cached, hashes computed earlier by this
// instance are reused; verification paths pass cached=false.
func (l *Log) chainWalk(ctx context.Context, stream string, upTo uint64, cached bool,
	visit func(seg wire.SegmentRow, f wire.CheckpointFields, hash []byte) error) error {
	segs, err := l.st.SegmentsList(ctx, stream)
	if err != nil {
		return storageErr(err, "list segments of %q", stream)
	}
	prev := wire.ZeroHash
	for _, seg := range segs {
		normaliseSignature(&seg)
		var h []byte
		var f wire.CheckpointFields
		if cached {
			l.ckMu.Lock()
			h = l.ckCache[seg.SegmentID]
			l.ckMu.Unlock()
		}
		if h == nil || seg.SegmentID == upTo {
			f, err = l.fieldsFor(ctx, seg, prev)
			if err != nil {
				return err
			}
			h = l.cacheCheckpoint(seg.SegmentID, f)
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

// lastCheckpointHash is the checkpoint hash of the stream's newest segment,
// or ZeroHash (SPEC §7.1 step 7).
func (l *Log) lastCheckpointHash(ctx context.Context, stream string) ([]byte, error) {
	last := wire.ZeroHash
	err := l.chainWalk(ctx, stream, 0, true, func(_ wire.SegmentRow, _ wire.CheckpointFields, h []byte) error {
		last = h
		return nil
	})
	return last, err
}

// Checkpoint recomputes the checkpoint fields and hash of a segment from the
// store (SPEC §8.1–8.2; compute_checkpoint_hash_for).
func (l *Log) Checkpoint(ctx context.Context, segID uint64) (wire.SegmentRow, wire.CheckpointFields, []byte, error) {
	seg, err := l.ReadSegment(ctx, segID)
	if err != nil {
		return wire.SegmentRow{}, wire.CheckpointFields{}, nil, err
	}
	if prev := l.cachedPrev(seg); prev != nil {
		f, err := l.fieldsFor(ctx, seg, prev)
		if err != nil {
			return seg, f, nil, err
		}
		return seg, f, l.cacheCheckpoint(segID, f), nil
	}
	var outF wire.CheckpointFields
	var outH []byte
	err = l.chainWalk(ctx, seg.StreamID, segID, true, func(s wire.SegmentRow, f wire.CheckpointFields, h []byte) error {
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

// SignSegment signs the segment's checkpoint hash with the key of identity
// (SPEC §8.3), after checking the stream for rollback (DECISIONS 11) and
// checking the segment against the store (checkSegment), and advances the
// head file. Returns (checkpoint hash, signature). A failed check signs
// nothing, raises an alert and halts the stream (*StreamHaltedError).
func (l *Log) SignSegment(ctx context.Context, identity string, segID uint64) ([]byte, []byte, error) {
	if l.opts.Signer == nil {
		return nil, nil, wire.Invalidf("sign failed: no keystore configured")
	}
	seg, err := l.ReadSegment(ctx, segID)
	if err != nil {
		return nil, nil, err
	}
	if err := l.haltedErr(seg.StreamID); err != nil {
		return nil, nil, err
	}
	if err := l.checkHead(ctx, seg.StreamID); err != nil {
		return nil, nil, err
	}
	if err := l.checkSegment(ctx, seg); err != nil {
		var cb *wire.ChainBrokenError
		if errors.As(err, &cb) {
			return nil, nil, l.halt(seg.StreamID, HaltInvalidSegment, err)
		}
		return nil, nil, err
	}
	_, _, h, err := l.Checkpoint(ctx, segID)
	if err != nil {
		return nil, nil, err
	}
	key, err := l.key(ctx, identity)
	if err != nil {
		return nil, nil, mapKeystoreErr("sign failed", err)
	}
	sig, err := key.Sign(h)
	if err != nil {
		return nil, nil, mapKeystoreErr("sign failed", err)
	}
	if err := l.st.SegmentSetSignature(ctx, segID, sig, identity); err != nil {
		return nil, nil, storageErr(err, "store signature of segment %d", segID)
	}
	if err := l.advanceHead(seg, h); err != nil {
		return nil, nil, err
	}
	return h, sig, nil
}

// key resolves and caches a keystore key per label (SPEC §9.1).
func (l *Log) key(ctx context.Context, identity string) (keystore.Key, error) {
	l.keyMu.Lock()
	defer l.keyMu.Unlock()
	if k, ok := l.keyCache[identity]; ok {
		return k, nil
	}
	k, err := l.opts.Signer.GetKey(ctx, identity)
	if err != nil {
		return nil, err
	}
	l.keyCache[identity] = k
	return k, nil
}

// mapKeystoreErr maps keystore errors to log errors (SPEC §9.1 table).
func mapKeystoreErr(prefix string, err error) error {
	var nf *keystore.KeyNotFoundError
	var ua *keystore.UnsupportedAlgorithmError
	var ad *keystore.AccessDeniedError
	var be *keystore.BackendError
	switch {
	case errors.As(err, &nf):
		return wire.Invalidf("%s: signer identity '%s' not found", prefix, nf.Identity)
	case errors.As(err, &ua):
		return wire.Invalidf("%s: signing failed: %v", prefix, ua)
	case errors.As(err, &ad):
		return wire.Invalidf("%s: signing failed: %v", prefix, ad)
	case errors.As(err, &be):
		return wire.Invalidf("%s: storage: %v", prefix, be)
	}
	return wire.Invalidf("%s: %v", prefix, err)
}

// VerifySegmentSignature verifies a segment's signature against the trust
// configuration (SPEC §8.5) and returns its checkpoint hash.
func (l *Log) VerifySegmentSignature(ctx context.Context, segID uint64) ([]byte, error) {
	seg, err := l.ReadSegment(ctx, segID)
	if err != nil {
		return nil, err
	}
	if err := presentSignature(seg); err != nil {
		return nil, err
	}
	_, _, h, err := l.Checkpoint(ctx, segID)
	if err != nil {
		return nil, err
	}
	return h, l.verifySig(ctx, seg, h)
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

func (l *Log) verifySig(ctx context.Context, seg wire.SegmentRow, h []byte) error {
	v := l.opts.Trust
	if v == nil {
		if l.opts.Signer == nil {
			return wire.Invalidf("verify failed: no trust file configured")
		}
		v = signerTrust{l}
	}
	err := v.Verify(seg.Signer(), h, seg.Signature)
	if err == nil {
		return nil
	}
	if errors.Is(err, checkpoint.ErrDoesNotVerify) {
		return &wire.ChainBrokenError{Seqno: seg.SeqEnd, Reason: fmt.Sprintf("checkpoint signature of segment %d does not verify", seg.SegmentID)}
	}
	return wire.Invalidf("verify failed: %v", err)
}

// signerTrust verifies with the public keys of the configured keystore
// (never the private key).
type signerTrust struct{ l *Log }

func (s signerTrust) Verify(identity string, msg, sig []byte) error {
	k, err := s.l.key(context.Background(), identity)
	if err != nil {
		return err
	}
	return checkpoint.VerifySignature(k.Algorithm(), k.PublicKey(), msg, sig)
}

// VerifyCheckpointChain verifies linkage and every signature of the
// stream's checkpoints in one pass (SPEC §8.6) and returns how many
// segments it walked.
func (l *Log) VerifyCheckpointChain(ctx context.Context, stream string) (uint32, error) {
	var n uint32
	expected := wire.ZeroHash
	err := l.chainWalk(ctx, stream, 0, false, func(seg wire.SegmentRow, _ wire.CheckpointFields, h []byte) error {
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
		if err := l.verifySig(ctx, seg, h); err != nil {
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

// advanceHead records a newly signed checkpoint in the head file, only
// forwards (DECISIONS 11).
func (l *Log) advanceHead(seg wire.SegmentRow, h []byte) error {
	if l.opts.HeadFile == "" {
		return nil
	}
	if _, err := witness.AdvanceHeadFile(l.opts.HeadFile, witness.HeadRecord{StreamID: seg.StreamID, SegmentID: seg.SegmentID,
		SeqEnd: seg.SeqEnd, CheckpointHashHex: hexs(h), UpdatedAt: l.timestamp()}); err != nil {
		return wire.Storagef(err, "")
	}
	return nil
}

// HeadFilePath returns the configured head file ("" = none).
func (l *Log) HeadFilePath() string { return l.opts.HeadFile }

// HeadRecord returns the head-file record of a stream.
func (l *Log) HeadRecord(stream string) (witness.HeadRecord, bool, error) {
	if l.opts.HeadFile == "" {
		return witness.HeadRecord{}, false, nil
	}
	hf, err := witness.LoadHeadFile(l.opts.HeadFile)
	if err != nil {
		return witness.HeadRecord{}, false, wire.Storagef(err, "")
	}
	r, ok := hf.Lookup(stream)
	return r, ok, nil
}

// CheckRollback compares the store with the head file for a stream (SPEC
// §10.4); a rollback is *wire.ChainBrokenError and raises an alert.
func (l *Log) CheckRollback(ctx context.Context, stream string) error {
	rec, ok, err := l.HeadRecord(stream)
	if err != nil || !ok {
		return err
	}
	err = l.checkRecord(ctx, rec)
	var cb *wire.ChainBrokenError
	if errors.As(err, &cb) {
		l.alert(stream, err)
	}
	return err
}

func (l *Log) checkRecord(ctx context.Context, rec witness.HeadRecord) error {
	// The stream's newest segment is the one holding its highest sealed
	// seqno: two point reads instead of listing every segment.
	var highest uint64
	if last, ok, err := l.st.SegmentLastSeqno(ctx, rec.StreamID); err != nil {
		return storageErr(err, "segment last seqno of %q", rec.StreamID)
	} else if ok {
		id, ok, err := l.st.SegmentForSeqno(ctx, last)
		if err != nil {
			return storageErr(err, "segment for seqno %d", last)
		}
		if ok {
			highest = id
		}
	}
	if highest < rec.SegmentID {
		return &wire.ChainBrokenError{Seqno: rec.SeqEnd, Reason: fmt.Sprintf(
			"rollback detected: head file records segment %d but database only has up to %d", rec.SegmentID, highest)}
	}
	want, err := wire.ParseHex(rec.CheckpointHashHex)
	if err != nil || len(want) != wire.HashLen {
		return wire.Storagef(nil, "head file hash is not 32 bytes")
	}
	seg, _, h, err := l.Checkpoint(ctx, rec.SegmentID)
	if err != nil {
		return err
	}
	if !bytesEqual(h, want) {
		return &wire.ChainBrokenError{Seqno: rec.SeqEnd, Reason: fmt.Sprintf(
			"rollback detected: segment %d recomputes to a different checkpoint hash than head file records", rec.SegmentID)}
	}
	if l.opts.Trust == nil && l.opts.Signer == nil {
		return nil // no public keys configured: the hash comparison is all we can do
	}
	if err := presentSignature(seg); err != nil {
		return err
	}
	return l.verifySig(ctx, seg, h)
}

// checkHead is CheckRollback for the sign path: a rollback halts the stream.
func (l *Log) checkHead(ctx context.Context, stream string) error {
	rec, ok, err := l.HeadRecord(stream)
	if err != nil || !ok {
		return err
	}
	err = l.checkRecord(ctx, rec)
	var cb *wire.ChainBrokenError
	if errors.As(err, &cb) {
		return l.halt(stream, HaltRollback, err)
	}
	return err
}

// checkAllRollback runs CheckRollback for every stream in the head file.
func (l *Log) checkAllRollback(ctx context.Context) error {
	hf, err := witness.LoadHeadFile(l.opts.HeadFile)
	if err != nil {
		return wire.Storagef(err, "")
	}
	for _, rec := range hf.Records {
		if err := l.checkRecord(ctx, rec); err != nil {
			var cb *wire.ChainBrokenError
			if errors.As(err, &cb) {
				l.alert(rec.StreamID, err)
			}
			return err
		}
	}
	return nil
}
