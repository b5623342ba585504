package producer_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/securelog/securelog/internal/node"
	"github.com/securelog/securelog/pkg/producer"
	"github.com/securelog/securelog/pkg/wire"
)

// TestWaitFallsBackToCommitLookup: a second client publishing an event
// whose msg id was already committed gets no commit receipt (JetStream drops
// the duplicate); Wait learns the original's seqno from the ingester's
// durable commit index instead of hanging.
func TestWaitFallsBackToCommitLookup(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	infoc := make(chan node.Info, 1)
	done := make(chan error, 1)
	go func() {
		done <- node.Up(ctx, node.UpConfig{DataDir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)},
			func(i node.Info) { infoc <- i })
	}()
	var info node.Info
	select {
	case info = <-infoc:
	case err := <-done:
		t.Fatal(err)
	}
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	client := func(lookupAfter time.Duration) *producer.Client {
		nc, err := info.Connect("lookup-test")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		c, err := producer.New(nc, producer.Options{PollInterval: 20 * time.Millisecond, LookupAfter: lookupAfter})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	wctx, wcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer wcancel()
	ev := producer.Event{Type: "t", Severity: wire.Info, Producer: "p", Payload: []byte("x"), MsgID: "once"}
	f, err := client(-1).Publish(wctx, "lk", ev)
	if err != nil {
		t.Fatal(err)
	}
	orig, err := f.Wait(wctx)
	if err != nil {
		t.Fatal(err)
	}

	// Without the lookup, the duplicate's Wait never resolves.
	f2, err := client(-1).Publish(wctx, "lk", ev)
	if err != nil {
		t.Fatal(err)
	}
	short, scancel := context.WithTimeout(wctx, 300*time.Millisecond)
	if _, err := f2.Wait(short); err == nil {
		t.Fatal("a duplicate got a receipt; the test no longer exercises the lookup")
	}
	scancel()

	// With it, Wait resolves to the original commit.
	f3, err := client(100*time.Millisecond).Publish(wctx, "lk", ev)
	if err != nil {
		t.Fatal(err)
	}
	got, err := f3.Wait(wctx)
	if err != nil {
		t.Fatal(err)
	}
	if got.Seqno != orig.Seqno || string(got.EntryHash) != string(orig.EntryHash) || got.Stream != "lk" {
		t.Fatalf("lookup gave %+v, original %+v", got, orig)
	}
}

// TestDuplicateAskedAtOnce reproduces issue 9 item 11: re-publishing an
// already committed msg id used to wait the whole LookupAfter (10 s by
// default) before asking the commit index, although JetStream's publish
// acknowledgement already said "duplicate". Wait now asks at once: the
// duplicate resolves to the original commit within 1 s while LookupAfter
// is a minute.
func TestDuplicateAskedAtOnce(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	infoc := make(chan node.Info, 1)
	done := make(chan error, 1)
	go func() {
		done <- node.Up(ctx, node.UpConfig{DataDir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)},
			func(i node.Info) { infoc <- i })
	}()
	var info node.Info
	select {
	case info = <-infoc:
	case err := <-done:
		t.Fatal(err)
	}
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	nc, err := info.Connect("dup-test")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	c, err := producer.New(nc, producer.Options{LookupAfter: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	wctx, wcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer wcancel()
	ev := producer.Event{Type: "t", Severity: wire.Info, Producer: "p", Payload: []byte("x"), MsgID: "dup-once"}
	f, err := c.Publish(wctx, "dup", ev)
	if err != nil {
		t.Fatal(err)
	}
	orig, err := f.Wait(wctx)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	f2, err := c.Publish(wctx, "dup", ev)
	if err != nil {
		t.Fatal(err)
	}
	short, scancel := context.WithTimeout(wctx, time.Second)
	defer scancel()
	got, err := f2.Wait(short)
	if err != nil {
		t.Fatalf("duplicate not resolved within 1 s (LookupAfter is %v): %v", time.Minute, err)
	}
	if _, dup, _ := f2.Accepted(wctx); !dup {
		t.Error("JetStream did not report the re-publish as a duplicate")
	}
	if got.Seqno != orig.Seqno || string(got.EntryHash) != string(orig.EntryHash) {
		t.Fatalf("duplicate resolved to %+v, original %+v", got, orig)
	}
	t.Logf("duplicate resolved in %v", time.Since(start))
}
