package transport_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/securelog/securelog/pkg/rpcserver/rpctest"
	"github.com/securelog/securelog/pkg/transport"
)

// TestDrain: messages already received are still handled before Drain
// returns, for every subscription; a handler that does not finish in time
// makes Drain report the subject.
func TestDrain(t *testing.T) {
	ns := rpctest.StartNATS(t)
	nc := rpctest.Connect(t, ns)
	var handled atomic.Int32
	release := make(chan struct{})
	handler := func(*nats.Msg) {
		<-release
		handled.Add(1)
	}
	a, err := nc.Subscribe("drain.a", handler)
	if err != nil {
		t.Fatal(err)
	}
	b, err := nc.Subscribe("drain.b", handler)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		_ = nc.Publish("drain.a", nil)
		_ = nc.Publish("drain.b", nil)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	// Handlers are blocked: a short deadline fails, naming the subject.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	err = transport.Drain(ctx, a, b)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Drain with blocked handlers: %v, want a deadline error", err)
	}
	close(release)
	if err := transport.Drain(context.Background(), a, b, nil); err != nil {
		t.Fatalf("Drain: %v", err)
	}
	if n := handled.Load(); n != 6 {
		t.Fatalf("%d messages handled before Drain returned, want 6", n)
	}
	if a.IsValid() || b.IsValid() {
		t.Fatal("subscriptions still valid after Drain")
	}
}
