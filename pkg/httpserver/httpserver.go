// Package httpserver builds every HTTP listener of securelog (the RPC
// server, the witness, the pipeline workers and `up`) with the same limits,
// so a slow or malicious client cannot hold connections forever:
//
//   - ReadHeaderTimeout bounds reading the request headers;
//   - ReadTimeout bounds reading the whole request, body included (a client
//     dribbling its body is cut off when it expires);
//   - WriteTimeout bounds writing the response;
//   - IdleTimeout bounds a kept-alive connection waiting for its next request;
//   - MaxHeaderBytes caps the request headers (431 above it);
//   - MaxConns caps the connections open at once: further connections wait
//     in the kernel's accept queue until one closes.
//
// Every default is an exported constant; a zero field of Config means the
// default, a negative one means no limit.
package httpserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"sync"
	"time"
)

// Defaults of Config.
const (
	// DefaultReadHeaderTimeout bounds reading a request's headers.
	DefaultReadHeaderTimeout = 10 * time.Second
	// DefaultReadTimeout bounds reading a whole request, body included.
	// Bodies are at most a few MiB (the RPC server's limit is 8 MiB), so 30 s
	// only cuts off clients slower than about 300 KiB/s at the largest body.
	DefaultReadTimeout = 30 * time.Second
	// DefaultWriteTimeout bounds writing a response (from the end of the
	// request headers).
	DefaultWriteTimeout = 60 * time.Second
	// DefaultIdleTimeout bounds a kept-alive connection between requests.
	DefaultIdleTimeout = 120 * time.Second
	// DefaultMaxHeaderBytes caps the request line and headers.
	DefaultMaxHeaderBytes = 64 << 10
	// DefaultMaxConns caps the connections served at once per listener.
	DefaultMaxConns = 256
	// DefaultShutdownTimeout bounds Server.Close's graceful shutdown.
	DefaultShutdownTimeout = 10 * time.Second
)

// Config holds the limits of one HTTP server. Zero fields take the
// defaults above; negative durations or counts turn a limit off.
type Config struct {
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	MaxHeaderBytes    int
	MaxConns          int
	// TLSConfig, if set, serves HTTPS with it.
	TLSConfig *tls.Config
	// ErrorLog receives the http.Server's own errors (nil: the log package).
	ErrorLog *log.Logger
}

func dur(v, def time.Duration) time.Duration {
	switch {
	case v == 0:
		return def
	case v < 0:
		return 0 // http.Server: zero means no timeout
	}
	return v
}

func count(v, def int) int {
	switch {
	case v == 0:
		return def
	case v < 0:
		return 0
	}
	return v
}

// New returns an http.Server for h with cfg's limits (MaxConns is applied
// by Listen or LimitListener, not by the http.Server).
func New(h http.Handler, cfg Config) *http.Server {
	mh := count(cfg.MaxHeaderBytes, DefaultMaxHeaderBytes)
	if mh == 0 {
		mh = http.DefaultMaxHeaderBytes
	}
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: dur(cfg.ReadHeaderTimeout, DefaultReadHeaderTimeout),
		ReadTimeout:       dur(cfg.ReadTimeout, DefaultReadTimeout),
		WriteTimeout:      dur(cfg.WriteTimeout, DefaultWriteTimeout),
		IdleTimeout:       dur(cfg.IdleTimeout, DefaultIdleTimeout),
		MaxHeaderBytes:    mh,
		TLSConfig:         cfg.TLSConfig,
		ErrorLog:          cfg.ErrorLog,
	}
}

// Listen opens a TCP listener on addr, limited to cfg.MaxConns connections
// at once.
func Listen(addr string, cfg Config) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	return LimitListener(ln, count(cfg.MaxConns, DefaultMaxConns)), nil
}

// Server is a running HTTP server (see Start).
type Server struct {
	srv  *http.Server
	ln   net.Listener
	done chan struct{}
	err  error // set before done is closed
}

// Start listens on addr (host:port, port 0 picks one) and serves h in a
// goroutine with cfg's limits; HTTPS if cfg.TLSConfig is set.
func Start(addr string, h http.Handler, cfg Config) (*Server, error) {
	ln, err := Listen(addr, cfg)
	if err != nil {
		return nil, err
	}
	return Serve(ln, h, cfg), nil
}

// Serve serves h on ln (which the caller may have wrapped with
// LimitListener) in a goroutine with cfg's timeouts.
func Serve(ln net.Listener, h http.Handler, cfg Config) *Server {
	s := &Server{srv: New(h, cfg), ln: ln, done: make(chan struct{})}
	go func() {
		var err error
		if s.srv.TLSConfig != nil {
			err = s.srv.ServeTLS(ln, "", "")
		} else {
			err = s.srv.Serve(ln)
		}
		if !errors.Is(err, http.ErrServerClosed) {
			s.err = err
		}
		close(s.done)
	}()
	return s
}

// Addr returns the listener's address (host:port).
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Done is closed when the server stops serving (after Shutdown or Close, or
// on a listener failure; see Err).
func (s *Server) Done() <-chan struct{} { return s.done }

// Err returns the serve error that stopped the server, nil after a
// Shutdown or Close. Valid once Done is closed.
func (s *Server) Err() error {
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}

// Shutdown stops accepting and waits for in-flight requests until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error { return s.srv.Shutdown(ctx) }

// Close shuts down gracefully, bounded by DefaultShutdownTimeout, then
// closes whatever is left.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), DefaultShutdownTimeout)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		_ = s.srv.Close()
		return err
	}
	return nil
}

// LimitListener returns ln accepting at most n connections open at once: Accept
// waits while n accepted connections are still open. n ≤ 0 returns ln.
func LimitListener(ln net.Listener, n int) net.Listener {
	if n <= 0 {
		return ln
	}
	return &limitListener{Listener: ln, sem: make(chan struct{}, n), closed: make(chan struct{})}
}

type limitListener struct {
	net.Listener
	sem       chan struct{}
	closeOnce sync.Once
	closed    chan struct{}
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.sem <- struct{}{}:
	case <-l.closed:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &limitConn{Conn: c, release: func() { <-l.sem }}, nil
}

func (l *limitListener) Close() error {
	err := l.Listener.Close()
	l.closeOnce.Do(func() { close(l.closed) })
	return err
}

type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
