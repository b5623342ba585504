package integration

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/securelog/securelog/internal/node"
	"github.com/securelog/securelog/pkg/pipeline"
	"github.com/securelog/securelog/pkg/producer"
	"github.com/securelog/securelog/pkg/wire"
)

// TestIngesterWaitsForMetaLeader (issue 14): an ingester started against
// a 3-node JetStream cluster of which one node is up (no meta leader: its
// JetStream API requests go unanswered, then fail with "JetStream system
// temporarily unavailable") waits instead of failing or hanging silently:
// its log and /healthz say that the cluster has no meta leader. Once the
// other two nodes come up it starts by itself and commits events. Before
// the fix it gave up at once ("partition map bucket SECURELOG_PARTITIONS:
// ...") and the ingester's other JetStream requests waited silently.
func TestIngesterWaitsForMetaLeader(t *testing.T) {
	opts := clusterOptions(t)
	n1 := startClusterNode(t, opts[0])
	info, err := node.PrepareData(t.TempDir(), pipeline.DefaultIdentity)
	if err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	httpAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- node.RunIngester(ctx, node.IngesterConfig{NATS: node.NATSClient{URL: n1.ClientURL()},
			Store: node.StoreConfig{Spec: info.StoreSpec}, HTTPListen: httpAddr, HeadFile: info.HeadFile, KEKFile: info.KEKFile,
			Tlog: node.TlogConfig{Off: true}, Logger: slog.New(slog.NewTextHandler(logs, nil)),
			Worker: pipeline.IngesterConfig{Streams: pipeline.StreamConfig{Replicas: 3}}})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
		}
		if t.Failed() {
			t.Logf("ingester's log:\n%s", logs.String())
		}
	})
	healthz := func() (int, string, error) {
		resp, err := http.Get("http://" + httpAddr + "/healthz")
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), err
	}
	// running fails the test if the ingester gave up.
	running := func() {
		select {
		case err := <-done:
			t.Fatalf("the ingester returned while the cluster has no meta leader: %v", err)
		default:
		}
	}
	checkFor(t, 2*time.Minute, 100*time.Millisecond, func() error {
		running()
		code, body, err := healthz()
		if err != nil {
			return err
		}
		if code != http.StatusServiceUnavailable || !strings.Contains(body, "no meta leader") {
			return fmt.Errorf("/healthz %d %q, want 503 naming the missing meta leader", code, body)
		}
		return nil
	})
	if l := logs.String(); !strings.Contains(l, "waiting for JetStream") || !strings.Contains(l, "no meta leader") {
		t.Fatalf("the log does not say what the ingester waits for:\n%s", l)
	}
	// The rest of the cluster comes up: the ingester starts by itself.
	startClusterNode(t, opts[1])
	startClusterNode(t, opts[2])
	checkFor(t, 3*time.Minute, 100*time.Millisecond, func() error {
		running()
		code, body, err := healthz()
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return fmt.Errorf("/healthz %d %q once the cluster is up", code, body)
		}
		return nil
	})
	if l := logs.String(); !strings.Contains(l, "JetStream ready") {
		t.Fatalf("the log does not say the wait ended:\n%s", l)
	}
	nc, err := nats.Connect(n1.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	pc, err := producer.New(nc, producer.Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	pctx, pcancel := context.WithTimeout(ctx, 2*time.Minute)
	defer pcancel()
	f, err := pc.Publish(pctx, "after-wait", producer.Event{Type: "t", Severity: wire.Info, Producer: "it", Payload: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Wait(pctx); err != nil {
		t.Fatalf("event after the cluster came up: %v", err)
	}
}
