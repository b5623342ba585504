//go:build unix

package bundle_test

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/securelog/securelog/pkg/bundle"
	"github.com/securelog/securelog/pkg/chain"
	"github.com/securelog/securelog/pkg/checkpoint"
	"github.com/securelog/securelog/pkg/keystore"
	"github.com/securelog/securelog/pkg/merkle"
	"github.com/securelog/securelog/pkg/wire"
)

var long = flag.Bool("long", false, "run the 1,000,000-entry bundle audit (slow; reports peak RSS and time)")

// genSource is an audit.Source that synthesises a valid signed stream on
// the fly: n entries in segments of segSize (the last segSize/2 entries
// stay open), each segment signed with an ed25519 key. Only the current
// segment's leaves are held; segment rows are built as Entries runs (which
// is what bundle.Write calls first).
type genSource struct {
	n, segSize uint64
	priv       ed25519.PrivateKey
	segs       []wire.SegmentRow
	members    map[uint64][2]uint64 // id → [start, end]
}

const genStream = "big"

func newGen(n, segSize uint64) (*genSource, checkpoint.TrustEntry) {
	seed := make([]byte, ed25519.SeedSize)
	priv := ed25519.NewKeyFromSeed(seed)
	return &genSource{n: n, segSize: segSize, priv: priv, members: map[uint64][2]uint64{}},
		checkpoint.TrustEntry{Identity: "gen", Algorithm: keystore.Ed25519, PublicKey: priv.Public().(ed25519.PublicKey)}
}

func (g *genSource) Entries(ctx context.Context, stream string, fn func(wire.EntryRow) error) error {
	g.segs, g.members = nil, map[uint64][2]uint64{}
	prev, prevCk := wire.ZeroHash, wire.ZeroHash
	var leaves [][]byte
	start := uint64(1)
	closedUpTo := g.n - g.segSize/2
	payload := make([]byte, 24)
	for s := uint64(1); s <= g.n; s++ {
		binary.BigEndian.PutUint64(payload, s)
		r := wire.EntryRow{Seqno: s, StreamID: genStream, SessionID: "sess", BootID: "boot", Timestamp: "2026-04-10T00:00:00.000000Z",
			EventType: "ev", Severity: wire.Info, Producer: "gen", PayloadEncoding: wire.EncoderName, Payload: payload, PrevEntryHash: prev}
		r.EntryHash = chain.RowHash(r)
		if err := fn(r); err != nil {
			return err
		}
		prev = r.EntryHash
		if s > closedUpTo {
			continue
		}
		leaves = append(leaves, r.EntryHash)
		if uint64(len(leaves)) == g.segSize || s == closedUpTo {
			id := uint64(len(g.segs) + 1)
			seg := wire.SegmentRow{SegmentID: id, StreamID: genStream, SeqStart: start, SeqEnd: s, MerkleRoot: merkle.Root(leaves),
				LastEntryHash: r.EntryHash, PrevCheckpointHash: prevCk, ClosedAt: "2026-04-10T00:00:01.000000Z"}
			h := checkpoint.Hash(wire.CheckpointFields{Version: wire.CheckpointVersion, StreamID: genStream, SegmentID: id,
				SeqStart: start, SeqEnd: s, MerkleRoot: seg.MerkleRoot, LastEntryHash: seg.LastEntryHash, PrevCheckpointHash: prevCk,
				BootID: "boot", SessionID: "sess", PolicyHash: wire.ZeroHash, Timestamp: seg.ClosedAt})
			seg.Signature = ed25519.Sign(g.priv, h)
			signer := "gen"
			seg.SignerIdentity = &signer
			g.segs = append(g.segs, seg)
			g.members[id] = [2]uint64{start, s}
			prevCk, leaves, start = h, leaves[:0], s+1
		}
	}
	return nil
}

func (g *genSource) Segments(ctx context.Context, stream string) ([]wire.SegmentRow, error) {
	return g.segs, nil
}

func (g *genSource) SegmentSeqnos(ctx context.Context, id uint64) ([]uint64, error) {
	m, ok := g.members[id]
	if !ok {
		return nil, fmt.Errorf("no segment %d", id)
	}
	out := make([]uint64, 0, m[1]-m[0]+1)
	for s := m[0]; s <= m[1]; s++ {
		out = append(out, s)
	}
	return out, nil
}

// writeGenBundle writes a synthetic bundle of n entries to a file.
func writeGenBundle(tb testing.TB, n, segSize uint64) (string, int64) {
	tb.Helper()
	g, te := newGen(n, segSize)
	path := filepath.Join(tb.TempDir(), "big.json")
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	w := bufio.NewWriter(f)
	if _, err := bundle.Write(context.Background(), w, g, genStream, []checkpoint.TrustEntry{te}, nil); err != nil {
		tb.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	fi, _ := f.Stat()
	f.Close()
	return path, fi.Size()
}

// cpuTime is the process's user+system CPU time so far: on a loaded
// machine it stays comparable where elapsed time does not.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func maxRSSMiB() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Maxrss) / 1024 // kilobytes on Linux
}

// TestAuditMillionEntries (go test -run Million -long ./pkg/bundle/)
// generates a 1,000,000-entry bundle in 10,000-entry segments and audits
// it, reporting time, peak RSS and heap; it fails if the audit's live heap
// grows with the entry count (over 64 MiB).
func TestAuditMillionEntries(t *testing.T) {
	if !*long {
		t.Skip("pass -long to run the 1,000,000-entry bundle audit")
	}
	const n = 1_000_000
	t0 := time.Now()
	path, size := writeGenBundle(t, n, 10_000)
	t.Logf("generated %d entries, %.1f MiB bundle in %v; peak RSS so far %.1f MiB", n, float64(size)/(1<<20), time.Since(t0), maxRSSMiB())
	runtime.GC()
	var peakHeap uint64
	t1, c1 := time.Now(), cpuTime()
	r, err := bundle.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	t.Logf("first pass (Open) %v, %v CPU", time.Since(t1), cpuTime()-c1)
	rep, err := bundle.Audit(context.Background(), r, bundle.AuditOptions{Progress: func(done, total uint64) {
		if done%100_000 == 0 {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			peakHeap = max(peakHeap, ms.HeapAlloc)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("audited %d entries, %d segments in %v (%v CPU, %d CPUs); peak RSS %.1f MiB; peak sampled heap %.1f MiB",
		rep.Entries, rep.Segments, time.Since(t1), cpuTime()-c1, runtime.GOMAXPROCS(0), maxRSSMiB(), float64(peakHeap)/(1<<20))
	if rep.Entries != n || rep.Signed != rep.Segments || rep.Segments != 100 {
		t.Fatalf("report %+v", rep.Report)
	}
	if peakHeap > 64<<20 {
		t.Fatalf("live heap reached %.1f MiB during the audit: memory is not bounded", float64(peakHeap)/(1<<20))
	}
}

// BenchmarkAudit audits a 20,000-entry synthetic bundle per iteration.
func BenchmarkAudit(b *testing.B) {
	path, size := writeGenBundle(b, 20_000, 1_000)
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		r, err := bundle.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := bundle.Audit(context.Background(), r, bundle.AuditOptions{}); err != nil {
			b.Fatal(err)
		}
		r.Close()
	}
	b.ReportMetric(maxRSSMiB(), "peak-RSS-MiB")
}
