package securelog

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/securelog/securelog/pkg/keystore"
	"github.com/securelog/securelog/pkg/store/pebblestore"
	"github.com/securelog/securelog/pkg/wire"
)

var benchPayload = make([]byte, 256)

// BenchmarkAppendPebble: one synced append per entry, from 1 and 8
// concurrent producers (appends are serialised by the log).
func BenchmarkAppendPebble(b *testing.B) {
	for _, producers := range []int{1, 8} {
		b.Run(fmt.Sprintf("producers=%d", producers), func(b *testing.B) {
			l := benchLog(b)
			ctx := context.Background()
			b.SetBytes(int64(len(benchPayload)))
			b.ResetTimer()
			var wg sync.WaitGroup
			per := b.N / producers
			for p := 0; p < producers; p++ {
				n := per
				if p == 0 {
					n += b.N % producers
				}
				wg.Add(1)
				go func(n int) {
					defer wg.Done()
					for i := 0; i < n; i++ {
						if _, err := l.Append(ctx, "default", "bench", wire.Info, "bench", benchPayload); err != nil {
							b.Error(err)
							return
						}
					}
				}(n)
			}
			wg.Wait()
		})
	}
}

// BenchmarkAppendBatchPebble: batches of 100 events in one synced write,
// from 1 and 8 concurrent producers. Reported per entry.
func BenchmarkAppendBatchPebble(b *testing.B) {
	const batch = 100
	for _, producers := range []int{1, 8} {
		b.Run(fmt.Sprintf("producers=%d", producers), func(b *testing.B) {
			l := benchLog(b)
			ctx := context.Background()
			evs := make([]Event, batch)
			for i := range evs {
				evs[i] = Event{Stream: "default", EventType: "bench", Severity: wire.Info, Producer: "bench", Payload: benchPayload}
			}
			b.SetBytes(int64(len(benchPayload)))
			b.ResetTimer()
			batches := (b.N + batch - 1) / batch
			var wg sync.WaitGroup
			var mu sync.Mutex
			next := 0
			for p := 0; p < producers; p++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						mu.Lock()
						if next >= batches {
							mu.Unlock()
							return
						}
						next++
						mu.Unlock()
						if _, err := l.AppendBatch(ctx, evs, nil); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
		})
	}
}

// cpuTime is the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func benchLog(b *testing.B) *Log {
	b.Helper()
	st := pebblestore.New()
	l := New(st, Options{SessionID: "s", BootID: "b"})
	if err := l.Open(context.Background(), b.TempDir()+"/db"); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	return l
}

// settle compacts the benchmark log's pebble store after a fill, so that
// what is measured next does not share the machine with the fill's
// background compactions.
func settle(b *testing.B, l *Log) {
	b.Helper()
	if c, ok := l.Store().(interface{ Compact(context.Context) error }); ok {
		if err := c.Compact(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}

// fill appends n entries to stream in batches.
func fill(b *testing.B, l *Log, stream string, n int) {
	b.Helper()
	evs := make([]Event, 0, 1000)
	for i := 0; i < n; i++ {
		evs = append(evs, Event{Stream: stream, EventType: "bench", Severity: wire.Info, Producer: "bench", Payload: benchPayload})
		if len(evs) == cap(evs) || i == n-1 {
			if _, err := l.AppendBatch(context.Background(), evs, nil); err != nil {
				b.Fatal(err)
			}
			evs = evs[:0]
		}
	}
}

// BenchmarkVerifyChain100k verifies a 100,000-entry stream on pebble
// (compacted after the fill, so the fill's background compactions do not
// count).
func BenchmarkVerifyChain100k(b *testing.B) {
	l := benchLog(b)
	fill(b, l, "default", 100_000)
	settle(b, l)
	ctx := context.Background()
	b.ResetTimer()
	c0 := cpuTime()
	for i := 0; i < b.N; i++ {
		if err := l.VerifyChain(ctx, "default", 1, 100_000); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)*100_000/b.Elapsed().Seconds(), "entries/s")
	// CPU time per entry stays comparable on a loaded machine, where rates
	// do not: 1 M entries/s per core is 1 µs of CPU per entry.
	b.ReportMetric(float64(cpuTime()-c0)/float64(time.Microsecond)/float64(b.N*100_000), "CPU-µs/entry")
}

// BenchmarkCloseSegment10k closes a 10,000-entry segment on pebble.
func BenchmarkCloseSegment10k(b *testing.B) {
	l := benchLog(b)
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		fill(b, l, "default", 10_000)
		b.StartTimer()
		if _, err := l.CloseSegment(ctx, "default"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBuildInclusionProof10k builds a proof in a 10,000-entry segment
// (pebble, tree stored at close).
func BenchmarkBuildInclusionProof10k(b *testing.B) { benchProof(b, 10_000) }

// BenchmarkBuildInclusionProof1M builds a proof in a 1,000,000-entry
// segment (pebble, tree stored at close). Filling and closing the segment
// take a while before the timer starts.
func BenchmarkBuildInclusionProof1M(b *testing.B) { benchProof(b, 1_000_000) }

// BenchmarkBuildInclusionProof10kFromEntries is the path for stores that
// keep no tree (the segment's entries are read and the tree rebuilt), for
// comparison in the same run.
func BenchmarkBuildInclusionProof10kFromEntries(b *testing.B) {
	benchProofOn(b, 10_000, func(l *Log) *Log {
		p := New(plainStore{l.Store()}, Options{})
		if err := p.OpenInitialized(context.Background()); err != nil {
			b.Fatal(err)
		}
		return p
	})
}

// benchProof proves pseudo-random seqnos of one n-entry segment and reports
// the p99 latency beside the mean.
func benchProof(b *testing.B, n int) { benchProofOn(b, n, nil) }

func benchProofOn(b *testing.B, n int, wrap func(*Log) *Log) {
	l := benchLog(b)
	fill(b, l, "default", n)
	ctx := context.Background()
	if _, err := l.CloseSegment(ctx, "default"); err != nil {
		b.Fatal(err)
	}
	settle(b, l)
	if wrap != nil {
		l = wrap(l)
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	c0 := cpuTime()
	for i := 0; i < b.N; i++ {
		seqno := uint64(i)*7919%uint64(n) + 1
		t0 := time.Now()
		if _, err := l.BuildInclusionProof(ctx, seqno); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	// Process CPU per proof (includes pebble's background work after the
	// fill): comparable on a loaded machine, where latencies are not.
	b.ReportMetric(float64(cpuTime()-c0)/float64(time.Microsecond)/float64(b.N), "CPU-µs/op")
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkSignSegment signs a segment checkpoint per algorithm (pebble,
// software keystore), including checkpoint recomputation and the store write.
func BenchmarkSignSegment(b *testing.B) {
	defer slog.SetDefault(slog.Default())
	slog.SetDefault(slog.New(slog.DiscardHandler)) // keep key-generation logs out of the result lines
	for _, alg := range keystore.Algorithms {
		b.Run(alg, func(b *testing.B) {
			st := pebblestore.New()
			ks, _ := keystore.OpenSoftware(b.TempDir() + "/keys")
			if _, err := ks.Generate("attest", alg); err != nil {
				b.Fatal(err)
			}
			l := New(st, Options{Signer: ks})
			ctx := context.Background()
			if err := l.Open(ctx, b.TempDir()+"/db"); err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			fill(b, l, "default", 10)
			seg, err := l.CloseSegment(ctx, "default")
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, _, err := l.SignSegment(ctx, "attest", seg.SegmentID); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAppendGroup256: single appends from 256 concurrent producers
// on pebble, group-committed (the library row of issue 13; bench/pipeline
// -library runs the same shape in a child process). It reports the p99
// latency of one append and the process CPU per append, which stays
// comparable on a loaded machine where latencies do not.
func BenchmarkAppendGroup256(b *testing.B) {
	const producers = 256
	l := benchLog(b)
	ctx := context.Background()
	payload := make([]byte, 300)
	lat := make([]time.Duration, b.N)
	var next atomic.Int64
	b.SetBytes(int64(len(payload)))
	b.ResetTimer()
	c0 := cpuTime()
	var wg sync.WaitGroup
	for range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				t0 := time.Now()
				if _, err := l.Append(ctx, "default", "bench", wire.Info, "bench", payload); err != nil {
					b.Error(err)
					return
				}
				lat[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-c0)/float64(time.Microsecond)/float64(b.N), "CPU-µs/op")
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
