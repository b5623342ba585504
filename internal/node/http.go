package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/securelog/securelog/pkg/httpserver"
)

// ShutdownTimeout bounds the graceful shutdown of a listener.
const ShutdownTimeout = 10 * time.Second

// healthChecks are checks (such as securelog.Log.Healthy) that /healthz
// runs besides readiness; parts built later add theirs.
type healthChecks struct {
	mu     sync.Mutex
	checks []func() error
}

func (h *healthChecks) add(f func() error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.checks = append(h.checks, f)
}

// ok reports whether every check passes.
func (h *healthChecks) ok() bool {
	h.mu.Lock()
	checks := h.checks
	h.mu.Unlock()
	for _, f := range checks {
		if f() != nil {
			return false
		}
	}
	return true
}

// HTTPHandler serves GET /healthz (200 "ok" once ready, else 503),
// GET /metrics (the given registries plus the Go runtime and process
// collectors) and rpc for every other request.
func HTTPHandler(rpc http.Handler, ready func() bool, regs ...*prometheus.Registry) http.Handler {
	rt := prometheus.NewRegistry()
	rt.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	g := prometheus.Gatherers{rt}
	for _, r := range regs {
		g = append(g, r)
	}
	metrics := promhttp.HandlerFor(g, promhttp.HandlerOpts{})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			switch r.URL.Path {
			case "/healthz":
				w.Header().Set("Content-Type", "text/plain; charset=utf-8")
				if ready != nil && !ready() {
					w.WriteHeader(http.StatusServiceUnavailable)
					_, _ = io.WriteString(w, "starting")
					return
				}
				_, _ = io.WriteString(w, "ok")
				return
			case "/metrics":
				metrics.ServeHTTP(w, r)
				return
			}
		}
		rpc.ServeHTTP(w, r)
	})
}

// httpService listens on addr at once (so a taken port fails the build,
// naming the address) and returns the service that serves h until its
// context ends, and the bound address. A serve error is returned by Run.
// The listener is closed by cl if the service never runs.
// hc sets the shared limits: read/write/idle timeouts, header and
// connection caps (zero fields: httpserver's defaults).
func httpService(cl *closers, name, addr string, h http.Handler, log *slog.Logger, hc httpserver.Config) (Service, string, error) {
	ln, err := httpserver.Listen(addr, hc)
	if err != nil {
		return Service{}, "", fmt.Errorf("%s: %w", name, err)
	}
	cl.add(func() { _ = ln.Close() })
	srv := httpserver.New(h, hc)
	if log != nil {
		srv.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	}
	bound := ln.Addr().String()
	return NewService(name, func(ctx context.Context) error {
		errc := make(chan error, 1)
		go func() { errc <- srv.Serve(ln) }()
		select {
		case err := <-errc:
			return fmt.Errorf("serve %s: %w", bound, err)
		case <-ctx.Done():
		}
		sctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
		defer cancel()
		serr := srv.Shutdown(sctx)
		if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve %s: %w", bound, err)
		}
		return serr
	}), bound, nil
}
