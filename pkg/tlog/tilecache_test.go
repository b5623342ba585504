package tlog

import (
	"math/rand/v2"
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

// TestTileHashesCache: TileHashes with its cache of expanded full tiles
// returns tlog's own stored hashes for random stored indexes and every
// hash above level 7 of a tree with a full level-1 tile, in random order and repeated (cache hits, and
// evictions: the tree has more level-0 tiles than the cache keeps), and
// proofs from it check against the tree.
func TestTileHashesCache(t *testing.T) {
	const total = 66_000
	var ref refHashes
	for i := range total {
		hs, err := tlog.StoredHashes(int64(i), leaf(i), ref)
		if err != nil {
			t.Fatal(err)
		}
		ref = append(ref, hs...)
	}
	tiles := memTiles{}
	reads := 0
	counting := TileReaderFunc(func(id TileID) ([]byte, bool, error) {
		reads++
		return tiles.ReadTile(id)
	})
	var size int64
	for size < total {
		var ls [][]byte
		for i := size; i < min(size+9_000, total); i++ {
			ls = append(ls, leaf(int(i)))
		}
		u, err := Extend(size, ls, tiles)
		if err != nil {
			t.Fatal(err)
		}
		tiles.apply(u)
		size = u.NewSize
	}
	r := TileHashes(counting)
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 2 {
		idx := rng.Perm(len(ref))[:6000]
		for x := range ref {
			if l, _ := tlog.SplitStoredHashIndex(int64(x)); l >= TileHeight {
				idx = append(idx, x) // every hash of the upper tiles
			}
		}
		rng.Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
		for len(idx) > 0 {
			n := min(len(idx), 1+rng.IntN(40))
			ask := make([]int64, n)
			for i := range ask {
				ask[i] = int64(idx[i])
			}
			idx = idx[n:]
			got, err := r.ReadHashes(ask)
			if err != nil {
				t.Fatal(err)
			}
			for i, x := range ask {
				if got[i] != ref[x] {
					t.Fatalf("round %d: stored hash %d = %v, want %v", round, x, got[i], ref[x])
				}
			}
		}
	}
	root, _ := tlog.TreeHash(total, ref)
	reads = 0
	for _, n := range []int64{0, 255, 256, 65535, 65536, total - 1} {
		p, err := tlog.ProveRecord(total, n, r)
		if err != nil {
			t.Fatal(err)
		}
		if err := tlog.CheckRecord(p, total, root, n, tlog.RecordHash(leaf(int(n)))); err != nil {
			t.Fatalf("leaf %d: %v", n, err)
		}
	}
	// The level-1 tile is full and cached: a proof reads at most its
	// level-0 tile and the partial tiles at the right edge.
	if reads > 6*3 {
		t.Fatalf("%d tile reads for 6 proofs", reads)
	}
}

// TestTileHashesCacheGrowingTree: one reader over a tree that grows keeps
// answering with the grown tree's hashes (a cached partial tile is read
// again for a node beyond its width).
func TestTileHashesCacheGrowingTree(t *testing.T) {
	var ref refHashes
	tiles := memTiles{}
	r := TileHashes(tiles)
	var size int64
	for _, grow := range []int64{3, 100, 153, 1, 300, 700} {
		var ls [][]byte
		for i := size; i < size+grow; i++ {
			ls = append(ls, leaf(int(i)))
			hs, err := tlog.StoredHashes(i, leaf(int(i)), ref)
			if err != nil {
				t.Fatal(err)
			}
			ref = append(ref, hs...)
		}
		u, err := Extend(size, ls, tiles)
		if err != nil {
			t.Fatal(err)
		}
		tiles.apply(u)
		size = u.NewSize
		for x := range int64(len(ref)) {
			got, err := r.ReadHashes([]int64{x})
			if err != nil || got[0] != ref[x] {
				t.Fatalf("size %d: stored hash %d = %v (%v), want %v", size, x, got, err, ref[x])
			}
		}
		root, _ := tlog.TreeHash(size, ref)
		for n := int64(0); n < size; n += 37 {
			p, err := tlog.ProveRecord(size, n, r)
			if err != nil {
				t.Fatal(err)
			}
			if err := tlog.CheckRecord(p, size, root, n, tlog.RecordHash(leaf(int(n)))); err != nil {
				t.Fatalf("size %d leaf %d: %v", size, n, err)
			}
		}
	}
}
