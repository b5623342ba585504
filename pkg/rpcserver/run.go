package rpcserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/securelog/securelog/pkg/httpserver"
	"github.com/securelog/securelog/pkg/store"
)

// ShutdownTimeout bounds the graceful shutdown of Run.
const ShutdownTimeout = 10 * time.Second

// Run serves st on HTTP (cfg.Listen) and/or NATS (cfg.NATSURL) until ctx is
// done, then shuts down gracefully (in-flight requests finish) and returns
// nil; a listener or connection failure returns an error. At least one of
// Listen and NATSURL must be set. st stays open: the caller opened it once
// at startup and closes it after Run returns.
func Run(ctx context.Context, st store.Store, cfg Config, log *slog.Logger) error {
	if cfg.Listen == "" && cfg.NATSURL == "" {
		return errors.New("rpcserver: nothing to serve: set Listen and/or NATSURL")
	}
	if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
		return fmt.Errorf("rpcserver: TLS needs both a certificate and a key (cert %q, key %q)", cfg.TLSCert, cfg.TLSKey)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s, err := New(st, cfg, log)
	if err != nil {
		return fmt.Errorf("rpcserver: %w", err)
	}
	errc := make(chan error, 1)
	var srv *httpserver.Server
	if cfg.Listen != "" {
		if srv, err = s.listenHTTP(cfg, errc); err != nil {
			return err
		}
	}
	var nc *nats.Conn
	var sub *NATSServing
	if cfg.NATSURL != "" {
		opts := append([]nats.Option{nats.Name("securelog-rpc-server"), nats.ClosedHandler(func(*nats.Conn) {
			select {
			case errc <- fmt.Errorf("rpcserver: NATS connection to %s closed", cfg.NATSURL):
			default:
			}
		})}, cfg.NATSOptions...)
		if nc, err = nats.Connect(cfg.NATSURL, opts...); err == nil {
			sub, err = s.ServeNATS(context.WithoutCancel(ctx), nc, cfg.Subject)
		}
		if err != nil {
			if nc != nil {
				nc.Close()
			}
			if srv != nil {
				_ = srv.Shutdown(context.Background())
			}
			return fmt.Errorf("rpcserver: nats %s: %w", cfg.NATSURL, err)
		}
		log.Info("rpc server serving on NATS", "url", cfg.NATSURL, "subject", sub.Subject, "read_subject", sub.ReadSubject, "auth", s.AuthEnabled(), "auth_by_nats_user", s.byUser)
	}

	select {
	case <-ctx.Done():
	case err = <-errc:
	}

	sctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	if srv != nil {
		if serr := srv.Shutdown(sctx); serr != nil {
			log.Warn("rpc server: HTTP shutdown", "error", serr)
		}
	}
	if sub != nil {
		if serr := s.StopNATS(sctx, sub); serr != nil {
			log.Warn("rpc server: NATS shutdown", "error", serr)
		}
		nc.Close()
	}
	return err
}

// listenHTTP starts the HTTP(S) server with cfg.HTTP's limits (package
// httpserver); serve errors go to errc.
func (s *Server) listenHTTP(cfg Config, errc chan<- error) (*httpserver.Server, error) {
	hc := cfg.HTTP
	hc.ErrorLog = slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)
	if cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("rpcserver: TLS key pair: %w", err)
		}
		hc.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	ln, err := httpserver.Listen(cfg.Listen, hc)
	if err != nil {
		return nil, fmt.Errorf("rpcserver: %w", err)
	}
	addr := ln.Addr().String()
	if !s.AuthEnabled() && !isLoopback(ln.Addr()) {
		s.log.Warn("rpc server: authentication is OFF on a non-loopback address; any caller has full store access (set a tokens file)", "addr", addr)
	}
	s.log.Info("rpc server listening", "addr", addr, "tls", hc.TLSConfig != nil, "auth", s.AuthEnabled())
	h := s.Handler()
	if cfg.Mount != nil {
		h = cfg.Mount(s, h)
	}
	srv := httpserver.Serve(ln, h, hc)
	go func() {
		<-srv.Done()
		if err := srv.Err(); err != nil {
			select {
			case errc <- fmt.Errorf("rpcserver: serve HTTP: %w", err):
			default:
			}
		}
	}()
	if cfg.OnListen != nil {
		cfg.OnListen(addr)
	}
	return srv, nil
}

func isLoopback(a net.Addr) bool {
	tcp, ok := a.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}
