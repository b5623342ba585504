package securelog

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/wire"
)

// Pipelined commits. Over a store that can start a batch's synced commit
// and wait for it separately (batchStarter: pebblestore), an append holds
// the write lock only while it chains, hashes and encodes its batch and
// starts the commit; the sync is waited for outside the lock. The next
// batch (the group commit's next group) is prepared while the previous one
// syncs and is written right behind it, so its sync follows at once
// instead of after the whole previous commit. Order and crash safety stay
// exact:
//
//   - Batches are started under the write lock, so seqnos are dense and
//     every entry's prev hash is the hash of the entry before it, as in a
//     serial writer; the store makes a started batch visible to the next
//     one (batchStarter).
//   - The store never makes a batch durable without the batches started
//     before it (one write-ahead log, synced in order).
//   - A batch is reported durable only when its own sync and every earlier
//     batch's succeeded (flight.result): nothing later than a failed batch
//     is acknowledged.
//   - The write caches (global head, streams' newest hashes) run ahead of
//     durability while batches are in flight; a failed batch drops them
//     (settle), so nothing built on it stays in memory: batches started
//     on it before its failure was known fail with it. The streams' tail
//     anchors (tail.go) only learn entries once they are durable.
//   - Writers other than appends (segment close, stream changes) take the
//     write lock with nothing in flight (lockIdle), so they see the store
//     as a serial writer left it.

// batchStarter is a store.Batcher that can start a batch's synced commit
// without waiting for it (pebblestore.Store implements it). StartBatch
// must guarantee: when it returns, the batch's records are visible to
// reads; a batch is never durable without every batch whose StartBatch
// returned before its own; after a failed write or sync every later
// batch's wait fails too; an error from StartBatch means nothing was
// written. wait returns nil once the batch is durable and must be called
// exactly once.
type batchStarter interface {
	StartBatch(ctx context.Context, b store.Batch) (wait func() error, err error)
}

// pipelineDepth bounds the batches in flight: a batch is started only
// while fewer than this many earlier ones are waiting for their sync.
// Two overlap one batch's preparation with the previous one's sync; more
// would split the waiting appends into smaller groups, each with its
// own records and sync, without syncing sooner.
const pipelineDepth = 2

// flight is a batch whose synced commit was started and whose outcome may
// not be known yet.
type flight struct {
	prev *flight // the batch started before this one (nil once this one finished)
	// prevDone is closed when the batch started before this one finished
	// (nil: there was none in flight).
	prevDone <-chan struct{}
	wait     func() error // the store's wait for this batch's sync
	what     string       // "commit batch of n entries (seqnos a..b)", for errors
	rows     []wire.EntryRow

	claimed atomic.Bool   // result's first caller completes the flight
	done    chan struct{} // closed when err is set
	err     error
}

func newFlight(prev *flight, wait func() error, rows []wire.EntryRow) *flight {
	what := fmt.Sprintf("commit batch of %d entries", len(rows))
	if len(rows) > 0 {
		what += fmt.Sprintf(" (seqnos %d..%d)", rows[0].Seqno, rows[len(rows)-1].Seqno)
	}
	f := &flight{prev: prev, wait: wait, what: what, rows: rows, done: make(chan struct{})}
	if prev != nil {
		f.prevDone = prev.done
	}
	return f
}

// result waits until the batch is durable and returns nil, or returns why
// it is not: its own sync failed, or an earlier batch failed (this one was
// built on it). Any goroutine may call it, any number of times; the first
// caller does the waiting, the others wait for its close of done (one
// wake-up for all of a group's callers, not a hand-off from one to the
// next).
func (f *flight) result() error {
	if f.claimed.CompareAndSwap(false, true) {
		f.complete()
	} else {
		<-f.done
	}
	return f.err
}

// complete waits for the earlier batches and this one's sync and records
// the outcome. Only result's first caller runs it.
func (f *flight) complete() {
	var before error
	if f.prev != nil {
		before = f.prev.result()
		f.prev = nil // the chain ends at the oldest unfinished batch
	}
	err := f.wait() // always: the store releases the batch
	switch {
	case before != nil:
		f.err = wire.Storagef(before, "%s: an earlier batch failed", f.what)
	case err != nil:
		f.err = storageErr(err, "%s", f.what)
	}
	close(f.done)
}

// finished reports whether the outcome is known (result returns at once).
func (f *flight) finished() bool {
	select {
	case <-f.done:
		return true
	default:
		return false
	}
}

// settle applies the outcomes of the finished batches in flight, oldest
// first, up to the first unfinished one: a durable batch's entries become
// its streams' tail anchors; a failed one drops the write caches, which
// ran ahead of it. The caller holds l.mu.
func (l *Log) settle() {
	n := 0
	for _, f := range l.flights {
		if !f.finished() {
			break
		}
		n++
		if f.err != nil {
			l.invalidate()
			continue
		}
		for _, r := range f.rows {
			l.anchors.put(r.StreamID, tailAnchor{seqno: r.Seqno, hash: r.EntryHash})
		}
	}
	clear(l.flights[:n])
	l.flights = append(l.flights[:0], l.flights[n:]...)
}

// lockIdle takes the write lock with no batch in flight: every started
// batch is durable or failed and settled. Writers other than appends take
// the lock this way.
func (l *Log) lockIdle() {
	l.mu.Lock()
	l.drain()
}

// drain waits for every batch in flight and settles them. The caller
// holds l.mu (waiting needs no lock).
func (l *Log) drain() {
	for _, f := range l.flights {
		_ = f.result()
	}
	l.settle()
}

// idleLocker is the write lock taken with no batch in flight (lockIdle),
// as a sync.Locker for the Reader.
type idleLocker struct{ l *Log }

func (i idleLocker) Lock()   { i.l.lockIdle() }
func (i idleLocker) Unlock() { i.l.mu.Unlock() }

// makeRoom settles the finished batches and waits, while pipelineDepth
// batches are in flight, for the oldest: called before a batch is built,
// so it builds on the caches as the settled outcomes left them. The
// caller holds l.mu.
func (l *Log) makeRoom() {
	l.settle()
	for len(l.flights) >= pipelineDepth {
		_ = l.flights[0].result()
		l.settle()
	}
}

// start starts the commit of rows and meta through the store's
// batchStarter, behind the batches in flight (makeRoom ran before rows
// were built). The caller holds l.mu.
func (l *Log) start(ctx context.Context, bs batchStarter, rows []wire.EntryRow, meta map[string][]byte) (*flight, error) {
	wait, err := bs.StartBatch(ctx, store.Batch{Entries: rows, Meta: meta})
	if err != nil {
		return nil, storageErr(err, "commit batch of %d entries", len(rows))
	}
	var prev *flight
	if n := len(l.flights); n > 0 {
		prev = l.flights[n-1]
	}
	f := newFlight(prev, wait, rows)
	l.flights = append(l.flights, f)
	return f, nil
}
