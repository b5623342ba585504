package securelog

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/securelog/securelog/pkg/wire"
	"github.com/securelog/securelog/pkg/witness"
)

// HaltMissingHead: the head file is missing while the store has signed
// segments, so nothing shows that the store is not an older copy
// (issue 9 item 9). Appends and signing of the stream wait until the head
// is re-established from a witness's head (Options.WitnessHead) or the
// operator accepts the store as it is (Options.AcceptMissingHead).
const HaltMissingHead = "missing-head"

// WitnessHead is what a witness last accepted for a stream: the segment id
// and checkpoint hash of its newest cosigned checkpoint, and the log's
// signature over that hash as the witness recorded it.
type WitnessHead struct {
	SegmentID      uint64
	SeqEnd         uint64
	CheckpointHash []byte
	// SignerIdentity and Signature, if set, are verified with the log's
	// public keys (Options.Trust, else the keystore's) before the head is
	// used: a head no trusted key signed is refused.
	SignerIdentity string
	Signature      []byte
}

// verify checks the head's log signature over its checkpoint hash.
func (h WitnessHead) verify(l *Log, stream string) error {
	if len(h.CheckpointHash) != wire.HashLen {
		return wire.Invalidf("witness head of stream %q: checkpoint hash is %d bytes, want %d", stream, len(h.CheckpointHash), wire.HashLen)
	}
	if len(h.Signature) == 0 {
		return nil
	}
	if l.trust == nil { // the Reader's: the trust file, else the keystore's public keys
		return wire.Invalidf("witness head of stream %q: no trust file (--trust) to verify its log signature with", stream)
	}
	if err := l.trust.Verify(h.SignerIdentity, h.CheckpointHash, h.Signature); err != nil {
		return wire.Invalidf("witness head of stream %q (segment %d): the log signature by %q does not verify with the trust file: %v",
			stream, h.SegmentID, h.SignerIdentity, err)
	}
	return nil
}

// MissingHeadError explains a HaltMissingHead: which head file is missing
// and how far the stream's signed history goes.
type MissingHeadError struct {
	HeadFile string
	Stream   string
	// Signed is the stream's newest signed segment in the store.
	Signed uint64
}

func (e *MissingHeadError) Error() string {
	return fmt.Sprintf("head file %s is missing but stream %q has signed segments up to %d: no anti-rollback anchor shows this store is not an older copy; "+
		"re-establish the head from a witness (--reset-head-from-witness) or accept the store as it is (--accept-missing-head)", e.HeadFile, e.Stream, e.Signed)
}

// checkHeadPresent runs at open when a head file is configured: if the file
// does not exist but streams have signed segments, it re-establishes the
// head from Options.WitnessHead (each witnessed checkpoint must be in the
// store, else the stream halts as rolled back), or from the store itself
// with Options.AcceptMissingHead; otherwise every such stream halts with
// HaltMissingHead. A new head file records each stream's newest signed
// checkpoint in the store.
func (l *Log) checkHeadPresent(ctx context.Context) error {
	if l.opts.HeadFileAdvancedElsewhere {
		return nil
	}
	if _, err := os.Stat(l.opts.HeadFile); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return nil // present (or unreadable: the head-file check reports it)
	}
	streams, err := l.st.StreamList(ctx)
	if err != nil {
		return storageErr(err, "list streams")
	}
	var recs []witness.HeadRecord
	for _, s := range streams {
		newest, h, ok, err := l.newestSigned(ctx, s.Name)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		rec := witness.HeadRecord{StreamID: s.Name, SegmentID: newest.SegmentID, SeqEnd: newest.SeqEnd,
			CheckpointHashHex: hexs(h), UpdatedAt: l.timestamp()}
		switch {
		case l.opts.WitnessHead != nil:
			wh, found, err := l.opts.WitnessHead(ctx, s.Name)
			if err != nil {
				return fmt.Errorf("head of stream %q from the witness: %w", s.Name, err)
			}
			if found {
				if err := wh.verify(l, s.Name); err != nil {
					return err
				}
			}
			if !found {
				if !l.opts.AcceptMissingHead {
					_ = l.halt(s.Name, HaltMissingHead, &MissingHeadError{HeadFile: l.opts.HeadFile, Stream: s.Name, Signed: newest.SegmentID})
					continue
				}
				l.log.Warn("the witness has no head for the stream; accepting the store's newest checkpoint as its head (--accept-missing-head)",
					"stream", s.Name, "segment_id", newest.SegmentID)
			} else if err := l.checkRecord(ctx, witness.HeadRecord{StreamID: s.Name, SegmentID: wh.SegmentID, SeqEnd: wh.SeqEnd, CheckpointHashHex: hexs(wh.CheckpointHash)}); err != nil {
				var cb *wire.ChainBrokenError
				if errors.As(err, &cb) {
					_ = l.halt(s.Name, HaltRollback, fmt.Errorf("the witness's head, segment %d, does not match this store (an older copy or a fork): %w", wh.SegmentID, err))
					continue
				}
				return err
			}
		case l.opts.AcceptMissingHead:
			l.log.Warn("head file missing: accepting the store's newest signed checkpoint as the anti-rollback anchor (--accept-missing-head); an older copy of the store would not be noticed",
				"stream", s.Name, "segment_id", newest.SegmentID, "head_file", l.opts.HeadFile)
		default:
			_ = l.halt(s.Name, HaltMissingHead, &MissingHeadError{HeadFile: l.opts.HeadFile, Stream: s.Name, Signed: newest.SegmentID})
			continue
		}
		recs = append(recs, rec)
	}
	for _, rec := range recs {
		if _, err := witness.AdvanceHeadFile(l.opts.HeadFile, rec); err != nil {
			return wire.Storagef(err, "")
		}
		l.log.Info("head file re-established", "stream", rec.StreamID, "segment_id", rec.SegmentID, "head_file", l.opts.HeadFile)
	}
	return nil
}

// ensureHeadFile creates an empty head file if the configured one does
// not exist yet (the first signature of a new log).
func (l *Log) ensureHeadFile() error {
	if l.opts.HeadFile == "" || l.opts.HeadFileAdvancedElsewhere {
		return nil
	}
	if _, err := os.Stat(l.opts.HeadFile); !errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	_, err := witness.UpdateHead(witness.FileHeadStore{Path: l.opts.HeadFile}, func(hf *witness.HeadFile) (bool, error) {
		return len(hf.Records) == 0, nil // written only when missing (compare-and-swap)
	})
	if err != nil {
		return wire.Storagef(err, "")
	}
	return nil
}

// newestSigned returns the stream's newest signed segment and its
// checkpoint hash (ok false when none is signed).
func (l *Log) newestSigned(ctx context.Context, stream string) (wire.SegmentRow, []byte, bool, error) {
	// Usually the newest segment is signed: two point reads.
	last, ok, err := l.st.SegmentLastSeqno(ctx, stream)
	if err != nil || !ok {
		return wire.SegmentRow{}, nil, false, storageErr(err, "segment last seqno of %q", stream)
	}
	if id, ok, err := l.st.SegmentForSeqno(ctx, last); err != nil {
		return wire.SegmentRow{}, nil, false, storageErr(err, "segment for seqno %d", last)
	} else if ok {
		if seg, ok, err := l.st.SegmentGet(ctx, id); err != nil {
			return wire.SegmentRow{}, nil, false, storageErr(err, "get segment %d", id)
		} else if ok && seg.Signed() {
			seg, _, h, err := l.Checkpoint(ctx, id)
			return seg, h, err == nil, err
		}
	}
	segs, err := l.st.SegmentsList(ctx, stream)
	if err != nil {
		return wire.SegmentRow{}, nil, false, storageErr(err, "segments of %q", stream)
	}
	for i := len(segs) - 1; i >= 0; i-- {
		if !segs[i].Signed() {
			continue
		}
		seg, _, h, err := l.Checkpoint(ctx, segs[i].SegmentID)
		if err != nil {
			return wire.SegmentRow{}, nil, false, err
		}
		return seg, h, true, nil
	}
	return wire.SegmentRow{}, nil, false, nil
}
