package node

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/securelog/securelog/pkg/keystore"
	"github.com/securelog/securelog/pkg/producer"
	"github.com/securelog/securelog/pkg/securelog"
	"github.com/securelog/securelog/pkg/wire"
)

// In the split deployment the signer keeps its own head file; nothing
// ever writes one beside the ingester's store. A restarted ingester over
// a store with signed segments must keep ingesting (its store is anchored
// by its mark, pipeline.MarkBucket, and the signer's head file), not halt
// every stream for a missing head file.
func TestSplitIngesterNeedsNoHeadFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	spec := "pebble:" + filepath.Join(dir, "store")
	// A store whose segment was signed by a signer with its own head file.
	st, err := OpenStore(ctx, StoreConfig{Spec: spec, Create: true})
	if err != nil {
		t.Fatal(err)
	}
	ks, err := keystore.OpenSoftware(filepath.Join(dir, "keys"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ks.GetKeyOrCreate(ctx, "attest", keystore.Ed25519); err != nil {
		t.Fatal(err)
	}
	l := securelog.New(st, securelog.Options{Signer: ks, HeadFile: filepath.Join(dir, "signer.heads.json")})
	if err := l.OpenInitialized(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(ctx, "orders", "t", wire.Info, "p", []byte("x")); err != nil {
		t.Fatal(err)
	}
	seg, err := l.CloseSegment(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := l.SignSegment(ctx, "attest", seg.SegmentID); err != nil {
		t.Fatal(err)
	}
	st.Close()

	url := startNATS(t)
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- RunIngester(rctx, IngesterConfig{NATS: NATSClient{URL: url}, Store: StoreConfig{Spec: spec}, Logger: quietLogger(), Tlog: TlogConfig{Off: true}})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	c, err := producer.New(nc, producer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	actx, acancel := context.WithTimeout(ctx, 30*time.Second)
	defer acancel()
	var res producer.Committed
	for {
		res, err = c.Append(actx, "orders", producer.Event{Type: "t", Severity: wire.Info, Producer: "p", Payload: []byte("y")})
		if !errors.Is(err, nats.ErrNoResponders) || actx.Err() != nil {
			break
		}
		time.Sleep(50 * time.Millisecond) // the ingester is not subscribed yet
	}
	if err != nil || res.Seqno != 2 {
		t.Fatalf("append through the restarted split ingester: %+v %v", res, err)
	}
}
