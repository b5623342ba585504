package witnessd

import (
	"errors"
	"path/filepath"
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

// TestTreeHeadsCompareAndSwap: Advance moves the head only from the
// expected size, across two handles on one database file (as two witness
// processes would share it), and survives a reopen.
func TestTreeHeadsCompareAndSwap(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "tlog-witness.db")
	a, err := OpenTreeHeads(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := OpenTreeHeads(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	head := func(n int64) TreeHead {
		return TreeHead{Size: n, Hash: tlog.Hash{byte(n)}, Checkpoint: []byte{byte(n)}, CosignedAt: 1700000000 + n}
	}
	conflict := func(err error, current int64) {
		t.Helper()
		var ce *TreeHeadConflictError
		if !errors.As(err, &ce) || ce.Current != current {
			t.Fatalf("err %v, want a *TreeHeadConflictError at %d", err, current)
		}
	}
	if _, ok, err := a.Latest(ctx, "o"); ok || err != nil {
		t.Fatalf("fresh store: %v %v", ok, err)
	}
	conflict(a.Advance(ctx, "o", 3, head(5)), 0) // no head yet: only old 0 works
	if err := a.Advance(ctx, "o", 0, head(0)); err != nil {
		t.Fatal(err)
	}
	if err := b.Advance(ctx, "o", 0, head(2)); err != nil { // a head at size 0 moves from 0
		t.Fatal(err)
	}
	conflict(a.Advance(ctx, "o", 0, head(4)), 2)
	if err := a.Advance(ctx, "o", 2, head(9)); err != nil {
		t.Fatal(err)
	}
	conflict(b.Advance(ctx, "o", 2, head(5)), 9) // the rollback race of the spec
	if err := b.Advance(ctx, "o", 9, head(9)); err != nil {
		t.Fatal(err)
	}
	a.Close()
	b.Close()
	c, err := OpenTreeHeads(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got, ok, err := c.Latest(ctx, "o")
	if err != nil || !ok || got.Size != 9 || got.Hash != head(9).Hash || string(got.Checkpoint) != string(head(9).Checkpoint) {
		t.Fatalf("after reopen: %+v %v %v", got, ok, err)
	}
	for _, n := range []int64{0, 2, 9} {
		if h, ok, err := c.At(ctx, "o", n); err != nil || !ok || h.Hash != head(n).Hash {
			t.Fatalf("history at %d: %+v %v %v", n, h, ok, err)
		}
	}
	for _, n := range []int64{4, 5} {
		if _, ok, _ := c.At(ctx, "o", n); ok {
			t.Fatalf("refused head %d is in the history", n)
		}
	}
	if _, ok, _ := c.Latest(ctx, "other"); ok {
		t.Fatal("origins share a head")
	}
}
