package integration

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/securelog/securelog/internal/node"
	"github.com/securelog/securelog/pkg/checkpoint"
	"github.com/securelog/securelog/pkg/keystore"
	"github.com/securelog/securelog/pkg/pipeline"
	"github.com/securelog/securelog/pkg/rpcserver"
	"github.com/securelog/securelog/pkg/securelog"
	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/wire"
)

// TestSealerKilledMidLoad: ingester and signer run in-process, the sealer
// as a subprocess that is SIGKILLed twice while events are being ingested
// and segments closed. Events committed while the sealer is down are kept
// for it in SECURELOG_APPENDED, and one stream only receives events while
// the sealer is down, so only the restarted sealer's durable consumer can
// report its open entries (the periodic scan is an hour away and a sealer
// whose consumer exists does not scan at start). Afterwards every accepted event is present exactly once,
// each stream's segments cover its entries with no gap or overlap up to
// the head, every segment is signed and every stream passes a full audit.
func TestSealerKilledMidLoad(t *testing.T) {
	dir := t.TempDir()
	info, err := node.PrepareData(dir, pipeline.DefaultIdentity)
	if err != nil {
		t.Fatal(err)
	}
	ns, err := pipeline.StartServer(pipeline.ServerConfig{Listen: "127.0.0.1:0", StoreDir: filepath.Join(dir, "nats")})
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Shutdown()
	url := ns.ClientURL()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	st, err := store.Open(ctx, info.StoreSpec)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	l := securelog.New(st, securelog.Options{Logger: testLogger(t)})
	if err := l.OpenInitialized(ctx); err != nil {
		t.Fatal(err)
	}
	rpc, err := rpcserver.New(st, rpcserver.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := rpc.ServeNATS(ctx, nc, "")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	in, err := pipeline.NewIngester(pipeline.IngesterConfig{Log: l, Conn: nc, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	signer := inProcessSigner(t, nc, info)
	done := make(chan struct{}, 2)
	go func() { _ = in.Run(ctx); done <- struct{}{} }()
	go func() { _ = signer.Run(ctx); done <- struct{}{} }()
	defer func() { cancel(); <-done; <-done }()
	checkFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if !in.Ready() {
			return fmt.Errorf("ingester not ready")
		}
		return nil
	})

	sealerArgs := []string{"sealer", "--nats", url, "--max-entries", "50", "--max-age", "30ms", "--seal-scan", "1h"}
	sealer := startWorker(t, sealerArgs...)
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(512))
	if err != nil {
		t.Fatal(err)
	}
	// "sealq" only gets events while the sealer is down (second kill).
	streams := []string{"seala", "sealb", "sealq"}
	var (
		mu       sync.Mutex
		want     = map[string]int{}
		accepted []jetstream.PubAckFuture
		next     int
	)
	publish := func(s string) error {
		mu.Lock()
		defer mu.Unlock()
		body := fmt.Sprintf(`{"type":"load","severity":"info","producer":"it","payload":"%s"}`, payloadOf(next))
		f, err := js.PublishMsgAsync(natsMsg(wire.SubjectFor(wire.KindIn, s), body, fmt.Sprintf("s-%d", next)),
			jetstream.WithStallWait(30*time.Second))
		if err != nil {
			return fmt.Errorf("publish %d: %w", next, err)
		}
		accepted = append(accepted, f)
		want[s]++
		next++
		return nil
	}
	published := func() int {
		mu.Lock()
		defer mu.Unlock()
		return next
	}
	// The load: chunks of 100 events to seala and sealb, paced so that the
	// ingester is never more than a few hundred events behind, until
	// stopLoad is closed. Every message gets its own JetStream sequence, so
	// the ingester's position counts the events it has committed.
	stopLoad, loadDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(loadDone)
		for chunk := 0; ; chunk++ {
			select {
			case <-stopLoad:
				return
			default:
			}
			for i := range 100 {
				if err := publish(streams[(chunk+i)%2]); err != nil {
					t.Error(err)
					return
				}
			}
			for in.Position()+300 < uint64(published()) {
				select {
				case <-stopLoad:
					return
				case <-time.After(2 * time.Millisecond):
				}
			}
		}
	}()
	stopLoading := func() {
		select {
		case <-stopLoad:
		default:
			close(stopLoad)
		}
		<-loadDone
	}
	defer stopLoading()
	segmentCount := func() int {
		n := 0
		for _, s := range streams {
			segs, err := st.SegmentsList(ctx, s)
			if err != nil {
				t.Fatal(err)
			}
			n += len(segs)
		}
		return n
	}
	// sealedMore waits until the running sealer has closed n more segments.
	sealedMore := func(n int) {
		t.Helper()
		before := segmentCount()
		checkFor(t, 30*time.Second, 2*time.Millisecond, func() error {
			if got := segmentCount(); got < before+n {
				return fmt.Errorf("%d segments, want %d", got, before+n)
			}
			return nil
		})
	}

	for round := range 2 {
		// Kill once this sealer has closed segments while the load runs.
		sealedMore(5)
		sealer.kill()
		if out := sealer.output(); strings.Contains(out, "level=ERROR") {
			t.Fatalf("sealer logged errors:\n%s", out)
		}
		pos := in.Position()
		t.Logf("round %d: killed sealer at %d segments, %d of %d events committed", round, segmentCount(), pos, published())
		if round == 1 {
			for range 30 {
				if err := publish(streams[2]); err != nil {
					t.Fatal(err)
				}
			}
		}
		// Let the ingester commit more while nobody applies the policy:
		// their appended announcements wait in JetStream.
		checkFor(t, 30*time.Second, 2*time.Millisecond, func() error {
			if p := in.Position(); p < pos+400 {
				return fmt.Errorf("position %d, want %d", p, pos+400)
			}
			return nil
		})
		sealer = startWorker(t, sealerArgs...)
	}
	sealedMore(5)
	stopLoading()
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(30 * time.Second):
		t.Fatal("publishes not acknowledged")
	}
	for i, f := range accepted {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			t.Fatalf("event %d not accepted: %v", i, err)
		}
	}
	checkFor(t, 30*time.Second, 10*time.Millisecond, func() error {
		for _, s := range streams {
			if n, err := committedCount(st, s); err != nil || n != want[s] {
				return fmt.Errorf("stream %s: %d of %d committed (%v)", s, n, want[s], err)
			}
		}
		return nil
	})
	// Every stream is sealed up to its head and every segment is signed.
	checkFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		for _, s := range streams {
			head, _, err := st.Head(ctx, s)
			if err != nil {
				return err
			}
			last, _, err := st.SegmentLastSeqno(ctx, s)
			if err != nil {
				return err
			}
			segs, err := st.SegmentsList(ctx, s)
			if err != nil {
				return err
			}
			signed := 0
			for _, g := range segs {
				if g.Signed() {
					signed++
				}
			}
			if last != head || signed != len(segs) {
				return fmt.Errorf("stream %s: sealed to %d of head %d, %d/%d segments signed", s, last, head, signed, len(segs))
			}
		}
		return nil
	})

	seen := map[string]int{}
	for _, s := range streams {
		rows := streamEntries(t, st, s)
		if len(rows) != want[s] {
			t.Fatalf("stream %s: %d entries, want %d", s, len(rows), want[s])
		}
		for _, r := range rows {
			seen[string(r.Payload)]++
		}
		checkSegmentCover(t, st, s, rows)
		if err := l.VerifyChain(ctx, s, 1, rows[len(rows)-1].Seqno); err != nil {
			t.Fatalf("stream %s: chain: %v", s, err)
		}
		rep := auditStream(t, st, info.TrustFile, s, false)
		if rep.Entries != uint64(want[s]) || rep.OpenEntries != 0 || rep.Signed != rep.Segments {
			t.Fatalf("stream %s: audit %+v, want %d entries all sealed and signed", s, rep, want[s])
		}
	}
	for i := range next {
		if c := seen[string(payloadOf(i))]; c != 1 {
			t.Fatalf("event %d present %d times", i, c)
		}
	}
	if out := sealer.output(); strings.Contains(out, "level=ERROR") {
		t.Fatalf("sealer logged errors:\n%s", out)
	}
}

// inProcessSigner returns a signer over the store RPC on nc, signing with
// the key PrepareData made, as `securelog up` runs it.
func inProcessSigner(t *testing.T, nc *nats.Conn, info node.Info) *pipeline.Signer {
	t.Helper()
	ks, err := keystore.OpenSoftware(info.KeysDir)
	if err != nil {
		t.Fatal(err)
	}
	trust, err := checkpoint.LoadTrustFile(info.TrustFile)
	if err != nil {
		t.Fatal(err)
	}
	sl := securelog.New(remoteStore(t, nc), securelog.Options{Signer: ks, Trust: trust, HeadFile: info.HeadFile, Logger: testLogger(t)})
	if err := sl.OpenInitialized(context.Background()); err != nil {
		t.Fatal(err)
	}
	s, err := pipeline.NewSigner(pipeline.SignerConfig{Conn: nc, Log: sl, Identity: info.Identity,
		ScanInterval: 500 * time.Millisecond, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// checkSegmentCover checks that stream's segments partition its entries
// (rows, in seqno order): ascending, non-overlapping ranges whose members
// are exactly the entries in range, none empty, the last ending at the
// newest entry.
func checkSegmentCover(t *testing.T, st store.Store, stream string, rows []wire.EntryRow) {
	t.Helper()
	ctx := context.Background()
	segs, err := st.SegmentsList(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	if len(segs) == 0 {
		t.Fatalf("stream %s: no segments", stream)
	}
	var covered []uint64
	for i, g := range segs {
		if g.SeqStart > g.SeqEnd || (i > 0 && g.SeqStart <= segs[i-1].SeqEnd) {
			t.Fatalf("stream %s: segment %d covers %d..%d after %d..%d", stream, g.SegmentID, g.SeqStart, g.SeqEnd,
				segs[max(i-1, 0)].SeqStart, segs[max(i-1, 0)].SeqEnd)
		}
		members, err := st.SegmentEntrySeqnos(ctx, g.SegmentID)
		if err != nil {
			t.Fatal(err)
		}
		if len(members) == 0 || members[0] != g.SeqStart || members[len(members)-1] != g.SeqEnd {
			t.Fatalf("stream %s: segment %d (%d..%d) has members %v", stream, g.SegmentID, g.SeqStart, g.SeqEnd, members)
		}
		covered = append(covered, members...)
	}
	var seqnos []uint64
	for _, r := range rows {
		seqnos = append(seqnos, r.Seqno)
	}
	if !slices.Equal(covered, seqnos) {
		t.Fatalf("stream %s: segments cover %d seqnos, the stream has %d (gap or overlap)", stream, len(covered), len(seqnos))
	}
}
