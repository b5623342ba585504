package batch_test

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/securelog/securelog/pkg/batch"
)

// recorder is a commit function that checks batches never overlap and
// records their sizes.
type recorder struct {
	mu      sync.Mutex
	active  atomic.Int32
	sizes   []int
	fail    func(items []int) error
	short   bool
	overlap atomic.Bool
}

func (r *recorder) commit(items []int) ([]string, error) {
	if r.active.Add(1) != 1 {
		r.overlap.Store(true)
	}
	defer r.active.Add(-1)
	time.Sleep(200 * time.Microsecond) // a synced write
	r.mu.Lock()
	r.sizes = append(r.sizes, len(items))
	r.mu.Unlock()
	if r.fail != nil {
		if err := r.fail(items); err != nil {
			return nil, err
		}
	}
	out := make([]string, len(items))
	for i, v := range items {
		out[i] = fmt.Sprint(v)
	}
	if r.short {
		out = out[1:]
	}
	return out, nil
}

func TestGroupDo(t *testing.T) {
	errDisk := errors.New("disk full")
	tests := []struct {
		name     string
		callers  int
		max      int
		fail     func(items []int) error
		short    bool
		wantErr  error
		maxBatch int // largest batch allowed (0: callers)
	}{
		{"one caller", 1, 0, nil, false, nil, 1},
		{"many callers share commits", 64, 0, nil, false, nil, 0},
		{"max bounds batches", 64, 5, nil, false, nil, 5},
		{"commit error fails every item", 16, 0, func([]int) error { return errDisk }, false, errDisk, 0},
		{"short results fail every item", 16, 0, nil, true, batch.ErrShortResults, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &recorder{fail: tt.fail, short: tt.short}
			g := batch.NewGroup(r.commit, tt.max, 0)
			var wg sync.WaitGroup
			errs := make([]error, tt.callers)
			for i := range tt.callers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for j := range 10 {
						v := i*100 + j
						got, err := g.Do(v)
						if err != nil {
							errs[i] = err
							return
						}
						if got != fmt.Sprint(v) {
							errs[i] = fmt.Errorf("Do(%d) = %q: another item's result", v, got)
							return
						}
					}
				}()
			}
			wg.Wait()
			for _, err := range errs {
				if tt.wantErr == nil && err != nil {
					t.Fatal(err)
				}
				if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
			}
			if r.overlap.Load() {
				t.Fatal("two commits ran at once")
			}
			limit := tt.maxBatch
			if limit == 0 {
				limit = tt.callers
			}
			total, largest := 0, 0
			for _, n := range r.sizes {
				total += n
				largest = max(largest, n)
			}
			if largest > limit {
				t.Fatalf("a batch of %d items, want at most %d", largest, limit)
			}
			if tt.wantErr == nil && total != tt.callers*10 {
				t.Fatalf("committed %d items, want %d", total, tt.callers*10)
			}
			if tt.callers >= 64 && tt.max == 0 && len(r.sizes) >= total {
				t.Fatalf("%d commits for %d items: nothing was grouped", len(r.sizes), total)
			}
		})
	}
}

func TestGroupGo(t *testing.T) {
	r := &recorder{}
	g := batch.NewGroup(r.commit, 8, 16)
	const n = 500
	var mu sync.Mutex
	var order []int
	var wg sync.WaitGroup
	wg.Add(n)
	for i := range n {
		g.Go(i, func(s string, err error) {
			defer wg.Done()
			if err != nil || s != fmt.Sprint(i) {
				t.Errorf("item %d: %q %v", i, s, err)
			}
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
		})
	}
	g.Wait()
	mu.Lock()
	delivered := len(order)
	mu.Unlock()
	if delivered != n {
		t.Fatalf("Wait returned after %d of %d results were delivered", delivered, n)
	}
	wg.Wait()
	seen := map[int]bool{}
	for _, v := range order {
		if seen[v] {
			t.Fatalf("result %d delivered twice", v)
		}
		seen[v] = true
	}
	if len(seen) != n {
		t.Fatalf("%d results delivered, want %d", len(seen), n)
	}
	if r.overlap.Load() {
		t.Fatal("two commits ran at once")
	}
}

// TestGroupGoLimit: Go waits while the queue is at its limit.
func TestGroupGoLimit(t *testing.T) {
	release := make(chan struct{})
	g := batch.NewGroup(func(items []int) ([]int, error) {
		<-release
		return items, nil
	}, 1, 2)
	var wg sync.WaitGroup
	wg.Add(4)
	for i := range 3 { // one committing, two queued: at the limit
		g.Go(i, func(int, error) { wg.Done() })
	}
	returned := make(chan struct{})
	go func() {
		g.Go(3, func(int, error) { wg.Done() })
		close(returned)
	}()
	select {
	case <-returned:
		t.Fatal("Go returned although the queue was at its limit")
	case <-time.After(20 * time.Millisecond):
	}
	close(release)
	<-returned
	wg.Wait()
}

// TestGroupPanic: a panicking commit fails every item of its batch, so no
// caller waits forever, and the panic reaches the leader.
func TestGroupPanic(t *testing.T) {
	release := make(chan struct{})
	g := batch.NewGroup(func(items []int) ([]int, error) {
		if items[0] == 0 {
			<-release
			return items, nil
		}
		panic("boom")
	}, 0, 0)
	first := make(chan struct{})
	go func() {
		defer close(first)
		_, _ = g.Do(0)
	}()
	time.Sleep(10 * time.Millisecond) // item 0 is committing
	leader := make(chan any, 1)
	go func() {
		defer func() { leader <- recover() }()
		_, _ = g.Do(1)
	}()
	time.Sleep(10 * time.Millisecond) // item 1 is queued first
	other := make(chan error, 1)
	go func() {
		_, err := g.Do(2)
		other <- err
	}()
	time.Sleep(10 * time.Millisecond)
	close(release)
	<-first
	if p := <-leader; p == nil {
		t.Error("the leader did not see the panic")
	}
	if err := <-other; err == nil {
		t.Fatal("the other item of the panicking batch got no error")
	}
}
