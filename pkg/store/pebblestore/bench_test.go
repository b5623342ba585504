package pebblestore_test

import (
	"crypto/rand"
	"path/filepath"
	"testing"

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
