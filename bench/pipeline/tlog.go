package main

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	sumtlog "golang.org/x/mod/sumdb/tlog"

	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/store/pebblestore"
	"github.com/securelog/securelog/pkg/tlog"
	"github.com/securelog/securelog/pkg/wire"
)

// runTlogProof builds an n-leaf transparency tree in a pebble store (the
// tiles the ingester commits, in batches of 10,000) and returns the p99
// and the CPU time per proof of 1,000 inclusion proofs of random leaves,
// read through one tlog.TileHashes reader over a fresh Tree (as `prove
// --tlog`, the bundle export and the checkpointer read them), each checked
// against the root.
func runTlogProof(n int) (p99 time.Duration, cpuPer float64, err error) {
	dir, err := os.MkdirTemp("", "bench-tlog")
	if err != nil {
		return 0, 0, err
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	st := pebblestore.New(pebblestore.WithLogger(slog.New(slog.DiscardHandler)))
	if err := st.Init(ctx, filepath.Join(dir, "db")); err != nil {
		return 0, 0, err
	}
	defer st.Close()
	tree, err := tlog.NewTree(st)
	if err != nil {
		return 0, 0, err
	}
	leaf := func(i int) []byte {
		h := sha256.Sum256(binary.BigEndian.AppendUint64(nil, uint64(i)))
		return h[:]
	}
	rows := make([]wire.EntryRow, 10_000)
	for s := 1; s <= n; s += len(rows) {
		rows = rows[:min(len(rows), n-s+1)]
		for i := range rows {
			rows[i] = wire.EntryRow{Seqno: uint64(s + i), EntryHash: leaf(s + i - 1)}
		}
		meta, err := tree.PrepareCommit(ctx, rows)
		if err != nil {
			return 0, 0, err
		}
		err = st.CommitBatch(ctx, store.Batch{Meta: meta})
		tree.FinishCommit(err)
		if err != nil {
			return 0, 0, err
		}
	}
	size, root, err := tree.Head(ctx)
	if err != nil || size != int64(n) {
		return 0, 0, fmt.Errorf("tree size %d (%v), want %d", size, err, n)
	}
	if err := st.Compact(ctx); err != nil { // at rest, as runProofVerify
		return 0, 0, err
	}
	fresh, err := tlog.NewTree(st)
	if err != nil {
		return 0, 0, err
	}
	r := tlog.TileHashes(fresh.Tiles(ctx))
	rng := rand.New(rand.NewPCG(7, 8))
	lat := make([]time.Duration, 0, 1000)
	var cpu time.Duration
	for range 1000 {
		idx := rng.Int64N(size)
		t0, c0 := time.Now(), cpuTime()
		p, err := sumtlog.ProveRecord(size, idx, r)
		if err != nil {
			return 0, 0, err
		}
		lat = append(lat, time.Since(t0))
		cpu += cpuTime() - c0
		if err := sumtlog.CheckRecord(p, size, root, idx, sumtlog.RecordHash(leaf(int(idx)))); err != nil {
			return 0, 0, fmt.Errorf("leaf %d: %w", idx, err)
		}
	}
	return pct(lat, 99), usPer(cpu, len(lat)), nil
}
