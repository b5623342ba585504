package tlog

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
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
