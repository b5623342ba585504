package batch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrShortResults is returned for every item of a batch whose commit
// function returned fewer or more results than items.
var ErrShortResults = errors.New("batch: commit returned a result count different from its items")

// Group coalesces concurrent submissions into batches committed by one
// call of its commit function: while one batch commits, arriving items
// queue and form the next (at most Max items each), so N concurrent
// callers share one synced write instead of queueing for N. Batches commit
// one at a time, in submission order. Each item's result is delivered only
// after the commit that holds it returned. With a wait (WithWait), a batch
// is cut when it is full or its oldest item has waited that long, whichever
// comes first (flush on size or age).
//
// Do waits for the result and may itself run the commit on behalf of the
// items queued with it (the first caller leads; leadership then passes to
// the first caller queued meanwhile, so no caller commits for others
// forever). Go does not wait: its callback runs with the result on the
// committing goroutine. The zero Group is not usable; call NewGroup.
type Group[T, R any] struct {
	commit func(items []T) ([]R, error)
	max    int
	limit  int
	wait   time.Duration    // WithWait
	now    func() time.Time // the clock of wait (tests)

	mu      sync.Mutex
	grew    chan struct{} // closed (and cleared) when the queue reaches max, for a waiting leader
	queue   []*call[T, R]
	busy    bool          // a leader is committing or about to
	space   chan struct{} // closed (and replaced) when the queue shrinks
	pending int           // items submitted and not yet delivered
	idle    *sync.Cond    // signalled when pending drops to 0
}

type call[T, R any] struct {
	item    T
	at      time.Time // when submitted (only with a wait)
	res     R
	err     error
	done    chan struct{} // Do: closed when res/err are set
	promote chan struct{} // Do: closed when this caller leads
	then    func(R, error)
}

// NewGroup returns a Group that commits with commit: it gets the items of
// one batch, in submission order, and returns one result per item, or an
// error that fails them all. max bounds the items per commit (≤ 0: all that
// are queued); limit is the queue length at which Go waits for room (≤ 0:
// unbounded), which puts back-pressure on Go's callers.
func NewGroup[T, R any](commit func(items []T) ([]R, error), max, limit int) *Group[T, R] {
	g := &Group[T, R]{commit: commit, max: max, limit: limit, space: make(chan struct{}), now: time.Now}
	g.idle = sync.NewCond(&g.mu)
	return g
}

// WithWait makes the group wait, before it cuts a batch, until the batch
// is full (max items) or its oldest item was submitted d ago: fewer,
// larger commits at the cost of up to d of latency. Items that queued
// while the previous batch committed for longer than d go at once. Call it
// before the first submission; it returns g.
func (g *Group[T, R]) WithWait(d time.Duration) *Group[T, R] {
	g.wait = d
	return g
}

// Queued returns how many items wait for a batch (not counting the batch
// being committed).
func (g *Group[T, R]) Queued() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.queue)
}

// Wait returns once every item submitted so far has been delivered (its
// Do returned or its Go callback ran).
func (g *Group[T, R]) Wait() {
	g.mu.Lock()
	for g.pending > 0 {
		g.idle.Wait()
	}
	g.mu.Unlock()
}

// Do submits item and returns its result once the batch holding it
// committed.
func (g *Group[T, R]) Do(item T) (R, error) {
	c := &call[T, R]{item: item, done: make(chan struct{}), promote: make(chan struct{})}
	g.mu.Lock()
	g.enqueue(c)
	lead := !g.busy
	g.busy = true
	g.mu.Unlock()
	if !lead {
		select {
		case <-c.done:
			return c.res, c.err
		case <-c.promote: // queued first when the previous leader finished
		}
	}
	g.lead() // c is in the batch: a leader is always the head of the queue
	<-c.done
	return c.res, c.err
}

// Go submits item and returns at once (after waiting for room when the
// queue is at its limit); then is called with the result on the goroutine
// that committed it, in submission order within a batch (the next batch
// may already deliver while this one still does).
func (g *Group[T, R]) Go(item T, then func(R, error)) {
	_ = g.GoContext(context.Background(), item, then)
}

// GoContext is Go that stops waiting for room when ctx ends: it then
// returns ctx's error and item is not submitted (then is never called).
func (g *Group[T, R]) GoContext(ctx context.Context, item T, then func(R, error)) error {
	c := &call[T, R]{item: item, then: then}
	g.mu.Lock()
	for g.limit > 0 && len(g.queue) >= g.limit {
		space := g.space
		g.mu.Unlock()
		select {
		case <-space:
		case <-ctx.Done():
			return ctx.Err()
		}
		g.mu.Lock()
	}
	g.enqueue(c)
	lead := !g.busy
	g.busy = true
	g.mu.Unlock()
	if lead {
		go g.lead()
	}
	return nil
}

// enqueue queues c and wakes a waiting leader when the queue is full;
// g.mu is held.
func (g *Group[T, R]) enqueue(c *call[T, R]) {
	if g.wait > 0 {
		c.at = g.now()
	}
	g.queue = append(g.queue, c)
	g.pending++
	if g.grew != nil && g.max > 0 && len(g.queue) >= g.max {
		close(g.grew)
		g.grew = nil
	}
}

// gather waits, with a wait set, until the queue holds max items or its
// oldest item has waited g.wait. Only the leader calls it (the queue is
// not empty).
func (g *Group[T, R]) gather() {
	if g.wait <= 0 {
		return
	}
	var t *time.Timer
	defer func() {
		if t != nil {
			t.Stop()
		}
	}()
	for {
		g.mu.Lock()
		left := g.wait - g.now().Sub(g.queue[0].at)
		if (g.max > 0 && len(g.queue) >= g.max) || left <= 0 {
			g.mu.Unlock()
			return
		}
		if g.grew == nil {
			g.grew = make(chan struct{})
		}
		grew := g.grew
		g.mu.Unlock()
		if t == nil {
			t = time.NewTimer(left)
		} else {
			t.Reset(left)
		}
		select {
		case <-grew:
		case <-t.C:
		}
	}
}

// lead commits one batch from the head of the queue, hands leadership on
// and delivers the results. Only the current leader calls it.
func (g *Group[T, R]) lead() {
	g.gather()
	g.mu.Lock()
	n := len(g.queue)
	if g.max > 0 && n > g.max {
		n = g.max
	}
	batch := g.queue[:n:n]
	g.queue = append([]*call[T, R](nil), g.queue[n:]...)
	close(g.space)
	g.space = make(chan struct{})
	g.mu.Unlock()

	items := make([]T, n)
	for i, c := range batch {
		items[i] = c.item
	}
	res, err, panicked := g.run(items)

	// Hand over before delivering, so the next batch starts committing
	// while this one's callers wake up.
	g.mu.Lock()
	var next *call[T, R]
	if len(g.queue) > 0 {
		next = g.queue[0]
	} else {
		g.busy = false
	}
	g.mu.Unlock()
	if next != nil {
		if next.promote != nil {
			close(next.promote)
		} else {
			go g.lead()
		}
	}
	for i, c := range batch {
		if err != nil {
			c.err = err
		} else {
			c.res = res[i]
		}
		if c.then != nil {
			c.then(c.res, c.err)
		} else {
			close(c.done)
		}
	}
	g.mu.Lock()
	if g.pending -= n; g.pending == 0 {
		g.idle.Broadcast()
	}
	g.mu.Unlock()
	if panicked != nil {
		panic(panicked) // after every item got its error: no caller waits forever
	}
}

// run calls commit and checks the result count. A panic of commit is
// returned (and every item fails) so that lead re-raises it after the
// results are delivered.
func (g *Group[T, R]) run(items []T) (res []R, err error, panicked any) {
	defer func() {
		if p := recover(); p != nil {
			res, err, panicked = nil, fmt.Errorf("batch: commit panicked: %v", p), p
		}
	}()
	res, err = g.commit(items)
	if err == nil && len(res) != len(items) {
		err = fmt.Errorf("%w (%d results for %d items)", ErrShortResults, len(res), len(items))
	}
	return res, err, nil
}
