package batch

import (
	"errors"
	"fmt"
	"sync"
)

// ErrShortResults is returned for every item of a batch whose commit
// function returned fewer or more results than items.
var ErrShortResults = errors.New("batch: commit returned a result count different from its items")

// Group coalesces concurrent submissions into batches committed by one
// call of its commit function: while one batch commits, arriving items
// queue and form the next (at most Max items each), so N concurrent
// callers share one synced write instead of queueing for N. Batches commit
// one at a time, in submission order. Each item's result is delivered only
// after the commit that holds it returned.
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

	mu      sync.Mutex
	queue   []*call[T, R]
	busy    bool          // a leader is committing or about to
	space   chan struct{} // closed (and replaced) when the queue shrinks
	pending int           // items submitted and not yet delivered
	idle    *sync.Cond    // signalled when pending drops to 0
}

type call[T, R any] struct {
	item    T
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
	g := &Group[T, R]{commit: commit, max: max, limit: limit, space: make(chan struct{})}
	g.idle = sync.NewCond(&g.mu)
	return g
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
	g.queue = append(g.queue, c)
	g.pending++
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
	c := &call[T, R]{item: item, then: then}
	g.mu.Lock()
	for g.limit > 0 && len(g.queue) >= g.limit {
		space := g.space
		g.mu.Unlock()
		<-space
		g.mu.Lock()
	}
	g.queue = append(g.queue, c)
	g.pending++
	lead := !g.busy
	g.busy = true
	g.mu.Unlock()
	if lead {
		go g.lead()
	}
}

// lead commits one batch from the head of the queue, hands leadership on
// and delivers the results. Only the current leader calls it.
func (g *Group[T, R]) lead() {
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
