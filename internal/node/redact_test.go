package node

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestIngesterDoesNotLogNATSPassword reproduces issue 10: an ingester whose
// NATS URL carries user:password logged the URL, password included.
func TestIngesterDoesNotLogNATSPassword(t *testing.T) {
	const secret = "s3cret-nats-password"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: t.TempDir(),
		Users: []*server.User{{Username: "ingester", Password: secret}}, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	defer ns.Shutdown()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	var logs lockedBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	url := fmt.Sprintf("nats://ingester:%s@127.0.0.1:%d", secret, port)
	go func() {
		done <- RunIngester(ctx, IngesterConfig{NATS: NATSClient{URL: url},
			Store:  StoreConfig{Spec: "pebble:" + filepath.Join(t.TempDir(), "store")},
			Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	}()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(logs.String(), "ingester starting") {
		select {
		case err := <-done:
			t.Fatalf("ingester stopped: %v\n%s", err, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no start line after 30 s:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done
	out := logs.String()
	if strings.Contains(out, secret) {
		t.Fatalf("the log contains the NATS password:\n%s", out)
	}
	if !strings.Contains(out, fmt.Sprintf("127.0.0.1:%d", port)) {
		t.Errorf("the log no longer names the NATS server:\n%s", out)
	}
}

func TestNATSClientRedacted(t *testing.T) {
	for in, want := range map[string]string{
		"nats://u:pw@h:4222,nats://u:pw@k:4222": "nats://u:xxxxx@h:4222,nats://u:xxxxx@k:4222",
		"nats://tok3n@h:4222":                   "nats://xxxxx@h:4222",
		"nats://h:4222":                         "nats://h:4222",
		"":                                      "nats://127.0.0.1:4222",
	} {
		if got := (NATSClient{URL: in}).Redacted(); got != want {
			t.Errorf("Redacted(%q) = %q, want %q", in, got, want)
		}
	}
}
