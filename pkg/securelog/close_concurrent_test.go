package securelog

import (
	"context"
	"sync"
	"testing"

	"github.com/securelog/securelog/pkg/keystore"
	"github.com/securelog/securelog/pkg/store/pebblestore"
	"github.com/securelog/securelog/pkg/wire"
)

// duringRange runs hook once, after the first Range of stream once the
// hook is set (a close's read of the open entries), before the close goes
// on.
type duringRange struct {
	*pebblestore.Store // all of its interfaces (reservations, trees, batches)
	stream             string
	mu                 sync.Mutex
	hook               func()
}

func (d *duringRange) Range(ctx context.Context, stream string, from, to uint64) ([]wire.EntryRow, error) {
	rows, err := d.Store.Range(ctx, stream, from, to)
	if stream == d.stream {
		d.mu.Lock()
		hook := d.hook
		d.hook = nil
		d.mu.Unlock()
		if hook != nil {
			hook()
		}
	}
	return rows, err
}

// TestAppendDuringClose: a close reads and verifies the open entries
// without holding the write lock, so an append can land meanwhile (the
// hook appends through the same Log; it would deadlock if the close held
// the lock). For a public stream the segment ends at the head the close
// read, and the new entry opens the next segment; for a sealed stream the
// close is redone so that every entry sealed under the reserved id is in
// that segment (DECISIONS 5).
func TestAppendDuringClose(t *testing.T) {
	for _, tier := range []string{"public", "protected"} {
		t.Run(tier, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, backends[1], keystore.Ed25519, func(o *Options) { o.KEK = kek }) // pebble
			wrapped := &duringRange{Store: e.st.(*pebblestore.Store), stream: "s"}
			l := New(wrapped, Options{KEK: kek, Now: fakeClock(), SessionID: "x", BootID: "y"})
			if err := l.OpenInitialized(ctx); err != nil {
				t.Fatal(err)
			}
			if err := l.CreateStream(ctx, "s", tier, nil); err != nil {
				t.Fatal(err)
			}
			appendOne := func(p string) AppendResult {
				return must[AppendResult](t)(l.Append(ctx, "s", "t", wire.Info, "p", []byte(p)))
			}
			first := appendOne("one")
			appendOne("two")
			var late AppendResult
			wrapped.mu.Lock()
			wrapped.hook = func() { late = appendOne("late") }
			wrapped.mu.Unlock()
			seg := must[wire.SegmentRow](t)(l.CloseSegment(ctx, "s"))
			if late.Seqno == 0 {
				t.Fatal("the hook did not append")
			}
			want := late.Seqno - 1
			if tier != "public" {
				want = late.Seqno
			}
			if seg.SeqStart != first.Seqno || seg.SeqEnd != want {
				t.Fatalf("segment %d covers %d..%d, want %d..%d", seg.SegmentID, seg.SeqStart, seg.SeqEnd, first.Seqno, want)
			}
			if tier == "public" {
				next := must[wire.SegmentRow](t)(l.CloseSegment(ctx, "s"))
				if next.SeqStart != late.Seqno || next.SeqEnd != late.Seqno {
					t.Fatalf("next segment covers %d..%d, want %d", next.SeqStart, next.SeqEnd, late.Seqno)
				}
			}
			for seqno, want := range map[uint64]string{first.Seqno: "one", late.Seqno: "late"} {
				if pt, err := l.OpenPayload(ctx, seqno); err != nil || string(pt) != want {
					t.Fatalf("seqno %d: %q %v, want %q", seqno, pt, err, want)
				}
			}
			if err := l.VerifyChain(ctx, "s", 1, late.Seqno); err != nil {
				t.Fatalf("VerifyChain: %v", err)
			}
		})
	}
}
