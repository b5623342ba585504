package tlog

import (
	"fmt"

	"golang.org/x/mod/sumdb/tlog"
)

// Update is the result of Extend: the tree's new size and root and the new
// contents of every tile that changed (hash tiles and entry bundles, full
// or partial). Storing Tiles makes the stored tree the new one.
type Update struct {
	OldSize, NewSize int64
	Root             tlog.Hash
	Tiles            map[TileID][]byte

	edge []edgeTile // the new tree's right edge (see extension)
}

// Extend appends leaves (each the LeafSize-byte leaf data) to the tree of
// size oldSize whose tiles tr reads, and returns the tiles to store. It is
// pure: it reads tr and computes, writing nothing. The leaf hash is RFC
// 6962's SHA-256(0x00 ‖ data); the stored hashes, the root and the tiles
// are tlog.StoredHashesForRecordHash's, tlog.TreeHash's and
// tlog.NewTiles'. Cost: about 2 hashes per leaf, one ReadTile per level
// (the old tree's partial tile there, expanded: up to 2^8 hashes each),
// plus assembling the changed tiles (32 bytes copied per hash). A Tree
// keeps the expanded right edge between extensions and hashes only the
// new nodes.
func Extend(oldSize int64, leaves [][]byte, tr TileReader) (Update, error) {
	return extend(oldSize, leaves, tr, nil)
}

// edgeTile is one partial tile of a tree's right edge, expanded (every
// node inside computed) up to width w (e.w is not used). Extensions grow
// e in place beyond w (the nodes there are not part of this edge's tree),
// so an edge that is dropped (its batch failed) leaves the older edge it
// grew from valid.
type edgeTile struct {
	id TileID
	e  *expandedTile
	w  int
}

// extension is the tlog.HashReader of one Extend: the stored hashes of the
// old tree come from its partial tiles (expanded once, or kept from the
// previous extension), the new ones from fresh.
//
// Every old hash an extension reads lies in a partial tile of the old
// tree: the left siblings that new leaves complete and the subtrees that
// tlog.TreeHash reads are the old tree's maximal complete subtrees, one
// per set bit of its size, and level 8L+j (j < 8) of those lies in the
// last, partial tile of tile level L; the tiles it rewrites are those
// partial tiles.
type extension struct {
	oldSize int64
	start   int64       // tlog.StoredHashCount(oldSize): the first new stored hash
	fresh   []tlog.Hash // fresh[i] is stored hash start+i
	edge    []edgeTile  // the old tree's tiles read so far
	tr      TileReader
	buf     []tlog.Hash // ReadHashes's result, reused (see ReadHashes)
}

// ReadHashes implements tlog.HashReader. The result is valid until the
// next call: tlog's StoredHashesForRecordHash, TreeHash and ReadTileData,
// its only callers, use it before they read again.
func (x *extension) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := x.buf[:0]
	for _, i := range indexes {
		h, err := x.hash(i)
		if err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	x.buf = out
	return out, nil
}

func (x *extension) hash(i int64) (tlog.Hash, error) {
	if i >= x.start {
		if j := i - x.start; j < int64(len(x.fresh)) {
			return x.fresh[j], nil
		}
		return tlog.Hash{}, fmt.Errorf("tlog: stored hash %d is not computed yet (%d new so far)", i, len(x.fresh))
	}
	id, k, p := tilePos(i)
	t, err := x.oldTile(id)
	if err != nil {
		return tlog.Hash{}, err
	}
	h, ok := t.e.atWidth(k, p, t.w)
	if !ok {
		return tlog.Hash{}, fmt.Errorf("tlog: stored hash %d is beyond tile %d/%d of width %d at tree size %d", i, id.L, id.N, t.w, x.oldSize)
	}
	return h, nil
}

// oldTile returns tile id of the old tree, expanded: from the edge, or
// read from tr (its first width(oldSize) hashes: a stored tile may be
// wider than the tree needs) and added to it.
func (x *extension) oldTile(id TileID) (edgeTile, error) {
	for _, t := range x.edge {
		if t.id == id {
			return t, nil
		}
	}
	w := tileWidth(x.oldSize, id)
	if w <= 0 {
		return edgeTile{}, fmt.Errorf("tlog: tile %d/%d is beyond the tree of size %d", id.L, id.N, x.oldSize)
	}
	data, ok, err := x.tr.ReadTile(id)
	if err != nil {
		return edgeTile{}, err
	}
	if !ok || len(data) < w*tlog.HashSize {
		return edgeTile{}, fmt.Errorf("tlog: tree of size %d needs tile %d/%d of width %d; have %d bytes", x.oldSize, id.L, id.N, w, len(data))
	}
	t := edgeTile{id: id, e: expandTile(data[:w*tlog.HashSize]), w: w}
	x.edge = append(x.edge, t)
	return t, nil
}

// tileWidth returns how many hashes hash tile id holds in a tree of size
// n (TileWidth for a full tile; ≤ 0 beyond the tree).
func tileWidth(n int64, id TileID) int {
	m := n >> uint(TileHeight*id.L) // hashes at the tile's base level
	return int(min(m-id.N*TileWidth, TileWidth))
}

// nextEdge returns the right edge of the tree of size n once every new
// leaf is in fresh: its partial tile at each tile level, grown from the
// old edge's (or started afresh) with the stored hashes the tile holds.
func (x *extension) nextEdge(n int64) ([]edgeTile, error) {
	var out []edgeTile
	for level := 0; n>>uint(TileHeight*level) > 0; level++ {
		m := n >> uint(TileHeight*level)
		w := int(m % TileWidth)
		if w == 0 {
			continue
		}
		id := TileID{L: level, N: m / TileWidth}
		var e *expandedTile
		from := 0
		if tileWidth(x.oldSize, id) > 0 {
			t, err := x.oldTile(id)
			if err != nil {
				return nil, err
			}
			e, from = t.e, t.w
		} else {
			e = &expandedTile{h: make([]tlog.Hash, 2*TileWidth-2)}
		}
		for k := range TileHeight {
			for p := from >> k; p < w>>k; p++ {
				h, err := x.hash(tlog.StoredHashIndex(TileHeight*level+k, id.N<<(TileHeight-k)+int64(p)))
				if err != nil {
					return nil, err
				}
				e.h[levelOffset(k)+p] = h
			}
		}
		out = append(out, edgeTile{id: id, e: e, w: w})
	}
	return out, nil
}

// extend is Extend starting from edge, the right edge of the tree of size
// oldSize as a previous extension returned it (nil: read from tr).
func extend(oldSize int64, leaves [][]byte, tr TileReader, edge []edgeTile) (Update, error) {
	if oldSize < 0 {
		return Update{}, fmt.Errorf("tlog: negative tree size %d", oldSize)
	}
	for i, leaf := range leaves {
		if len(leaf) != LeafSize {
			return Update{}, fmt.Errorf("tlog: leaf %d is %d bytes, want %d", oldSize+int64(i), len(leaf), LeafSize)
		}
	}
	newSize := oldSize + int64(len(leaves))
	start := tlog.StoredHashCount(oldSize)
	x := &extension{
		oldSize: oldSize, start: start, tr: tr,
		fresh: make([]tlog.Hash, 0, tlog.StoredHashCount(newSize)-start),
		edge:  append([]edgeTile(nil), edge...), // oldTile appends
	}
	for i, leaf := range leaves {
		n := oldSize + int64(i)
		hs, err := tlog.StoredHashesForRecordHash(n, tlog.RecordHash(leaf), x)
		if err != nil {
			return Update{}, fmt.Errorf("tlog: stored hashes of leaf %d: %w", n, err)
		}
		if got, want := start+int64(len(x.fresh)), tlog.StoredHashIndex(0, n); got != want {
			return Update{}, fmt.Errorf("tlog: leaf %d's stored hashes start at %d, have %d", n, want, got)
		}
		x.fresh = append(x.fresh, hs...)
	}
	u := Update{OldSize: oldSize, NewSize: newSize, Tiles: map[TileID][]byte{}}
	var err error
	if u.edge, err = x.nextEdge(newSize); err != nil {
		return Update{}, err
	}
	if u.Root, err = tlog.TreeHash(newSize, x); err != nil {
		return Update{}, fmt.Errorf("tlog: tree hash at %d: %w", newSize, err)
	}
	if newSize == oldSize {
		return u, nil
	}
	for _, t := range tlog.NewTiles(TileHeight, oldSize, newSize) {
		id := TileID{t.L, t.N}
		if t.W < TileWidth {
			// A partial tile is the new edge's tile at its level: its
			// base hashes, as tlog.ReadTileData would read them.
			data, err := edgeData(u.edge, id, t.W)
			if err != nil {
				return Update{}, err
			}
			u.Tiles[id] = data
			continue
		}
		data, err := tlog.ReadTileData(t, x)
		if err != nil {
			return Update{}, fmt.Errorf("tlog: tile %d/%d: %w", t.L, t.N, err)
		}
		u.Tiles[id] = data
	}
	if err := entryBundles(&u, leaves, tr); err != nil {
		return Update{}, err
	}
	return u, nil
}

// edgeData returns the first w base hashes of edge tile id.
func edgeData(edge []edgeTile, id TileID, w int) ([]byte, error) {
	for _, t := range edge {
		if t.id == id && t.w == w {
			data := make([]byte, 0, w*tlog.HashSize)
			for _, h := range t.e.h[:w] {
				data = append(data, h[:]...)
			}
			return data, nil
		}
	}
	return nil, fmt.Errorf("tlog: partial tile %d/%d of width %d is not on the right edge", id.L, id.N, w)
}

// entryBundles adds the entry bundles that change to u: the leaf data,
// TileWidth leaves per bundle, the old tree's partial bundle read from tr.
func entryBundles(u *Update, leaves [][]byte, tr TileReader) error {
	oldSize := u.OldSize
	for i := 0; i < len(leaves); {
		n := oldSize + int64(i)
		id := TileID{DataLevel, n / TileWidth}
		var data []byte
		if n%TileWidth != 0 {
			old, found, err := tr.ReadTile(id)
			if err != nil {
				return fmt.Errorf("tlog: entry bundle %d: %w", id.N, err)
			}
			want := int(n%TileWidth) * LeafSize
			if !found || len(old) < want {
				return fmt.Errorf("tlog: entry bundle %d holds %d bytes, want %d for tree size %d", id.N, len(old), want, oldSize)
			}
			data = append(make([]byte, 0, want+LeafSize*min(len(leaves)-i, TileWidth)), old[:want]...)
		}
		for ; i < len(leaves) && (oldSize+int64(i))/TileWidth == id.N; i++ {
			data = append(data, leaves[i]...)
		}
		u.Tiles[id] = data
	}
	return nil
}
