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
func TileHashes(tr TileReader) tlog.HashReader {
	cache := newTileCache()
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
			if t.L > 0 || !isBase(x) {
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
