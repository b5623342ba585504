package tlog

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// downTree is a TreeSource whose head cannot be read (an ingester that is
// down, in the split deployment).
type downTree struct{ calls atomic.Int64 }

func (d *downTree) Head(context.Context) (int64, tlog.Hash, error) {
	d.calls.Add(1)
	return 0, tlog.Hash{}, errors.New("no responders available for request")
}
func (d *downTree) Tiles(context.Context) TileReader { return memTiles{} }

// countHandler counts records at or above Warn.
type countHandler struct{ warns atomic.Int64 }

func (h *countHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		h.warns.Add(1)
	}
	return nil
}
func (h *countHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countHandler) WithGroup(string) slog.Handler      { return h }

// While the tree cannot be read, Run backs off (up to Interval between
// attempts) and warns once for a repeated error instead of at every Poll:
// a split signer whose ingester was down logged ten warnings a second.
func TestCheckpointerBacksOffWhileTreeIsDown(t *testing.T) {
	origin := "example.com/log"
	s, _ := testSigner(t, origin)
	tree := &downTree{}
	h := &countHandler{}
	c, err := NewCheckpointer(CheckpointerConfig{Tree: tree, Signer: s, Origin: origin,
		Store: MetaCheckpoints{Store: memStore(t)}, Interval: 200 * time.Millisecond,
		Poll: 5 * time.Millisecond, Logger: slog.New(h)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 600*time.Millisecond)
	defer cancel()
	if err := c.Run(ctx); err != nil {
		t.Fatal(err)
	}
	// Without back-off: one attempt per Poll, ~120 in 600 ms. With it:
	// 5, 10, 20, 40, 80, 160, 200, 200 ms … at most ~10 attempts.
	if n := tree.calls.Load(); n > 15 {
		t.Errorf("%d attempts to read the tree in 600 ms with Poll 5 ms and Interval 200 ms: no back-off", n)
	}
	if n := h.warns.Load(); n != 1 {
		t.Errorf("%d warnings for one repeated error, want 1", n)
	}
}
