package storetest

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"

	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/wire"
)

func (h *harness) batcher(t *testing.T) (*opened, store.Batcher) {
	t.Helper()
	s := h.open(t)
	b, ok := s.Store.(store.Batcher)
	if !ok {
		t.Skipf("%s does not implement store.Batcher", h.f.Name)
	}
	return s, b
}

func checkMeta(t *testing.T, b store.Batcher, key string, want []byte) {
	t.Helper()
	got, ok, err := b.GetMeta(ctx(t), key)
	if err != nil {
		t.Fatalf("GetMeta(%q): %v", key, err)
	}
	if want == nil {
		if ok {
			t.Fatalf("GetMeta(%q) = %v, want absent", key, got)
		}
		return
	}
	if !ok || !bytes.Equal(got, want) {
		t.Fatalf("GetMeta(%q) = (%v, %v), want %v", key, got, ok, want)
	}
}

func (h *harness) testBatcher(t *testing.T) {
	t.Run("CommitAndMeta", func(t *testing.T) {
		s, b := h.batcher(t)
		rows := []wire.EntryRow{entry(1, "a"), entry(2, "b"), entry(3, "a"), entry(4, "a"), entry(5, "b")}
		err := b.CommitBatch(ctx(t), store.Batch{Entries: rows,
			Meta: map[string][]byte{"consumer/pos": {0, 0, 0, 42}, "empty": {}, "ключ": []byte("значение")}})
		if err != nil {
			t.Fatalf("CommitBatch: %v", err)
		}
		checkRange(t, s, "a", 0, math.MaxUint64, []wire.EntryRow{rows[0], rows[2], rows[3]})
		checkRange(t, s, "b", 0, math.MaxUint64, []wire.EntryRow{rows[1], rows[4]})
		g, ok, err := s.GlobalHead(ctx(t))
		checkOptU64(t, "GlobalHead", g, ok, err, 5, true)
		checkMeta(t, b, "consumer/pos", []byte{0, 0, 0, 42})
		checkMeta(t, b, "empty", []byte{})
		checkMeta(t, b, "ключ", []byte("значение"))
		checkMeta(t, b, "missing", nil)

		// A later batch overwrites meta and continues the streams.
		more := []wire.EntryRow{entry(6, "a"), entry(7, "c")}
		if err := b.CommitBatch(ctx(t), store.Batch{Entries: more, Meta: map[string][]byte{"consumer/pos": {43}}}); err != nil {
			t.Fatalf("second CommitBatch: %v", err)
		}
		checkMeta(t, b, "consumer/pos", []byte{43})
		checkMeta(t, b, "empty", []byte{})
		hd, ok, err := s.Head(ctx(t), "a")
		checkOptU64(t, "Head(a)", hd, ok, err, 6, true)
		// Meta-only and empty batches are fine.
		if err := b.CommitBatch(ctx(t), store.Batch{Meta: map[string][]byte{"only": {1}}}); err != nil {
			t.Fatalf("meta-only CommitBatch: %v", err)
		}
		checkMeta(t, b, "only", []byte{1})
		if err := b.CommitBatch(ctx(t), store.Batch{}); err != nil {
			t.Fatalf("empty CommitBatch: %v", err)
		}
		// Insert and CommitBatch share one seqno space.
		_, err = s.Insert(ctx(t), entry(7, "z"))
		checkDuplicate(t, "Insert(seqno from a batch)", err, 7)
	})

	failing := []struct {
		name    string
		entries []wire.EntryRow
	}{
		{"DuplicateInsideBatch", []wire.EntryRow{entry(10, "a"), entry(11, "a"), entry(10, "b")}},
		{"DuplicateOfStoredRow", []wire.EntryRow{entry(10, "a"), entry(1, "b"), entry(11, "a")}},
		{"MissingSeqno", []wire.EntryRow{entry(10, "a"), entry(0, "a")}},
	}
	for _, c := range failing {
		t.Run(c.name+"WritesNothing", func(t *testing.T) {
			s, b := h.batcher(t)
			first := entry(1, "b")
			if err := b.CommitBatch(ctx(t), store.Batch{Entries: []wire.EntryRow{first}, Meta: map[string][]byte{"pos": {1}}}); err != nil {
				t.Fatalf("CommitBatch: %v", err)
			}
			err := b.CommitBatch(ctx(t), store.Batch{Entries: c.entries, Meta: map[string][]byte{"pos": {2}, "new": {3}}})
			if err == nil {
				t.Fatal("CommitBatch succeeded, want an error")
			}
			checkGet(t, s, 10, nil)
			checkGet(t, s, 11, nil)
			checkGet(t, s, 1, &first)
			checkRange(t, s, "a", 0, math.MaxUint64, nil)
			checkRange(t, s, "b", 0, math.MaxUint64, []wire.EntryRow{first})
			g, ok, err := s.GlobalHead(ctx(t))
			checkOptU64(t, "GlobalHead", g, ok, err, 1, true)
			checkMeta(t, b, "pos", []byte{1})
			checkMeta(t, b, "new", nil)
		})
	}
}

func (h *harness) testConcurrency(t *testing.T) {
	s := h.open(t)
	const writers, each = 8, 50
	var wg sync.WaitGroup
	errs := make(chan error, writers*each+writers)
	stop := make(chan struct{})
	var readers sync.WaitGroup
	readers.Add(1)
	go func() { // a concurrent reader, for the race detector
		defer readers.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, _, err := s.GlobalHead(ctx(t)); err != nil {
				errs <- fmt.Errorf("GlobalHead: %w", err)
				return
			}
			if _, err := s.Range(ctx(t), "w1", 0, math.MaxUint64); err != nil {
				errs <- fmt.Errorf("Range: %w", err)
				return
			}
		}
	}()
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				n := uint64(i*writers + w + 1) // interleaved seqnos
				if _, err := s.Insert(ctx(t), entry(n, fmt.Sprintf("w%d", w%3))); err != nil {
					errs <- fmt.Errorf("Insert(%d): %w", n, err)
					return
				}
			}
			if w%2 == 0 {
				if _, err := s.WitnessInsert(ctx(t), witness("w", uint64(w), "2026-01-01T00:00:00+00:00")); err != nil {
					errs <- fmt.Errorf("WitnessInsert: %w", err)
				}
				if _, err := s.SegmentInsert(ctx(t), segment(fmt.Sprintf("g%d", w), uint64(w+1), uint64(w+1)), nil); err != nil {
					errs <- fmt.Errorf("SegmentInsert: %w", err)
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	if len(all) > 0 {
		t.Fatalf("%d concurrent operations failed: %s", len(all), errorsText(all))
	}
	g, ok, err := s.GlobalHead(ctx(t))
	checkOptU64(t, "GlobalHead", g, ok, err, writers*each, true)
	total := 0
	for st := range 3 {
		rows, err := s.Range(ctx(t), fmt.Sprintf("w%d", st), 0, math.MaxUint64)
		if err != nil {
			t.Fatalf("Range: %v", err)
		}
		if !slices.IsSortedFunc(rows, func(a, b wire.EntryRow) int { return int(a.Seqno) - int(b.Seqno) }) {
			t.Fatalf("Range(w%d) not ascending: %v", st, seqnos(rows))
		}
		for _, r := range rows {
			want := entry(r.Seqno, r.StreamID)
			if d := diffEntry(want, r); d != "" {
				t.Fatalf("row %d: %s", r.Seqno, d)
			}
			if w := (r.Seqno - 1) % writers; fmt.Sprintf("w%d", w%3) != r.StreamID {
				t.Fatalf("row %d in stream %s, written to w%d", r.Seqno, r.StreamID, w%3)
			}
		}
		total += len(rows)
	}
	if total != writers*each {
		t.Fatalf("found %d rows, want %d", total, writers*each)
	}
	ids := witnessIDs(t, s, "w")
	if !slices.Equal(ids, []int64{1, 2, 3, 4}) {
		t.Fatalf("concurrent witness ids = %v, want [1 2 3 4]", ids)
	}
	var segIDs []uint64
	for w := 0; w < writers; w += 2 {
		segs, err := s.SegmentsList(ctx(t), fmt.Sprintf("g%d", w))
		if err != nil || len(segs) != 1 {
			t.Fatalf("concurrent segments of g%d = %+v, %v; want one", w, segs, err)
		}
		segIDs = append(segIDs, segs[0].SegmentID)
	}
	slices.Sort(segIDs)
	if !slices.Equal(segIDs, []uint64{1, 2, 3, 4}) {
		t.Fatalf("concurrent segment ids = %v, want [1 2 3 4]", segIDs)
	}
}
