//go:build unix

package bundle_test

import (
	"context"
	"flag"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/securelog/securelog/pkg/bundle"
	"github.com/securelog/securelog/pkg/bundle/bundletest"
)

var long = flag.Bool("long", false, "run the 1,000,000-entry bundle audit (slow; reports peak RSS and time)")

// writeGenBundle writes a synthetic bundle of n entries to a file.
func writeGenBundle(tb testing.TB, n, segSize uint64) (string, int64) {
	tb.Helper()
	path, size, err := bundletest.WriteFile(tb.TempDir(), n, segSize)
	if err != nil {
		tb.Fatal(err)
	}
	return path, size
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
