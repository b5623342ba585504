// Package rpctest starts RPC servers for tests: an embedded, in-process
// nats-server and an rpcserver over a store on HTTP (httptest) or NATS.
package rpctest

import (
	"context"
	"fmt"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/securelog/securelog/pkg/rpcserver"
	"github.com/securelog/securelog/pkg/store"
)

// StartNATS starts an in-process nats-server on a random loopback port
// (no JetStream) and shuts it down at test cleanup.
func StartNATS(tb testing.TB) *server.Server {
	tb.Helper()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		tb.Fatalf("nats-server: %v", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		tb.Fatal("nats-server not ready after 10s")
	}
	tb.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	return ns
}

// Connect dials ns and closes the connection at test cleanup.
func Connect(tb testing.TB, ns *server.Server) *nats.Conn {
	tb.Helper()
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		tb.Fatalf("connect %s: %v", ns.ClientURL(), err)
	}
	tb.Cleanup(nc.Close)
	return nc
}

// ServeHTTP serves st on an httptest server and returns its URL. The
// server is closed at test cleanup (the store is not).
func ServeHTTP(tb testing.TB, st store.Store, cfg rpcserver.Config) string {
	tb.Helper()
	s, err := rpcserver.New(st, cfg, nil)
	if err != nil {
		tb.Fatalf("rpcserver.New: %v", err)
	}
	hs := httptest.NewServer(s.Handler())
	tb.Cleanup(hs.Close)
	return hs.URL
}

var subjects atomic.Int64

// ServeNATS serves st on a fresh subject of nc and returns the subject. The
// subscription is drained at test cleanup and in-flight requests finish.
func ServeNATS(tb testing.TB, nc *nats.Conn, st store.Store, cfg rpcserver.Config) string {
	tb.Helper()
	s, err := rpcserver.New(st, cfg, nil)
	if err != nil {
		tb.Fatalf("rpcserver.New: %v", err)
	}
	subject := fmt.Sprintf("securelog.rpc.test.%d", subjects.Add(1))
	sub, err := s.ServeNATS(context.Background(), nc, subject)
	if err != nil {
		tb.Fatalf("ServeNATS: %v", err)
	}
	if err := nc.Flush(); err != nil {
		tb.Fatalf("flush: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.StopNATS(ctx, sub); err != nil {
			tb.Errorf("StopNATS: %v", err)
		}
	})
	return subject
}
