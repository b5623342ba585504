package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/securelog/securelog/internal/node"
	"github.com/securelog/securelog/pkg/pipeline"
	"github.com/securelog/securelog/pkg/producer"
	"github.com/securelog/securelog/pkg/securelog"
	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/wire"
)

// freeAddr returns a loopback address with a free port.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Issue 9 item 9, split deployment: the ingester's store is replaced by an
// older copy while JetStream keeps the newer events. Restarted, the
// ingester re-applied them from the store's older position, re-using
// seqnos and segment ids, and forked the history. It must find the store
// behind its own record of what it committed, stop ingesting, alert and
// report not ready.
func TestIngesterRefusesRolledBackStore(t *testing.T) {
	dir := t.TempDir()
	ns, err := pipeline.StartServer(pipeline.ServerConfig{StoreDir: filepath.Join(dir, "nats"), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	client := node.NATSClient{Server: ns}
	storeDir := filepath.Join(dir, "store")
	httpAddr := freeAddr(t)
	// run starts the split ingester; stop waits for it to return.
	run := func() (stop func()) {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- node.RunIngester(ctx, node.IngesterConfig{NATS: client, Store: node.StoreConfig{Spec: "pebble:" + storeDir},
				HTTPListen: httpAddr, Logger: testLogger(t), Tlog: node.TlogConfig{Off: true}})
		}()
		var once sync.Once
		stop = func() {
			once.Do(func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("ingester: %v", err)
				}
			})
		}
		t.Cleanup(stop)
		return stop
	}
	nc, err := client.Connect("test")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	publish := func(tag string, n int) {
		t.Helper()
		c, err := producer.New(nc, producer.Options{PollInterval: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		var futs []*producer.Future
		for i := range n {
			f, err := c.Publish(ctx, "orders", producer.Event{Type: "t", Severity: wire.Info, Producer: "it", Payload: fmt.Appendf(nil, "%s-%d", tag, i)})
			if err != nil {
				t.Fatal(err)
			}
			futs = append(futs, f)
		}
		for _, f := range futs {
			if _, err := f.Wait(ctx); err != nil {
				t.Fatal(err)
			}
		}
		// A request/reply append moves the store without JetStream.
		if _, err := c.Append(ctx, "orders", producer.Event{Type: "rr", Severity: wire.Info, Producer: "it", Payload: []byte(tag)}); err != nil {
			t.Fatal(err)
		}
	}
	head := func() uint64 {
		t.Helper()
		st, err := store.Open(ctx, "pebble:"+storeDir)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		h, _, err := st.GlobalHead(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}

	stop := run()
	publish("before", 5)
	stop()
	old := head()
	backup := filepath.Join(dir, "backup")
	copyTree(t, storeDir, backup)
	stop = run()
	publish("after", 5)
	stop()
	if h := head(); h <= old {
		t.Fatalf("store head %d after more commits, was %d", h, old)
	}

	// The older copy back in place; JetStream still holds the newer events.
	if err := os.RemoveAll(storeDir); err != nil {
		t.Fatal(err)
	}
	copyTree(t, backup, storeDir)
	alerts := make(chan wire.AlertMsg, 16)
	sub, err := nc.Subscribe(wire.KindAlert+">", func(m *nats.Msg) {
		var a wire.AlertMsg
		if json.Unmarshal(m.Data, &a) == nil {
			alerts <- a
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	stop = run()
	select {
	case a := <-alerts:
		if a.Kind != securelog.HaltRollback {
			t.Fatalf("alert %+v, want kind %s", a, securelog.HaltRollback)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("no alert from the ingester over a rolled-back store")
	}
	checkFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		resp, err := http.Get("http://" + httpAddr + "/healthz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return fmt.Errorf("/healthz ok over a rolled-back store")
		}
		return nil
	})
	// A request/reply append is refused too.
	c, err := producer.New(nc, producer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	actx, acancel := context.WithTimeout(ctx, 20*time.Second)
	defer acancel()
	if _, err := c.Append(actx, "orders", producer.Event{Type: "t", Severity: wire.Info, Producer: "it", Payload: []byte("fork")}); err == nil {
		t.Fatal("an append was committed to the rolled-back store")
	}
	stop()
	if h := head(); h != old {
		t.Fatalf("the ingester re-applied events over the rolled-back store: head %d, the copy's %d", h, old)
	}
}
