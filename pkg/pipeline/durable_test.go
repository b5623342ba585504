package pipeline

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/securelog/securelog/pkg/keystore"
	"github.com/securelog/securelog/pkg/securelog"
	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/store/memory"
)

// ensureStreams creates the pipeline's JetStream streams (the ingester
// does this in production) for tests that run a worker without one.
func ensureStreams(t *testing.T, nc *nats.Conn) {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := EnsureStreams(ctx, js, StreamConfig{}); err != nil {
		t.Fatal(err)
	}
}

// runWorker runs a sealer's or signer's Run until the returned function
// is called.
func runWorker(t *testing.T, run func(context.Context) error) func() {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("worker: %v", err)
		}
	}
}

// sealedAndSigned reports nil once every stream is sealed up to its head
// and every segment is signed.
func sealedAndSigned(st store.Store, streams ...string) error {
	ctx := context.Background()
	for _, s := range streams {
		head, ok, err := st.Head(ctx, s)
		if err != nil || !ok {
			return fmt.Errorf("stream %s: no head (%v)", s, err)
		}
		last, _, err := st.SegmentLastSeqno(ctx, s)
		if err != nil {
			return err
		}
		segs, err := st.SegmentsList(ctx, s)
		if err != nil {
			return err
		}
		for _, g := range segs {
			if !g.Signed() {
				return fmt.Errorf("stream %s: segment %d not signed", s, g.SegmentID)
			}
		}
		if last != head {
			return fmt.Errorf("stream %s: sealed to %d of head %d", s, last, head)
		}
	}
	return nil
}

// TestWorkersResumeFromDurablePosition: the sealer and the signer are
// stopped, events are ingested (and a segment is closed) while they are
// down, and on restart they catch up from their durable consumers'
// positions on SECURELOG_APPENDED and SECURELOG_SEALED: every stream ends
// sealed and signed although the restarted workers never scan the store
// (their scan interval is an hour and their consumers already exist).
func TestWorkersResumeFromDurablePosition(t *testing.T) {
	ctx := context.Background()
	nc, js := startJetStream(t)
	st := memory.New()
	if err := st.Init(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	_, stopIn := runIngester(t, nc, openLog(t, st))
	defer stopIn()
	ks, err := keystore.OpenSoftware(t.TempDir() + "/keys")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Generate("signer", keystore.Ed25519); err != nil {
		t.Fatal(err)
	}
	start := func(m *Metrics) func() {
		sealer, err := NewSealer(SealerConfig{Conn: nc, Store: st, MaxEntries: 5, MaxAge: 50 * time.Millisecond,
			ScanInterval: time.Hour, Logger: quiet(), Metrics: m})
		if err != nil {
			t.Fatal(err)
		}
		sl := securelog.New(st, securelog.Options{Signer: ks, Logger: quiet()})
		if err := sl.OpenInitialized(ctx); err != nil {
			t.Fatal(err)
		}
		signer, err := NewSigner(SignerConfig{Conn: nc, Log: sl, Identity: "signer", ScanInterval: time.Hour, Logger: quiet(), Metrics: m})
		if err != nil {
			t.Fatal(err)
		}
		stopSealer, stopSigner := runWorker(t, sealer.Run), runWorker(t, signer.Run)
		return func() { stopSealer(); stopSigner() }
	}
	m1 := NewMetrics()
	stop := start(m1)
	publish(t, js, "a", 0, 12)
	checkFor(t, 20*time.Second, func() error { return sealedAndSigned(st, "a") })
	stop()

	// While both are down: more events for "a", a new stream "b", and a
	// segment closed by request (its sealed announcement waits for the
	// signer).
	publish(t, js, "b", 100, 103)
	checkFor(t, 10*time.Second, func() error {
		if n := len(entries(t, st, "b")); n != 3 {
			return fmt.Errorf("stream b: %d entries", n)
		}
		return nil
	})
	rep, err := nc.Request("securelog.close.b", nil, 5*time.Second)
	if err != nil || len(rep.Data) == 0 {
		t.Fatalf("close b: %v", err)
	}
	publish(t, js, "a", 12, 19)
	publish(t, js, "b", 103, 104)
	checkFor(t, 10*time.Second, func() error {
		if n := len(entries(t, st, "a")); n != 19 {
			return fmt.Errorf("stream a: %d entries", n)
		}
		if n := len(entries(t, st, "b")); n != 4 {
			return fmt.Errorf("stream b: %d entries", n)
		}
		return nil
	})
	if err := sealedAndSigned(st, "a"); err == nil {
		t.Fatal("stream a sealed while the sealer was down")
	}

	m2 := NewMetrics()
	stop = start(m2)
	defer stop()
	checkFor(t, 20*time.Second, func() error { return sealedAndSigned(st, "a", "b") })
	for _, w := range []string{"sealer", "signer"} {
		if n := testutil.ToFloat64(m2.Scans.WithLabelValues(w)); n != 0 {
			t.Fatalf("restarted %s scanned the store %v times; it should resume from its durable consumer", w, n)
		}
		if n := testutil.ToFloat64(m1.Scans.WithLabelValues(w)); n != 1 {
			t.Fatalf("first %s scanned %v times, want 1 (its consumer was new)", w, n)
		}
	}
}
