package pipeline

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	dto "github.com/prometheus/client_model/go"
)

// committer records the batches a feed commits; gate, if set, holds each
// commit until it receives.
type committer struct {
	mu      sync.Mutex
	batches [][]uint64
	gate    chan struct{}
	fail    error
}

func (c *committer) commit(items []inItem) error {
	if c.gate != nil {
		<-c.gate
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.batches = append(c.batches, seqs(items))
	return c.fail
}

func (c *committer) all() (out []uint64, largest int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, b := range c.batches {
		out = append(out, b...)
		largest = max(largest, len(b))
	}
	return out, largest
}

// waitCommitted waits (bounded) until c committed n sequences.
func (c *committer) waitCommitted(t *testing.T, n int) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if got, _ := c.all(); len(got) >= n {
			return
		}
	}
	got, _ := c.all()
	t.Fatalf("committed %v, want %d sequences", got, n)
}

func seqs(items []inItem) []uint64 {
	out := make([]uint64, len(items))
	for i, it := range items {
		out[i] = it.seq
	}
	return out
}

func span(from, to uint64) []uint64 {
	var out []uint64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

// TestFeed: the consume path's feed (batch.Group) commits each stream
// sequence once, in order, in batches of at most MaxBatch; a full feed
// holds its takers back; an error stops it for good.
func TestFeed(t *testing.T) {
	ctx := context.Background()
	t.Run("a sequence taken by one path is skipped by the other", func(t *testing.T) {
		c := &committer{}
		f := newFeed(10, 4, time.Millisecond, c.commit)
		for _, s := range []uint64{9, 10, 11, 12, 11, 12, 13} {
			if !f.push(ctx, inItem{seq: s, ev: -1}) {
				t.Fatal("push refused")
			}
		}
		if f.fromConsumer(12) || !f.fromConsumer(14) {
			t.Fatal("fromConsumer: want false for a taken sequence, true for a new one")
		}
		c.waitCommitted(t, 3)
		f.stop()
		if got, _ := c.all(); !slices.Equal(got, span(11, 13)) {
			t.Fatalf("committed %v, want 11..13", got)
		}
	})

	t.Run("a backlog commits in order, cut at MaxBatch", func(t *testing.T) {
		c := &committer{gate: make(chan struct{})}
		f := newFeed(0, 4, time.Millisecond, c.commit)
		for s := uint64(1); s <= 13; s++ { // within feedLimit(4) = 16 (plus the batch committing)
			if !f.push(ctx, inItem{seq: s, ev: -1}) {
				t.Fatal("push refused")
			}
		}
		close(c.gate)
		c.waitCommitted(t, 13)
		f.stop()
		got, largest := c.all()
		if !slices.Equal(got, span(1, 13)) || largest > 4 {
			t.Fatalf("committed %v in batches of up to %d, want 1..13 in batches of at most 4", got, largest)
		}
	})

	t.Run("a full feed holds its takers until there is room", func(t *testing.T) {
		c := &committer{gate: make(chan struct{})}
		f := newFeed(0, 1, time.Millisecond, c.commit) // feedLimit(1) = 4 queued
		if !f.push(ctx, inItem{seq: 1, ev: -1}) {
			t.Fatal("push refused")
		}
		for deadline := time.Now().Add(30 * time.Second); f.g.Queued() != 0; time.Sleep(time.Millisecond) { // 1 is committing (held at the gate)
			if time.Now().After(deadline) {
				t.Fatal("the first item was never taken for a commit")
			}
		}
		for s := uint64(2); s <= 5; s++ {
			if !f.push(ctx, inItem{seq: s, ev: -1}) {
				t.Fatal("push refused")
			}
		}
		if starved, _ := f.starved(0); starved {
			t.Fatal("a full feed reported starved: the catch-up reader would read while nothing can be queued")
		}
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if f.push(cctx, inItem{seq: 6, ev: -1}) {
			t.Fatal("push into a full feed with an ended context: want false")
		}
		pushed := make(chan bool)
		go func() { pushed <- f.push(ctx, inItem{seq: 6, ev: -1}) }()
		close(c.gate)
		if !<-pushed {
			t.Fatal("push refused after room was made")
		}
		c.waitCommitted(t, 6)
		f.stop()
		if got, _ := c.all(); !slices.Equal(got, span(1, 6)) {
			t.Fatalf("committed %v, want 1..6", got)
		}
	})

	t.Run("a failed commit stops the feed; later batches commit nothing", func(t *testing.T) {
		boom := errors.New("boom")
		c := &committer{gate: make(chan struct{}), fail: boom}
		f := newFeed(0, 2, time.Millisecond, c.commit)
		for s := uint64(1); s <= 5; s++ {
			f.push(ctx, inItem{seq: s, ev: -1})
		}
		close(c.gate)
		<-f.failed
		if !errors.Is(f.err, boom) {
			t.Fatalf("feed error %v, want %v", f.err, boom)
		}
		f.stop()
		if c.mu.Lock(); len(c.batches) != 1 {
			t.Errorf("%d batches committed after the first failed, want none", len(c.batches)-1)
		}
		c.mu.Unlock()
	})

	t.Run("a taker's error stops the feed", func(t *testing.T) {
		c := &committer{}
		f := newFeed(0, 2, time.Millisecond, c.commit)
		f.fail(errConsumerGap)
		f.fail(errors.New("later"))
		<-f.failed
		if !errors.Is(f.err, errConsumerGap) {
			t.Fatalf("feed error %v, want the first one", f.err)
		}
		f.push(ctx, inItem{seq: 1, ev: -1})
		f.stop()
		if got, _ := c.all(); len(got) != 0 {
			t.Fatalf("committed %v after the feed failed", got)
		}
	})
}

// TestCatchUpStopsOnlyWhenTheConsumerCaughtUp: after a burst the catch-up
// reader has taken far more than the consumer delivered; the consumer then
// replays what was already taken (skipped, nothing new). That replay is no
// reason to stop reading directly: the last events of a 100,000-event
// burst waited seconds for it (TestBurstNoStall saw gaps of 1.6 and 5 s
// after 99,984 and 99,990 events). The consumer counts as resumed once it
// delivered something within a catch-up window of what was taken.
func TestCatchUpStopsOnlyWhenTheConsumerCaughtUp(t *testing.T) {
	ctx := context.Background()
	c := &committer{}
	f := newFeed(0, 1000, time.Millisecond, c.commit)
	defer f.stop()
	const taken = 5 * catchUpWindow
	for s := uint64(1); s <= taken; s++ { // the catch-up reader's takes
		if !f.push(ctx, inItem{seq: s, ev: -1}) {
			t.Fatal("push refused")
		}
	}
	since := time.Now()
	time.Sleep(time.Millisecond) // consumerAt strictly after since
	if f.fromConsumer(3) {
		t.Fatal("sequence 3 was taken already")
	}
	if resumed, next := f.consumerSince(since); resumed || next != taken+1 {
		t.Fatalf("consumer replaying sequence 3 of %d taken: resumed %v (next %d), want false (next %d)", taken, resumed, next, taken+1)
	}
	if f.fromConsumer(taken - catchUpWindow + 1) {
		t.Fatal("taken already")
	}
	if resumed, _ := f.consumerSince(since); !resumed {
		t.Fatalf("consumer within a window of the %d taken: not resumed", taken)
	}
}

// TestConsumerNotHeldByAFullFeed: while a taker waits for room in a full
// feed (holding the feed's lock), the consumer's deliveries of sequences
// already taken are still noted at once. They waited for that lock, and a
// consumer replaying a burst the catch-up reader had taken fell behind
// until its subscription dropped messages (TestBurstNoStall: a re-position
// and a 3.2 s gap in the commits).
func TestConsumerNotHeldByAFullFeed(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := &committer{gate: make(chan struct{})}
	f := newFeed(0, 2, time.Millisecond, c.commit)
	pushed := make(chan struct{})
	go func() { // the catch-up reader: far more than the feed holds
		defer close(pushed)
		for s := uint64(1); s <= 100; s++ {
			if !f.push(ctx, inItem{seq: s, ev: -1}) {
				return
			}
		}
	}()
	for deadline := time.Now().Add(30 * time.Second); f.g.Queued() < feedLimit(2); time.Sleep(time.Millisecond) { // then the taker waits for room
		if time.Now().After(deadline) {
			t.Fatal("the feed never filled")
		}
	}
	noted := make(chan bool, 1)
	go func() { noted <- f.fromConsumer(1) }()
	select {
	case isNew := <-noted:
		if isNew {
			t.Fatal("sequence 1 was taken already")
		}
	case <-time.After(10 * time.Second): // a deadlock detector, not a timing
		t.Fatal("the consumer's delivery waited for the full feed")
	}
	cancel()
	close(c.gate)
	<-pushed
	f.stop()
}

// TestCatchUpNotForAFreshMessage: the catch-up reader is for a consumer
// that leaves stored messages undelivered for catchUpAfter (a broker busy
// storing a burst). An idle ingester's probe that finds the first message
// of a new load, stored a moment ago and on its way from the consumer,
// started it anyway: the load's messages were then read one request each
// (179 µs of CPU per event against 75 in a relaxed 100,000-event run, and
// the consumer re-delivering what was taken). A message younger than
// catchUpAfter is the consumer's; an older one still starts the catch-up.
func TestCatchUpNotForAFreshMessage(t *testing.T) {
	for _, tc := range []struct {
		name  string
		after time.Duration
		want  bool // the catch-up reader takes the message
	}{
		{"fresh message: left to the consumer", time.Hour, false},
		{"message older than catchUpAfter: read", 300 * time.Millisecond, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nc := startNATS(t)
			ensureStreams(t, nc)
			js, err := jetstream.New(nc)
			if err != nil {
				t.Fatal(err)
			}
			st := memStore(t)
			in, err := NewIngester(IngesterConfig{Log: openLog(t, st), Conn: nc, Logger: quiet()})
			if err != nil {
				t.Fatal(err)
			}
			c := &committer{}
			f := newFeed(0, 100, time.Millisecond, c.commit)
			defer f.stop()
			f.after = tc.after
			// An ingester idle for a day: neither path delivered anything.
			idle := time.Now().Add(-24 * time.Hour)
			f.mu.Lock()
			f.lastAt = idle
			f.mu.Unlock()
			f.consumerAt.Store(idle.UnixNano())
			publish(t, js, "s", 0, 1)

			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { defer close(done); in.catchUp(ctx, f) }()
			defer func() { cancel(); <-done }()
			// Several of the reader's checks (catchUpCheck apart) either way.
			deadline := time.Now().Add(8 * catchUpCheck)
			if tc.want {
				deadline = time.Now().Add(30 * time.Second)
			}
			for time.Now().Before(deadline) {
				if got, _ := c.all(); len(got) > 0 {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			got, _ := c.all()
			var mc dto.Metric
			if err := in.m.CatchUps.Write(&mc); err != nil {
				t.Fatal(err)
			}
			if taken := len(got) > 0; taken != tc.want || (mc.GetCounter().GetValue() > 0) != tc.want {
				t.Fatalf("catch-up reader took %v (catch-ups %v), want taken %v", got, mc.GetCounter().GetValue(), tc.want)
			}
		})
	}
}
