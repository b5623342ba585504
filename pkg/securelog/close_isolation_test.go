package securelog

import (
	"context"
	"testing"

	"github.com/securelog/securelog/pkg/keystore"
	"github.com/securelog/securelog/pkg/seal"
	"github.com/securelog/securelog/pkg/wire"
)

// TestCloseOnlyClosesNamedStream (issue 9 item 2): closing one stream must
// never close another stream's pending sealed segment, and the sealing rule
// (an entry sealed under segment key k is inside segment k) must hold
// under the interleaving, also when a second Log (another process, or a
// restart) closes in between. Before the fix `close-segment default`
// closed `secrets` first and `close-segment secrets` then failed with
// "no entries since last segment close".
func TestCloseOnlyClosesNamedStream(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, b, keystore.Ed25519, func(o *Options) { o.KEK = kek })
			l := e.log
			for _, s := range []string{"secrets", "restricted"} {
				tier := "protected"
				if s == "restricted" {
					tier = "highly-restricted"
				}
				if err := l.CreateStream(ctx, s, tier, nil); err != nil {
					t.Fatal(err)
				}
			}
			s1 := must[AppendResult](t)(l.Append(ctx, "secrets", "t", wire.Info, "p", []byte("one")))
			r1 := must[AppendResult](t)(l.Append(ctx, "restricted", "t", wire.Info, "p", []byte("r-one")))
			appendN(t, l, "default", 2)

			d := must[wire.SegmentRow](t)(l.CloseSegment(ctx, "default"))
			if d.StreamID != "default" {
				t.Fatalf("close default returned stream %q", d.StreamID)
			}
			for _, s := range []string{"secrets", "restricted"} {
				if segs := must[[]wire.SegmentRow](t)(e.st.SegmentsList(ctx, s)); len(segs) != 0 {
					t.Fatalf("closing default closed %s's pending segment %d", s, segs[0].SegmentID)
				}
			}
			// Another Log over the same store (a restart, or a second
			// process) appends and closes public streams in between.
			l2 := New(e.st, Options{KEK: kek})
			if err := l2.OpenInitialized(ctx); err != nil {
				t.Fatal(err)
			}
			s2 := must[AppendResult](t)(l2.Append(ctx, "secrets", "t", wire.Info, "p", []byte("two")))
			appendN(t, l2, "x", 1)
			x := must[wire.SegmentRow](t)(l2.CloseSegment(ctx, "x"))
			if x.StreamID != "x" {
				t.Fatalf("close x returned stream %q", x.StreamID)
			}

			sec := must[wire.SegmentRow](t)(l.CloseSegment(ctx, "secrets"))
			if sec.SeqStart != s1.Seqno || sec.SeqEnd != s2.Seqno {
				t.Fatalf("secrets segment %d covers %d..%d, want %d..%d", sec.SegmentID, sec.SeqStart, sec.SeqEnd, s1.Seqno, s2.Seqno)
			}
			res := must[wire.SegmentRow](t)(l2.CloseSegment(ctx, "restricted"))
			for _, c := range []struct {
				seqno  uint64
				stream string
				tier   string
				seg    wire.SegmentRow
				want   string
			}{
				{s1.Seqno, "secrets", "protected", sec, "one"},
				{s2.Seqno, "secrets", "protected", sec, "two"},
				{r1.Seqno, "restricted", "highly-restricted", res, "r-one"},
			} {
				row, _, err := e.st.Get(ctx, c.seqno)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := seal.Open(kek, c.stream, c.tier, c.seg.SegmentID, row.Payload); err != nil {
					t.Fatalf("seqno %d of %s is not sealed under its segment %d: %v", c.seqno, c.stream, c.seg.SegmentID, err)
				}
				if pt, err := l.OpenPayload(ctx, c.seqno); err != nil || string(pt) != c.want {
					t.Fatalf("seqno %d: %q %v", c.seqno, pt, err)
				}
			}
			// Closing with nothing open is still the empty-segment error,
			// and ids stay unique.
			_, err := l.CloseSegment(ctx, "secrets")
			wantErr[*wire.EmptySegmentError](t, err)
			ids := map[uint64]string{}
			for _, s := range []string{"default", "x", "secrets", "restricted"} {
				for _, g := range must[[]wire.SegmentRow](t)(e.st.SegmentsList(ctx, s)) {
					if other, dup := ids[g.SegmentID]; dup {
						t.Fatalf("segment id %d used by %s and %s", g.SegmentID, other, s)
					}
					ids[g.SegmentID] = s
				}
			}
		})
	}
}
