package securelog

import (
	"context"
	"fmt"

	"github.com/securelog/securelog/pkg/wire"
	"github.com/securelog/securelog/pkg/witness"
)

// CheckpointJSON converts checkpoint fields to their JSON form.
func CheckpointJSON(f wire.CheckpointFields) witness.CheckpointJSON {
	return witness.CheckpointJSON{
		Version: f.Version, StreamID: f.StreamID, SegmentID: f.SegmentID, SeqStart: f.SeqStart, SeqEnd: f.SeqEnd,
		MerkleRootHex: hexs(f.MerkleRoot), LastEntryHashHex: hexs(f.LastEntryHash),
		PrevCheckpointHashHex: hexs(f.PrevCheckpointHash), BootID: f.BootID, SessionID: f.SessionID,
		PolicyHashHex: hexs(f.PolicyHash), Timestamp: f.Timestamp,
	}
}

// BuildWitnessSubmission describes the stream's newest signed checkpoint for
// a witness (SPEC §11.1 plus DECISIONS 12): the v1 fields, the checkpoint's
// fields and previous hash, and every signed checkpoint after segment
// `since` (the last one the witness accepted; 0 = none) that links to it.
func (r *Reader) BuildWitnessSubmission(ctx context.Context, stream string, since uint64) (witness.Submission, error) {
	type signed struct {
		seg wire.SegmentRow
		f   wire.CheckpointFields
		h   []byte
	}
	var all []signed
	err := r.chainWalk(ctx, stream, 0, true, func(seg wire.SegmentRow, f wire.CheckpointFields, h []byte) error {
		if f.StreamID == "" { // cached hash: rebuild fields for the submission
			var err error
			f, err = r.fieldsFor(ctx, seg, prevOf(all, func(s signed) []byte { return s.h }))
			if err != nil {
				return err
			}
		}
		all = append(all, signed{seg, f, h})
		return nil
	})
	if err != nil {
		return witness.Submission{}, err
	}
	newest := -1
	for i := len(all) - 1; i >= 0; i-- {
		if all[i].seg.Signed() {
			newest = i
			break
		}
	}
	if newest < 0 {
		return witness.Submission{}, wire.Invalidf("stream '%s' has no signed segments to publish", stream)
	}
	s := all[newest]
	if s.seg.SignerIdentity == nil {
		return witness.Submission{}, wire.Invalidf("signed segment has no signer identity")
	}
	cj := CheckpointJSON(s.f)
	sub := witness.Submission{
		StreamID: stream, SegmentID: s.seg.SegmentID, SeqStart: s.seg.SeqStart, SeqEnd: s.seg.SeqEnd,
		CheckpointHashHex: hexs(s.h), SignatureHex: hexs(s.seg.Signature), SignerIdentity: s.seg.Signer(),
		PrevCheckpointHashHex: hexs(s.f.PrevCheckpointHash), Checkpoint: &cj,
	}
	for _, c := range all[:newest] {
		if c.seg.SegmentID <= since {
			continue
		}
		if !c.seg.Signed() || c.seg.SignerIdentity == nil {
			return witness.Submission{}, wire.Invalidf("segment %d between the witnessed head %d and segment %d is not signed", c.seg.SegmentID, since, s.seg.SegmentID)
		}
		sub.Intermediate = append(sub.Intermediate, witness.SignedCheckpoint{
			Checkpoint: CheckpointJSON(c.f), SignatureHex: hexs(c.seg.Signature), SignerIdentity: c.seg.Signer()})
	}
	return sub, nil
}

func prevOf[T any](xs []T, h func(T) []byte) []byte {
	if len(xs) == 0 {
		return wire.ZeroHash
	}
	return h(xs[len(xs)-1])
}

// VerifyAgainstWitness compares a witnessed checkpoint with the local one
// (SPEC §11.4); a difference is *wire.ChainBrokenError and an alert.
func (l *Log) VerifyAgainstWitness(ctx context.Context, sub witness.Submission) error {
	_, _, h, err := l.Checkpoint(ctx, sub.SegmentID)
	if err != nil {
		return err
	}
	if hexs(h) != sub.CheckpointHashHex {
		err := &wire.ChainBrokenError{Seqno: sub.SeqEnd, Reason: fmt.Sprintf(
			"witness divergence at segment %d: remote=%s local=%s", sub.SegmentID, sub.CheckpointHashHex, hexs(h))}
		l.alert(sub.StreamID, err)
		return err
	}
	return nil
}
