package securelog

import (
	"context"
	"testing"

	"github.com/securelog/securelog/pkg/keystore"
	"github.com/securelog/securelog/pkg/store/memory"
	"github.com/securelog/securelog/pkg/wire"
)

// TestCloseLinksWithoutListing: closing a stream's segments one after the
// other lists the stream's segments once, not at every close (each close
// cost time linear in the stream's segments: ~10 ms per close at 2,000
// segments, ~95 ms at 10,000 over pebble), and the checkpoints still link:
// also after another Log closed a segment of the stream in between.
func TestCloseLinksWithoutListing(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, mem, keystore.Ed25519, nil)
	cs := &countingStore{Store: memory.New()}
	l := New(cs, Options{Signer: e.ks, Trust: e.trust, Now: fakeClock()})
	if err := l.Open(ctx, "test"); err != nil {
		t.Fatal(err)
	}
	const k = 25
	var ids []uint64
	for range k {
		appendN(t, l, "s", 2)
		appendN(t, l, "other", 1)
		ids = append(ids, must[wire.SegmentRow](t)(l.CloseSegment(ctx, "s")).SegmentID)
	}
	if n := cs.lists.Load(); n > 1 {
		t.Fatalf("closing %d segments listed the stream's segments %d times", k, n)
	}
	// Another writer closes one in between: the next close must link to it.
	other := New(cs, Options{Signer: e.ks, Trust: e.trust, Now: fakeClock()})
	if err := other.OpenInitialized(ctx); err != nil {
		t.Fatal(err)
	}
	appendN(t, other, "s", 1)
	ids = append(ids, must[wire.SegmentRow](t)(other.CloseSegment(ctx, "s")).SegmentID)
	appendN(t, l, "s", 1)
	ids = append(ids, must[wire.SegmentRow](t)(l.CloseSegment(ctx, "s")).SegmentID)
	for _, id := range ids {
		if _, _, err := l.SignSegment(ctx, "attest", id); err != nil {
			t.Fatalf("sign segment %d: %v", id, err)
		}
	}
	if n, err := New(cs, Options{Trust: e.trust}).verifyChainFresh(ctx, "s"); err != nil || n != k+2 {
		t.Fatalf("checkpoint chain: %d segments, %v", n, err)
	}
}
