package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/securelog/securelog/internal/node"
	"github.com/securelog/securelog/pkg/partition"
	"github.com/securelog/securelog/pkg/pipeline"
	"github.com/securelog/securelog/pkg/producer"
	"github.com/securelog/securelog/pkg/queryapi"
	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/wire"
)

// partitionNode is one partition's ingester, sealer and signer, run
// in-process through internal/node exactly as `securelog ingester|sealer|
// signer --partition NAME` run them.
type partitionNode struct {
	name   string
	info   node.Info // data layout (keys, trust file, head file)
	cancel context.CancelFunc
	done   chan struct{}
}

// logBuffer collects the workers' warnings and errors.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startPartition runs partition name's workers against the NATS servers
// at url; stop (or test cleanup) ends them.
func startPartition(t *testing.T, url, name string, logs *logBuffer, workers ...string) *partitionNode {
	t.Helper()
	dir := t.TempDir()
	info, err := node.PrepareData(dir, pipeline.DefaultIdentity)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn})).With("partition", name)
	natsc := node.NATSClient{URL: url}
	ctx, cancel := context.WithCancel(context.Background())
	p := &partitionNode{name: name, info: info, cancel: cancel, done: make(chan struct{})}
	if len(workers) == 0 {
		workers = []string{"ingester", "sealer", "signer"}
	}
	var wg sync.WaitGroup
	run := func(what string, f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(); err != nil && ctx.Err() == nil {
				t.Errorf("partition %s %s: %v", name, what, err)
			}
		}()
	}
	for _, w := range workers {
		switch w {
		case "ingester":
			run(w, func() error {
				return node.RunIngester(ctx, node.IngesterConfig{NATS: natsc, Partition: name, Store: node.StoreConfig{Spec: info.StoreSpec}, HTTPListen: "127.0.0.1:0",
					HeadFile: info.HeadFile, KEKFile: info.KEKFile, Tlog: node.TlogConfig{Off: true}, Logger: log,
					Worker: pipeline.IngesterConfig{MaxBatch: 200, Streams: pipeline.StreamConfig{Replicas: replicasOf(url)}}})
			})
		case "sealer":
			run(w, func() error {
				return node.RunSealer(ctx, node.SealerConfig{NATS: natsc, Partition: name, Logger: log,
					Worker: pipeline.SealerConfig{MaxEntries: 500, MaxAge: 300 * time.Millisecond, ScanInterval: time.Second}})
			})
		case "signer":
			run(w, func() error {
				return node.RunSigner(ctx, node.SignerConfig{NATS: natsc, Partition: name, Keystore: node.KeystoreConfig{Dir: info.KeysDir},
					TrustFile: info.TrustFile, HeadFile: filepath.Join(dir, "signer.heads.json"), KEKFile: info.KEKFile, Logger: log,
					Tlog:   node.TlogConfig{Off: true}, // as the ingesters: no tree to checkpoint
					Worker: pipeline.SignerConfig{ScanInterval: time.Second}})
			})
		}
	}
	go func() { wg.Wait(); close(p.done) }()
	t.Cleanup(p.stop)
	return p
}

func (p *partitionNode) stop() {
	p.cancel()
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
	}
}

// replicasOf is 3 for a cluster URL list, else 1.
func replicasOf(url string) int {
	if strings.Contains(url, ",") {
		return 3
	}
	return 1
}

// routedStore opens the store RPC of the partition that owns stream,
// looked up in the partition map as every client does.
func routedStore(t *testing.T, ctx context.Context, nc *nats.Conn, m *partition.Map, stream string) store.Store {
	t.Helper()
	p, err := m.Route(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	var st store.Store
	checkFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		s, err := node.RPCClient{Transport: node.TransportNATS, Conn: nc, Subject: p.RPCSubject()}.Open(ctx, "test")
		st = s
		return err
	})
	t.Cleanup(func() { st.Close() })
	return st
}

// TestTwoPartitionsOneNATS reproduces issue 14: two partitions on one NATS
// server, each with its own store, ingester, sealer and signer. Every
// event is committed in its own partition's store only, remote reads of a
// stream are always answered by its partition's store, and no worker logs
// a problem with the other partition's segments (before partitions, the
// store RPC, appends, closes and announcements were one queue group
// across all ingesters: `head beta` answered "no entries" one time in
// three and alpha's signer failed on beta's segment ids).
func TestTwoPartitionsOneNATS(t *testing.T) {
	ns, err := pipeline.StartServer(pipeline.ServerConfig{Listen: "127.0.0.1:0", StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown) // after the partitions' workers (cleanups run last-in first-out)
	url := ns.ClientURL()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	m, err := partition.Open(ctx, js, partition.OpenConfig{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Add(ctx, "beta-part"); err != nil {
		t.Fatal(err)
	}
	if err := m.Assign(ctx, "beta", "beta-part"); err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	parts := map[string]*partitionNode{
		wire.DefaultPartition: startPartition(t, url, wire.DefaultPartition, logs),
		"beta-part":           startPartition(t, url, "beta-part", logs),
	}
	owner := map[string]string{"alpha": wire.DefaultPartition, "beta": "beta-part"}

	pc, err := producer.New(nc, producer.Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	const perStream = 6
	for i := range perStream {
		for _, stream := range []string{"alpha", "beta"} {
			f, err := pc.Publish(ctx, stream, producer.Event{Type: "t", Severity: wire.Info, Producer: "it", Payload: payloadOf(i)})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.Wait(ctx); err != nil {
				t.Fatalf("%s event %d: %v", stream, i, err)
			}
		}
	}
	// Each store holds exactly its own streams.
	for stream, p := range owner {
		st := localStore(t, ctx, parts[p].info.StoreSpec, nc, p)
		if n := len(streamEntries(t, st, stream)); n != perStream {
			t.Errorf("partition %s holds %d entries of %s, want %d", p, n, stream, perStream)
		}
		for other, op := range owner {
			if op != p {
				if n := len(streamEntries(t, st, other)); n != 0 {
					t.Errorf("partition %s holds %d entries of %s (owned by %s)", p, n, other, op)
				}
			}
		}
	}
	// Remote reads are routed by the map and never answered by the wrong store.
	for stream := range owner {
		st := routedStore(t, ctx, nc, m, stream)
		for i := range 100 {
			head, ok, err := st.Head(ctx, stream)
			if err != nil || !ok || head == 0 {
				t.Fatalf("read %d of %s's head: %d %v %v (answered by the wrong store)", i, stream, head, ok, err)
			}
		}
	}
	// The CLI's remote commands are routed the same way (the issue's
	// `securelog --store remote:x --transport nats head beta`).
	remote := []string{"--store", "remote:x", "--transport", "nats", "--nats", url}
	for stream := range owner {
		for range 5 {
			out, err := exec.Command(securelogBin, append(remote, "head", stream)...).CombinedOutput()
			if err != nil || strings.TrimSpace(string(out)) != fmt.Sprint(perStream) {
				t.Fatalf("securelog head %s: %v\n%s", stream, err, out)
			}
		}
	}
	out, err := exec.Command(securelogBin, append(remote, "streams", "list")...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "alpha\t") || !strings.Contains(string(out), "beta\t") {
		t.Fatalf("streams list does not merge the partitions: %v\n%s", err, out)
	}
	out, err = exec.Command(securelogBin, append(remote, "--partition", "nope", "head", "alpha")...).CombinedOutput()
	if err == nil || !strings.Contains(string(out), `unknown partition "nope" (known partitions: default, beta-part;`) {
		t.Fatalf("unknown partition: %v\n%s", err, out)
	}
	// The query API of either partition answers for every stream (issue 14
	// item 4): a stream's requests are forwarded to its owner, the stream
	// list merges both partitions'.
	for p := range parts {
		var base string
		checkFor(t, 30*time.Second, 50*time.Millisecond, func() error {
			u, ok, err := m.HTTP(ctx, p)
			if err != nil || !ok {
				return fmt.Errorf("partition %s's HTTP address: %v %v", p, ok, err)
			}
			base = u
			return nil
		})
		var list queryapi.Streams
		getJSON(t, base+"/v1/streams", &list)
		var names []string
		for _, s := range list.Streams {
			names = append(names, s.Name)
		}
		if !slices.Contains(names, "alpha") || !slices.Contains(names, "beta") {
			t.Errorf("GET /v1/streams on partition %s lists %v, want alpha and beta", p, names)
		}
		for stream := range owner {
			var page queryapi.Page
			getJSON(t, base+"/v1/streams/"+stream+"/entries", &page)
			if len(page.Entries) != perStream {
				t.Errorf("GET /v1/streams/%s/entries on partition %s: %d entries, want %d", stream, p, len(page.Entries), perStream)
			}
		}
	}
	// Every segment of both partitions is signed by its own signer, and
	// every stream verifies against its partition's keys.
	for stream, p := range owner {
		st := routedStore(t, ctx, nc, m, stream)
		checkFor(t, 60*time.Second, 50*time.Millisecond, func() error {
			segs, err := st.SegmentsList(ctx, stream)
			if err != nil {
				return err
			}
			if len(segs) == 0 || segs[len(segs)-1].SeqEnd < perStream {
				return fmt.Errorf("%s: %d segments, not yet covering all entries", stream, len(segs))
			}
			for _, s := range segs {
				if len(s.Signature) == 0 {
					return fmt.Errorf("%s: segment %d unsigned", stream, s.SegmentID)
				}
			}
			return nil
		})
		if rep := auditStream(t, st, parts[p].info.TrustFile, stream, false); rep.Entries != perStream || rep.OpenEntries != 0 {
			t.Errorf("%s: audit covers %+v", stream, rep)
		}
	}
	if l := logs.String(); strings.Contains(l, "not found") || strings.Contains(l, "level=ERROR") {
		t.Errorf("workers logged problems:\n%s", l)
	}
}

// getJSON decodes the JSON answer of GET url into v (200 only).
func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %s", url, resp.Status, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v\n%s", url, err, body)
	}
}

// localStore reads partition p's store through its own RPC subject.
func localStore(t *testing.T, ctx context.Context, _ string, nc *nats.Conn, p string) store.Store {
	t.Helper()
	part, err := wire.NewPartition(p)
	if err != nil {
		t.Fatal(err)
	}
	var st store.Store
	checkFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		s, err := node.RPCClient{Transport: node.TransportNATS, Conn: nc, Subject: part.RPCSubject()}.Open(ctx, "test")
		st = s
		return err
	})
	t.Cleanup(func() { st.Close() })
	return st
}
