package pebblestore

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/securelog/securelog/pkg/query"
	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/wire"
)

// TestWithoutQueryIndexesForBenchmark: the benchmark option writes entries
// without index records and counts, refuses queries, and the two kinds of
// store cannot be mixed up (a store written without indexes is refused by
// a normal open, and the option refuses a store that has indexed entries).
func TestWithoutQueryIndexesForBenchmark(t *testing.T) {
	ctx := context.Background()
	rows := func(from uint64) []wire.EntryRow {
		var out []wire.EntryRow
		for i := from; i < from+10; i++ {
			out = append(out, wire.EntryRow{Seqno: i, StreamID: "default", Timestamp: "2026-01-01T00:00:00Z", EventType: "t", Producer: "p",
				Payload: []byte{}, PrevEntryHash: make([]byte, 32), EntryHash: make([]byte, 32)})
		}
		return out
	}
	open := func(dir string, opts ...Option) (*Store, error) {
		s := New(append([]Option{WithLogger(quietStore().opts.logger)}, opts...)...)
		return s, s.Init(ctx, dir)
	}

	bench := filepath.Join(t.TempDir(), "bench")
	s, err := open(bench, WithoutQueryIndexesForBenchmark())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CommitBatch(ctx, store.Batch{Entries: rows(1)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Insert(ctx, rows(11)[0]); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{prefixIdxTime, prefixIdxType, prefixIdxProducer, prefixCount} {
		n := 0
		if err := scan(s.db, []byte(p), upperBound([]byte(p)), false, func(_, _ []byte) (bool, error) { n++; return true, nil }); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("%d records under %q, want none", n, p)
		}
	}
	if r, ok, err := s.Get(ctx, 11); err != nil || !ok || r.Seqno != 11 {
		t.Fatalf("Get(11) = %v, %v, %v", r.Seqno, ok, err)
	}
	if _, _, err := s.QueryEntries(ctx, query.Filter{Stream: "default"}); !errors.Is(err, errNoQueryIndexes) {
		t.Errorf("QueryEntries: %v, want errNoQueryIndexes", err)
	}
	if _, err := s.CountEntries(ctx, "default"); !errors.Is(err, errNoQueryIndexes) {
		t.Errorf("CountEntries: %v, want errNoQueryIndexes", err)
	}
	s.Close()
	if s, err := open(bench); err == nil || !strings.Contains(err.Error(), "without query indexes") {
		s.Close()
		t.Fatalf("normal open of a store written without indexes: %v, want a refusal", err)
	}
	if s, err := open(bench, WithoutQueryIndexesForBenchmark()); err != nil {
		t.Fatalf("reopen with the option: %v", err)
	} else {
		s.Close()
	}

	normal := filepath.Join(t.TempDir(), "normal")
	s, err = open(normal)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CommitBatch(ctx, store.Batch{Entries: rows(1)}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err := open(normal, WithoutQueryIndexesForBenchmark()); err == nil || !strings.Contains(err.Error(), "has query indexes") {
		s.Close()
		t.Fatalf("benchmark open of an indexed store: %v, want a refusal", err)
	}
}
