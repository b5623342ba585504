package pipeline

import (
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// StartTimeout bounds how long StartServer waits for the server to accept
// connections when it reports no error (JetStream recovering a large
// store can take a while).
const StartTimeout = 30 * time.Second

// startPoll is how often StartServer checks for a startup error while the
// server is not yet ready: nats-server offers no readiness channel.
const startPoll = 50 * time.Millisecond

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
	// Logger receives the server's warnings and errors (nil: discarded).
	// Startup errors are returned by StartServer in any case.
	Logger *slog.Logger
	// NkeyUsers, if set, are the only clients the server accepts (in-process
	// connections included): each authenticates by signing the server's
	// nonce with its nkey and gets its Permissions. Empty leaves the server
	// open to every client (securelog up --insecure).
	NkeyUsers []*server.NkeyUser
}

// startLog is the embedded server's logger: it forwards warnings and
// errors to an slog.Logger and reports the first fatal or error message
// of startup on failed.
type startLog struct {
	log    *slog.Logger
	failed chan string
}

func (l *startLog) fail(msg string) {
	select {
	case l.failed <- msg:
	default:
	}
}

func (l *startLog) Noticef(string, ...any) {}
func (l *startLog) Debugf(string, ...any)  {}
func (l *startLog) Tracef(string, ...any)  {}
func (l *startLog) Warnf(format string, v ...any) {
	l.log.Warn("nats-server: " + fmt.Sprintf(format, v...))
}
func (l *startLog) Errorf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.log.Error("nats-server: " + msg)
	l.fail(msg)
}
func (l *startLog) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.log.Error("nats-server: " + msg)
	l.fail(msg)
}

// StartServer starts an embedded nats-server with JetStream and waits until
// it accepts connections. A startup failure (e.g. a taken port) returns at
// once with the server's own message, which names the address.
func StartServer(cfg ServerConfig) (*server.Server, error) {
	opts := &server.Options{
		ServerName: cfg.ServerName, JetStream: true, StoreDir: cfg.StoreDir, SyncAlways: cfg.SyncAlways,
		NoSigs: true, MaxPayload: 8 << 20, Nkeys: cfg.NkeyUsers,
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
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	sl := &startLog{log: log, failed: make(chan string, 1)}
	s.SetLoggerV2(sl, false, false, false)
	go s.Start()
	deadline := time.Now().Add(StartTimeout)
	for !s.ReadyForConnections(startPoll) {
		select {
		case msg := <-sl.failed:
			s.Shutdown()
			return nil, fmt.Errorf("nats-server (listen %q, store %s): %s", cfg.Listen, cfg.StoreDir, msg)
		default:
		}
		if time.Now().After(deadline) {
			s.Shutdown()
			return nil, fmt.Errorf("nats-server did not become ready in %v (listen %q, store %s)", StartTimeout, cfg.Listen, cfg.StoreDir)
		}
	}
	return s, nil
}
