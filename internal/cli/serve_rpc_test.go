package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/securelog/securelog/internal/node"
	"github.com/securelog/securelog/pkg/pipeline"
	"github.com/securelog/securelog/pkg/queryapi"
	"github.com/securelog/securelog/pkg/secretfile"
	"github.com/securelog/securelog/pkg/wire"
)

// httpGet returns the status and body of GET url.
func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestServeRPCQueryAPINATS: serve-rpc's query API follows commits and
// reads the DLQ from the NATS server of --nats, and serves the store RPC
// there, connecting with --creds (an authenticated server); without --nats, follow and the DLQ answer
// 503 with a message that says what to pass (issue 12: serve-rpc had no
// NATS for its query API, so both always answered 503).
func TestServeRPCQueryAPINATS(t *testing.T) {
	clearEnv(t, "SECURELOG_STORE", "SECURE_LOG_STORE_CONFIG", "SECURELOG_NATS", "SECURELOG_CREDS")
	dir := t.TempDir()

	// Without NATS: 503 naming --nats.
	out, errs := startCLI(t, "serve-rpc", "--store", "pebble:"+filepath.Join(dir, "plain"), "--listen", "127.0.0.1:0")
	base := "http://" + waitMatch(t, out, errs, `serving \S+ on http://(\S+)`)
	for _, p := range []string{"/v1/dlq", "/v1/streams/default/follow"} {
		if code, body := httpGet(t, base+p); code != http.StatusServiceUnavailable || !strings.Contains(body, "--nats") {
			t.Errorf("GET %s without NATS: %d %s; want 503 naming --nats", p, code, body)
		}
	}

	// An authenticated nats-server (the users `up` generates) with the
	// pipeline's JetStream streams and one dead-lettered event.
	creds, _, err := node.EnsureCredentials(filepath.Join(dir, "data"), secretfile.Policy{})
	if err != nil {
		t.Fatal(err)
	}
	ns, err := pipeline.StartServer(pipeline.ServerConfig{Listen: "127.0.0.1:0", StoreDir: filepath.Join(dir, "nats"), NkeyUsers: creds.NkeyUsers()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	admin := node.NKeyFile(filepath.Join(dir, "data"), node.RoleAdmin)
	nc, err := node.NATSClient{URL: ns.ClientURL(), NKeyFile: admin}.Connect("test")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := pipeline.EnsureStreams(ctx, js, pipeline.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	dlq, _ := json.Marshal(wire.DLQMsg{Stream: "default", MsgID: "bad-1", Reason: "invalid severity", Data: []byte(`{"severity":"loud"}`)})
	if _, err := js.Publish(ctx, wire.SubjectFor(wire.KindDLQ, "default"), dlq); err != nil {
		t.Fatal(err)
	}

	ingester := node.NKeyFile(filepath.Join(dir, "data"), node.RoleIngester)
	out, errs = startCLI(t, "--creds", ingester, "serve-rpc", "--store", "pebble:"+filepath.Join(dir, "store"), "--listen", "127.0.0.1:0", "--nats", ns.ClientURL())
	base = "http://" + waitMatch(t, out, errs, `serving \S+ on http://(\S+)`)
	code, body := httpGet(t, base+"/v1/dlq")
	var d queryapi.DLQ
	if code != http.StatusOK || json.Unmarshal([]byte(body), &d) != nil || len(d.Entries) != 1 || d.Entries[0].MsgID != "bad-1" {
		t.Fatalf("GET /v1/dlq with --nats: %d %s; want the dead-lettered event", code, body)
	}

	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/streams/default/follow", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("follow with --nats: %d %s", resp.StatusCode, b)
	}
	followed := make(chan queryapi.Entry, 4)
	go func() {
		defer close(followed)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var e queryapi.Entry
				if json.Unmarshal([]byte(data), &e) == nil {
					followed <- e
				}
			}
		}
	}()
	// An entry written through the store RPC served on NATS, then its
	// commit receipt (what an ingester writing to this store publishes).
	mustCLI(t, "--creds", admin, "--store", "remote:x", "--transport", "nats", "--nats", ns.ClientURL(), "--no-head-file",
		"append", "default", "--type", "auth.login", "--producer", "p", "--payload", "followed")
	if err := nc.Publish(wire.SubjectFor(wire.KindCommitted, "default"), []byte(`{"seqno":1}`)); err != nil {
		t.Fatal(err)
	}
	select {
	case e, ok := <-followed:
		if !ok || e.Seqno != 1 || e.EventType != "auth.login" {
			t.Fatalf("followed %+v (open %v), want seqno 1 auth.login", e, ok)
		}
	case <-ctx.Done():
		t.Fatal("follow delivered nothing")
	}
}
