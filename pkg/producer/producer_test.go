package producer_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/securelog/securelog/internal/node"
	"github.com/securelog/securelog/pkg/pipeline"
	"github.com/securelog/securelog/pkg/producer"
	"github.com/securelog/securelog/pkg/securelog"
	"github.com/securelog/securelog/pkg/wire"
)

func startPipeline(t *testing.T) (*producer.Client, context.Context) {
	t.Helper()
	return startPipelineWith(t, node.UpConfig{})
}

// startPipelineWith runs up with cfg (a fresh data directory, a discarded
// log and a 50 ms segment age unless set) until the test ends.
func startPipelineWith(t *testing.T, cfg node.UpConfig) (*producer.Client, context.Context) {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Sealer.MaxAge == 0 {
		cfg.Sealer.MaxAge = 50 * time.Millisecond
	}
	ctx, cancel := context.WithCancel(context.Background())
	infoc := make(chan node.Info, 1)
	done := make(chan error, 1)
	go func() {
		done <- node.Up(ctx, cfg, func(i node.Info) { infoc <- i })
	}()
	var info node.Info
	select {
	case info = <-infoc:
	case err := <-done:
		t.Fatal(err)
	}
	nc, err := info.Connect("producer-test")
	if err != nil {
		t.Fatal(err)
	}
	c, err := producer.New(nc, producer.Options{PollInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		nc.Close()
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	wctx, wcancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(wcancel)
	return c, wctx
}

func TestPublishLevels(t *testing.T) {
	c, ctx := startPipeline(t)
	ev := producer.Event{Type: "t", Severity: wire.Notice, Producer: "p", Payload: []byte{0xff, 0x00}, MsgID: "fixed-id"}
	f1, err := c.Publish(ctx, "levels", ev)
	if err != nil {
		t.Fatal(err)
	}
	f2, err := c.Publish(ctx, "levels", ev) // same msg id: a duplicate for JetStream
	if err != nil {
		t.Fatal(err)
	}
	if _, dup, err := f2.Accepted(ctx); err != nil || !dup {
		t.Fatalf("second publish: duplicate=%v err=%v", dup, err)
	}
	res, err := f1.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Seqno == 0 || res.MsgID != "fixed-id" || len(res.EntryHash) != 32 {
		t.Fatalf("receipt %+v", res)
	}
	ack, err := c.PublishAccepted(ctx, "levels", producer.Event{Severity: wire.Info, Payload: []byte("a")})
	if err != nil || ack.Sequence == 0 {
		t.Fatalf("accepted: %+v %v", ack, err)
	}
	app, err := c.Append(ctx, "levels", producer.Event{Severity: wire.Info, Payload: []byte("b")})
	if err != nil || app.Seqno <= res.Seqno {
		t.Fatalf("append: %+v %v", app, err)
	}
	ck, err := c.AwaitCheckpoint(ctx, res.Seqno)
	if err != nil {
		t.Fatal(err)
	}
	if !ck.Segment.Signed() || ck.Proof.EntryHash == nil || string(ck.Proof.EntryHash) != string(res.EntryHash) {
		t.Fatalf("checkpoint %+v", ck)
	}
	if err := securelog.VerifyInclusionProof(ck.Proof, ck.Segment.MerkleRoot); err != nil {
		t.Fatal(err)
	}
	if c.InFlight() != 0 {
		t.Fatalf("%d futures left in flight", c.InFlight())
	}
}

func TestPublishRejected(t *testing.T) {
	c, ctx := startPipeline(t)
	if _, err := c.Publish(ctx, "a.b", producer.Event{Severity: wire.Info}); err == nil {
		t.Fatal("multi-token stream accepted")
	}
	_, err := c.Append(ctx, "x", producer.Event{Severity: wire.Info, Encoding: ptr("raw")})
	if err != nil {
		t.Fatalf("custom encoding on a public stream: %v", err)
	}
	f, err := c.Publish(ctx, "huge", producer.Event{Severity: wire.Info, Payload: make([]byte, pipeline.DefaultMaxPayload+1)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Wait(ctx)
	var rej *producer.RejectedError
	if !errors.As(err, &rej) {
		t.Fatalf("oversized payload: %v", err)
	}
}

func ptr(s string) *string { return &s }
