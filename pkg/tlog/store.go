package tlog

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/wire"
)

// Store meta layout of the tree (store.Batcher meta records, committed in
// the same batch as the entries they cover):
//
//	tlog/state              tree size (8 bytes, big-endian) ‖ root (32 bytes)
//	tlog/t/<LL>/<N 16 hex>  hash tile at level LL (2 decimal digits): 32-byte hashes
//	tlog/e/<N 16 hex>       entry bundle N: the 32-byte leaf data, no prefixes
//
// A partial tile is rewritten wider by each batch until it is full.
const (
	stateKey = "tlog/state"
)

// TileKey returns the store meta key of a tile.
func TileKey(id TileID) string {
	if id.L == DataLevel {
		return fmt.Sprintf("tlog/e/%016x", id.N)
	}
	return fmt.Sprintf("tlog/t/%02d/%016x", id.L, id.N)
}

// Entries reads committed entries by seqno (store.Store does).
type Entries interface {
	Get(ctx context.Context, seqno uint64) (wire.EntryRow, bool, error)
}

// Tree is the store-backed transparency tree. It implements
// securelog.CommitHook: set it as the Log's Options.CommitHook and every
// batch of entries extends the tree in the same atomic store batch. It is
// safe for concurrent readers; the Log serialises writers.
//
// If the tree is behind the entries when a batch comes (the tree was
// switched on for an existing log, or was off for a while), the missing
// leaves are read from the store and added with that batch.
type Tree struct {
	bt store.Batcher
	st Entries

	mu      sync.Mutex
	loaded  bool
	size    int64
	root    tlog.Hash
	cache   map[TileID][]byte // right-edge tiles as committed
	edge    []edgeTile        // right edge of the committed tree, expanded (nil: read from cache/store)
	pending *Update
}

// NewTree returns the tree over st, which must be a store.Batcher (pebble,
// sqlite, memory).
func NewTree(st store.Store) (*Tree, error) {
	bt, ok := st.(store.Batcher)
	if !ok {
		return nil, fmt.Errorf("tlog: store %T cannot commit the tree with the entries (needs store.Batcher: pebble, sqlite or memory)", st)
	}
	return &Tree{bt: bt, st: st, cache: map[TileID][]byte{}}, nil
}

// ReadState decodes the tree state record of a store: size and root (size 0
// and the empty tree's root when absent).
func ReadState(ctx context.Context, bt store.Batcher) (int64, tlog.Hash, error) {
	v, ok, err := bt.GetMeta(ctx, stateKey)
	if err != nil {
		return 0, tlog.Hash{}, fmt.Errorf("tlog: read tree state: %w", err)
	}
	if !ok {
		root, _ := tlog.TreeHash(0, nil)
		return 0, root, nil
	}
	if len(v) != 8+tlog.HashSize {
		return 0, tlog.Hash{}, fmt.Errorf("tlog: tree state %q is %d bytes, want 40", stateKey, len(v))
	}
	n := binary.BigEndian.Uint64(v)
	if n > 1<<62 {
		return 0, tlog.Hash{}, fmt.Errorf("tlog: tree state size %d out of range", n)
	}
	var root tlog.Hash
	copy(root[:], v[8:])
	return int64(n), root, nil
}

func (t *Tree) load(ctx context.Context) error {
	if t.loaded {
		return nil
	}
	n, root, err := ReadState(ctx, t.bt)
	if err != nil {
		return err
	}
	t.size, t.root, t.cache, t.edge, t.loaded = n, root, map[TileID][]byte{}, nil, true
	return nil
}

// Head returns the committed tree size and root.
func (t *Tree) Head(ctx context.Context) (int64, tlog.Hash, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.load(ctx); err != nil {
		return 0, tlog.Hash{}, err
	}
	return t.size, t.root, nil
}

// ReadTile returns a committed tile (from the right-edge cache or the
// store).
func (t *Tree) ReadTile(ctx context.Context, id TileID) ([]byte, bool, error) {
	t.mu.Lock()
	d, ok := t.cache[id]
	t.mu.Unlock()
	if ok {
		return d, true, nil
	}
	return StoreTiles(ctx, t.bt).ReadTile(id)
}

// Tiles returns a TileReader over the committed tiles.
func (t *Tree) Tiles(ctx context.Context) TileReader {
	return TileReaderFunc(func(id TileID) ([]byte, bool, error) { return t.ReadTile(ctx, id) })
}

// StoreTiles returns a TileReader over a store's tile records.
func StoreTiles(ctx context.Context, bt store.Batcher) TileReader {
	return TileReaderFunc(func(id TileID) ([]byte, bool, error) {
		d, ok, err := bt.GetMeta(ctx, TileKey(id))
		if err != nil {
			return nil, false, fmt.Errorf("tlog: read tile %d/%d: %w", id.L, id.N, err)
		}
		if ok && (len(d) == 0 || len(d)%32 != 0 || len(d) > TileWidth*32) {
			return nil, false, fmt.Errorf("tlog: stored tile %d/%d is %d bytes", id.L, id.N, len(d))
		}
		return d, ok, nil
	})
}

// PrepareCommit extends the tree by the rows' entry hashes (and any
// committed entries the tree is missing) and returns the tile and state
// records to commit with the rows. It implements securelog.CommitHook.
func (t *Tree) PrepareCommit(ctx context.Context, rows []wire.EntryRow) (map[string][]byte, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.pending = nil
	if err := t.load(ctx); err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, nil
	}
	first := rows[0].Seqno
	if first == 0 || int64(first-1) < t.size {
		return nil, fmt.Errorf("tlog: batch starts at seqno %d but the tree already holds %d leaves", first, t.size)
	}
	leaves := make([][]byte, 0, len(rows))
	for s := uint64(t.size) + 1; s < first; s++ { // catch up with entries committed without the tree
		r, ok, err := t.st.Get(ctx, s)
		if err != nil {
			return nil, fmt.Errorf("tlog: read seqno %d to catch up: %w", s, err)
		}
		if !ok {
			return nil, fmt.Errorf("tlog: seqno %d is missing; the tree cannot skip it", s)
		}
		leaves = append(leaves, r.EntryHash)
	}
	for i, r := range rows {
		if r.Seqno != first+uint64(i) {
			return nil, fmt.Errorf("tlog: batch seqnos not contiguous: %d after %d", r.Seqno, first+uint64(i)-1)
		}
		leaves = append(leaves, r.EntryHash)
	}
	cached := TileReaderFunc(func(id TileID) ([]byte, bool, error) {
		if d, ok := t.cache[id]; ok {
			return d, true, nil
		}
		return StoreTiles(ctx, t.bt).ReadTile(id)
	})
	u, err := extend(t.size, leaves, cached, t.edge)
	if err != nil {
		return nil, err
	}
	meta := make(map[string][]byte, len(u.Tiles)+1)
	for id, d := range u.Tiles {
		meta[TileKey(id)] = d
	}
	meta[stateKey] = append(binary.BigEndian.AppendUint64(nil, uint64(u.NewSize)), u.Root[:]...)
	t.pending = &u
	return meta, nil
}

// FinishCommit installs the prepared extension once its batch is durable;
// after a failure the tree re-reads its state from the store.
func (t *Tree) FinishCommit(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	u := t.pending
	t.pending = nil
	if err != nil || u == nil {
		t.loaded = false
		return
	}
	t.size, t.root, t.edge = u.NewSize, u.Root, u.edge
	for id, d := range u.Tiles {
		t.cache[id] = d
	}
	// Keep only the right edge: the tiles the next extension reads.
	for id := range t.cache {
		level := max(id.L, 0)
		if edge := t.size >> (TileHeight * (level + 1)); id.N+1 < edge {
			delete(t.cache, id)
		}
	}
}

// ErrNotInTree is returned for a seqno beyond the tree.
var ErrNotInTree = errors.New("seqno not in the tree")

// LeafIndex returns the tree index of a seqno (seqno − 1).
func LeafIndex(seqno uint64) (int64, error) {
	if seqno == 0 || seqno > 1<<62 {
		return 0, fmt.Errorf("tlog: seqno %d out of range", seqno)
	}
	return int64(seqno - 1), nil
}
