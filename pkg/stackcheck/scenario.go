package stackcheck

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/securelog/securelog/pkg/audit"
	"github.com/securelog/securelog/pkg/checkpoint"
	"github.com/securelog/securelog/pkg/keystore"
	"github.com/securelog/securelog/pkg/securelog"
	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/wire"
)

// Check names, in the order they run: the twelve steps of SPEC §20 (steps
// 2–4 as one "append" check) and its extra checks, plus a full pkg/audit
// pass and the comparison with the reference stack.
const (
	CheckOpen            = "open"
	CheckAppend          = "append"
	CheckRead            = "read"
	CheckHead            = "head"
	CheckVerifyChain     = "verify-chain"
	CheckCloseSegment    = "close-segment"
	CheckInclusionProof  = "inclusion-proof"
	CheckProofWrongRoot  = "proof-wrong-root"
	CheckSignSegment     = "sign-segment"
	CheckCheckpointChain = "checkpoint-chain"
	CheckGenesisPrev     = "genesis-prev"
	CheckVerifySignature = "verify-signature"
	CheckEmptySegment    = "empty-segment"
	CheckChainLink       = "chain-link"
	CheckListStreams     = "list-streams"
	CheckFullAudit       = "full-audit"
	CheckSameAsReference = "same-as-reference"
)

// Checks lists every check in order.
var Checks = []string{CheckOpen, CheckAppend, CheckRead, CheckHead, CheckVerifyChain, CheckCloseSegment,
	CheckInclusionProof, CheckProofWrongRoot, CheckSignSegment, CheckCheckpointChain, CheckGenesisPrev,
	CheckVerifySignature, CheckEmptySegment, CheckChainLink, CheckListStreams, CheckFullAudit, CheckSameAsReference}

// fingerprint is what must be identical on every stack for the same
// inputs: the clock, session id and boot id are fixed, so entry hashes,
// Merkle roots and checkpoint hashes are too. Signatures are left out
// (ECDSA and RSA-PSS are randomised); their length is kept.
type fingerprint struct {
	Appends    []securelog.AppendResult
	Read       wire.EntryRow
	Heads      [2]uint64
	Segment    wire.SegmentRow
	Proof      securelog.InclusionProof
	Checkpoint string
	SigLen     int
	Chain      uint32
	Streams    []string
}

// scenario is one run of SPEC §20 on one fresh store with one key.
type scenario struct {
	ctx      context.Context
	st       store.Store
	config   string
	signer   keystore.Signer
	identity string
	alg      string
	logger   *slog.Logger

	results map[string]error
	fp      fingerprint
}

// errNotRun marks a check whose inputs an earlier failed check should
// have produced.
var errNotRun = errors.New("not run: an earlier check it depends on failed")

func (s *scenario) check(name string, fn func() error) bool {
	err := fn()
	s.results[name] = err
	return err == nil
}

func (s *scenario) skip(names ...string) {
	for _, n := range names {
		if _, done := s.results[n]; !done {
			s.results[n] = errNotRun
		}
	}
}

// fixedClock returns increasing times one millisecond apart from a fixed
// start, so every stack sees the same timestamps.
func fixedClock() func() time.Time {
	t0 := time.Date(2026, 4, 10, 0, 0, 0, 0, time.UTC)
	var n int64
	return func() time.Time {
		n++
		return t0.Add(time.Duration(n) * time.Millisecond)
	}
}

// run executes the scenario; results holds every check of Checks except
// CheckSameAsReference (filled in by the caller).
func (s *scenario) run() {
	s.results = map[string]error{}
	defer s.skip(Checks[:len(Checks)-1]...)
	ctx := s.ctx
	key, err := s.signer.GetKey(ctx, s.identity)
	if err != nil {
		s.results[CheckOpen] = fmt.Errorf("keystore: get key %q: %w", s.identity, err)
		return
	}
	trust, err := checkpoint.NewTrust(checkpoint.TrustEntry{Identity: s.identity, Algorithm: key.Algorithm(), PublicKey: key.PublicKey()})
	if err != nil {
		s.results[CheckOpen] = fmt.Errorf("trust from the key's public key: %w", err)
		return
	}
	l := securelog.New(s.st, securelog.Options{Signer: s.signer, Trust: trust, Now: fixedClock(),
		SessionID: "stackcheck-session", BootID: "stackcheck-boot", Logger: s.logger})
	// 1.
	if !s.check(CheckOpen, func() error { return l.Open(ctx, s.config) }) {
		return
	}
	// 2–4.
	var a, b, c securelog.AppendResult
	if !s.check(CheckAppend, func() error {
		var err error
		if a, err = l.Append(ctx, "default", "user.login", wire.Info, "authd", []byte("alice")); err != nil {
			return fmt.Errorf("append a: %w", err)
		}
		if b, err = l.Append(ctx, "default", "user.logout", wire.Info, "authd", []byte("alice")); err != nil {
			return fmt.Errorf("append b: %w", err)
		}
		if c, err = l.Append(ctx, "audit", "policy.change", wire.Warning, "ops", []byte("rotate")); err != nil {
			return fmt.Errorf("append c: %w", err)
		}
		if a.Seqno != 1 || b.Seqno != 2 || c.Seqno != 3 {
			return fmt.Errorf("seqnos %d, %d, %d; want 1, 2, 3", a.Seqno, b.Seqno, c.Seqno)
		}
		for _, r := range []securelog.AppendResult{a, b, c} {
			if len(r.EntryHash) != wire.HashLen {
				return fmt.Errorf("seqno %d: entry hash is %d bytes, want 32", r.Seqno, len(r.EntryHash))
			}
		}
		s.fp.Appends = []securelog.AppendResult{a, b, c}
		return nil
	}) {
		return
	}
	// 5.
	s.check(CheckRead, func() error {
		r, err := l.Read(ctx, a.Seqno)
		if err != nil {
			return err
		}
		if r.StreamID != "default" || r.EventType != "user.login" {
			return fmt.Errorf("read(%d): stream %q event_type %q, want default, user.login", a.Seqno, r.StreamID, r.EventType)
		}
		s.fp.Read = r
		return nil
	})
	// 6.
	s.check(CheckHead, func() error {
		h, ok, err := l.Head(ctx, "default")
		if err != nil {
			return err
		}
		if !ok || h != b.Seqno {
			return fmt.Errorf("head(default) = %d (present %v), want %d", h, ok, b.Seqno)
		}
		ha, ok, err := l.Head(ctx, "audit")
		if err != nil || !ok || ha != 3 {
			return fmt.Errorf("head(audit) = %d (present %v, %v), want 3", ha, ok, err)
		}
		s.fp.Heads = [2]uint64{h, ha}
		return nil
	})
	// 7.
	s.check(CheckVerifyChain, func() error { return l.VerifyChain(ctx, "default", 1, b.Seqno) })
	// 8.
	var seg wire.SegmentRow
	if !s.check(CheckCloseSegment, func() error {
		var err error
		if seg, err = l.CloseSegment(ctx, "default"); err != nil {
			return err
		}
		if seg.SegmentID != 1 || seg.SeqStart != 1 || seg.SeqEnd != 2 || len(seg.MerkleRoot) != wire.HashLen {
			return fmt.Errorf("segment %d range %d..%d root %d bytes; want 1, 1..2, 32 bytes", seg.SegmentID, seg.SeqStart, seg.SeqEnd, len(seg.MerkleRoot))
		}
		s.fp.Segment = seg
		return nil
	}) {
		return
	}
	// 9.
	var proof securelog.InclusionProof
	if s.check(CheckInclusionProof, func() error {
		var err error
		if proof, err = l.BuildInclusionProof(ctx, a.Seqno); err != nil {
			return err
		}
		if err := securelog.VerifyInclusionProof(proof, seg.MerkleRoot); err != nil {
			return err
		}
		if len(proof.Path) != 1 || !bytes.Equal(proof.Path[0].Sibling, b.EntryHash) || !proof.Path[0].Right {
			return fmt.Errorf("path %+v: want one step, sibling = b's entry hash, right = true", proof.Path)
		}
		s.fp.Proof = proof
		return nil
	}) {
		// 10.
		s.check(CheckProofWrongRoot, func() error {
			err := securelog.VerifyInclusionProof(proof, make([]byte, wire.HashLen))
			var mm *wire.InclusionMismatchError
			if !errors.As(err, &mm) {
				return fmt.Errorf("verify against 32 zero bytes: got %v, want an inclusion mismatch", err)
			}
			return nil
		})
	}
	// 11.
	var h []byte
	if s.check(CheckSignSegment, func() error {
		var sig []byte
		var err error
		if h, sig, err = l.SignSegment(ctx, s.identity, seg.SegmentID); err != nil {
			return err
		}
		want := 64
		if s.alg == keystore.RSAPSSSHA256 {
			want = 256
		}
		if len(h) != wire.HashLen || len(sig) != want {
			return fmt.Errorf("checkpoint hash %d bytes, signature %d bytes; want 32 and %d", len(h), len(sig), want)
		}
		s.fp.Checkpoint, s.fp.SigLen = hex.EncodeToString(h), len(sig)
		return nil
	}) {
		// 12.
		s.check(CheckCheckpointChain, func() error {
			n, err := l.VerifyCheckpointChain(ctx, "default")
			if err != nil {
				return err
			}
			if n != 1 {
				return fmt.Errorf("verify-checkpoint-chain(default) = %d, want 1", n)
			}
			s.fp.Chain = n
			return nil
		})
		s.check(CheckVerifySignature, func() error {
			got, err := l.VerifySegmentSignature(ctx, seg.SegmentID)
			if err != nil {
				return err
			}
			if !bytes.Equal(got, h) {
				return fmt.Errorf("verify-segment-signature = %x, sign-segment returned %x", got, h)
			}
			return nil
		})
		s.check(CheckFullAudit, func() error {
			for _, stream := range []string{"default", "audit"} {
				if _, err := audit.Stream(ctx, audit.StoreSource{Store: s.st}, stream, audit.Options{Trust: trust}); err != nil {
					return fmt.Errorf("audit of %s: %w", stream, err)
				}
			}
			return nil
		})
	}
	// Extra checks.
	s.check(CheckGenesisPrev, func() error {
		r, err := l.Read(ctx, c.Seqno)
		if err != nil {
			return err
		}
		if !bytes.Equal(r.PrevEntryHash, wire.ZeroHash) {
			return fmt.Errorf("read(3).prev_entry_hash = %x, want 32 zero bytes (genesis of stream audit)", r.PrevEntryHash)
		}
		return nil
	})
	s.check(CheckEmptySegment, func() error {
		_, err := l.CloseSegment(ctx, "default")
		var es *wire.EmptySegmentError
		if !errors.As(err, &es) {
			return fmt.Errorf("second close-segment(default): got %v, want empty-segment", err)
		}
		return nil
	})
	s.check(CheckChainLink, func() error {
		r, err := l.Read(ctx, b.Seqno)
		if err != nil {
			return err
		}
		if !bytes.Equal(r.PrevEntryHash, a.EntryHash) {
			return fmt.Errorf("read(%d).prev_entry_hash = %x, want a's entry hash %x", b.Seqno, r.PrevEntryHash, a.EntryHash)
		}
		return nil
	})
	s.check(CheckListStreams, func() error {
		streams, err := l.ListStreams(ctx)
		if err != nil {
			return err
		}
		for _, st := range streams {
			s.fp.Streams = append(s.fp.Streams, st.Name+"/"+st.Tier)
		}
		for _, st := range streams {
			if st.Name == "default" {
				return nil
			}
		}
		return fmt.Errorf("list-streams %v does not contain default", s.fp.Streams)
	})
}

// diff compares a fingerprint with the reference one and names the first
// differing part.
func (f fingerprint) diff(ref fingerprint) error {
	parts := []struct {
		name     string
		got, ref any
	}{
		{"append results", f.Appends, ref.Appends}, {"read(1)", f.Read, ref.Read}, {"heads", f.Heads, ref.Heads},
		{"segment", f.Segment, ref.Segment}, {"inclusion proof", f.Proof, ref.Proof},
		{"checkpoint hash", f.Checkpoint, ref.Checkpoint}, {"signature length", f.SigLen, ref.SigLen},
		{"checkpoint chain", f.Chain, ref.Chain}, {"streams", f.Streams, ref.Streams},
	}
	for _, p := range parts {
		g, _ := json.Marshal(p.got)
		r, _ := json.Marshal(p.ref)
		if !bytes.Equal(g, r) {
			return fmt.Errorf("%s differ from the reference stack: %s vs %s", p.name, g, r)
		}
	}
	return nil
}
