// Package witnessd is the independent witness service of DECISIONS 12 (SPEC
// §11): it remembers, per stream, the newest checkpoint it has accepted,
// refuses checkpoints that do not extend it, cosigns the ones it accepts
// with its own Ed25519 key and cross-checks the log's store against what it
// has witnessed.
//
// The accept rule (Decide) is pure: no I/O, no clock. The Server adds the
// witness log (a store.Store), the cosigning key, HTTP and NATS front ends,
// metrics and the cross-check loop; Client submits checkpoints over HTTP or
// NATS.
//
// With Config.Tlog the same server is also a C2SP tlog-witness
// (tlogwitness.go): POST /add-checkpoint cosigns RFC 6962 checkpoints of the
// configured logs with cosignature/v1 signatures, keeping its state in a
// TreeHeadStore.
package witnessd

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/securelog/securelog/pkg/checkpoint"
	"github.com/securelog/securelog/pkg/wire"
	"github.com/securelog/securelog/pkg/witness"
)

// Receipt statuses (witness.Receipt.Status). Each refusal has a distinct
// status; Receipt.Reason says what was wrong in words.
const (
	// StatusAccepted: the checkpoint is (now) the witnessed head of its
	// stream, or equals it (an idempotent resubmission). Only accepted
	// receipts carry a cosignature.
	StatusAccepted = "accepted"
	// StatusEquivocation: a validly signed checkpoint for the segment the
	// witness already accepted, with a different hash: the log signed two
	// histories. The witness raises an alert.
	StatusEquivocation = "equivocation"
	// StatusStale: the segment is older than the witnessed head; the receipt
	// carries the current head (Receipt.CurrentHead).
	StatusStale = "stale"
	// StatusNotExtending: a newer segment that does not link to the
	// witnessed head, neither directly (prev_checkpoint_hash) nor through
	// the submitted intermediate checkpoints.
	StatusNotExtending = "not-extending"
	// StatusBadSignature: the checkpoint's (or an intermediate's) signature
	// does not verify with the signer's key from the trust file.
	StatusBadSignature = "bad-signature"
	// StatusUnknownSigner: the signer identity is not in the trust file.
	StatusUnknownSigner = "unknown-signer"
	// StatusInvalid: the submission is malformed or inconsistent: missing
	// checkpoint fields, bad hex, fields that do not hash to
	// checkpoint_hash_hex, v1 fields that disagree with the checkpoint.
	StatusInvalid = "invalid"
)

// Verifier checks a signature by signer identity with public keys only;
// *checkpoint.Trust implements it. An identity it does not know must give
// an error matching *checkpoint.UnknownSignerError (errors.As).
type Verifier interface {
	Verify(identity string, msg, sig []byte) error
}

// Decision is the outcome of Decide.
type Decision struct {
	// Status is one of the Status constants.
	Status string
	// Reason explains a refusal ("" when accepted).
	Reason string
	// Hash is the checkpoint hash recomputed from the submission's fields
	// (nil when the fields could not be parsed).
	Hash []byte
	// Store is true when an accepted checkpoint is new and must be
	// recorded as the stream's head; false for an idempotent resubmission.
	Store bool
	// Head is the witnessed head the submission was compared with (nil on
	// first contact).
	Head *wire.WitnessRow
	// Evidence is the alert kind when the refusal is evidence against the
	// log — a validly signed checkpoint that conflicts with the witnessed
	// head (AlertEquivocation, AlertFork, AlertUnlinked) — and "" otherwise.
	Evidence string
}

// Accepted reports whether the decision accepts the submission.
func (d Decision) Accepted() bool { return d.Status == StatusAccepted }

func refuse(status, format string, args ...any) Decision {
	return Decision{Status: status, Reason: fmt.Sprintf(format, args...)}
}

// Decide applies the witness accept rule (DECISIONS 12) to sub, given the
// last checkpoint accepted for sub.StreamID (nil if none) and the trust
// file of the log's signers. In order:
//
//  1. The submission must carry the checkpoint's 12 fields; they must agree
//     with the v1 fields (stream, segment, seq range, previous hash) and
//     hash (checkpoint.Hash) to checkpoint_hash_hex → else StatusInvalid.
//  2. The signature over the 32-byte hash must verify with the signer's
//     trusted key → else StatusUnknownSigner or StatusBadSignature.
//  3. No previous checkpoint: accept (first contact, trust on first use —
//     the witness can only vouch for consistency from then on).
//  4. Same segment: same hash → accept (idempotent, Store false); other
//     hash → StatusEquivocation.
//  5. Lower segment → StatusStale.
//  6. Higher segment: refuse (StatusNotExtending) if its seq range starts
//     at or before the witnessed head's seq_end (segments of a stream never
//     overlap, SPEC §7.1); accept if its prev_checkpoint_hash is the witnessed
//     hash, or if walking back from it through sub.Intermediate — each
//     intermediate hashed from its own fields, of the same stream, with a
//     segment id strictly between the witnessed one and its successor's,
//     and validly signed — reaches the witnessed hash. Otherwise
//     StatusNotExtending (a signature failure of an intermediate on that
//     path gives its signature status instead).
//
// Refusals of a validly signed checkpoint that conflict with the head are
// evidence (Decision.Evidence): equivocation (4); a proven fork at a new
// id (6: the checkpoint restarts the chain from the zero hash, re-covers
// seqnos of the witnessed head, or its chain passes through a signed
// checkpoint at or below the head's id that is not the head: AlertFork);
// and a new id that merely cannot be linked (AlertUnlinked: a fork, or a
// witness that missed checkpoints, which a resubmission with intermediates
// resolves). Stale refusals (5) need the witness's older rows to judge;
// see StaleConflict.
//
// Decide does no I/O; its cost is one hash and one signature check per
// checkpoint on the path.
func Decide(trust Verifier, last *wire.WitnessRow, sub witness.Submission) Decision {
	f, hash, d, ok := checkSubmission(sub)
	if !ok {
		return d
	}
	if d, ok := checkSignature(trust, "checkpoint", sub.SignerIdentity, sub.SignatureHex, hash); !ok {
		d.Hash = hash
		return d
	}
	d = decideAgainst(trust, last, sub, f, hash)
	d.Hash, d.Head = hash, last
	return d
}

func decideAgainst(trust Verifier, last *wire.WitnessRow, sub witness.Submission, f wire.CheckpointFields, hash []byte) Decision {
	if last == nil {
		return Decision{Status: StatusAccepted, Store: true}
	}
	lastHash, err := decodeHash(last.CheckpointHashHex)
	if err != nil {
		// The witness log is ours; a corrupt head must not be overwritten silently.
		return refuse(StatusInvalid, "witnessed head of stream %q (segment %d) has a bad checkpoint hash: %v",
			last.StreamID, last.SegmentID, err)
	}
	switch {
	case sub.SegmentID == last.SegmentID:
		if bytes.Equal(hash, lastHash) {
			return Decision{Status: StatusAccepted}
		}
		d := refuse(StatusEquivocation, "segment %d of stream %q was witnessed with checkpoint hash %s; this submission hashes to %x",
			sub.SegmentID, sub.StreamID, last.CheckpointHashHex, hash)
		d.Evidence = AlertEquivocation
		return d
	case sub.SegmentID < last.SegmentID:
		return refuse(StatusStale, "segment %d is older than the witnessed head, segment %d of stream %q",
			sub.SegmentID, last.SegmentID, sub.StreamID)
	}
	if f.SeqStart <= last.SeqEnd {
		// A stream's segments never overlap (SPEC §7.1), so a newer segment
		// re-covering witnessed seqnos is another history of them, even if
		// it links by hash.
		d := refuse(StatusNotExtending, "segment %d of stream %q covers seq %d..%d, which re-covers entries of the witnessed head (segment %d, seq %d..%d): the log signed another history of them",
			sub.SegmentID, sub.StreamID, f.SeqStart, f.SeqEnd, last.SegmentID, last.SeqStart, last.SeqEnd)
		d.Evidence = AlertFork
		return d
	}
	d := link(trust, last, lastHash, sub, f)
	if d.Status != StatusNotExtending || d.Evidence != "" {
		return d
	}
	// Not linked: a proven fork, or a gap the witness cannot bridge.
	switch {
	case bytes.Equal(f.PrevCheckpointHash, wire.ZeroHash):
		d = refuse(StatusNotExtending, "segment %d of stream %q claims to be the stream's first checkpoint (zero prev_checkpoint_hash), but the witness accepted segment %d (%s): the log restarted its signed history",
			sub.SegmentID, sub.StreamID, last.SegmentID, last.CheckpointHashHex)
		d.Evidence = AlertFork
	default:
		d.Reason += " (a fork, or the witness missed checkpoints: resubmit with the intermediate checkpoints since the witnessed head)"
		d.Evidence = AlertUnlinked
	}
	return d
}

// link walks back from the new checkpoint's previous hash through the
// intermediates until it reaches the witnessed hash.
func link(trust Verifier, last *wire.WitnessRow, lastHash []byte, sub witness.Submission, f wire.CheckpointFields) Decision {
	if bytes.Equal(f.PrevCheckpointHash, lastHash) {
		return Decision{Status: StatusAccepted, Store: true}
	}
	type inter struct {
		f   wire.CheckpointFields
		sc  witness.SignedCheckpoint
		idx int
	}
	byHash := make(map[string]inter, len(sub.Intermediate))
	for i, sc := range sub.Intermediate {
		fi, err := ParseCheckpoint(sc.Checkpoint)
		if err != nil {
			return refuse(StatusInvalid, "intermediate checkpoint %d: %v", i, err)
		}
		byHash[string(checkpoint.Hash(fi))] = inter{fi, sc, i}
	}
	cur, curSeg := f.PrevCheckpointHash, f.SegmentID
	for range len(sub.Intermediate) + 1 {
		if bytes.Equal(cur, lastHash) {
			return Decision{Status: StatusAccepted, Store: true}
		}
		in, ok := byHash[string(cur)]
		if !ok {
			return refuse(StatusNotExtending, "segment %d of stream %q does not extend the witnessed head (segment %d, %s): no intermediate checkpoint hashes to %x",
				sub.SegmentID, sub.StreamID, last.SegmentID, last.CheckpointHashHex, cur)
		}
		if in.f.StreamID == sub.StreamID && in.f.SegmentID <= last.SegmentID && in.f.SegmentID < curSeg {
			// A checkpoint on this chain at or below the witnessed head's
			// id that is not the head: if it is validly signed, the log
			// signed a history without the witnessed head.
			what := fmt.Sprintf("intermediate checkpoint %d (segment %d)", in.idx, in.f.SegmentID)
			if d, ok := checkSignature(trust, what, in.sc.SignerIdentity, in.sc.SignatureHex, cur); !ok {
				return d
			}
			d := refuse(StatusNotExtending, "segment %d of stream %q descends from the signed %s, but the witness accepted segment %d (%s) and this chain does not pass through it",
				sub.SegmentID, sub.StreamID, what, last.SegmentID, last.CheckpointHashHex)
			d.Evidence = AlertFork
			return d
		}
		if in.f.StreamID != sub.StreamID || in.f.SegmentID <= last.SegmentID || in.f.SegmentID >= curSeg {
			return refuse(StatusNotExtending, "intermediate checkpoint %d (stream %q, segment %d) is not between the witnessed segment %d and segment %d of stream %q",
				in.idx, in.f.StreamID, in.f.SegmentID, last.SegmentID, curSeg, sub.StreamID)
		}
		what := fmt.Sprintf("intermediate checkpoint %d (segment %d)", in.idx, in.f.SegmentID)
		if d, ok := checkSignature(trust, what, in.sc.SignerIdentity, in.sc.SignatureHex, cur); !ok {
			return d
		}
		cur, curSeg = in.f.PrevCheckpointHash, in.f.SegmentID
	}
	// Unreachable: each step moves to a strictly lower segment, so at most
	// len(Intermediate) steps are taken before the loop returns.
	return refuse(StatusNotExtending, "segment %d of stream %q does not extend the witnessed head (segment %d)",
		sub.SegmentID, sub.StreamID, last.SegmentID)
}

// checkSubmission parses and cross-checks the submission's fields and
// recomputes its checkpoint hash.
func checkSubmission(sub witness.Submission) (wire.CheckpointFields, []byte, Decision, bool) {
	bad := func(format string, args ...any) (wire.CheckpointFields, []byte, Decision, bool) {
		return wire.CheckpointFields{}, nil, refuse(StatusInvalid, format, args...), false
	}
	switch {
	case sub.StreamID == "":
		return bad("stream_id is empty")
	case sub.Checkpoint == nil:
		return bad("submission has no checkpoint fields (DECISIONS 12): the witness recomputes the hash itself")
	case sub.SignerIdentity == "":
		return bad("signer_identity is empty")
	}
	f, err := ParseCheckpoint(*sub.Checkpoint)
	if err != nil {
		return bad("checkpoint: %v", err)
	}
	c := sub.Checkpoint
	if c.StreamID != sub.StreamID || c.SegmentID != sub.SegmentID || c.SeqStart != sub.SeqStart || c.SeqEnd != sub.SeqEnd {
		return bad("checkpoint fields (stream %q, segment %d, seq %d..%d) disagree with the submission (stream %q, segment %d, seq %d..%d)",
			c.StreamID, c.SegmentID, c.SeqStart, c.SeqEnd, sub.StreamID, sub.SegmentID, sub.SeqStart, sub.SeqEnd)
	}
	prev, err := decodeHash(sub.PrevCheckpointHashHex)
	if err != nil {
		return bad("prev_checkpoint_hash_hex: %v", err)
	}
	if !bytes.Equal(prev, f.PrevCheckpointHash) {
		return bad("prev_checkpoint_hash_hex %s disagrees with the checkpoint's prev_checkpoint_hash_hex %s",
			sub.PrevCheckpointHashHex, c.PrevCheckpointHashHex)
	}
	claimed, err := decodeHash(sub.CheckpointHashHex)
	if err != nil {
		return bad("checkpoint_hash_hex: %v", err)
	}
	hash := checkpoint.Hash(f)
	if !bytes.Equal(hash, claimed) {
		return bad("checkpoint fields hash to %x, not to checkpoint_hash_hex %s", hash, sub.CheckpointHashHex)
	}
	return f, hash, Decision{}, true
}

// checkSignature verifies sigHex over hash with identity's trusted key.
func checkSignature(trust Verifier, what, identity, sigHex string, hash []byte) (Decision, bool) {
	sig, err := hex.DecodeString(sigHex)
	if err != nil || len(sig) == 0 {
		return refuse(StatusInvalid, "%s: signature_hex %q is not a non-empty hex string", what, sigHex), false
	}
	err = trust.Verify(identity, hash, sig)
	if err == nil {
		return Decision{}, true
	}
	var unknown *checkpoint.UnknownSignerError
	if errors.As(err, &unknown) {
		return refuse(StatusUnknownSigner, "%s: signer identity %q is not in the witness's trust file", what, identity), false
	}
	return refuse(StatusBadSignature, "%s: signature of %q over %x: %v", what, identity, hash, err), false
}

// ParseCheckpoint converts the JSON form of a checkpoint to its fields: the
// version must be 1 and the four hashes 32 bytes of hex.
func ParseCheckpoint(c witness.CheckpointJSON) (wire.CheckpointFields, error) {
	if c.Version != wire.CheckpointVersion {
		return wire.CheckpointFields{}, fmt.Errorf("version %d, want %d", c.Version, wire.CheckpointVersion)
	}
	f := wire.CheckpointFields{
		Version: c.Version, StreamID: c.StreamID, SegmentID: c.SegmentID, SeqStart: c.SeqStart, SeqEnd: c.SeqEnd,
		BootID: c.BootID, SessionID: c.SessionID, Timestamp: c.Timestamp,
	}
	for _, h := range []struct {
		dst  *[]byte
		hex  string
		name string
	}{
		{&f.MerkleRoot, c.MerkleRootHex, "merkle_root_hex"},
		{&f.LastEntryHash, c.LastEntryHashHex, "last_entry_hash_hex"},
		{&f.PrevCheckpointHash, c.PrevCheckpointHashHex, "prev_checkpoint_hash_hex"},
		{&f.PolicyHash, c.PolicyHashHex, "policy_hash_hex"},
	} {
		b, err := decodeHash(h.hex)
		if err != nil {
			return wire.CheckpointFields{}, fmt.Errorf("%s: %w", h.name, err)
		}
		*h.dst = b
	}
	return f, nil
}

// decodeHash decodes 64 hex characters (either case) into 32 bytes.
func decodeHash(s string) ([]byte, error) {
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not hex: %w", s, err)
	}
	if len(b) != wire.HashLen {
		return nil, fmt.Errorf("%q is %d bytes, want %d", s, len(b), wire.HashLen)
	}
	return b, nil
}

// StaleConflict judges a stale refusal (a checkpoint of sub's stream at a
// segment id below the witnessed head; hash is its recomputed checkpoint
// hash, already validly signed) against rows, the witness's accepted rows
// of the stream. It returns the alert kind and a detail when the
// checkpoint conflicts with what the witness accepted, and "" when it may
// simply be an old checkpoint resubmitted:
//   - a row for the same segment with another hash → AlertEquivocation;
//   - a row of a lower segment whose seq_end ≥ its seq_start, or of a
//     higher segment whose seq_start ≤ its seq_end (a stream's segments
//     cover increasing, disjoint seqno ranges) → AlertFork.
func StaleConflict(rows []wire.WitnessRow, sub witness.Submission, hash []byte) (kind, detail string) {
	for _, r := range rows {
		switch {
		case r.SegmentID == sub.SegmentID:
			if h, err := decodeHash(r.CheckpointHashHex); err == nil && !bytes.Equal(h, hash) {
				return AlertEquivocation, fmt.Sprintf("segment %d of stream %q was witnessed with checkpoint hash %s; this validly signed submission hashes to %x",
					sub.SegmentID, sub.StreamID, r.CheckpointHashHex, hash)
			}
		case (r.SegmentID < sub.SegmentID && r.SeqEnd >= sub.SeqStart) || (r.SegmentID > sub.SegmentID && r.SeqStart <= sub.SeqEnd):
			return AlertFork, fmt.Sprintf("segment %d of stream %q covers seq %d..%d, overlapping the witnessed segment %d (seq %d..%d): the log signed another history of those entries",
				sub.SegmentID, sub.StreamID, sub.SeqStart, sub.SeqEnd, r.SegmentID, r.SeqStart, r.SeqEnd)
		}
	}
	return "", ""
}
