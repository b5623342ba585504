package tlog

import (
	"fmt"

	"golang.org/x/mod/sumdb/tlog"
)

// TileHeight is the height of every tile (C2SP tlog-tiles: 256 hashes).
const TileHeight = 8

// TileWidth is the number of hashes (or leaves) in a full tile.
const TileWidth = 1 << TileHeight

// LeafSize is the size of a leaf's data: an entry_hash.
const LeafSize = 32

// DataLevel is the tile level of entry bundles (tlog's L = -1 "data").
const DataLevel = -1

// TileID names a stored tile: level L (DataLevel for an entry bundle) and
// index N within the level. A stored tile holds between 1 and TileWidth
// hashes (or leaves); a partial tile grows in place as the tree grows.
type TileID struct {
	L int
	N int64
}

// TileReader reads stored tiles. ReadTile returns the tile's current data
// (hash tiles: 32-byte hashes; entry bundles: 32-byte leaf data, no length
// prefixes) or ok = false if it does not exist. The data may be wider than
// a caller needs: tiles only grow, and a narrower tile is a prefix.
type TileReader interface {
	ReadTile(id TileID) (data []byte, ok bool, err error)
}

// TileReaderFunc adapts a function to TileReader.
type TileReaderFunc func(id TileID) ([]byte, bool, error)

// ReadTile calls f.
func (f TileReaderFunc) ReadTile(id TileID) ([]byte, bool, error) { return f(id) }

// TileHashes returns a tlog.HashReader over the stored hashes of a tree,
// reading each hash from the tile that holds it (tlog.TileForIndex and
// tlog.HashFromTile). It trusts the tiles (they are the log's own). Tiles
// only grow: the reader keeps a bounded number of them with every level
// inside computed (all the upper tiles of a tree of up to 2^25 leaves, and
// a few level-0 tiles), so an inclusion proof costs one ReadTile and about
// 2^8 hashes for its level-0 tile and nothing for the tiles above once
// met; a hash beyond a cached tile's width reads the tile again. The
// reader is safe for concurrent use; keep one to benefit from it.
func TileHashes(tr TileReader) tlog.HashReader { return tileHashes(tr, newTileCache()) }

// tileHashes is TileHashes with a cache of full tiles, or none (nil: every
// hash is read and computed from its tile, as Extend wants for the few
// right-edge hashes it reads).
func tileHashes(tr TileReader, cache *tileCache) tlog.HashReader {
	return tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(indexes))
		type read struct {
			data []byte
			ok   bool
		}
		var tiles map[TileID]read // one read per tile per call
		for i, x := range indexes {
			if h, ok := cache.hash(x); ok {
				out[i] = h
				continue
			}
			t := tlog.TileForIndex(TileHeight, x)
			id := TileID{t.L, t.N}
			r, seen := tiles[id]
			if !seen {
				var err error
				if r.data, r.ok, err = tr.ReadTile(id); err != nil {
					return nil, err
				}
				if tiles == nil {
					tiles = map[TileID]read{}
				}
				tiles[id] = r
			}
			data, ok := r.data, r.ok
			if !ok || len(data) < t.W*tlog.HashSize {
				return nil, fmt.Errorf("tlog: hash %d needs tile %d/%d of width %d; have %d bytes", x, t.L, t.N, t.W, len(data))
			}
			// Expand the tile, except for a level-0 tile's own hash
			// (reading it needs no hashing; expanding would cost 254).
			if cache != nil && (t.L > 0 || !isBase(x)) {
				if h, ok := cache.add(id, data, x); ok {
					out[i] = h
					continue
				}
			}
			t.W = len(data) / tlog.HashSize
			h, err := tlog.HashFromTile(t, data, x)
			if err != nil {
				return nil, fmt.Errorf("tlog: hash %d: %w", x, err)
			}
			out[i] = h
		}
		return out, nil
	})
}

// Update is the result of Extend: the tree's new size and root and the new
// contents of every tile that changed (hash tiles and entry bundles, full
// or partial). Storing Tiles makes the stored tree the new one.
type Update struct {
	OldSize, NewSize int64
	Root             tlog.Hash
	Tiles            map[TileID][]byte
}

// Extend appends leaves (each the LeafSize-byte leaf data) to the tree of
// size oldSize whose tiles tr reads, and returns the tiles to store. It is
// pure: it reads tr and computes, writing nothing. The leaf hash is RFC
// 6962's SHA-256(0x00 ‖ data); hashes are tlog.StoredHashesForRecordHash's.
// Cost: about 2 hashes per leaf, plus one ReadTile per tile touched at the
// right edge, plus assembling the changed tiles (32 bytes copied per hash).
func Extend(oldSize int64, leaves [][]byte, tr TileReader) (Update, error) {
	u := Update{OldSize: oldSize, NewSize: oldSize + int64(len(leaves)), Tiles: map[TileID][]byte{}}
	if oldSize < 0 {
		return Update{}, fmt.Errorf("tlog: negative tree size %d", oldSize)
	}
	cache := map[TileID][]byte{}
	cached := TileReaderFunc(func(id TileID) ([]byte, bool, error) {
		if d, ok := cache[id]; ok {
			return d, true, nil
		}
		d, ok, err := tr.ReadTile(id)
		if err == nil && ok {
			cache[id] = d
		}
		return d, ok, err
	})
	base := tileHashes(cached, nil)
	overlay := map[int64]tlog.Hash{}
	r := tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(indexes))
		var miss []int64
		var missAt []int
		for i, x := range indexes {
			if h, ok := overlay[x]; ok {
				out[i] = h
				continue
			}
			miss = append(miss, x)
			missAt = append(missAt, i)
		}
		if len(miss) > 0 {
			hs, err := base.ReadHashes(miss)
			if err != nil {
				return nil, err
			}
			for j, h := range hs {
				out[missAt[j]] = h
			}
		}
		return out, nil
	})
	for i, leaf := range leaves {
		if len(leaf) != LeafSize {
			return Update{}, fmt.Errorf("tlog: leaf %d is %d bytes, want %d", oldSize+int64(i), len(leaf), LeafSize)
		}
		n := oldSize + int64(i)
		hs, err := tlog.StoredHashesForRecordHash(n, tlog.RecordHash(leaf), r)
		if err != nil {
			return Update{}, fmt.Errorf("tlog: stored hashes of leaf %d: %w", n, err)
		}
		idx := tlog.StoredHashIndex(0, n)
		for j, h := range hs {
			overlay[idx+int64(j)] = h
		}
	}
	if u.NewSize == oldSize {
		root, err := tlog.TreeHash(oldSize, r)
		if err != nil {
			return Update{}, fmt.Errorf("tlog: tree hash at %d: %w", oldSize, err)
		}
		u.Root = root
		return u, nil
	}
	for _, t := range tlog.NewTiles(TileHeight, oldSize, u.NewSize) {
		data, err := tlog.ReadTileData(t, r)
		if err != nil {
			return Update{}, fmt.Errorf("tlog: tile %d/%d: %w", t.L, t.N, err)
		}
		u.Tiles[TileID{t.L, t.N}] = data
	}
	// Entry bundles: the leaf data, TileWidth leaves per bundle.
	for i := 0; i < len(leaves); {
		n := oldSize + int64(i)
		id := TileID{DataLevel, n / TileWidth}
		data, ok := u.Tiles[id]
		if !ok && n%TileWidth != 0 {
			old, found, err := tr.ReadTile(id)
			if err != nil {
				return Update{}, fmt.Errorf("tlog: entry bundle %d: %w", id.N, err)
			}
			want := int(n%TileWidth) * LeafSize
			if !found || len(old) < want {
				return Update{}, fmt.Errorf("tlog: entry bundle %d holds %d bytes, want %d for tree size %d", id.N, len(old), want, oldSize)
			}
			data = append(make([]byte, 0, want+LeafSize*min(len(leaves)-i, TileWidth)), old[:want]...)
		}
		for ; i < len(leaves) && (oldSize+int64(i))/TileWidth == id.N; i++ {
			data = append(data, leaves[i]...)
		}
		u.Tiles[id] = data
	}
	root, err := tlog.TreeHash(u.NewSize, r)
	if err != nil {
		return Update{}, fmt.Errorf("tlog: tree hash at %d: %w", u.NewSize, err)
	}
	u.Root = root
	return u, nil
}

// TileReaderAt returns a TileReader that sees the tiles of u over those of
// tr (the tree after u is stored).
func (u Update) TileReaderAt(tr TileReader) TileReader {
	return TileReaderFunc(func(id TileID) ([]byte, bool, error) {
		if d, ok := u.Tiles[id]; ok {
			return d, true, nil
		}
		return tr.ReadTile(id)
	})
}
