package pipeline

import (
	"net"
	"strings"
	"testing"
)

// TestStartServerTakenPort: a taken NATS port fails at once with the
// embedded server's own error naming the port (issue 10: it waited 30 s
// and said only "did not become ready").
func TestStartServerTakenPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	_, port, _ := net.SplitHostPort(addr)
	s, err := StartServer(ServerConfig{Listen: addr, StoreDir: t.TempDir()})
	if err == nil {
		s.Shutdown()
		t.Fatal("started on a taken port")
	}
	if !strings.Contains(err.Error(), port) || !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("error %q does not name port %s and the server's error", err, port)
	}
}
