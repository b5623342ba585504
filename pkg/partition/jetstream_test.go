package partition

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/securelog/securelog/pkg/wire"
)

func TestJetStreamMap(t *testing.T) {
	ns, err := server.NewServer(&server.Options{JetStream: true, StoreDir: t.TempDir(), DontListen: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	nc, err := nats.Connect("", nats.InProcessServer(ns))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Without the bucket: everything is default, changes say why not.
	m0, err := Open(ctx, js, OpenConfig{})
	if err != nil || m0.HasBucket() {
		t.Fatalf("open without bucket: %v", err)
	}
	if _, err := m0.Add(ctx, "p1"); !errors.Is(err, ErrNoMap) {
		t.Fatalf("add: %v", err)
	}
	m, err := Open(ctx, js, OpenConfig{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Add(ctx, "p1"); err != nil {
		t.Fatal(err)
	}
	if err := m.Assign(ctx, "ünï", "p1"); err != nil {
		t.Fatal(err)
	}
	m2, err := Open(ctx, js, OpenConfig{})
	if err != nil || !m2.HasBucket() {
		t.Fatalf("open existing: %v", err)
	}
	s, err := m2.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Partitions) != 2 || s.Owners["ünï"] != "p1" {
		t.Fatalf("snapshot %+v", s)
	}
	var conf *wire.PartitionConflictError
	if err := m2.Claim(ctx, "ünï", wire.DefaultPartition); !errors.As(err, &conf) || conf.Owner != "p1" {
		t.Fatalf("claim: %v", err)
	}
	// The leader read (a direct get's confirmation) agrees with the bucket.
	k := JetStreamKV{KV: nil, Conn: nc}
	if v, ok, err := k.leaderGet(ctx, StreamKey("ünï")); err != nil || !ok || string(v) != "p1" {
		t.Fatalf("leader read of an assigned stream: %q %v %v", v, ok, err)
	}
	if _, ok, err := k.leaderGet(ctx, StreamKey("nobody")); err != nil || ok {
		t.Fatalf("leader read of an unassigned stream: %v %v", ok, err)
	}
}
