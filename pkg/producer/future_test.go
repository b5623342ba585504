package producer

import (
	"context"
	"errors"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/securelog/securelog/pkg/wire"
)

// TestAcceptedAfterReceiptOvertookAck: receipts and JetStream acks arrive
// on different subscriptions, so a commit receipt can resolve a future
// before its ack is handled (the ack then finds no pending future). Accepted
// must still report the stream sequence, not 0 with no error.
func TestAcceptedAfterReceiptOvertookAck(t *testing.T) {
	c := &Client{pending: map[futureKey][]*Future{}}
	key := futureKey{"s", "m1"}
	f := &Future{c: c, key: key, accepted: make(chan struct{}), done: make(chan struct{})}
	c.pending[key] = []*Future{f}
	c.onReceipt(&nats.Msg{Subject: wire.SubjectFor(wire.KindCommitted, "s"),
		Data: []byte(`{"stream":"s","items":[{"msg_id":"m1","js_seq":42,"seqno":7,"entry_hash":"00ff"}]}`)})
	ack := nats.NewMsg(wire.SubjectFor(wire.KindIn, "s"))
	ack.Header.Set(wire.MsgIDHeader, "m1")
	if c.unacked(ack) != nil {
		t.Fatal("the late ack found a future the receipt already resolved")
	}
	seq, dup, err := f.Accepted(context.Background())
	if err != nil || seq != 42 || dup {
		t.Fatalf("Accepted() = %d, %v, %v; want 42, false, nil", seq, dup, err)
	}

	// A failed future still reports its error.
	g := &Future{c: c, key: futureKey{"s", "m2"}, accepted: make(chan struct{}), done: make(chan struct{})}
	boom := errors.New("boom")
	g.resolve(Committed{}, boom)
	if _, _, err := g.Accepted(context.Background()); !errors.Is(err, boom) {
		t.Fatalf("Accepted() of a failed future: %v", err)
	}
}

func TestForgetReleasesPending(t *testing.T) {
	c := &Client{pending: map[futureKey][]*Future{}}
	k := futureKey{stream: "s", msgID: "m"}
	f1 := &Future{c: c, key: k, accepted: make(chan struct{}), done: make(chan struct{})}
	f2 := &Future{c: c, key: k, accepted: make(chan struct{}), done: make(chan struct{})}
	c.pending[k] = []*Future{f1, f2}
	f1.Forget()
	if c.InFlight() != 1 || c.pending[k][0] != f2 {
		t.Fatalf("after forgetting one: %d in flight", c.InFlight())
	}
	f2.Forget()
	if c.InFlight() != 0 || len(c.pending) != 0 {
		t.Fatalf("after forgetting both: %d in flight, %d keys", c.InFlight(), len(c.pending))
	}
}
