package tlog

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/securelog/securelog/pkg/securelog"
	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/store/memory"
	"github.com/securelog/securelog/pkg/store/pebblestore"
	"github.com/securelog/securelog/pkg/wire"
)

// treeLog opens a Log over st with the tree as its commit hook.
func treeLog(t *testing.T, st store.Store, config string, withTree bool) (*securelog.Log, *Tree) {
	t.Helper()
	var tree *Tree
	opts := securelog.Options{}
	if withTree {
		var err error
		if tree, err = NewTree(st); err != nil {
			t.Fatal(err)
		}
		opts.CommitHook = tree
	}
	l := securelog.New(st, opts)
	if err := l.Open(context.Background(), config); err != nil {
		t.Fatal(err)
	}
	return l, tree
}

func appendN(t *testing.T, l *securelog.Log, n int, streams ...string) {
	t.Helper()
	var evs []securelog.Event
	for i := 0; i < n; i++ {
		evs = append(evs, securelog.Event{Stream: streams[i%len(streams)], EventType: "t", Severity: wire.Severity(1), Producer: "p", Payload: []byte(fmt.Sprint(i))})
	}
	if _, err := l.AppendBatch(context.Background(), evs, nil); err != nil {
		t.Fatal(err)
	}
}

// refRoot recomputes the tree from the store's entries with tlog alone.
func refRoot(t *testing.T, st store.Store) (int64, tlog.Hash) {
	t.Helper()
	ctx := context.Background()
	head, _, err := st.GlobalHead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ref refHashes
	for s := uint64(1); s <= head; s++ {
		r, ok, err := st.Get(ctx, s)
		if err != nil || !ok {
			t.Fatalf("get %d: %v %v", s, ok, err)
		}
		hs, err := tlog.StoredHashes(int64(s-1), r.EntryHash, ref)
		if err != nil {
			t.Fatal(err)
		}
		ref = append(ref, hs...)
	}
	root, err := tlog.TreeHash(int64(head), ref)
	if err != nil {
		t.Fatal(err)
	}
	return int64(head), root
}

// The tree commits with every batch, from single appends and batches, over
// several streams, and survives a reopen (pebble).
func TestTreeCommitsWithEntries(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir() + "/log"
	st := pebblestore.New()
	l, tree := treeLog(t, st, dir, true)
	appendN(t, l, 300, "a", "b")
	if _, err := l.Append(ctx, "a", "x", wire.Severity(1), "p", []byte("one")); err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 700, "c")
	n, root, err := tree.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wn, wroot := refRoot(t, st)
	if n != wn || root != wroot || n != 1001 {
		t.Fatalf("tree %d %v, reference %d %v", n, root, wn, wroot)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st2 := pebblestore.New()
	l2, tree2 := treeLog(t, st2, dir, true)
	defer st2.Close()
	if n2, r2, _ := tree2.Head(ctx); n2 != n || r2 != root {
		t.Fatalf("after reopen %d %v", n2, r2)
	}
	appendN(t, l2, 5, "a")
	n3, r3, _ := tree2.Head(ctx)
	wn, wroot = refRoot(t, st2)
	if n3 != wn || r3 != wroot {
		t.Fatalf("after reopen and append: %d %v, reference %d %v", n3, r3, wn, wroot)
	}
}

// Switching the tree on for a log that has entries catches up with them
// in the next batch.
func TestTreeCatchesUp(t *testing.T) {
	ctx := context.Background()
	st := memory.New()
	l, _ := treeLog(t, st, "x", false)
	appendN(t, l, 600, "a")
	tree, err := NewTree(st)
	if err != nil {
		t.Fatal(err)
	}
	l2 := securelog.New(st, securelog.Options{CommitHook: tree})
	if err := l2.OpenInitialized(ctx); err != nil {
		t.Fatal(err)
	}
	appendN(t, l2, 3, "a")
	n, root, _ := tree.Head(ctx)
	wn, wroot := refRoot(t, st)
	if n != 603 || n != wn || root != wroot {
		t.Fatalf("tree %d %v, reference %d %v", n, root, wn, wroot)
	}
}

// failingStore fails CommitBatch on demand.
type failingStore struct {
	*memory.Store
	fail bool
}

func (f *failingStore) CommitBatch(ctx context.Context, b store.Batch) error {
	if f.fail {
		return errors.New("disk full")
	}
	return f.Store.CommitBatch(ctx, b)
}

// A batch that fails to commit leaves the tree as it was.
func TestTreeFailedCommit(t *testing.T) {
	ctx := context.Background()
	st := &failingStore{Store: memory.New()}
	l, tree := treeLog(t, st, "x", true)
	appendN(t, l, 10, "a")
	st.fail = true
	var evs []securelog.Event
	for i := 0; i < 3; i++ {
		evs = append(evs, securelog.Event{Stream: "a", EventType: "t", Severity: 1, Producer: "p"})
	}
	if _, err := l.AppendBatch(ctx, evs, nil); err == nil {
		t.Fatal("commit did not fail")
	}
	st.fail = false
	appendN(t, l, 4, "a")
	n, root, _ := tree.Head(ctx)
	wn, wroot := refRoot(t, st)
	if n != 14 || n != wn || root != wroot {
		t.Fatalf("tree %d %v, reference %d %v", n, root, wn, wroot)
	}
}

// A Tree extended by random batches, some of which fail to commit and
// some after a reopen (a new Tree over the store: no right edge kept),
// has tlog's root after every batch and stores tlog's tiles.
func TestTreeRandomBatches(t *testing.T) {
	ctx := context.Background()
	st := memory.New()
	if err := st.Init(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	const most = 20_000
	ref := refTree(t, most)
	tree, err := NewTree(st)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	next := 1
	for step := 0; next <= most; step++ {
		n := min(1+rng.IntN(40), most-next+1)
		if rng.IntN(4) == 0 {
			n = min(1+rng.IntN(1500), most-next+1)
		}
		fail := rng.IntN(5) == 0
		rows := make([]wire.EntryRow, n)
		for i := range rows {
			h := leaf(next + i - 1)
			if fail {
				h = leaf(most + next + i) // not what the log will hold
			}
			rows[i] = wire.EntryRow{Seqno: uint64(next + i), EntryHash: h}
		}
		meta, err := tree.PrepareCommit(ctx, rows)
		if err != nil {
			t.Fatal(err)
		}
		if fail {
			tree.FinishCommit(errors.New("disk full"))
		} else {
			err = st.CommitBatch(ctx, store.Batch{Entries: rows, Meta: meta})
			tree.FinishCommit(err)
			if err != nil {
				t.Fatal(err)
			}
			next += n
		}
		size, root, err := tree.Head(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := tlog.TreeHash(int64(next-1), ref)
		if size != int64(next-1) || root != want {
			t.Fatalf("step %d (fail %v): tree %d %v, want %d %v", step, fail, size, root, next-1, want)
		}
		if rng.IntN(10) == 0 {
			if tree, err = NewTree(st); err != nil {
				t.Fatal(err)
			}
		}
	}
	tiles := StoreTiles(ctx, st)
	for _, tl := range tlog.NewTiles(TileHeight, 0, most) {
		want, _ := tlog.ReadTileData(tl, ref)
		got, ok, err := tiles.ReadTile(TileID{tl.L, tl.N})
		if err != nil || !ok || string(got) != string(want) {
			t.Fatalf("tile %v: stored %d bytes (%v, %v), want tlog's %d", tl, len(got), ok, err, len(want))
		}
	}
}
