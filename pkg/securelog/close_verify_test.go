package securelog

import (
	"bytes"
	"context"
	"testing"

	"github.com/securelog/securelog/pkg/chain"
	"github.com/securelog/securelog/pkg/keystore"
	"github.com/securelog/securelog/pkg/wire"
)

// forgeAfter inserts, through the raw store, an entry of stream at seqno
// that follows the stream's entry prev, then lets mod spoil it.
func forgeAfter(t *testing.T, e *env, stream string, prev, seqno uint64, mod func(r *wire.EntryRow)) {
	t.Helper()
	ctx := context.Background()
	p, ok, err := e.st.Get(ctx, prev)
	if err != nil || !ok {
		t.Fatalf("Get(%d) = %v, %v", prev, ok, err)
	}
	r := p.Clone()
	r.Seqno, r.StreamID, r.PrevEntryHash, r.Payload = seqno, stream, p.EntryHash, []byte("forged")
	r.EntryHash = chain.RowHash(r)
	mod(&r)
	if _, err := e.st.Insert(ctx, r); err != nil {
		t.Fatalf("raw Insert(%d): %v", seqno, err)
	}
}

// TestCloseRefusesForgedEntries (issue 9 item 1): a row inserted behind the
// log's back with a bogus entry_hash, or that does not link to its
// predecessor (inside the segment or across the previous segment), must not
// be sealed: CloseSegment fails with *wire.ChainBrokenError naming the
// seqno and stores no segment.
func TestCloseRefusesForgedEntries(t *testing.T) {
	bogus := bytes.Repeat([]byte{0xab}, 32)
	for _, c := range []struct {
		name       string
		closeFirst bool // close a segment before forging
		mod        func(r *wire.EntryRow)
	}{
		{"bogus entry_hash", false, func(r *wire.EntryRow) { r.EntryHash = bogus }},
		{"broken link inside the segment", false, func(r *wire.EntryRow) {
			r.PrevEntryHash = bogus
			r.EntryHash = chain.RowHash(*r)
		}},
		{"broken link to the previous segment", true, func(r *wire.EntryRow) {
			r.PrevEntryHash = bogus
			r.EntryHash = chain.RowHash(*r)
		}},
	} {
		for _, b := range backends[:3] {
			t.Run(c.name+"/"+b.name, func(t *testing.T) {
				ctx := context.Background()
				e := newEnv(t, b, keystore.Ed25519, nil)
				appendN(t, e.log, "default", 2)
				before := 0
				if c.closeFirst {
					if _, err := e.log.CloseSegment(ctx, "default"); err != nil {
						t.Fatal(err)
					}
					before = 1
				}
				forgeAfter(t, e, "default", 2, 3, c.mod)
				seg, err := e.log.CloseSegment(ctx, "default")
				if err == nil {
					t.Fatalf("CloseSegment sealed the forged entry: segment %d = %d..%d", seg.SegmentID, seg.SeqStart, seg.SeqEnd)
				}
				cb := wantErr[*wire.ChainBrokenError](t, err)
				if cb.Seqno != 3 {
					t.Fatalf("ChainBrokenError names seqno %d, want 3: %v", cb.Seqno, err)
				}
				if segs, _ := e.st.SegmentsList(ctx, "default"); len(segs) != before {
					t.Fatalf("%d segments after the refused close, want %d", len(segs), before)
				}
			})
		}
	}
}
