package tlog

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/securelog/securelog/pkg/securelog"
	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/store/memory"
	"github.com/securelog/securelog/pkg/store/pebblestore"
	"github.com/securelog/securelog/pkg/wire"
)

// BenchmarkInclusionProof1M proves a random leaf of a 1,000,000-leaf tree
// whose tiles are in a pebble store (through the Tree's store path, as
// the tiles API and `prove --tlog` read them), and checks the proof.
// Reports the p99 of one proof.
func BenchmarkInclusionProof1M(b *testing.B) {
	const size = 1_000_000
	ctx := context.Background()
	st := pebblestore.New()
	if err := st.Init(ctx, b.TempDir()+"/log"); err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	tree, err := NewTree(st)
	if err != nil {
		b.Fatal(err)
	}
	const batch = 10_000
	rows := make([]wire.EntryRow, batch)
	for s := 1; s <= size; s += batch {
		for i := range rows {
			rows[i] = wire.EntryRow{Seqno: uint64(s + i), EntryHash: leaf(s + i - 1)}
		}
		meta, err := tree.PrepareCommit(ctx, rows)
		if err != nil {
			b.Fatal(err)
		}
		err = st.CommitBatch(ctx, store.Batch{Meta: meta})
		tree.FinishCommit(err)
		if err != nil {
			b.Fatal(err)
		}
	}
	n, root, _ := tree.Head(ctx)
	if n != size {
		b.Fatalf("tree size %d", n)
	}
	// A fresh tree over the same store: no right-edge cache beyond the head.
	fresh, _ := NewTree(st)
	r := TileHashes(fresh.Tiles(ctx))
	rng := rand.New(rand.NewPCG(7, 8))
	times := make([]time.Duration, 0, b.N)
	var cpu time.Duration
	b.ResetTimer()
	for b.Loop() {
		idx := rng.Int64N(size)
		t0, c0 := time.Now(), threadCPU()
		p, err := tlog.ProveRecord(size, idx, r)
		if err != nil {
			b.Fatal(err)
		}
		times = append(times, time.Since(t0))
		cpu += threadCPU() - c0
		if err := tlog.CheckRecord(p, size, root, idx, tlog.RecordHash(leaf(int(idx)))); err != nil {
			b.Fatal(err)
		}
	}
	slices.Sort(times)
	if len(times) > 0 {
		// CPU time of the proving thread per proof: comparable on a loaded
		// machine, where latencies are not.
		b.ReportMetric(float64(cpu)/float64(time.Microsecond)/float64(len(times)), "CPU-µs/op")
		b.ReportMetric(float64(times[len(times)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(times[len(times)*99/100].Microseconds()), "p99-µs")
	}
}

// BenchmarkAppendTree compares committed entries/s of AppendBatch
// (batches of 64 and of 1000 events, synced pebble batch) with the tree
// off and on, and the process CPU per entry (pebble's background flushes
// and compactions included). Small batches show the tree's per-batch
// cost: every batch rewrites the partial tiles at the right edge.
func BenchmarkAppendTree(b *testing.B) {
	for _, batch := range []int{64, 1000} {
		for _, on := range []bool{false, true} {
			b.Run(fmt.Sprintf("batch=%d/tree=%v", batch, on), func(b *testing.B) {
				ctx := context.Background()
				st := pebblestore.New()
				opts := securelog.Options{}
				if on {
					tree, err := NewTree(st)
					if err != nil {
						b.Fatal(err)
					}
					opts.CommitHook = tree
				}
				l := securelog.New(st, opts)
				if err := l.Open(ctx, b.TempDir()+"/log"); err != nil {
					b.Fatal(err)
				}
				defer st.Close()
				evs := make([]securelog.Event, batch)
				for i := range evs {
					evs[i] = securelog.Event{Stream: fmt.Sprint("s", i%4), EventType: "t", Severity: 1, Producer: "p", Payload: make([]byte, 256)}
				}
				b.ResetTimer()
				c0 := processCPU()
				for b.Loop() {
					if _, err := l.AppendBatch(ctx, evs, nil); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N*len(evs))/b.Elapsed().Seconds(), "entries/s")
				b.ReportMetric(float64(processCPU()-c0)/float64(time.Microsecond)/float64(b.N*len(evs)), "CPU-µs/entry")
			})
		}
	}
}

// BenchmarkTreeExtend measures the CPU cost of extending the tree alone
// (Tree.PrepareCommit and FinishCommit over a memory store, no storage
// write), per leaf, for batches of several sizes on a tree of 1,000,000
// leaves (partial tiles at every level, as in a running log).
func BenchmarkTreeExtend(b *testing.B) {
	for _, batch := range []int{1, 16, 256, 1000} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			ctx := context.Background()
			st := memory.New()
			if err := st.Init(ctx, "bench"); err != nil {
				b.Fatal(err)
			}
			tree, err := NewTree(st)
			if err != nil {
				b.Fatal(err)
			}
			commit := func(rows []wire.EntryRow) {
				meta, err := tree.PrepareCommit(ctx, rows)
				if err != nil {
					b.Fatal(err)
				}
				err = st.CommitBatch(ctx, store.Batch{Meta: meta})
				tree.FinishCommit(err)
				if err != nil {
					b.Fatal(err)
				}
			}
			const fill = 1_000_000 - 77
			rows := make([]wire.EntryRow, 10_000)
			for s := 1; s <= fill; s += len(rows) {
				rows = rows[:min(len(rows), fill-s+1)]
				for i := range rows {
					rows[i] = wire.EntryRow{Seqno: uint64(s + i), EntryHash: leaf(s + i - 1)}
				}
				commit(rows)
			}
			next := fill + 1
			rows = make([]wire.EntryRow, batch)
			b.ReportAllocs()
			b.ResetTimer()
			c0 := threadCPU()
			for b.Loop() {
				for i := range rows {
					rows[i] = wire.EntryRow{Seqno: uint64(next + i), EntryHash: leaf(next + i - 1)}
				}
				next += batch
				meta, err := tree.PrepareCommit(ctx, rows)
				if err != nil {
					b.Fatal(err)
				}
				tree.FinishCommit(nil) // the memory store's write is not what is measured
				_ = meta
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/leaf")
			// The extension runs on this goroutine's thread: its CPU time
			// is comparable on a loaded machine, where ns/leaf is not.
			b.ReportMetric(float64(threadCPU()-c0)/float64(b.N*batch), "CPU-ns/leaf")
		})
	}
}
