package securelog

import (
	"context"
	"sync"

	"github.com/securelog/securelog/pkg/wire"
)

// appendQueue group-commits concurrent single appends over a batchStarter,
// pipelined (pipeline.go): callers queue their events into the group that
// is forming; one caller at a time leads, cutting the oldest waiting group,
// chaining and starting it under the write lock, and then hands the lead
// to the first caller of the next group once the batch before its own is
// durable, so that group forms while this one syncs and is written right
// behind it. The leader then waits for its own batch and wakes every
// caller of its group at once.
//
// It is batch.Group's group commit with two differences the pipeline
// needs: the lead passes on after the batch is started rather than after
// it is durable, and the callers of a group share one wake-up (one close
// of the group's done channel, no per-call channels).
//
// The zero appendQueue is ready to use.
type appendQueue struct {
	mu      sync.Mutex
	waiting []*appendGroup // formed and not yet cut, oldest first
	leading bool           // a caller leads (false: waiting is empty)
}

// appendGroup is one group of single appends: one batch.
type appendGroup struct {
	evs  []Event
	lead chan struct{} // closed when the group's first caller is to lead it
	done chan struct{} // closed when res and err are final
	res  []BatchResult
	err  error
}

// append queues ev, leads when it is its turn, and returns ev's result
// once the batch that holds it is durable (or failed).
func (q *appendQueue) append(l *Log, ev Event) (AppendResult, error) {
	q.mu.Lock()
	var g *appendGroup
	if n := len(q.waiting); n > 0 && len(q.waiting[n-1].evs) < maxGroup {
		g = q.waiting[n-1]
	} else {
		g = &appendGroup{lead: make(chan struct{}), done: make(chan struct{})}
		q.waiting = append(q.waiting, g)
	}
	i := len(g.evs)
	g.evs = append(g.evs, ev)
	lead := !q.leading
	q.leading = true
	q.mu.Unlock()

	if !lead && i == 0 {
		select {
		case <-g.lead:
			lead = true
		case <-g.done:
		}
	}
	if lead {
		q.commit(l) // g is the oldest waiting group: it is cut now
	}
	<-g.done
	if g.err != nil {
		return AppendResult{}, g.err
	}
	return g.res[i].AppendResult, g.res[i].Err
}

// commit cuts the oldest waiting group, starts its batch, hands the lead
// on and delivers the group's results. Only the leader calls it.
func (q *appendQueue) commit(l *Log) {
	q.mu.Lock()
	g := q.waiting[0]
	q.waiting[0] = nil
	q.waiting = q.waiting[1:]
	q.mu.Unlock()
	handedOn := false
	defer func() {
		if p := recover(); p != nil {
			// Every caller of g gets an error and the lead passes on, so
			// no caller waits forever; then the panic goes on.
			g.res, g.err = nil, wire.Storagef(nil, "append panicked: %v", p)
			close(g.done)
			if !handedOn {
				q.handOn()
			}
			panic(p)
		}
	}()

	// The leader commits on behalf of others: their entries must not fail
	// because one caller's context is cancelled, so it runs without one.
	res, f, err := l.startBatch(context.Background(), g.evs, noMeta)
	if f != nil && f.prevDone != nil {
		// The next group starts behind this one only: at most two
		// batches are in flight, and the next group gathers every
		// append that arrives until then.
		<-f.prevDone
	}
	q.handOn()
	handedOn = true

	if err == nil && f != nil {
		err = f.result()
	}
	if err != nil {
		res = nil
	}
	g.res, g.err = res, err
	close(g.done)
}

// handOn passes the lead to the first caller of the oldest waiting group,
// or ends it. Only the leader calls it, once.
func (q *appendQueue) handOn() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.waiting) > 0 {
		close(q.waiting[0].lead)
	} else {
		q.leading = false
	}
}
