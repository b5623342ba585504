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

// SignSegment signs the segment's checkpoint hash with the key of identity
// (SPEC §8.3), after checking the stream for rollback (DECISIONS 11) and
// checking the segment against the store (checkSegment; or, for a segment
// closed in this process and stored unchanged, against the close's record,
// Options.Closed), and advances the head file. Returns (checkpoint hash, signature). A failed check signs
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
	var h []byte
	if f, ok := l.opts.Closed.match(seg); ok {
		// Closed in this process from entries verified then, and stored
		// unchanged since (ClosedSegments): its checkpoint is the one
		// computed at the close.
		h = l.cacheCheckpoint(segID, f)
	} else {
		if err := l.checkSegment(ctx, seg); err != nil {
			var cb *wire.ChainBrokenError
			if errors.As(err, &cb) {
				return nil, nil, l.halt(seg.StreamID, HaltInvalidSegment, err)
			}
			return nil, nil, err
		}
		if _, _, h, err = l.Checkpoint(ctx, segID); err != nil {
			return nil, nil, err
		}
	}
	key, err := l.key(ctx, identity)
	if err != nil {
		return nil, nil, mapKeystoreErr("sign failed", err)
	}
	sig, err := key.Sign(h)
	if err != nil {
		return nil, nil, mapKeystoreErr("sign failed", err)
	}
	// The head file exists before the store holds a signature, so a crash
	// between the two never looks like a deleted head file (headanchor.go).
	if err := l.ensureHeadFile(); err != nil {
		return nil, nil, err
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
	if k, ok := l.keyCache.get(identity); ok {
		return k, nil
	}
	k, err := l.opts.Signer.GetKey(ctx, identity)
	if err != nil {
		return nil, err
	}
	l.keyCache.put(identity, k)
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
