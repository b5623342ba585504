package producer

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/securelog/securelog/pkg/pipeline"
	"github.com/securelog/securelog/pkg/wire"
)

// TestReceiptsNotBlockedBySubscribe: while the client sets up the receipt
// subscription of a new stream (a network round trip), receipts of the
// streams it already follows are still delivered (issue 8 item 7: no
// network call under the lock receipts need).
func TestReceiptsNotBlockedBySubscribe(t *testing.T) {
	ns, err := pipeline.StartServer(pipeline.ServerConfig{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	nc, err := nats.Connect("", nats.InProcessServer(ns))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	c, err := New(nc, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.subscribe("a"); err != nil {
		t.Fatal(err)
	}
	f := &Future{c: c, key: futureKey{"a", "id1"}, accepted: make(chan struct{}), done: make(chan struct{})}
	c.mu.Lock()
	c.pending[f.key] = []*Future{f}
	c.mu.Unlock()

	// The next subscription's round trip hangs until released.
	release := make(chan struct{})
	entered := make(chan struct{})
	c.flush = func() error {
		close(entered)
		<-release
		return nc.Flush()
	}
	subscribed := make(chan error, 1)
	go func() { subscribed <- c.subscribe("b") }()
	<-entered
	receipt := `{"stream":"a","items":[{"msg_id":"id1","js_seq":1,"seqno":1,"entry_hash":"` + strings.Repeat("ab", 32) + `"}]}`
	if err := nc.Publish(wire.SubjectFor(wire.KindCommitted, "a"), []byte(receipt)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-f.Done():
	case <-time.After(10 * time.Second):
		close(release)
		t.Fatal("the receipt of stream a was not delivered while stream b's subscription was being set up")
	}
	if res, err := f.Result(); err != nil || res.Seqno != 1 {
		t.Fatalf("future: %+v, %v", res, err)
	}
	close(release)
	if err := <-subscribed; err != nil {
		t.Fatal(err)
	}
}
