package integration

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/securelog/securelog/internal/node"
	"github.com/securelog/securelog/pkg/pipeline"
	"github.com/securelog/securelog/pkg/rpcserver"
	"github.com/securelog/securelog/pkg/securelog"
	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/wire"
)

// TestSignerKilledMidLoad: ingester and sealer run in-process, the signer
// as a subprocess that is SIGKILLed twice while segments are being sealed.
// After restarts every segment is signed exactly in order, the checkpoint
// chain and every signature verify, and the stream passes a full audit.
func TestSignerKilledMidLoad(t *testing.T) {
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
	sealer, err := pipeline.NewSealer(pipeline.SealerConfig{Conn: nc, MaxEntries: 50, MaxAge: 30 * time.Millisecond, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{}, 2)
	go func() { _ = in.Run(ctx); done <- struct{}{} }()
	go func() { _ = sealer.Run(ctx); done <- struct{}{} }()
	defer func() { cancel(); <-done; <-done }()
	checkFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if !in.Ready() {
			return fmt.Errorf("ingester not ready")
		}
		return nil
	})

	signerArgs := []string{"signer", "--nats", url, "--keys", info.KeysDir, "--trust", info.TrustFile,
		"--head-file", info.HeadFile, "--sign-scan", "200ms"}
	signer := startWorker(t, signerArgs...)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	const stream = "signed"
	signedCount := func() (int, int, error) {
		segs, err := st.SegmentsList(ctx, stream)
		n := 0
		for _, s := range segs {
			if s.Signed() {
				n++
			}
		}
		return n, len(segs), err
	}
	total := 0
	for round := range 3 {
		for i := range 600 {
			m := natsMsg(wire.SubjectFor(wire.KindIn, stream), fmt.Sprintf(`{"type":"t","severity":"info","producer":"p","payload":"%d-%d"}`, round, i), fmt.Sprintf("%d-%d", round, i))
			if _, err := js.PublishMsgAsync(m, jetstream.WithStallWait(30*time.Second)); err != nil {
				t.Fatal(err)
			}
			total++
		}
		<-js.PublishAsyncComplete()
		if round == 2 {
			break
		}
		// Kill once some, but not necessarily all, segments are signed.
		before, _, _ := signedCount()
		checkFor(t, 30*time.Second, 2*time.Millisecond, func() error {
			n, _, err := signedCount()
			if err == nil && n <= before {
				err = fmt.Errorf("%d signed", n)
			}
			return err
		})
		signer.kill()
		t.Logf("round %d: killed signer", round)
		signer = startWorker(t, signerArgs...)
	}
	checkFor(t, 60*time.Second, 20*time.Millisecond, func() error {
		rows := streamEntries(t, st, stream)
		n, segs, err := signedCount()
		if err != nil {
			return err
		}
		last, _, err := st.SegmentLastSeqno(ctx, stream)
		if err != nil {
			return err
		}
		if len(rows) != total || n != segs || last != rows[len(rows)-1].Seqno {
			return fmt.Errorf("%d/%d entries, %d/%d segments signed", len(rows), total, n, segs)
		}
		return nil
	})
	rep := auditStream(t, st, info.TrustFile, stream, false)
	if rep.Entries != uint64(total) || rep.Signed != rep.Segments {
		t.Fatalf("audit: %+v", rep)
	}
	if out := signer.output(); strings.Contains(out, "level=ERROR") {
		t.Fatalf("signer logged errors:\n%s", out)
	}
}
