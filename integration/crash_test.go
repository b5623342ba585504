package integration

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/securelog/securelog/pkg/pipeline"
	"github.com/securelog/securelog/pkg/securelog"
	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/store/remote"
	"github.com/securelog/securelog/pkg/transport"
	"github.com/securelog/securelog/pkg/wire"
)

// worker is a securelog subprocess.
type worker struct {
	cmd *exec.Cmd
	out *bytes.Buffer
	mu  *sync.Mutex
}

type syncBuf struct {
	mu  *sync.Mutex
	buf *bytes.Buffer
}

func (s syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func startWorker(t *testing.T, args ...string) *worker {
	t.Helper()
	w := &worker{out: &bytes.Buffer{}, mu: &sync.Mutex{}}
	w.cmd = exec.Command(securelogBin, args...)
	w.cmd.Stdout = syncBuf{w.mu, w.out}
	w.cmd.Stderr = syncBuf{w.mu, w.out}
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.kill() })
	return w
}

func (w *worker) kill() {
	if w.cmd.ProcessState == nil {
		_ = w.cmd.Process.Signal(syscall.SIGKILL)
		_ = w.cmd.Wait()
	}
}

func (w *worker) output() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.out.String()
}

// remoteStore returns a remote store over the NATS RPC.
func remoteStore(t *testing.T, nc *nats.Conn) store.Store {
	t.Helper()
	tr, err := transport.NewNATS(transport.Config{NATSConn: nc, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	st := remote.New(tr)
	checkFor(t, 30*time.Second, 50*time.Millisecond, func() error { return st.Init(context.Background(), "test") })
	t.Cleanup(func() { st.Close() })
	return st
}

// committedCount returns how many entries stream holds (0 on RPC errors
// while the ingester restarts).
func committedCount(st store.Store, stream string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	head, ok, err := st.GlobalHead(ctx)
	if err != nil || !ok {
		return 0, err
	}
	rows, err := st.Range(ctx, stream, 1, head)
	return len(rows), err
}

// TestIngesterKilledMidLoad: the ingester runs as a subprocess and is
// killed with SIGKILL twice while events are being published; after each
// restart it resumes from the position recorded in its store. Every event
// JetStream accepted is in the store exactly once and the chain verifies.
func TestIngesterKilledMidLoad(t *testing.T) {
	dir := t.TempDir()
	ns, err := pipeline.StartServer(pipeline.ServerConfig{Listen: "127.0.0.1:0", StoreDir: filepath.Join(dir, "nats")})
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Shutdown()
	url := ns.ClientURL()
	storeSpec := "pebble:" + filepath.Join(dir, "store")
	args := []string{"ingester", "--store", storeSpec, "--nats", url, "--max-batch", "200", "--no-head-file"}
	ing := startWorker(t, args...)

	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	st := remoteStore(t, nc)
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(512))
	if err != nil {
		t.Fatal(err)
	}
	const total, stream = 6000, "crash"
	var accepted []jetstream.PubAckFuture
	publish := func(from, to int) {
		for i := from; i < to; i++ {
			body := fmt.Sprintf(`{"type":"load","severity":"info","producer":"it","payload":"%s"}`, payloadOf(i))
			f, err := js.PublishMsgAsync(natsMsg(wire.SubjectFor(wire.KindIn, stream), body, fmt.Sprintf("m-%d", i)),
				jetstream.WithStallWait(30*time.Second))
			if err != nil {
				t.Fatalf("publish %d: %v", i, err)
			}
			accepted = append(accepted, f)
		}
	}
	// Kill twice, each time while the ingester is in the middle of the load.
	for round, upTo := range []int{2000, 4000} {
		publish(upTo-2000, upTo)
		checkFor(t, 60*time.Second, 5*time.Millisecond, func() error {
			n, err := committedCount(st, stream)
			if err == nil && n < upTo-1500 {
				err = fmt.Errorf("%d committed", n)
			}
			return err
		})
		ing.kill()
		t.Logf("round %d: killed ingester with SIGKILL", round)
		ing = startWorker(t, args...)
	}
	publish(4000, total)
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(60 * time.Second):
		t.Fatal("publishes not acknowledged")
	}
	for i, f := range accepted {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			t.Fatalf("event %d not accepted: %v", i, err)
		}
	}
	checkFor(t, 90*time.Second, 20*time.Millisecond, func() error {
		n, err := committedCount(st, stream)
		if err == nil && n < total {
			err = fmt.Errorf("%d of %d committed", n, total)
		}
		return err
	})
	rows := streamEntries(t, st, stream)
	seen := map[string]int{}
	for _, r := range rows {
		seen[string(r.Payload)]++
	}
	for i := range total {
		if c := seen[string(payloadOf(i))]; c != 1 {
			t.Fatalf("event %d present %d times; ingester output:\n%s", i, c, ing.output())
		}
	}
	if len(rows) != total {
		t.Fatalf("%d entries, want %d", len(rows), total)
	}
	l := securelog.New(st, securelog.Options{})
	if err := l.OpenInitialized(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := l.VerifyChain(context.Background(), stream, 1, rows[len(rows)-1].Seqno); err != nil {
		t.Fatalf("chain: %v", err)
	}
}
