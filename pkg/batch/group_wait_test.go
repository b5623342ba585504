package batch

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"
)

// TestGroupWait: with a wait, a batch is cut when it is full or its oldest
// item has waited long enough, whichever comes first. The waits are an hour
// (or a clock that says an hour passed): nothing here depends on timing.
func TestGroupWait(t *testing.T) {
	tests := []struct {
		name  string
		max   int
		aged  bool // the clock says every queued item waited the whole wait
		items int
		want  [][]int // the batches committed
	}{
		{"a full batch goes without waiting", 4, false, 4, [][]int{{0, 1, 2, 3}}},
		{"a backlog is cut at max, in order", 2, false, 6, [][]int{{0, 1}, {2, 3}, {4, 5}}},
		{"an aged partial batch goes at once", 100, true, 1, [][]int{{0}}},
		{"an aged backlog goes at once, cut at max", 2, true, 5, [][]int{{0, 1}, {2, 3}, {4}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var got [][]int
			g := NewGroup(func(items []int) ([]struct{}, error) {
				mu.Lock()
				got = append(got, append([]int(nil), items...))
				mu.Unlock()
				return make([]struct{}, len(items)), nil
			}, tc.max, 0).WithWait(time.Hour)
			clock := time.Now()
			g.now = func() time.Time { return clock }
			// Hold the leader until every item is queued, so batches do
			// not depend on scheduling.
			g.mu.Lock()
			for i := range tc.items {
				g.enqueue(&call[int, struct{}]{item: i, then: func(struct{}, error) {}})
			}
			g.busy = true
			if tc.aged {
				clock = clock.Add(2 * time.Hour)
			}
			g.mu.Unlock()
			go g.lead()
			g.Wait()
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("batches %v, want %v", got, tc.want)
			}
		})
	}
}

// TestGroupWaitWakesWhenFull: a leader waiting for a partial batch commits
// as soon as a later submission fills it.
func TestGroupWaitWakesWhenFull(t *testing.T) {
	sizes := make(chan int, 4)
	g := NewGroup(func(items []int) ([]struct{}, error) {
		sizes <- len(items)
		return make([]struct{}, len(items)), nil
	}, 3, 0).WithWait(time.Hour)
	var wg sync.WaitGroup
	wg.Add(3)
	done := func(struct{}, error) { wg.Done() }
	g.Go(0, done)
	g.Go(1, done)
	waitQueued(t, g.Queued, 2) // the leader holds them: the batch is not full
	g.Go(2, done)
	wg.Wait()
	if n := <-sizes; n != 3 {
		t.Fatalf("first batch of %d items, want 3", n)
	}
}

// TestGroupGoContext: GoContext gives up waiting for room when its context
// ends, and the item is never committed.
func TestGroupGoContext(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	var committed []int
	g := NewGroup(func(items []int) ([]struct{}, error) {
		<-release
		mu.Lock()
		committed = append(committed, items...)
		mu.Unlock()
		return make([]struct{}, len(items)), nil
	}, 1, 1)
	nop := func(struct{}, error) {}
	if err := g.GoContext(context.Background(), 0, nop); err != nil {
		t.Fatal(err)
	}
	waitQueued(t, g.Queued, 0) // 0 is committing
	// 1 is queued: the queue is at its limit.
	if err := g.GoContext(context.Background(), 1, nop); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	res := make(chan error)
	go func() {
		res <- g.GoContext(ctx, 2, func(struct{}, error) { t.Error("then called for an item that was not submitted") })
	}()
	cancel()
	if err := <-res; !errors.Is(err, context.Canceled) {
		t.Fatalf("GoContext = %v, want context.Canceled", err)
	}
	close(release)
	g.Wait()
	if !reflect.DeepEqual(committed, []int{0, 1}) {
		t.Fatalf("committed %v, want [0 1]", committed)
	}
}

// waitQueued waits (bounded) until queued reports n.
func waitQueued(t *testing.T, queued func() int, n int) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); queued() != n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d items queued, want %d", queued(), n)
		}
	}
}
