package httpserver_test

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/securelog/securelog/pkg/httpserver"
	"github.com/securelog/securelog/pkg/httpserver/httpservertest"
)

// readAll answers like the RPC server: it reads the whole body first.
var readAll = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	if _, err := io.ReadAll(r.Body); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	_, _ = io.WriteString(w, "ok")
})

func start(t *testing.T, cfg httpserver.Config) *httpserver.Server {
	t.Helper()
	s, err := httpserver.Start("127.0.0.1:0", readAll, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

var short = httpserver.Config{ReadHeaderTimeout: 200 * time.Millisecond, ReadTimeout: 400 * time.Millisecond}

func TestSlowBodiesAreCut(t *testing.T) {
	s := start(t, short)
	httpservertest.DribbleBodies(t, s.Addr(), "/", 50, 10*time.Second)
}

func TestSlowHeadersAreCut(t *testing.T) {
	s := start(t, short)
	httpservertest.DribbleHeaders(t, s.Addr(), 50, 10*time.Second)
}

func TestServesAfterSlowClients(t *testing.T) {
	s := start(t, httpserver.Config{ReadHeaderTimeout: 200 * time.Millisecond, ReadTimeout: 400 * time.Millisecond, MaxConns: 8})
	// More slow clients than the connection cap: they are served in turn
	// (cut by the read timeout), and a normal client gets through after.
	httpservertest.DribbleBodies(t, s.Addr(), "/", 24, 20*time.Second)
	resp, err := http.Post("http://"+s.Addr()+"/", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if b, _ := io.ReadAll(resp.Body); resp.StatusCode != 200 || string(b) != "ok" {
		t.Fatalf("after slow clients: %d %q", resp.StatusCode, b)
	}
}

func TestHeaderCap(t *testing.T) {
	s := start(t, httpserver.Config{MaxHeaderBytes: 4 << 10})
	req, _ := http.NewRequest(http.MethodGet, "http://"+s.Addr()+"/", nil)
	req.Header.Set("X-Big", strings.Repeat("a", 64<<10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("64 KiB header with a 4 KiB cap: status %d, want 431", resp.StatusCode)
	}
}

func TestDefaults(t *testing.T) {
	srv := httpserver.New(readAll, httpserver.Config{})
	if srv.ReadHeaderTimeout != httpserver.DefaultReadHeaderTimeout || srv.ReadTimeout != httpserver.DefaultReadTimeout ||
		srv.WriteTimeout != httpserver.DefaultWriteTimeout || srv.IdleTimeout != httpserver.DefaultIdleTimeout ||
		srv.MaxHeaderBytes != httpserver.DefaultMaxHeaderBytes {
		t.Errorf("defaults not applied: %+v", srv)
	}
	off := httpserver.New(readAll, httpserver.Config{ReadTimeout: -1, WriteTimeout: -1})
	if off.ReadTimeout != 0 || off.WriteTimeout != 0 || off.ReadHeaderTimeout != httpserver.DefaultReadHeaderTimeout {
		t.Errorf("negative must turn a limit off: %+v", off)
	}
}

// TestLimitListener: with n connections open, Accept waits until one closes.
func TestLimitListener(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := httpserver.LimitListener(inner, 2)
	defer ln.Close()
	var clients []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", inner.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
		defer c.Close()
	}
	a, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ln.Accept(); err != nil {
		t.Fatal(err)
	}
	third := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			third <- c
		}
		close(third)
	}()
	select {
	case <-third:
		t.Fatal("third Accept returned while two connections are open")
	case <-time.After(100 * time.Millisecond):
	}
	_ = a.Close()
	_ = a.Close() // a second Close releases nothing more
	if c, ok := <-third; !ok {
		t.Fatal("third Accept failed after a connection closed")
	} else {
		_ = c.Close()
	}
	_ = ln.Close()
	if _, err := ln.Accept(); err == nil {
		t.Fatal("Accept after Close succeeded")
	}
}
