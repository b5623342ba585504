package securelog

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"

	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/store/memory"
	"github.com/securelog/securelog/pkg/store/pebblestore"
	"github.com/securelog/securelog/pkg/wire"
)

// pebblestore's StartBatch is what pipelines the log's commits.
var _ batchStarter = (*pebblestore.Store)(nil)

// gateStore is a batchStarter whose syncs the test releases one by one.
// A started batch is applied to the memory store when its sync is
// released with success, so a failed batch is lost as if its log write
// never reached the disk; every batch started after a failed one is lost
// too (a write-ahead log), but its wait still reports success when
// reportLater is set: only the Log's own chaining then keeps it from
// being acknowledged.
type gateStore struct {
	*memory.Store
	reportLater bool
	panicNext   bool // StartBatch panics once

	mu       sync.Mutex
	started  chan *gated // every StartBatch, in order
	failed   bool        // a batch failed: later ones are lost
	inFlight int
}

type gated struct {
	b       store.Batch
	release chan error
}

func newGateStore(t *testing.T) (*gateStore, *Log) {
	t.Helper()
	g := &gateStore{Store: memory.New(), started: make(chan *gated, 64)}
	l := New(g, Options{SessionID: "s", BootID: "b"})
	if err := l.Open(context.Background(), "test"); err != nil {
		t.Fatal(err)
	}
	return g, l
}

func (g *gateStore) StartBatch(_ context.Context, b store.Batch) (func() error, error) {
	gb := &gated{b: b, release: make(chan error, 1)}
	g.mu.Lock()
	if g.panicNext {
		g.panicNext = false
		g.mu.Unlock()
		panic("store exploded")
	}
	g.inFlight++
	g.mu.Unlock()
	g.started <- gb
	return func() error {
		err := <-gb.release
		g.mu.Lock()
		defer g.mu.Unlock()
		g.inFlight--
		switch {
		case err != nil:
			g.failed = true
			return err
		case g.failed && g.reportLater:
			return nil // lost, but reported durable
		case g.failed:
			return errors.New("write-ahead log failed earlier")
		}
		return g.Store.CommitBatch(context.Background(), b)
	}, nil
}

// StreamDeprecate refuses to run with a batch in flight: writers other
// than appends must wait for the pipeline to drain (lockIdle).
func (g *gateStore) StreamDeprecate(ctx context.Context, name, at string) error {
	g.mu.Lock()
	n := g.inFlight
	g.mu.Unlock()
	if n > 0 {
		return fmt.Errorf("deprecate with %d batches in flight", n)
	}
	return g.Store.StreamDeprecate(ctx, name, at)
}

// appendAsync appends one event on its own goroutine.
func appendAsync(l *Log, stream string, i int) <-chan error {
	done := make(chan error, 1)
	go func() {
		_, err := l.Append(context.Background(), stream, "ev", wire.Info, "p", []byte{byte(i)})
		done <- err
	}()
	return done
}

// The next batch is built and started while the previous one syncs, and
// no caller learns that its entry is durable before every earlier batch
// is.
func TestPipelineStartsNextBatchDuringSync(t *testing.T) {
	g, l := newGateStore(t)
	ctx := context.Background()
	a := appendAsync(l, "s", 1)
	ga := <-g.started // a's sync is in flight
	b := appendAsync(l, "s", 2)
	gb := <-g.started // b started before a is durable
	if ga.b.Entries[0].Seqno != 1 || gb.b.Entries[0].Seqno != 2 {
		t.Fatalf("seqnos %d, %d; want 1, 2", ga.b.Entries[0].Seqno, gb.b.Entries[0].Seqno)
	}
	if !bytesEqual(gb.b.Entries[0].PrevEntryHash, ga.b.Entries[0].EntryHash) {
		t.Fatal("the second batch does not chain onto the first")
	}
	gb.release <- nil // b's own sync is done, a's is not
	select {
	case err := <-b:
		t.Fatalf("b acknowledged (err %v) before a was durable", err)
	default:
	}
	ga.release <- nil
	for _, c := range []<-chan error{a, b} {
		if err := <-c; err != nil {
			t.Fatal(err)
		}
	}
	if err := l.VerifyChain(ctx, "s", 1, 2); err != nil {
		t.Fatal(err)
	}
}

// A failed sync fails its batch and every batch built on it, even one
// whose own sync succeeded, and the log forgets what it built on them:
// the next append continues from what is durable.
func TestPipelineFailedSyncFailsLaterBatches(t *testing.T) {
	g, l := newGateStore(t)
	g.reportLater = true
	ctx := context.Background()
	first := appendAsync(l, "s", 0)
	(<-g.started).release <- nil
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	a := appendAsync(l, "s", 1)
	ga := <-g.started
	b := appendAsync(l, "s", 2)
	gb := <-g.started
	gb.release <- nil
	ga.release <- errors.New("fsync: input/output error")
	for name, c := range map[string]<-chan error{"a": a, "b": b} {
		var se *wire.StorageError
		if err := <-c; !errors.As(err, &se) {
			t.Fatalf("%s: %v, want a storage error", name, err)
		}
	}
	g.mu.Lock()
	g.failed = false // the disk is back
	g.mu.Unlock()
	c := appendAsync(l, "s", 3)
	gc := <-g.started
	if got := gc.b.Entries[0]; got.Seqno != 2 {
		t.Fatalf("after the failure the next entry has seqno %d, want 2 (seqno 1's batch failed)", got.Seqno)
	}
	gc.release <- nil
	if err := <-c; err != nil {
		t.Fatal(err)
	}
	if err := l.VerifyChain(ctx, "s", 1, 2); err != nil {
		t.Fatal(err)
	}
	if h, _, _ := g.GlobalHead(ctx); h != 2 {
		t.Fatalf("global head %d, want 2", h)
	}
}

// Writers other than appends wait until no batch is in flight.
func TestPipelineOtherWritersWaitForSyncs(t *testing.T) {
	g, l := newGateStore(t)
	ctx := context.Background()
	a := appendAsync(l, "s", 1)
	ga := <-g.started
	dep := make(chan error, 1)
	go func() { dep <- l.DeprecateStream(ctx, "s") }()
	for range 100 {
		runtime.Gosched() // a deprecation that does not wait would run now
	}
	ga.release <- nil
	if err := <-a; err != nil {
		t.Fatal(err)
	}
	if err := <-dep; err != nil {
		t.Fatal(err)
	}
}

// A leader whose commit panics passes the panic to its own caller and
// the lead on: later appends still commit.
func TestPipelineLeaderPanicPassesLeadOn(t *testing.T) {
	g, l := newGateStore(t)
	g.panicNext = true
	panicked := make(chan any, 1)
	go func() {
		defer func() { panicked <- recover() }()
		_, _ = l.Append(context.Background(), "s", "ev", wire.Info, "p", nil)
	}()
	if p := <-panicked; p == nil {
		t.Fatal("the leader's append did not panic")
	}
	b := appendAsync(l, "s", 2)
	(<-g.started).release <- nil
	if err := <-b; err != nil {
		t.Fatal(err)
	}
}
