package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
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

// errStarting is a ready function's answer while a part starts (or is
// halted: its logs say why).
var errStarting = errors.New("starting")

// HTTPHandler serves GET /healthz (200 "ok" once ready returns nil, else
// 503 with its error: "starting", or what the part waits for, such as a
// JetStream cluster without a meta leader), GET /metrics (the given
// registries plus the Go runtime and process collectors) and rpc for
// every other request.
func HTTPHandler(rpc http.Handler, ready func() error, regs ...*prometheus.Registry) http.Handler {
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
				if ready != nil {
					if err := ready(); err != nil {
						w.WriteHeader(http.StatusServiceUnavailable)
						_, _ = io.WriteString(w, err.Error())
						return
					}
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

// earlyHTTP is a listener served from the moment it is bound, with a
// handler replaced once its part is built: the ingester's /healthz
// answers while the ingester waits for JetStream (and says what for),
// before the rest of its handler exists.
type earlyHTTP struct {
	h    atomic.Pointer[http.Handler]
	addr string
	svc  Service
}

// serveEarly binds addr at once (so a taken port fails the build, naming
// the address) and serves first on it. hc sets the shared limits:
// read/write/idle timeouts, header and connection caps (zero fields:
// httpserver's defaults). Its service (svc)
// stops the server when its context ends; cl stops it if the service
// never runs.
func serveEarly(cl *closers, name, addr string, first http.Handler, log *slog.Logger, hc httpserver.Config) (*earlyHTTP, error) {
	ln, err := httpserver.Listen(addr, hc)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	e := &earlyHTTP{addr: ln.Addr().String()}
	e.set(first)
	srv := httpserver.New(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*e.h.Load()).ServeHTTP(w, r) }), hc)
	if log != nil {
		srv.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	var (
		once    sync.Once
		stopErr error
	)
	stop := func() error {
		once.Do(func() {
			sctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
			defer cancel()
			stopErr = srv.Shutdown(sctx)
			if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
				stopErr = fmt.Errorf("serve %s: %w", e.addr, err)
			}
		})
		return stopErr
	}
	cl.add(func() { _ = stop() })
	e.svc = NewService(name, func(ctx context.Context) error {
		<-ctx.Done()
		return stop()
	})
	return e, nil
}

// set replaces the handler.
func (e *earlyHTTP) set(h http.Handler) { e.h.Store(&h) }
