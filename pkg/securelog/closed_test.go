package securelog

import (
	"bytes"
	"context"
	"sync/atomic"
	"testing"

	"github.com/securelog/securelog/pkg/keystore"
	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/wire"
)

// rangeCounter counts the entry range reads of a store.
type rangeCounter struct {
	store.Store
	ranges atomic.Int64
}

func (c *rangeCounter) Range(ctx context.Context, stream string, from, to uint64) ([]wire.EntryRow, error) {
	c.ranges.Add(1)
	return c.Store.Range(ctx, stream, from, to)
}

// TestSignTrustsOnlyUnchangedSegmentsClosedHere: a signing Log that shares
// the closing Log's ClosedSegments (securelog up) signs a segment closed
// there without reading its entries again, only while the store returns
// exactly the row that was closed; a changed row or a segment not closed
// here gets the full check (and a forged one is refused), and entries
// changed after the close fail verification against what was signed.
func TestSignTrustsOnlyUnchangedSegmentsClosedHere(t *testing.T) {
	ctx := context.Background()
	setup := func(t *testing.T) (*env, *rangeCounter, *Log) {
		closed := NewClosedSegments(0)
		e := newEnv(t, lying, keystore.Ed25519, func(o *Options) { o.Closed = closed })
		rc := &rangeCounter{Store: e.st}
		signer := New(rc, Options{Signer: e.ks, Trust: e.trust, Closed: closed})
		if err := signer.OpenInitialized(ctx); err != nil {
			t.Fatal(err)
		}
		return e, rc, signer
	}

	t.Run("unchanged", func(t *testing.T) {
		e, rc, signer := setup(t)
		for range 3 {
			appendN(t, e.log, "s", 3)
			appendN(t, e.log, "other", 1)
			seg := must[wire.SegmentRow](t)(e.log.CloseSegment(ctx, "s"))
			h, _, err := signer.SignSegment(ctx, "attest", seg.SegmentID)
			if err != nil {
				t.Fatal(err)
			}
			fresh := New(e.st, Options{Trust: e.trust})
			if err := fresh.OpenInitialized(ctx); err != nil {
				t.Fatal(err)
			}
			got, err := fresh.VerifySegmentSignature(ctx, seg.SegmentID)
			if err != nil || !bytes.Equal(got, h) {
				t.Fatalf("a fresh reader recomputes %x, %v; signed %x", got, err, h)
			}
		}
		if n := rc.ranges.Load(); n != 0 {
			t.Fatalf("signing segments closed here read entry ranges %d times", n)
		}
		if _, err := New(e.st, Options{Trust: e.trust}).verifyChainFresh(ctx, "s"); err != nil {
			t.Fatalf("checkpoint chain: %v", err)
		}
	})

	t.Run("row changed after the close", func(t *testing.T) {
		e, rc, signer := setup(t)
		appendN(t, e.log, "s", 3)
		seg := must[wire.SegmentRow](t)(e.log.CloseSegment(ctx, "s"))
		e.st.(*lyingStore).tamper(seg.SegmentID, func(s *wire.SegmentRow) { s.MerkleRoot = bytes.Repeat([]byte{2}, 32) }, nil)
		_, _, err := signer.SignSegment(ctx, "attest", seg.SegmentID)
		wantErr[*wire.ChainBrokenError](t, err)
		wantErr[*StreamHaltedError](t, err)
		if rc.ranges.Load() == 0 {
			t.Fatal("a changed segment row was not checked against the entries")
		}
	})

	t.Run("segment not closed here", func(t *testing.T) {
		e, _, signer := setup(t)
		appendN(t, e.log, "s", 2)
		forgeRow(t, e, "s", storedRows(t, e, "s")[1].EntryHash, true)
		id := forgeSegment(t, e, storedRows(t, e, "s"), wire.ZeroHash, nil)
		_, _, err := signer.SignSegment(ctx, "attest", id)
		wantErr[*wire.ChainBrokenError](t, err)
	})

	t.Run("entries changed after the close", func(t *testing.T) {
		e, _, _ := setup(t)
		rs := appendN(t, e.log, "s", 3)
		seg := must[wire.SegmentRow](t)(e.log.CloseSegment(ctx, "s"))
		changed := &tamperStore{Store: e.st, entry: func(r *wire.EntryRow) {
			if r.Seqno == rs[1].Seqno {
				r.Payload = []byte("changed")
			}
		}}
		// Without the record the change is found before signing ...
		plain := New(changed, Options{Signer: e.ks, Trust: e.trust})
		if err := plain.OpenInitialized(ctx); err != nil {
			t.Fatal(err)
		}
		_, _, err := plain.SignSegment(ctx, "attest", seg.SegmentID)
		wantErr[*wire.ChainBrokenError](t, err)
		// ... with it, what is signed is the checkpoint of the entries as
		// verified at the close, and the changed entry fails against it.
		signer := New(changed, Options{Signer: e.ks, Trust: e.trust, Closed: e.log.opts.Closed})
		if err := signer.OpenInitialized(ctx); err != nil {
			t.Fatal(err)
		}
		h, _, err := signer.SignSegment(ctx, "attest", seg.SegmentID)
		if err != nil {
			t.Fatal(err)
		}
		_, _, want, err := New(e.st, Options{}).Checkpoint(ctx, seg.SegmentID)
		if err != nil || !bytes.Equal(h, want) {
			t.Fatalf("signed %x, the unchanged store's checkpoint is %x (%v)", h, want, err)
		}
		wantErr[*wire.ChainBrokenError](t, New(changed, Options{Trust: e.trust}).VerifyChain(ctx, "s", seg.SeqStart, seg.SeqEnd))
	})
}
