package tlog

import (
	"sync"

	"golang.org/x/mod/sumdb/tlog"
)

// Bounds of the expanded-tile cache of one TileHashes reader: a tile
// expands to at most 2×TileWidth−2 hashes (16 KiB). Tiles above level 0 are few
// (a tree of 2^24 leaves has 257) and on every proof's path, so they get
// most of the room; level-0 tiles are one per 256 leaves.
const (
	maxUpperTiles = 512 // 8 MiB
	maxBaseTiles  = 64  // 1 MiB
)

// expandedTile is a hash tile of width w (full: TileWidth) with every
// level inside it computed: level k (0 = the tile's own hashes) holds the
// w>>k complete nodes, at offset 2×TileWidth − (2×TileWidth)>>k.
type expandedTile struct {
	w int
	h []tlog.Hash
}

func expandTile(data []byte) *expandedTile {
	w := len(data) / tlog.HashSize
	e := &expandedTile{w: w, h: make([]tlog.Hash, 2*TileWidth-2)}
	for i := range w {
		copy(e.h[i][:], data[i*tlog.HashSize:])
	}
	for k := 1; k < TileHeight; k++ {
		prev, cur := levelOffset(k-1), levelOffset(k)
		for i := range w >> k {
			e.h[cur+i] = tlog.NodeHash(e.h[prev+2*i], e.h[prev+2*i+1])
		}
	}
	return e
}

// at returns the node at level k, position p, if the tile is wide enough
// to hold all of it.
func (e *expandedTile) at(k, p int) (tlog.Hash, bool) { return e.atWidth(k, p, e.w) }

// atWidth is at for the tile's first w hashes (w ≤ e.w, or the width an
// extension's right edge has filled in; see edgeTile).
func (e *expandedTile) atWidth(k, p, w int) (tlog.Hash, bool) {
	if (p+1)<<k > w {
		return tlog.Hash{}, false
	}
	return e.h[levelOffset(k)+p], true
}

func levelOffset(k int) int { return 2*TileWidth - (2*TileWidth)>>k }

// tileCache keeps tiles expanded, so a proof reads and hashes only the
// tiles it has not met before. A tile only grows (a narrower one is a
// prefix of a wider one), so a node inside the cached width never
// changes; a node beyond it is read again. It trusts what it caches
// exactly as TileHashes trusts the tiles.
type tileCache struct {
	mu    sync.Mutex
	upper map[TileID]*expandedTile
	base  map[TileID]*expandedTile
}

func newTileCache() *tileCache {
	return &tileCache{upper: map[TileID]*expandedTile{}, base: map[TileID]*expandedTile{}}
}

// hash returns stored hash x from a cached tile.
func (c *tileCache) hash(x int64) (tlog.Hash, bool) {
	id, k, p := tilePos(x)
	c.mu.Lock()
	e, ok := c.pick(id.L)[id]
	c.mu.Unlock()
	if !ok {
		return tlog.Hash{}, false
	}
	return e.at(k, p)
}

// add expands a tile's data, caches it (evicting an arbitrary tile of the
// same class when full) and returns stored hash x from it; false if the
// data is too narrow to hold x.
func (c *tileCache) add(id TileID, data []byte, x int64) (tlog.Hash, bool) {
	e := expandTile(data)
	c.mu.Lock()
	m, bound := c.pick(id.L), maxBaseTiles
	if id.L > 0 {
		bound = maxUpperTiles
	}
	if _, ok := m[id]; !ok && len(m) >= bound {
		for old := range m {
			delete(m, old)
			break
		}
	}
	m[id] = e
	c.mu.Unlock()
	_, k, p := tilePos(x)
	return e.at(k, p)
}

func (c *tileCache) pick(level int) map[TileID]*expandedTile {
	if level > 0 {
		return c.upper
	}
	return c.base
}

// tilePos returns the tile holding stored hash x (tlog.TileForIndex), the
// level k inside the tile and the position p in that level.
func tilePos(x int64) (TileID, int, int) {
	level, n := tlog.SplitStoredHashIndex(x)
	l, k := level/TileHeight, level%TileHeight
	tn := n >> (TileHeight - k)
	return TileID{L: l, N: tn}, k, int(n - tn<<(TileHeight-k))
}

// isBase reports whether stored hash x is at a level that is a multiple of
// TileHeight (a tile's own hash, no hashing needed to read it).
func isBase(x int64) bool {
	level, _ := tlog.SplitStoredHashIndex(x)
	return level%TileHeight == 0
}
