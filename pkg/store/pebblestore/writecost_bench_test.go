package pebblestore

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/wire"
)

// BenchmarkIndexWrite measures synced CommitBatch of 100 entries with and
// without the query indexes and counts (issue 12 budget: ≤ 15 % of
// committed throughput): the process CPU per entry (flushes and
// compactions included), and from pebble's metrics the bytes written per
// entry to the WAL, by flushes and by compactions, and the compaction
// debt left (bytes pebble estimates it must still compact), and the CPU
// per entry once a compaction of the whole key space has paid that debt
// (settled: it also rewrites what was compacted before, the same for
// both). Entries vary in type
// (23), producer (64) and severity as an audit trail does; timestamps
// advance with the seqno. Compactions still running when the loop ends
// are waited for (db.Flush, then no compaction for 200 ms) so their CPU and bytes count.
//
//	go test ./pkg/store/pebblestore -run '^$' -bench IndexWrite -benchtime 2000x
//
// Workload mixed has 23 types, 64 producers and every severity (each
// batch of 100 touches ~90 index ranges); workload pipeline is
// bench/pipeline's: one type, one producer, info.
func BenchmarkIndexWrite(b *testing.B) {
	for _, tc := range []struct {
		name  string
		mixed bool
		opts  []Option
	}{
		{"mixed/indexes", true, nil}, {"mixed/none", true, []Option{WithoutQueryIndexesForBenchmark()}},
		{"pipeline/indexes", false, nil}, {"pipeline/none", false, []Option{WithoutQueryIndexesForBenchmark()}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			s := New(append([]Option{WithLogger(quietStore().opts.logger)}, tc.opts...)...)
			if err := s.Init(b.Context(), filepath.Join(b.TempDir(), "db")); err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			rows := make([]wire.EntryRow, 100)
			for i := range rows {
				payload := make([]byte, 300)
				_, _ = rand.Read(payload)
				rows[i] = wire.EntryRow{StreamID: "bench", SessionID: "s", BootID: "b", PayloadEncoding: "raw",
					Payload: payload, PrevEntryHash: make([]byte, 32), EntryHash: make([]byte, 32)}
			}
			var next uint64
			base := time.Date(2026, 8, 4, 10, 0, 0, 0, time.UTC)
			m0 := s.db.Metrics()
			c0 := benchCPU()
			b.ResetTimer()
			for range b.N {
				for i := range rows {
					next++
					rows[i].Seqno = next
					rows[i].Timestamp = wire.FormatTime(base.Add(time.Duration(next) * time.Millisecond))
					rows[i].EventType, rows[i].Producer, rows[i].Severity = "bench", "bench", wire.Info
					if tc.mixed {
						rows[i].EventType = fmt.Sprintf("family%d.event%d", next%4, next%23)
						rows[i].Producer = fmt.Sprintf("host-%02d.example.net", next%64)
						rows[i].Severity = wire.Severity([]uint8{6, 6, 6, 6, 6, 6, 7, 5, 4, 6}[next%10])
					}
				}
				meta := map[string][]byte{"ingester/position": be64(next)} // as the pipeline's ingester writes
				if err := s.CommitBatch(b.Context(), store.Batch{Entries: rows, Meta: meta}); err != nil {
					b.Fatal(err)
				}
			}
			elapsed := b.Elapsed()
			b.StopTimer()
			waitCompactions(b, s)
			cpu := benchCPU() - c0
			m := s.db.Metrics()
			t, t0 := m.Total(), m0.Total()
			n := float64(next)
			b.ReportMetric(n/elapsed.Seconds(), "entries/s")
			b.ReportMetric(float64(cpu.Microseconds())/n, "CPU-µs/entry")
			b.ReportMetric(float64(m.WAL.BytesWritten-m0.WAL.BytesWritten)/n, "WAL-B/entry")
			b.ReportMetric(float64(t.TableBytesFlushed-t0.TableBytesFlushed)/n, "flush-B/entry")
			b.ReportMetric(float64(t.TableBytesCompacted-t0.TableBytesCompacted)/n, "compact-B/entry")
			b.ReportMetric(float64(m.Compact.Count-m0.Compact.Count), "compactions")
			// Compactions pebble owes but has not started (monotone keys
			// pile up in L0 until a threshold): a run that owes more is
			// cheaper now and dearer later.
			b.ReportMetric(float64(m.Compact.EstimatedDebt)/n, "debt-B/entry")
			// Settled: after a compaction of everything, nothing is owed.
			if err := s.Compact(b.Context()); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64((benchCPU()-c0).Microseconds())/n, "settled-CPU-µs/entry")
			b.Logf("load average %s", loadAverage())
		})
	}
}

// waitCompactions flushes the memtables and waits until pebble has run no
// compaction for 200 ms (at most 30 s).
func waitCompactions(b *testing.B, s *Store) {
	if err := s.db.Flush(); err != nil {
		b.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for quiet := 0; quiet < 4 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		if s.db.Metrics().Compact.NumInProgress == 0 {
			quiet++
		} else {
			quiet = 0
		}
	}
}

func benchCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(b))[0]
}
