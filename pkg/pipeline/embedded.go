package pipeline

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// ServerConfig configures an embedded nats-server with JetStream.
type ServerConfig struct {
	// Listen is host:port for clients; port 0 picks a free port. Empty means
	// no TCP listener (in-process connections only).
	Listen string
	// StoreDir is the JetStream storage directory.
	StoreDir string
	// SyncAlways makes JetStream fsync every write (sync_interval: always):
	// "accepted" then survives a power loss. Default true in `securelog up`.
	SyncAlways bool
	// ServerName names the server (default "securelog").
	ServerName string
}

// StartServer starts an embedded nats-server with JetStream and waits until
// it accepts connections.
func StartServer(cfg ServerConfig) (*server.Server, error) {
	opts := &server.Options{
		ServerName: cfg.ServerName, JetStream: true, StoreDir: cfg.StoreDir, SyncAlways: cfg.SyncAlways,
		NoSigs: true, NoLog: true, MaxPayload: 8 << 20,
	}
	if opts.ServerName == "" {
		opts.ServerName = "securelog"
	}
	if cfg.Listen == "" {
		opts.DontListen = true
	} else {
		host, port, err := net.SplitHostPort(cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("nats listen address %q: %w", cfg.Listen, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return nil, fmt.Errorf("nats listen address %q: bad port", cfg.Listen)
		}
		if p == 0 {
			p = server.RANDOM_PORT
		}
		opts.Host, opts.Port = host, p
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("nats-server: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("nats-server did not become ready (listen %q, store %s)", cfg.Listen, cfg.StoreDir)
	}
	return s, nil
}
