package tlog

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

// memTiles is a TileReader over a map, with Apply to store an Update.
type memTiles map[TileID][]byte

func (m memTiles) ReadTile(id TileID) ([]byte, bool, error) {
	d, ok := m[id]
	return d, ok, nil
}

func (m memTiles) apply(u Update) {
	for id, d := range u.Tiles {
		m[id] = d
	}
}

func leaf(i int) []byte {
	h := sha256.Sum256(binary.BigEndian.AppendUint64(nil, uint64(i)))
	return h[:]
}

// refHashes is the reference: tlog's own stored hashes, record by record.
type refHashes []tlog.Hash

func (r refHashes) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		if x >= int64(len(r)) {
			return nil, fmt.Errorf("index %d beyond %d", x, len(r))
		}
		out[i] = r[x]
	}
	return out, nil
}

// Extending in batches of any size gives the root and tiles tlog computes
// record by record, and every entry proves against every later tree.
func TestExtendMatchesTlog(t *testing.T) {
	const total = 1300
	var ref refHashes
	for i := 0; i < total; i++ {
		hs, err := tlog.StoredHashes(int64(i), leaf(i), ref)
		if err != nil {
			t.Fatal(err)
		}
		ref = append(ref, hs...)
	}
	for _, batch := range []int{1, 3, 255, 256, 257, 1000} {
		t.Run(fmt.Sprint(batch), func(t *testing.T) {
			tiles := memTiles{}
			var size int64
			for size < total {
				n := min(batch, total-int(size))
				var ls [][]byte
				for i := 0; i < n; i++ {
					ls = append(ls, leaf(int(size)+i))
				}
				u, err := Extend(size, ls, tiles)
				if err != nil {
					t.Fatal(err)
				}
				tiles.apply(u)
				size = u.NewSize
				want, err := tlog.TreeHash(size, ref)
				if err != nil {
					t.Fatal(err)
				}
				if u.Root != want {
					t.Fatalf("size %d: root %v, want %v", size, u.Root, want)
				}
			}
			for _, tl := range tlog.NewTiles(TileHeight, 0, total) {
				want, _ := tlog.ReadTileData(tl, ref)
				got := tiles[TileID{tl.L, tl.N}]
				if string(got[:len(want)]) != string(want) {
					t.Fatalf("tile %v differs", tl)
				}
			}
			// Entry bundles hold the leaves.
			for i := 0; i < total; i++ {
				b := tiles[TileID{DataLevel, int64(i / TileWidth)}]
				if string(b[(i%TileWidth)*32:(i%TileWidth+1)*32]) != string(leaf(i)) {
					t.Fatalf("bundle leaf %d differs", i)
				}
			}
			r := TileHashes(tiles)
			th, _ := tlog.TreeHash(total, ref)
			for _, n := range []int64{0, 1, 255, 256, 700, total - 1} {
				p, err := tlog.ProveRecord(total, n, r)
				if err != nil {
					t.Fatal(err)
				}
				if err := tlog.CheckRecord(p, total, th, n, tlog.RecordHash(leaf(int(n)))); err != nil {
					t.Fatalf("leaf %d: %v", n, err)
				}
			}
		})
	}
}

func TestExtendRejectsBadLeaf(t *testing.T) {
	if _, err := Extend(0, [][]byte{make([]byte, 31)}, memTiles{}); err == nil {
		t.Fatal("31-byte leaf accepted")
	}
	// A missing right-edge tile is an error, not a wrong root.
	if _, err := Extend(5, [][]byte{leaf(5)}, memTiles{}); err == nil {
		t.Fatal("extended a tree whose tiles are missing")
	}
}

// refTree returns tlog's own stored hashes of leaf(0..n-1), record by
// record.
func refTree(t testing.TB, n int) refHashes {
	t.Helper()
	var ref refHashes
	for i := 0; i < n; i++ {
		hs, err := tlog.StoredHashes(int64(i), leaf(i), ref)
		if err != nil {
			t.Fatal(err)
		}
		ref = append(ref, hs...)
	}
	return ref
}

// checkSplits extends a tree by leaf(0..) in batches of the given sizes,
// each step in one of three ways chosen by modes[i%len(modes)]%3: 0 from
// the previous extension's right edge (as a Tree does), 1 reading the
// tiles afresh (Extend), 2 from the previous edge after an abandoned
// extension from the same edge by other leaves (a failed batch: it grew
// the edge's tiles in place). After every step the root is
// tlog.TreeHash's; at the end every tile is tlog.ReadTileData's and
// equals the tiles of one Extend of all the leaves.
func checkSplits(t *testing.T, ref refHashes, splits []int, modes []byte) {
	t.Helper()
	tiles := memTiles{}
	var size int64
	var edge []edgeTile
	for i, n := range splits {
		ls := make([][]byte, n)
		for j := range ls {
			ls[j] = leaf(int(size) + j)
		}
		var u Update
		var err error
		switch modes[i%len(modes)] % 3 {
		case 0:
			u, err = extend(size, ls, tiles, edge)
		case 1:
			u, err = Extend(size, ls, tiles)
		case 2:
			other := make([][]byte, n+7)
			for j := range other {
				other[j] = leaf(1_000_000 + j)
			}
			if _, err := extend(size, other, tiles, edge); err != nil {
				t.Fatal(err)
			}
			u, err = extend(size, ls, tiles, edge)
		}
		if err != nil {
			t.Fatalf("step %d (size %d + %d): %v", i, size, n, err)
		}
		tiles.apply(u)
		size, edge = u.NewSize, u.edge
		want, err := tlog.TreeHash(size, ref)
		if err != nil {
			t.Fatal(err)
		}
		if u.Root != want {
			t.Fatalf("step %d: size %d: root %v, want %v", i, size, u.Root, want)
		}
	}
	var all [][]byte
	for i := 0; i < int(size); i++ {
		all = append(all, leaf(i))
	}
	one, err := Extend(0, all, memTiles{})
	if err != nil {
		t.Fatal(err)
	}
	if len(one.Tiles) != len(tiles) {
		t.Fatalf("%d tiles stored in steps, %d by one extension", len(tiles), len(one.Tiles))
	}
	for id, d := range one.Tiles {
		if string(tiles[id]) != string(d) {
			t.Fatalf("tile %v differs from one extension's", id)
		}
	}
	for _, tl := range tlog.NewTiles(TileHeight, 0, size) {
		want, err := tlog.ReadTileData(tl, ref)
		if err != nil {
			t.Fatal(err)
		}
		if got := tiles[TileID{tl.L, tl.N}]; string(got) != string(want) {
			t.Fatalf("tile %v: %d bytes differ from tlog.ReadTileData's %d", tl, len(got), len(want))
		}
	}
}

// Extending in random batch splits, from the kept right edge, from the
// tiles, or after an abandoned extension, gives tlog's root after every
// batch and the tiles of one extension (property test).
func TestExtendRandomSplits(t *testing.T) {
	const most = 70_000 // past a full level-1 tile (65,536 leaves)
	ref := refTree(t, most)
	rng := rand.New(rand.NewPCG(11, 12))
	for run := range 12 {
		total := 1 + rng.IntN(3000)
		if run < 2 {
			total = most
		}
		var splits []int
		for left := total; left > 0; {
			n := 1 + rng.IntN(20)
			switch rng.IntN(4) {
			case 0:
				n = 1 + rng.IntN(700)
			case 1:
				n = 1 + rng.IntN(3000)
			}
			n = min(n, left)
			splits = append(splits, n)
			left -= n
		}
		modes := make([]byte, len(splits))
		for i := range modes {
			modes[i] = byte(rng.IntN(3))
		}
		t.Run(fmt.Sprint(total), func(t *testing.T) { checkSplits(t, ref, splits, modes) })
	}
}

// FuzzExtendSplits: any split of up to 2,000 leaves into batches (one byte
// per batch: its size 1..256 and how it extends) checks as
// TestExtendRandomSplits.
func FuzzExtendSplits(f *testing.F) {
	const most = 2000
	ref := refTree(f, most)
	f.Add([]byte{0, 1, 2, 255, 254, 127, 128, 3})
	f.Add([]byte{255, 0, 255, 0, 255, 0, 255, 0, 255})
	f.Add([]byte{9, 10, 11, 12, 13, 14, 200, 201, 202})
	f.Fuzz(func(t *testing.T, b []byte) {
		var splits []int
		modes := []byte{0}
		total := 0
		for i, c := range b {
			n := 1 + int(c)
			if total+n > most {
				break
			}
			splits = append(splits, n)
			total += n
			if i > 0 {
				modes = append(modes, b[i-1])
			}
		}
		if len(splits) == 0 {
			return
		}
		checkSplits(t, ref, splits, modes)
	})
}
