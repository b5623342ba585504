package tlogwitness

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// DefaultMaxClockSkew is how far in the future a cosignature timestamp may
// be before a verifier refuses it.
const DefaultMaxClockSkew = 5 * time.Minute

// Policy says when a checkpoint counts as witnessed: at least Quorum of
// Witnesses have cosigned it (N of M).
type Policy struct {
	// Witnesses are the trusted cosigners (NewVerifier of their vkeys);
	// names must be distinct.
	Witnesses []note.Verifier
	// Quorum is N; 0 means every witness (M of M). A policy with no
	// witnesses and Quorum 0 is satisfied by the log signature alone.
	Quorum int
}

// Need returns how many cosignatures satisfy the policy.
func (p Policy) Need() int {
	if p.Quorum <= 0 || p.Quorum > len(p.Witnesses) {
		return len(p.Witnesses)
	}
	return p.Quorum
}

// Validate checks the policy: distinct witness names, a quorum within
// 0..len(Witnesses).
func (p Policy) Validate() error {
	seen := map[string]bool{}
	for _, w := range p.Witnesses {
		if seen[w.Name()] {
			return fmt.Errorf("tlogwitness: policy names witness %q twice", w.Name())
		}
		seen[w.Name()] = true
	}
	if p.Quorum < 0 || p.Quorum > len(p.Witnesses) {
		return fmt.Errorf("tlogwitness: policy quorum %d of %d witnesses", p.Quorum, len(p.Witnesses))
	}
	return nil
}

// Cosignature is a verified cosignature/v1 of a checkpoint.
type Cosignature struct {
	// Witness is the cosigner name.
	Witness string
	// Time is the cosignature's timestamp.
	Time time.Time
	// Signature is the note signature (its line is SignatureLine).
	Signature note.Signature
}

// QuorumError reports a checkpoint with fewer valid cosignatures than the
// policy needs.
type QuorumError struct {
	Origin string
	Size   int64
	Have   int
	Need   int
	// Witnessed names the witnesses that did cosign.
	Witnessed []string
}

func (e *QuorumError) Error() string {
	return fmt.Sprintf("tlogwitness: checkpoint %s@%d has %d valid cosignature(s) %v, the witness policy needs %d",
		e.Origin, e.Size, e.Have, e.Witnessed, e.Need)
}

// FutureCosignatureError reports a cosignature timestamped further in the
// future than the allowed clock skew.
type FutureCosignatureError struct {
	Witness string
	Time    time.Time
	Now     time.Time
}

func (e *FutureCosignatureError) Error() string {
	return fmt.Sprintf("tlogwitness: cosignature of %q is timestamped %s, in the future (now %s)",
		e.Witness, e.Time.Format(time.RFC3339), e.Now.Format(time.RFC3339))
}

// CheckpointVerifier opens cosigned checkpoints of one log.
type CheckpointVerifier struct {
	// Origin is the log's origin line.
	Origin string
	// Log verifies the log's own signature (NewVerifier of its vkey).
	Log note.Verifier
	// Policy decides which cosignatures are needed.
	Policy Policy
	// MaxClockSkew bounds cosignature timestamps in the future
	// (DefaultMaxClockSkew if 0).
	MaxClockSkew time.Duration
}

// Verified is a checkpoint that passed CheckpointVerifier.Verify.
type Verified struct {
	Checkpoint Checkpoint
	// Text is the note text.
	Text string
	// Cosignatures are the valid cosignatures of policy witnesses, in
	// note order.
	Cosignatures []Cosignature
}

// Verify opens a signed checkpoint note at time now. The note must be
// well-formed with canonical base64 signatures; the log's signature must be
// present and valid; every signature by a known key (log or policy
// witness) must verify — one tampered signature refuses the whole note —
// and no cosignature may be timestamped after now + MaxClockSkew; the
// checkpoint origin must be v.Origin. Signatures by unknown keys are
// ignored. Verify returns the checkpoint and its cosignatures, and a
// *QuorumError (with the Verified value) when the policy is not met.
func (v CheckpointVerifier) Verify(msg []byte, now time.Time) (*Verified, error) {
	if _, _, err := SplitNote(msg); err != nil {
		return nil, err
	}
	known := note.VerifierList(append([]note.Verifier{v.Log}, v.Policy.Witnesses...)...)
	n, err := note.Open(msg, known)
	if err != nil {
		var unverified *note.UnverifiedNoteError
		if errors.As(err, &unverified) {
			return nil, fmt.Errorf("tlogwitness: checkpoint carries no signature by the log key %q or a policy witness", v.Log.Name())
		}
		return nil, fmt.Errorf("tlogwitness: open checkpoint note: %w", err)
	}
	if !slices.ContainsFunc(n.Sigs, func(s note.Signature) bool { return s.Name == v.Log.Name() && s.Hash == v.Log.KeyHash() }) {
		return nil, fmt.Errorf("tlogwitness: checkpoint is not signed by the log key %q", v.Log.Name())
	}
	c, err := parseCheckpoint(n.Text)
	if err != nil {
		return nil, err
	}
	if c.Origin != v.Origin {
		return nil, fmt.Errorf("tlogwitness: checkpoint origin %q, want %q", c.Origin, v.Origin)
	}
	skew := v.MaxClockSkew
	if skew <= 0 {
		skew = DefaultMaxClockSkew
	}
	out := &Verified{Checkpoint: c, Text: n.Text}
	var names []string
	for _, s := range n.Sigs {
		if s.Name == v.Log.Name() && s.Hash == v.Log.KeyHash() {
			continue
		}
		t, err := CosignatureTime(s)
		if err != nil {
			return nil, fmt.Errorf("tlogwitness: signature of witness %q: %w", s.Name, err)
		}
		if t.After(now.Add(skew)) {
			return nil, &FutureCosignatureError{Witness: s.Name, Time: t, Now: now}
		}
		out.Cosignatures = append(out.Cosignatures, Cosignature{Witness: s.Name, Time: t, Signature: s})
		names = append(names, s.Name)
	}
	if need := v.Policy.Need(); len(out.Cosignatures) < need {
		return out, &QuorumError{Origin: c.Origin, Size: c.Size, Have: len(out.Cosignatures), Need: need, Witnessed: names}
	}
	return out, nil
}

// MergeCosignatures returns the signed note with the given signatures
// appended, skipping any whose key (name and key ID) already signed it.
// It does not verify anything: merge only signatures a CheckpointVerifier
// (or the Client) verified.
func MergeCosignatures(signed []byte, sigs ...note.Signature) ([]byte, error) {
	text, lines, err := SplitNote(signed)
	if err != nil {
		return nil, err
	}
	type key struct {
		name string
		id   uint32
	}
	have := map[key]bool{}
	for _, l := range lines {
		s, _ := parseSignatureLine(l) // SplitNote checked every line
		have[key{s.Name, s.Hash}] = true
	}
	for _, s := range sigs {
		line := SignatureLine(s)
		if _, err := parseSignatureLine(line); err != nil {
			return nil, err
		}
		if k := (key{s.Name, s.Hash}); !have[k] {
			have[k] = true
			lines = append(lines, line)
		}
	}
	return []byte(text + "\n" + strings.Join(lines, "\n") + "\n"), nil
}
