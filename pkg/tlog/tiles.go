package tlog

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// TilePath is a parsed C2SP tlog-tiles resource path:
// tile/<L>/<N>[.p/<W>] or tile/entries/<N>[.p/<W>].
type TilePath struct {
	// L is the level (0..63), or DataLevel for an entry bundle.
	L int
	// N is the tile index within the level.
	N int64
	// W is the width of a partial tile (1..255), or TileWidth for a full
	// tile.
	W int
}

// String returns the path: "tile/<L>/<N>[.p/<W>]", N in 3-digit groups,
// all but the last prefixed with "x" (1234067 → x001/x234/067).
func (p TilePath) String() string {
	var b strings.Builder
	b.WriteString("tile/")
	if p.L == DataLevel {
		b.WriteString("entries")
	} else {
		b.WriteString(strconv.Itoa(p.L))
	}
	n := p.N
	groups := []string{fmt.Sprintf("%03d", n%1000)}
	for n >= 1000 {
		n /= 1000
		groups = append(groups, fmt.Sprintf("x%03d", n%1000))
	}
	for i := len(groups) - 1; i >= 0; i-- {
		b.WriteByte('/')
		b.WriteString(groups[i])
	}
	if p.W != TileWidth {
		fmt.Fprintf(&b, ".p/%d", p.W)
	}
	return b.String()
}

// PathError reports a malformed tile path.
type PathError struct{ Path, Msg string }

func (e *PathError) Error() string { return fmt.Sprintf("tile path %q: %s", e.Path, e.Msg) }

// ParseTilePath parses a C2SP tile path (without a leading '/'). It
// accepts exactly what TilePath.String produces: level 0..63 or
// "entries" without leading zeroes, N in canonical 3-digit groups, and a
// partial width 1..255 without leading zeroes.
func ParseTilePath(path string) (TilePath, error) {
	bad := func(msg string) (TilePath, error) { return TilePath{}, &PathError{Path: path, Msg: msg} }
	if len(path) > 128 {
		return bad("too long")
	}
	f := strings.Split(path, "/")
	if len(f) < 3 || f[0] != "tile" {
		return bad("want tile/<L>/<N>[.p/<W>]")
	}
	p := TilePath{W: TileWidth}
	if f[1] == "entries" {
		p.L = DataLevel
	} else {
		l, err := strconv.Atoi(f[1])
		if err != nil || l < 0 || l > 63 || strconv.Itoa(l) != f[1] {
			return bad("level must be 0..63 or entries")
		}
		p.L = l
	}
	f = f[2:]
	if len(f) >= 2 && strings.HasSuffix(f[len(f)-2], ".p") {
		w, err := strconv.Atoi(f[len(f)-1])
		if err != nil || w < 1 || w >= TileWidth || strconv.Itoa(w) != f[len(f)-1] {
			return bad("partial width must be 1..255")
		}
		p.W = w
		f[len(f)-2] = strings.TrimSuffix(f[len(f)-2], ".p")
		f = f[:len(f)-1]
	}
	if len(f) > 7 { // 7 groups: up to 10^21 > 2^63
		return bad("index too long")
	}
	var n uint64
	for i, g := range f {
		if i < len(f)-1 {
			if !strings.HasPrefix(g, "x") {
				return bad("all but the last index element start with x")
			}
			g = g[1:]
		}
		if len(g) != 3 || strings.Trim(g, "0123456789") != "" {
			return bad("index elements are 3 digits")
		}
		d, _ := strconv.Atoi(g)
		if n > (1<<63-1-uint64(d))/1000 {
			return bad("index out of range")
		}
		n = n*1000 + uint64(d)
	}
	p.N = int64(n)
	if p.String() != path {
		return bad("not canonical (leading x000 element?)")
	}
	return p, nil
}

// HandlerConfig configures the tiles handler.
type HandlerConfig struct {
	// Tree gives the committed tree's tiles and size. Required.
	Tree TreeSource
	// Checkpoint returns the latest checkpoint note to serve at
	// /checkpoint (nil: 404). Typically (*Checkpointer).Latest.
	Checkpoint func() []byte
}

// NewHandler returns the C2SP tlog-tiles read API: GET /checkpoint,
// /tile/<L>/<N>[.p/<W>] and /tile/entries/<N>[.p/<W>] (entry bundles: each
// leaf's 32-byte data prefixed by its big-endian uint16 length). Full tiles
// are served with immutable cache headers, the checkpoint with no-cache.
// A tile is served only up to the committed tree size; other paths get
// 404. Mount it at the log's URL prefix (http.StripPrefix).
func NewHandler(cfg HandlerConfig) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		path := strings.TrimPrefix(r.URL.Path, "/")
		if path == "checkpoint" {
			var ck []byte
			if cfg.Checkpoint != nil {
				ck = cfg.Checkpoint()
			}
			if ck == nil {
				http.Error(w, "no checkpoint yet", http.StatusNotFound)
				return
			}
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Header().Set("Cache-Control", "no-cache")
			_, _ = w.Write(ck)
			return
		}
		p, err := ParseTilePath(path)
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		data, status, msg := serveTile(r.Context(), cfg.Tree, p)
		if status != http.StatusOK {
			http.Error(w, msg, status)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		if p.W == TileWidth {
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			w.Header().Set("Cache-Control", "public, max-age=60")
		}
		_, _ = w.Write(data)
	})
}

// serveTile returns the resource bytes of p, or an HTTP status and message.
func serveTile(ctx context.Context, tree TreeSource, p TilePath) ([]byte, int, string) {
	size, _, err := tree.Head(ctx)
	if err != nil {
		return nil, http.StatusInternalServerError, "tree head unavailable"
	}
	// Width of tile p's level in the tree: size >> (8·level) hashes.
	level := max(p.L, 0)
	avail := size >> uint(TileHeight*level)
	if p.N > avail/TileWidth || p.N*TileWidth+int64(p.W) > avail {
		return nil, http.StatusNotFound, "tile beyond the tree"
	}
	data, ok, err := tree.Tiles(ctx).ReadTile(TileID{L: p.L, N: p.N})
	if err != nil {
		return nil, http.StatusInternalServerError, "tile unavailable"
	}
	if !ok || len(data) < p.W*32 {
		return nil, http.StatusNotFound, "tile not stored"
	}
	data = data[:p.W*32]
	if p.L != DataLevel {
		return data, http.StatusOK, ""
	}
	out := make([]byte, 0, p.W*(2+LeafSize))
	for i := 0; i < p.W; i++ {
		out = binary.BigEndian.AppendUint16(out, LeafSize)
		out = append(out, data[i*LeafSize:(i+1)*LeafSize]...)
	}
	return out, http.StatusOK, ""
}

// ParseEntryBundle splits an entry bundle into its entries (each a
// big-endian uint16 length and that many bytes). It rejects truncated
// bundles and more than TileWidth entries.
func ParseEntryBundle(b []byte) ([][]byte, error) {
	var out [][]byte
	for len(b) > 0 {
		if len(b) < 2 {
			return nil, fmt.Errorf("entry bundle: truncated length after %d entries", len(out))
		}
		n := int(binary.BigEndian.Uint16(b))
		if len(b) < 2+n {
			return nil, fmt.Errorf("entry bundle: entry %d needs %d bytes, %d left", len(out), n, len(b)-2)
		}
		if len(out) == TileWidth {
			return nil, fmt.Errorf("entry bundle: more than %d entries", TileWidth)
		}
		out = append(out, b[2:2+n])
		b = b[2+n:]
	}
	return out, nil
}
