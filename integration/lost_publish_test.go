package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/securelog/securelog/pkg/pipeline"
	"github.com/securelog/securelog/pkg/producer"
	"github.com/securelog/securelog/pkg/wire"
)

// TestPublishSurvivesALostPublish reproduces the hang of
// TestPartitionsOnR3Cluster (issue 14; clean-clone CI of caa058b): an event
// published while no JetStream stream leader could take it got neither an
// acknowledgement nor an error, so its Future waited for good although
// the ingester went on committing everything after it.
//
// Here the first publish reaches a plain subscriber that never answers
// (what a publish looks like from the client when the stream's leader
// drops it); the ingester starts afterwards. The producer must notice
// that no acknowledgement came and publish the event again under the same
// msg id (JetStream stores it once), and Wait must return its commit.
func TestPublishSurvivesALostPublish(t *testing.T) {
	url, nc, swallowed, closeHole := blackHole(t)
	pc := lostProducer(t, nc, producer.Options{Logger: testLogger(t), AckTimeout: 300 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	f := publishLost(t, ctx, pc, swallowed, "lost")
	closeHole()
	startPartition(t, url, wire.DefaultPartition, &logBuffer{}, "ingester")
	got, err := f.Wait(ctx)
	if err != nil {
		t.Fatalf("an event whose first publish was lost: %v", err)
	}
	storedOnce(t, ctx, nc, "lost", got)
}

// TestPublishNeverAcknowledgedFails: an event whose publishes are never
// acknowledged is not waited on for good: after RepublishFor its Future
// fails with an error that says what happened and names the msg id.
func TestPublishNeverAcknowledgedFails(t *testing.T) {
	_, nc, swallowed, _ := blackHole(t)
	pc := lostProducer(t, nc, producer.Options{Logger: testLogger(t), AckTimeout: 100 * time.Millisecond, RepublishFor: 350 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	f, err := pc.Publish(ctx, "void", producer.Event{Type: "t", Severity: wire.Info, Producer: "it", Payload: []byte("x"), MsgID: "void-1"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Wait(ctx)
	if err == nil || !strings.Contains(err.Error(), "no acknowledgement from JetStream") || !strings.Contains(err.Error(), "void-1") {
		t.Fatalf("Wait: %v", err)
	}
	if n := len(swallowed); n < 3 {
		t.Errorf("%d publishes before giving up (want the first and its repeats)", n)
	}
	t.Log(err)
}

// TestPublishSurvivesAReconnect: a producer whose connection to NATS is
// re-established while publishes await their acknowledgement used to fail
// them ("not accepted: nats: server is disconnected") although JetStream
// may well have stored them. They are published again under their msg
// ids instead, and committed once.
func TestPublishSurvivesAReconnect(t *testing.T) {
	url, nc, swallowed, closeHole := blackHole(t, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	// AckTimeout is long: only the reconnect can end the first attempt.
	pc := lostProducer(t, nc, producer.Options{Logger: testLogger(t), AckTimeout: time.Minute})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	f := publishLost(t, ctx, pc, swallowed, "recon")
	closeHole()
	startPartition(t, url, wire.DefaultPartition, &logBuffer{}, "ingester")
	checkFor(t, 20*time.Second, 50*time.Millisecond, func() error {
		_, err := nc.Request("$JS.API.STREAM.INFO."+wire.Partition{}.InStream(), nil, time.Second)
		return err
	})
	if err := nc.ForceReconnect(); err != nil {
		t.Fatal(err)
	}
	got, err := f.Wait(ctx)
	if err != nil {
		t.Fatalf("an event in flight across a reconnect: %v", err)
	}
	storedOnce(t, ctx, nc, "recon", got)
}

// lostProducer returns a producer on nc with opts, closed at cleanup.
func lostProducer(t *testing.T, nc *nats.Conn, opts producer.Options) *producer.Client {
	t.Helper()
	pc, err := producer.New(nc, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	return pc
}

// blackHole starts a JetStream-enabled server without any stream and
// connects to it; every publish on securelog.in.> reaches a plain
// subscriber that never answers (what a publish looks like from the
// client when a stream's leader drops it). stop ends that.
func blackHole(t *testing.T, opts ...nats.Option) (url string, nc *nats.Conn, swallowed <-chan *nats.Msg, stop func()) {
	t.Helper()
	ns, err := pipeline.StartServer(pipeline.ServerConfig{Listen: "127.0.0.1:0", StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	url = ns.ClientURL()
	nc, err = nats.Connect(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	ch := make(chan *nats.Msg, 16)
	hole, err := nc.ChanSubscribe(wire.SubjectFor(wire.KindIn, ">"), ch)
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return url, nc, ch, func() {
		if err := hole.Unsubscribe(); err != nil {
			t.Fatal(err)
		}
	}
}

// publishLost publishes one event ("once", msg id STREAM-1) and waits
// until the black hole swallowed it.
func publishLost(t *testing.T, ctx context.Context, pc *producer.Client, swallowed <-chan *nats.Msg, stream string) *producer.Future {
	t.Helper()
	f, err := pc.Publish(ctx, stream, producer.Event{Type: "t", Severity: wire.Info, Producer: "it", Payload: []byte("once"), MsgID: stream + "-1"})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-swallowed:
	case <-ctx.Done():
		t.Fatal("the publish never left the client")
	}
	return f
}

// storedOnce checks that the default partition's store holds stream's
// event exactly once, at the seqno its commit reported.
func storedOnce(t *testing.T, ctx context.Context, nc *nats.Conn, stream string, got producer.Committed) {
	t.Helper()
	rows := streamEntries(t, localStore(t, ctx, "", nc, wire.DefaultPartition), stream)
	if len(rows) != 1 || string(rows[0].Payload) != "once" || rows[0].Seqno != got.Seqno {
		t.Fatalf("stream %s holds %d entries (want the event once, seqno %d)", stream, len(rows), got.Seqno)
	}
}
