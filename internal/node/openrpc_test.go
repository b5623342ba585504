package node

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/securelog/securelog/pkg/rpcserver"
	"github.com/securelog/securelog/pkg/store/memory"
)

// A split worker over the HTTP store RPC waits, like one over NATS, while
// its ingester is not up yet: nothing listens on the port (connection
// refused), or the ingester's listener answers 503 while it waits for
// JetStream. Anything else is an error at once.
func TestOpenRPCWaitsForTheHTTPStoreServer(t *testing.T) {
	st := memory.New()
	srv, err := rpcserver.New(st, rpcserver.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("connection refused, then listening", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close() // nothing listens there until the server starts below
		go func() {
			time.Sleep(2 * time.Second)
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				t.Error(err)
				return
			}
			hs := &httptest.Server{Listener: ln, Config: &http.Server{Handler: srv.Handler()}}
			hs.Start()
			t.Cleanup(hs.Close)
		}()
		waitsThenOpens(t, RPCClient{Transport: TransportHTTP, URL: "http://" + addr + "/"})
	})
	t.Run("503 while starting", func(t *testing.T) {
		var n atomic.Int32
		hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if n.Add(1) <= 6 {
				http.Error(w, "waiting for JetStream", http.StatusServiceUnavailable)
				return
			}
			srv.Handler().ServeHTTP(w, r)
		}))
		t.Cleanup(hs.Close)
		waitsThenOpens(t, RPCClient{Transport: TransportHTTP, URL: hs.URL + "/"})
	})
	t.Run("a refusal is not waited for", func(t *testing.T) {
		hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "forbidden", http.StatusForbidden)
		}))
		t.Cleanup(hs.Close)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		b := newBuilder(ctx, quietLogger())
		defer b.cl.close()
		if _, err := b.openRPC(RPCClient{Transport: TransportHTTP, URL: hs.URL + "/"}, "sealer"); err == nil || ctx.Err() != nil {
			t.Fatalf("openRPC against a 403: %v (context %v)", err, ctx.Err())
		}
	})
}

// waitsThenOpens opens rpc with openRPC and checks it waited and said so.
func waitsThenOpens(t *testing.T, rpc RPCClient) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var log lockedBuffer
	b := newBuilder(ctx, slog.New(slog.NewTextHandler(&log, nil)))
	defer b.cl.close()
	if _, err := b.openRPC(rpc, "sealer"); err != nil {
		t.Fatalf("openRPC: %v\n%s", err, log.String())
	}
	if !strings.Contains(log.String(), "waiting for the store RPC") || !strings.Contains(log.String(), "the store RPC answers") {
		t.Errorf("log does not say it waited:\n%s", log.String())
	}
}
