package pebblestore_test

import (
	"crypto/rand"
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/store/pebblestore"
	"github.com/securelog/securelog/pkg/wire"
)

func benchStore(b *testing.B) *pebblestore.Store {
	b.Helper()
	s := pebblestore.New(quiet())
	if err := s.Init(b.Context(), filepath.Join(b.TempDir(), "db")); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

func benchRow(seqno uint64) wire.EntryRow {
	payload := make([]byte, 300)
	rand.Read(payload)
	return wire.EntryRow{Seqno: seqno, StreamID: "bench", SessionID: "s", BootID: "b",
		Timestamp: "2026-08-04T10:11:12.123456789+00:00", EventType: "e", Producer: "p", PayloadEncoding: "raw",
		Payload: payload, PrevEntryHash: make([]byte, 32), EntryHash: make([]byte, 32)}
}

// BenchmarkInsertSynced measures one synced Insert of a 300-byte payload.
func BenchmarkInsertSynced(b *testing.B) {
	s := benchStore(b)
	row := benchRow(0)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		row.Seqno = uint64(i + 1)
		if _, err := s.Insert(b.Context(), row); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "entries/s")
}

// BenchmarkCommitBatch100 measures one synced CommitBatch of 100 entries
// (300-byte payloads) plus a meta record.
func BenchmarkCommitBatch100(b *testing.B) {
	s := benchStore(b)
	rows := make([]wire.EntryRow, 100)
	for i := range rows {
		rows[i] = benchRow(0)
	}
	var next uint64
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		for i := range rows {
			next++
			rows[i].Seqno = next
		}
		err := s.CommitBatch(b.Context(), store.Batch{Entries: rows, Meta: map[string][]byte{"pos": {byte(next)}}})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(next)/b.Elapsed().Seconds(), "entries/s")
}

// BenchmarkIndexCost measures synced CommitBatch of 100 entries with and
// without the query indexes and counts (issue 12 budget: ≤ 15 % of
// committed throughput), reporting the process CPU per entry (flushes and
// compactions included) beside the rate. Entries vary in type, producer
// and severity as an audit trail does.
//
//	go test ./pkg/store/pebblestore -run '^$' -bench IndexCost -benchtime 2000x
func BenchmarkIndexCost(b *testing.B) {
	for _, tc := range []struct {
		name string
		opts []pebblestore.Option
	}{{"indexes", nil}, {"none", []pebblestore.Option{pebblestore.WithoutQueryIndexesForBenchmark()}}} {
		b.Run(tc.name, func(b *testing.B) {
			s := pebblestore.New(append([]pebblestore.Option{quiet()}, tc.opts...)...)
			if err := s.Init(b.Context(), filepath.Join(b.TempDir(), "db")); err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			rows := make([]wire.EntryRow, 100)
			for i := range rows {
				rows[i] = benchRow(0)
			}
			var next uint64
			base := time.Date(2026, 8, 4, 10, 0, 0, 0, time.UTC)
			c0 := cpuTime()
			b.ResetTimer()
			for range b.N {
				for i := range rows {
					next++
					rows[i].Seqno = next
					rows[i].Timestamp = wire.FormatTime(base.Add(time.Duration(next) * time.Millisecond))
					rows[i].EventType = fmt.Sprintf("family%d.event%d", next%4, next%23)
					rows[i].Producer = fmt.Sprintf("host-%02d.example.net", next%64)
					rows[i].Severity = wire.Severity([]uint8{6, 6, 6, 6, 6, 6, 7, 5, 4, 6}[next%10])
				}
				if err := s.CommitBatch(b.Context(), store.Batch{Entries: rows}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(next)/b.Elapsed().Seconds(), "entries/s")
			b.ReportMetric(float64((cpuTime()-c0).Microseconds())/float64(next), "CPU-µs/entry")
		})
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
