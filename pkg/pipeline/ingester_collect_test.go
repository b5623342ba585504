package pipeline

import (
	"context"
	"errors"
	"testing"
	"time"
)

// fill puts items with stream sequences from..to into fb, taken at "at".
func fill(fb *feedBuf, from, to uint64, at time.Time) {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	if len(fb.items) == 0 {
		fb.first = at
	}
	for s := from; s <= to; s++ {
		fb.items = append(fb.items, inItem{seq: s, ev: -1})
	}
	fb.poke()
}

func seqs(items []inItem) []uint64 {
	out := make([]uint64, len(items))
	for i, it := range items {
		out[i] = it.seq
	}
	return out
}

func wantSeqs(t *testing.T, got []inItem, from, to uint64) {
	t.Helper()
	if len(got) != int(to-from+1) {
		t.Fatalf("batch %v, want %d..%d", seqs(got), from, to)
	}
	for i, it := range got {
		if it.seq != from+uint64(i) {
			t.Fatalf("batch %v, want %d..%d", seqs(got), from, to)
		}
	}
}

func TestCollect(t *testing.T) {
	ctx := context.Background()
	in := &Ingester{cfg: IngesterConfig{MaxBatch: 4, BatchWait: time.Hour}}
	old := time.Now().Add(-2 * time.Hour) // taken longer than BatchWait ago

	t.Run("backlog is cut at MaxBatch and taken without waiting, in order", func(t *testing.T) {
		fb := &feedBuf{signal: make(chan struct{}, 1)}
		fill(fb, 1, 10, old)
		for _, want := range [][2]uint64{{1, 4}, {5, 8}, {9, 10}} {
			got, err := in.collect(ctx, fb)
			if err != nil {
				t.Fatal(err)
			}
			wantSeqs(t, got, want[0], want[1])
		}
	})

	t.Run("a full batch does not wait", func(t *testing.T) {
		fb := &feedBuf{signal: make(chan struct{}, 1)}
		fill(fb, 1, 4, time.Now())
		got, err := in.collect(ctx, fb)
		if err != nil {
			t.Fatal(err)
		}
		wantSeqs(t, got, 1, 4)
	})

	t.Run("a partial batch waits for more until BatchWait", func(t *testing.T) {
		short := &Ingester{cfg: IngesterConfig{MaxBatch: 100, BatchWait: 50 * time.Millisecond}}
		fb := &feedBuf{signal: make(chan struct{}, 1)}
		fill(fb, 1, 2, time.Now())
		done := make(chan []inItem)
		go func() {
			got, err := short.collect(ctx, fb)
			if err != nil {
				t.Error(err)
			}
			done <- got
		}()
		fill(fb, 3, 5, time.Now())
		got := <-done
		if len(got) < 2 || len(got) > 5 {
			t.Fatalf("batch %v", seqs(got))
		}
		wantSeqs(t, got, 1, uint64(len(got)))
	})

	t.Run("the feeder's error ends the batch", func(t *testing.T) {
		fb := &feedBuf{signal: make(chan struct{}, 1)}
		fill(fb, 1, 2, time.Now())
		boom := errors.New("boom")
		fb.mu.Lock()
		fb.err = boom
		fb.mu.Unlock()
		if _, err := in.collect(ctx, fb); !errors.Is(err, boom) {
			t.Fatalf("err %v, want %v", err, boom)
		}
	})

	t.Run("cancellation while empty", func(t *testing.T) {
		fb := &feedBuf{signal: make(chan struct{}, 1)}
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := in.collect(cctx, fb); !errors.Is(err, context.Canceled) {
			t.Fatalf("err %v, want context.Canceled", err)
		}
	})
}

func TestFeedBufPush(t *testing.T) {
	never := make(chan struct{})
	t.Run("a sequence taken by one path is skipped by the other", func(t *testing.T) {
		fb := newFeedBuf(10, 0, 4)
		for _, s := range []uint64{9, 10, 11, 12, 11, 12, 13} {
			if !fb.push(inItem{seq: s, ev: -1}, never) {
				t.Fatal("push refused")
			}
		}
		wantSeqs(t, fb.items, 11, 13)
		if fb.fromConsumer(12) || !fb.fromConsumer(14) {
			t.Fatal("fromConsumer: want false for a taken sequence, true for a new one")
		}
	})
	t.Run("a full feed waits for collect", func(t *testing.T) {
		in := &Ingester{cfg: IngesterConfig{MaxBatch: 2, BatchWait: time.Hour}}
		fb := newFeedBuf(0, 2, 2)
		fb.push(inItem{seq: 1, ev: -1}, never)
		fb.push(inItem{seq: 2, ev: -1}, never)
		pushed := make(chan bool)
		go func() { pushed <- fb.push(inItem{seq: 3, ev: -1}, never) }()
		select {
		case <-pushed:
			t.Fatal("push into a full feed returned before collect took a batch")
		case <-time.After(50 * time.Millisecond):
		}
		got, err := in.collect(context.Background(), fb)
		if err != nil {
			t.Fatal(err)
		}
		wantSeqs(t, got, 1, 2)
		if !<-pushed {
			t.Fatal("push refused")
		}
		stop := make(chan struct{})
		close(stop)
		fb.push(inItem{seq: 4, ev: -1}, never)
		if fb.push(inItem{seq: 5, ev: -1}, stop) {
			t.Fatal("push into a full feed after stop: want false")
		}
	})
}
