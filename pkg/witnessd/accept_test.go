package witnessd

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/securelog/securelog/pkg/checkpoint"
	"github.com/securelog/securelog/pkg/keystore"
	"github.com/securelog/securelog/pkg/securelog"
	"github.com/securelog/securelog/pkg/wire"
	"github.com/securelog/securelog/pkg/witness"
)

// signedCP is one checkpoint of a test chain with its hash and signature.
type signedCP struct {
	f   wire.CheckpointFields
	h   []byte
	sig []byte
	id  string
}

// fixture is a signer in a trust file plus a key that is not trusted.
type fixture struct {
	trust    *checkpoint.Trust
	priv     ed25519.PrivateKey
	stranger ed25519.PrivateKey
}

func seededKey(label string) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte(label))
	return ed25519.NewKeyFromSeed(seed[:])
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	priv := seededKey("log-signer")
	trust, err := checkpoint.NewTrust(checkpoint.TrustEntry{Identity: "attest", Algorithm: keystore.Ed25519, PublicKey: priv.Public().(ed25519.PublicKey)})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{trust: trust, priv: priv, stranger: seededKey("stranger")}
}

func hashOf(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

// sign returns the checkpoint f signed by the trusted key.
func (fx *fixture) sign(f wire.CheckpointFields) signedCP {
	h := checkpoint.Hash(f)
	return signedCP{f: f, h: h, sig: ed25519.Sign(fx.priv, h), id: "attest"}
}

// chain builds n linked checkpoints of stream "s" with non-contiguous
// (global) segment ids 3, 6, 9, …; salt varies the Merkle roots, so two
// salts give two forks.
func (fx *fixture) chain(n int, salt byte) []signedCP {
	var out []signedCP
	prev := wire.ZeroHash
	for i := range n {
		f := wire.CheckpointFields{
			Version: 1, StreamID: "s", SegmentID: uint64(3 * (i + 1)), SeqStart: uint64(10*i + 1), SeqEnd: uint64(10*i + 10),
			MerkleRoot: hashOf(byte(i) + salt), LastEntryHash: hashOf(byte(i) + 100), PrevCheckpointHash: prev,
			BootID: "boot", SessionID: "sess", PolicyHash: wire.ZeroHash, Timestamp: fmt.Sprintf("2026-04-10T00:00:0%dZ", i),
		}
		c := fx.sign(f)
		out = append(out, c)
		prev = c.h
	}
	return out
}

func (c signedCP) submission(inter ...signedCP) witness.Submission {
	cj := securelog.CheckpointJSON(c.f)
	sub := witness.Submission{
		StreamID: c.f.StreamID, SegmentID: c.f.SegmentID, SeqStart: c.f.SeqStart, SeqEnd: c.f.SeqEnd,
		CheckpointHashHex: hex.EncodeToString(c.h), SignatureHex: hex.EncodeToString(c.sig), SignerIdentity: c.id,
		PrevCheckpointHashHex: hex.EncodeToString(c.f.PrevCheckpointHash), Checkpoint: &cj,
	}
	for _, in := range inter {
		sub.Intermediate = append(sub.Intermediate, in.signed())
	}
	return sub
}

func (c signedCP) signed() witness.SignedCheckpoint {
	return witness.SignedCheckpoint{Checkpoint: securelog.CheckpointJSON(c.f), SignatureHex: hex.EncodeToString(c.sig), SignerIdentity: c.id}
}

func (c signedCP) row() *wire.WitnessRow {
	return &wire.WitnessRow{ID: 1, StreamID: c.f.StreamID, SegmentID: c.f.SegmentID, SeqStart: c.f.SeqStart, SeqEnd: c.f.SeqEnd,
		CheckpointHashHex: hex.EncodeToString(c.h), SignatureHex: hex.EncodeToString(c.sig), SignerIdentity: c.id,
		ReceivedAt: "2026-04-10T00:00:00Z"}
}

func TestDecide(t *testing.T) {
	fx := newFixture(t)
	cp := fx.chain(4, 0)
	fork := fx.chain(4, 50) // same segment ids, different history
	// A fork that branches after cp[1]: its segment 9 does not link to cp[2].
	forkAfter1 := cp[1].f
	forkAfter1.SegmentID, forkAfter1.MerkleRoot, forkAfter1.PrevCheckpointHash = 9, hashOf(77), hashOf(78)
	unlinked := fx.sign(forkAfter1)

	tamperedInter := cp[1]
	tamperedInter.f.MerkleRoot = hashOf(99) // fields no longer hash to what cp[2] links to
	badSigInter := cp[1]
	badSigInter.sig = ed25519.Sign(fx.stranger, cp[1].h)
	strangerInter := cp[1]
	strangerInter.id = "mallory"

	badSig := cp[2]
	badSig.sig = ed25519.Sign(fx.stranger, cp[2].h)
	unknown := cp[2]
	unknown.id = "mallory"
	unknown.sig = ed25519.Sign(fx.stranger, cp[2].h)

	mutate := func(c signedCP, m func(*witness.Submission)) witness.Submission {
		s := c.submission()
		cj := *s.Checkpoint
		s.Checkpoint = &cj
		m(&s)
		return s
	}

	tests := []struct {
		name   string
		last   *wire.WitnessRow
		sub    witness.Submission
		status string
		store  bool
	}{
		{"first contact is accepted", nil, cp[1].submission(), StatusAccepted, true},
		{"idempotent resubmission", cp[1].row(), cp[1].submission(), StatusAccepted, false},
		{"equivocation", cp[1].row(), fork[1].submission(), StatusEquivocation, false},
		{"stale", cp[2].row(), cp[1].submission(), StatusStale, false},
		{"stale fork is stale too", cp[2].row(), fork[0].submission(), StatusStale, false},
		{"extension via prev", cp[1].row(), cp[2].submission(), StatusAccepted, true},
		{"extension via intermediates", cp[0].row(), cp[3].submission(cp[1], cp[2]), StatusAccepted, true},
		{"intermediates in any order, extras ignored", cp[0].row(), cp[3].submission(cp[2], cp[0], fork[1], cp[1]), StatusAccepted, true},
		{"missing intermediate", cp[0].row(), cp[3].submission(cp[2]), StatusNotExtending, false},
		{"no intermediates for a gap", cp[0].row(), cp[2].submission(), StatusNotExtending, false},
		{"broken intermediate (tampered fields)", cp[0].row(), cp[2].submission(tamperedInter), StatusNotExtending, false},
		{"intermediate with a bad signature", cp[0].row(), cp[2].submission(badSigInter), StatusBadSignature, false},
		{"intermediate by an unknown signer", cp[0].row(), cp[2].submission(strangerInter), StatusUnknownSigner, false},
		{"newer segment of another history", cp[1].row(), unlinked.submission(), StatusNotExtending, false},
		{"fork with its own intermediates", cp[0].row(), fork[3].submission(fork[1], fork[2]), StatusNotExtending, false},
		{"bad signature", cp[1].row(), badSig.submission(), StatusBadSignature, false},
		{"bad signature on first contact", nil, badSig.submission(), StatusBadSignature, false},
		{"unknown signer", nil, unknown.submission(), StatusUnknownSigner, false},
		{"tampered checkpoint fields vs hash", nil, mutate(cp[1], func(s *witness.Submission) {
			s.Checkpoint.MerkleRootHex = hex.EncodeToString(hashOf(42))
		}), StatusInvalid, false},
		{"claimed hash of other fields", nil, mutate(cp[1], func(s *witness.Submission) {
			s.CheckpointHashHex = hex.EncodeToString(cp[2].h)
		}), StatusInvalid, false},
		{"v1 fields disagree with checkpoint", nil, mutate(cp[1], func(s *witness.Submission) { s.SegmentID = 4 }), StatusInvalid, false},
		{"prev hash disagrees with checkpoint", nil, mutate(cp[1], func(s *witness.Submission) {
			s.PrevCheckpointHashHex = hex.EncodeToString(hashOf(1))
		}), StatusInvalid, false},
		{"no checkpoint fields", nil, mutate(cp[1], func(s *witness.Submission) { s.Checkpoint = nil }), StatusInvalid, false},
		{"bad hash hex", nil, mutate(cp[1], func(s *witness.Submission) { s.CheckpointHashHex = "zz" }), StatusInvalid, false},
		{"bad signature hex", nil, mutate(cp[1], func(s *witness.Submission) { s.SignatureHex = "xyz" }), StatusInvalid, false},
		{"unsupported version", nil, mutate(cp[1], func(s *witness.Submission) { s.Checkpoint.Version = 2 }), StatusInvalid, false},
		{"empty stream", nil, mutate(cp[1], func(s *witness.Submission) { s.StreamID = "" }), StatusInvalid, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := Decide(fx.trust, tc.last, tc.sub)
			if d.Status != tc.status || d.Store != tc.store {
				t.Fatalf("Decide = %q (store %v, reason %q), want %q (store %v)", d.Status, d.Store, d.Reason, tc.status, tc.store)
			}
			if d.Accepted() != (d.Reason == "") {
				t.Fatalf("status %q with reason %q", d.Status, d.Reason)
			}
			if d.Accepted() && !bytes.Equal(d.Hash, checkpoint.Hash(mustParse(t, *tc.sub.Checkpoint))) {
				t.Fatalf("accepted with hash %x", d.Hash)
			}
			if tc.last != nil && d.Status != StatusInvalid && d.Status != StatusBadSignature && d.Status != StatusUnknownSigner && d.Head != tc.last {
				t.Fatalf("head %v, want the last row", d.Head)
			}
		})
	}
}

func mustParse(t *testing.T, c witness.CheckpointJSON) wire.CheckpointFields {
	t.Helper()
	f, err := ParseCheckpoint(c)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestDecideMatchesLogSubmission(t *testing.T) {
	// The log's own BuildWitnessSubmission output must be accepted, and
	// extend the previous one through its intermediates.
	e := newLogEnv(t)
	ctx := t.Context()
	e.closeAndSign(t, "s", 2)
	first, err := e.log.BuildWitnessSubmission(ctx, "s", 0)
	if err != nil {
		t.Fatal(err)
	}
	if d := Decide(e.trust, nil, first); !d.Accepted() {
		t.Fatalf("first submission: %s: %s", d.Status, d.Reason)
	}
	lastRow := rowOf(first)
	e.closeAndSign(t, "s", 2)
	e.closeAndSign(t, "s", 2)
	next, err := e.log.BuildWitnessSubmission(ctx, "s", first.SegmentID)
	if err != nil {
		t.Fatal(err)
	}
	if len(next.Intermediate) != 1 {
		t.Fatalf("intermediates: %d", len(next.Intermediate))
	}
	if d := Decide(e.trust, lastRow, next); !d.Accepted() || !d.Store {
		t.Fatalf("next submission: %s: %s", d.Status, d.Reason)
	}
	next.Intermediate = nil
	if d := Decide(e.trust, lastRow, next); d.Status != StatusNotExtending {
		t.Fatalf("without intermediates: %s", d.Status)
	}
}

func rowOf(s witness.Submission) *wire.WitnessRow {
	return &wire.WitnessRow{StreamID: s.StreamID, SegmentID: s.SegmentID, SeqStart: s.SeqStart, SeqEnd: s.SeqEnd,
		CheckpointHashHex: s.CheckpointHashHex, SignatureHex: s.SignatureHex, SignerIdentity: s.SignerIdentity}
}

func FuzzDecide(f *testing.F) {
	fx := newFixture(f)
	cp := fx.chain(4, 0)
	fork := fx.chain(2, 50)
	for _, s := range []witness.Submission{cp[1].submission(), cp[2].submission(), cp[3].submission(cp[2]), fork[1].submission(), cp[0].submission()} {
		b, _ := json.Marshal(s)
		f.Add(b)
	}
	f.Add([]byte(`{"stream_id":"s","checkpoint":{}}`))
	last := cp[1].row()
	f.Fuzz(func(t *testing.T, data []byte) {
		var sub witness.Submission
		if json.Unmarshal(data, &sub) != nil {
			return
		}
		d := Decide(fx.trust, last, sub)
		if !d.Accepted() {
			return
		}
		// Anything accepted hashes to its claim and is validly signed.
		fields, err := ParseCheckpoint(*sub.Checkpoint)
		if err != nil {
			t.Fatalf("accepted unparseable checkpoint: %v", err)
		}
		h := checkpoint.Hash(fields)
		sig, _ := hex.DecodeString(sub.SignatureHex)
		if !bytes.Equal(h, d.Hash) || fx.trust.Verify(sub.SignerIdentity, h, sig) != nil {
			t.Fatalf("accepted %x without a valid signature", h)
		}
		if sub.SegmentID < last.SegmentID || (sub.SegmentID == last.SegmentID && hex.EncodeToString(h) != last.CheckpointHashHex) {
			t.Fatalf("accepted segment %d hash %x against head %d %s", sub.SegmentID, h, last.SegmentID, last.CheckpointHashHex)
		}
	})
}
