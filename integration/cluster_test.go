package integration

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/securelog/securelog/pkg/pipeline"
	"github.com/securelog/securelog/pkg/securelog"
	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/wire"
)

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// clusterOptions are the options of three JetStream servers clustered
// on free ports (sync_interval always); startClusterNode starts one.
func clusterOptions(t *testing.T) []*server.Options {
	t.Helper()
	ports := []int{freePort(t), freePort(t), freePort(t)}
	var routes []string
	for _, p := range ports {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", p))
	}
	var out []*server.Options
	for i, p := range ports {
		out = append(out, &server.Options{
			ServerName: fmt.Sprintf("n%d", i+1), Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true,
			JetStream: true, StoreDir: filepath.Join(t.TempDir(), fmt.Sprint(i)), SyncAlways: true,
			Cluster: server.ClusterOpts{Name: "securelog", Host: "127.0.0.1", Port: p},
			Routes:  server.RoutesFromStr(strings.Join(routes, ",")),
		})
	}
	return out
}

// startClusterNode starts the server of opts; it shuts down at cleanup.
func startClusterNode(t *testing.T, opts *server.Options) *server.Server {
	t.Helper()
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		t.Fatalf("server %s not ready", opts.ServerName)
	}
	t.Cleanup(s.Shutdown)
	return s
}

// startCluster starts three JetStream servers in one process, clustered
// (sync_interval always), and returns them with the client URLs.
func startCluster(t *testing.T) ([]*server.Server, string) {
	t.Helper()
	var servers []*server.Server
	var urls []string
	for _, opts := range clusterOptions(t) {
		s := startClusterNode(t, opts)
		servers = append(servers, s)
		urls = append(urls, s.ClientURL())
	}
	checkFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		for _, s := range servers {
			if s.JetStreamIsLeader() {
				return nil
			}
		}
		return fmt.Errorf("no JetStream meta leader yet")
	})
	return servers, strings.Join(urls, ",")
}

// TestClusterR3NodeStopped: with SECURELOG_IN replicated on a 3-node
// JetStream cluster, one node is stopped in the middle of the load. Every
// event whose publish was acknowledged (retried with the same Nats-Msg-Id
// after failures) is committed exactly once.
func TestClusterR3NodeStopped(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test")
	}
	servers, urls := startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Clients fail over to the remaining nodes.
	nc, err := nats.Connect(urls, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond), nats.DontRandomize())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(256))
	if err != nil {
		t.Fatal(err)
	}
	// "no suitable peers for placement" right after election: EnsureStreams retries.
	if err := pipeline.EnsureStreams(ctx, js, pipeline.StreamConfig{Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, "pebble:"+filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	l := securelog.New(st, securelog.Options{Logger: testLogger(t)})
	if err := l.OpenInitialized(ctx); err != nil {
		t.Fatal(err)
	}
	in, err := pipeline.NewIngester(pipeline.IngesterConfig{Log: l, Conn: nc, Logger: testLogger(t), Streams: pipeline.StreamConfig{Replicas: 3}})
	if err != nil {
		t.Fatal(err)
	}
	ictx, icancel := context.WithCancel(ctx)
	idone := make(chan struct{})
	go func() { _ = in.Run(ictx); close(idone) }()
	defer func() { icancel(); <-idone }()
	checkFor(t, 30*time.Second, 10*time.Millisecond, func() error {
		if !in.Ready() {
			return fmt.Errorf("ingester not ready")
		}
		return nil
	})

	const total, stream = 3000, "ha"
	msg := func(i int) *nats.Msg {
		return natsMsg(wire.SubjectFor(wire.KindIn, stream),
			fmt.Sprintf(`{"type":"t","severity":"info","producer":"p","payload":"%s"}`, payloadOf(i)), fmt.Sprintf("ha-%d", i))
	}
	// publishAll publishes [from, to) and retries every failed publish with
	// the same msg id until JetStream acknowledges it.
	publishAll := func(from, to int) {
		pending := map[int]jetstream.PubAckFuture{}
		todo := make([]int, 0, to-from)
		for i := from; i < to; i++ {
			todo = append(todo, i)
		}
		for len(todo) > 0 || len(pending) > 0 {
			for _, i := range todo {
				f, err := js.PublishMsgAsync(msg(i), jetstream.WithStallWait(10*time.Second))
				if err != nil {
					t.Logf("publish %d: %v (retrying)", i, err)
					time.Sleep(50 * time.Millisecond)
					todo = append(todo, i)
					continue
				}
				pending[i] = f
			}
			todo = todo[:0]
			for i, f := range pending {
				select {
				case <-f.Ok():
				case <-f.Err():
					todo = append(todo, i)
				case <-time.After(20 * time.Second):
					todo = append(todo, i)
				}
				delete(pending, i)
			}
			if ctx.Err() != nil {
				t.Fatal("publishing did not finish")
			}
		}
	}
	publishAll(0, total/2)
	// Stop the stream's leader mid-load: the hardest node to lose.
	sinfo, err := js.Stream(ctx, wire.InStream)
	if err != nil {
		t.Fatal(err)
	}
	leader := sinfo.CachedInfo().Cluster.Leader
	for _, s := range servers {
		if s.Name() == leader {
			s.Shutdown()
		}
	}
	t.Logf("stopped node %s, the leader of %s", leader, wire.InStream)
	publishAll(total/2, total)

	checkFor(t, 90*time.Second, 20*time.Millisecond, func() error {
		if n := len(streamEntries(t, st, stream)); n < total {
			return fmt.Errorf("%d of %d committed", n, total)
		}
		return nil
	})
	rows := streamEntries(t, st, stream)
	seen := map[string]int{}
	for _, r := range rows {
		seen[string(r.Payload)]++
	}
	for i := range total {
		if c := seen[string(payloadOf(i))]; c != 1 {
			t.Fatalf("event %d committed %d times", i, c)
		}
	}
	if err := l.VerifyChain(ctx, stream, 1, rows[len(rows)-1].Seqno); err != nil {
		t.Fatal(err)
	}
}
