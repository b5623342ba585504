package securelog

import (
	"bytes"
	"context"
	"testing"

	"github.com/securelog/securelog/pkg/keystore"
	"github.com/securelog/securelog/pkg/wire"
)

// TestScenario is the SPEC §20 end-to-end scenario with its extra checks,
// for each algorithm on the memory and pebble stores.
func TestScenario(t *testing.T) {
	for _, b := range backends {
		for _, alg := range keystore.Algorithms {
			t.Run(b.name+"/"+alg, func(t *testing.T) {
				ctx := context.Background()
				e := newEnv(t, b, alg, nil)
				l := e.log
				a := must[AppendResult](t)(l.Append(ctx, "default", "user.login", wire.Info, "authd", []byte("alice")))
				bb := must[AppendResult](t)(l.Append(ctx, "default", "user.logout", wire.Info, "authd", []byte("alice")))
				c := must[AppendResult](t)(l.Append(ctx, "audit", "policy.change", wire.Warning, "ops", []byte("rotate")))
				if a.Seqno != 1 || bb.Seqno != 2 || c.Seqno != 3 || len(a.EntryHash) != 32 {
					t.Fatalf("seqnos %d %d %d", a.Seqno, bb.Seqno, c.Seqno)
				}
				r := must[wire.EntryRow](t)(l.Read(ctx, a.Seqno))
				if r.StreamID != "default" || r.EventType != "user.login" {
					t.Fatalf("read: %+v", r)
				}
				if h, ok, _ := l.Head(ctx, "default"); !ok || h != bb.Seqno {
					t.Fatalf("head default = %d", h)
				}
				if h, _, _ := l.Head(ctx, "audit"); h != 3 {
					t.Fatalf("head audit = %d", h)
				}
				if err := l.VerifyChain(ctx, "default", 1, bb.Seqno); err != nil {
					t.Fatal(err)
				}
				seg := must[wire.SegmentRow](t)(l.CloseSegment(ctx, "default"))
				if seg.SegmentID != 1 || seg.SeqStart != 1 || seg.SeqEnd != 2 || len(seg.MerkleRoot) != 32 {
					t.Fatalf("segment %+v", seg)
				}
				proof := must[InclusionProof](t)(l.BuildInclusionProof(ctx, a.Seqno))
				if err := VerifyInclusionProof(proof, seg.MerkleRoot); err != nil {
					t.Fatal(err)
				}
				if len(proof.Path) != 1 || !bytes.Equal(proof.Path[0].Sibling, bb.EntryHash) || !proof.Path[0].Right {
					t.Fatalf("path %+v", proof.Path)
				}
				wantErr[*wire.InclusionMismatchError](t, VerifyInclusionProof(proof, make([]byte, 32)))
				h, sig, err := l.SignSegment(ctx, "attest", seg.SegmentID)
				if err != nil {
					t.Fatal(err)
				}
				wantSig := 64
				if alg == keystore.RSAPSSSHA256 {
					wantSig = 256
				}
				if len(h) != 32 || len(sig) != wantSig {
					t.Fatalf("hash %d bytes, sig %d bytes", len(h), len(sig))
				}
				if n, err := l.VerifyCheckpointChain(ctx, "default"); err != nil || n != 1 {
					t.Fatalf("verify checkpoint chain = %d, %v", n, err)
				}
				// Extra checks.
				if r := must[wire.EntryRow](t)(l.Read(ctx, 3)); !bytes.Equal(r.PrevEntryHash, wire.ZeroHash) {
					t.Fatal("audit genesis prev is not zero")
				}
				if got := must[[]byte](t)(l.VerifySegmentSignature(ctx, seg.SegmentID)); !bytes.Equal(got, h) {
					t.Fatal("verify-segment-signature hash differs from sign-segment hash")
				}
				_, err = l.CloseSegment(ctx, "default")
				wantErr[*wire.EmptySegmentError](t, err)
				if r := must[wire.EntryRow](t)(l.Read(ctx, bb.Seqno)); !bytes.Equal(r.PrevEntryHash, a.EntryHash) {
					t.Fatal("b does not link to a")
				}
				streams := must[[]StreamInfo](t)(l.ListStreams(ctx))
				found := false
				for _, s := range streams {
					found = found || s.Name == "default"
				}
				if !found {
					t.Fatal("default stream missing from list-streams")
				}
			})
		}
	}
}
