package tlog

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	"golang.org/x/mod/sumdb/tlog"
)

// Client reads a log through the C2SP tlog-tiles API. It trusts nothing it
// reads: callers open the checkpoint with their verifiers and read hashes
// through tlog.TileHashReader, which checks every tile against it.
type Client struct {
	// URL is the log's prefix, e.g. http://127.0.0.1:8080.
	URL string
	// HTTP sends the requests (http.DefaultClient if nil).
	HTTP *http.Client
	// Token, when set, is sent as "Authorization: Bearer <Token>": a
	// listener with store RPC tokens serves tiles to the reader role.
	Token string
}

func (c *Client) get(ctx context.Context, path string, limit int64) ([]byte, error) {
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	url := strings.TrimSuffix(c.URL, "/") + "/" + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", url, resp.Status, strings.TrimSpace(string(b[:min(len(b), 200)])))
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("GET %s: more than %d bytes", url, limit)
	}
	return b, nil
}

// Checkpoint fetches the latest checkpoint note (unverified).
func (c *Client) Checkpoint(ctx context.Context) ([]byte, error) {
	return c.get(ctx, "checkpoint", MaxCheckpointSize)
}

// Tile fetches a hash tile or entry bundle by its C2SP path.
func (c *Client) Tile(ctx context.Context, p TilePath) ([]byte, error) {
	b, err := c.get(ctx, p.String(), int64(p.W)*(2+LeafSize))
	if err != nil {
		return nil, err
	}
	if p.L != DataLevel && len(b) != p.W*tlog.HashSize {
		return nil, fmt.Errorf("tile %s: %d bytes, want %d", p, len(b), p.W*tlog.HashSize)
	}
	return b, nil
}

// TileReader returns a tlog.TileReader (height 8) over the hash tiles, for
// tlog.TileHashReader.
func (c *Client) TileReader(ctx context.Context) tlog.TileReader { return tileClient{c, ctx} }

type tileClient struct {
	c   *Client
	ctx context.Context
}

func (t tileClient) Height() int { return TileHeight }

func (t tileClient) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, tl := range tiles {
		if tl.H != TileHeight || tl.L < 0 {
			return nil, fmt.Errorf("tile %v: only hash tiles of height %d are served", tl, TileHeight)
		}
		b, err := t.c.Tile(t.ctx, TilePath{L: tl.L, N: tl.N, W: tl.W})
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}

func (t tileClient) SaveTiles([]tlog.Tile, [][]byte) {}

// Leaf fetches the leaf data of index from the entry bundle that a tree of
// size treeSize holds (full, or partial at the right edge). The caller
// checks it against the tree (tlog.CheckRecord).
func (c *Client) Leaf(ctx context.Context, index, treeSize int64) ([]byte, error) {
	if index < 0 || index >= treeSize {
		return nil, fmt.Errorf("index %d not in a tree of size %d", index, treeSize)
	}
	p := TilePath{L: DataLevel, N: index / TileWidth, W: TileWidth}
	if end := (p.N + 1) * TileWidth; end > treeSize {
		p.W = int(treeSize - p.N*TileWidth)
	}
	b, err := c.Tile(ctx, p)
	if err != nil {
		return nil, err
	}
	entries, err := ParseEntryBundle(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	if len(entries) != p.W {
		return nil, fmt.Errorf("%s: %d entries, want %d", p, len(entries), p.W)
	}
	return entries[index%TileWidth], nil
}
