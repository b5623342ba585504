package producer_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/securelog/securelog/internal/node"
	"github.com/securelog/securelog/pkg/producer"
	"github.com/securelog/securelog/pkg/wire"
)

// A segment can be sealed, signed and announced (with the witnesses'
// receipts) before the publisher asks for its checkpoint; AwaitCheckpoint
// then finds it signed in the store but never sees the receipts, and
// `publish --wait checkpointed` printed no witness cosignature now and
// then. A CheckpointWatch created before publishing keeps them.
func TestWatchKeepsReceiptsOfAnEarlyCheckpoint(t *testing.T) {
	c, ctx := startPipelineWith(t, node.UpConfig{LocalWitness: true})
	w, err := c.WatchCheckpoints(ctx, "early")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	f, err := c.Publish(ctx, "early", producer.Event{Type: "t", Severity: wire.Info, Producer: "p", Payload: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	res, err := f.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Let the segment be signed and announced before anyone awaits it.
	for {
		ck, err := c.AwaitCheckpoint(ctx, res.Seqno)
		if err != nil {
			t.Fatal(err)
		}
		if ck.Segment.Signed() {
			break
		}
	}
	time.Sleep(300 * time.Millisecond) // past the announcement
	ck, err := w.Await(ctx, res.Seqno)
	if err != nil {
		t.Fatal(err)
	}
	if len(ck.Receipts) != 1 || !ck.Receipts[0].Accepted {
		b, _ := json.Marshal(ck.Receipts)
		t.Fatalf("checkpoint of an early-signed segment with receipts %s, want the local witness's", b)
	}
	if _, err := w.Await(ctx, res.Seqno+1000); err == nil {
		t.Fatal("await of a seqno that does not exist succeeded")
	}
}
