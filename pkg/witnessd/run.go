package witnessd

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/securelog/securelog/pkg/httpserver"
	"github.com/securelog/securelog/pkg/transport"
)

// ShutdownTimeout bounds the graceful shutdown of Run.
const ShutdownTimeout = 5 * time.Second

// RunConfig says where Run serves.
type RunConfig struct {
	// Listen is the HTTP listen address (host:port); empty disables HTTP.
	Listen string
	// Subject is the NATS submission subject (DefaultSubject if empty);
	// NATS is served only if Config.NATS is set.
	Subject string
	// OnListen, if set, is called with the HTTP listener's address, once
	// the listener is open and NATS (if any) is subscribed.
	OnListen func(addr string)
	// HTTP holds the HTTP listener's limits (timeouts, header cap,
	// connection cap); zero fields take the httpserver defaults.
	HTTP httpserver.Config
}

// Run serves the witness on HTTP and/or NATS and runs the cross-check loop
// (if Config.LogStore is set) until ctx ends, then shuts down gracefully.
// At least one of HTTP and NATS must be configured.
func (s *Server) Run(ctx context.Context, rc RunConfig) error {
	if rc.Listen == "" && s.nc == nil {
		return errors.New("witnessd: nothing to serve: set an HTTP listen address or a NATS connection")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 1)
	if s.nc != nil {
		// Submissions run on a context that outlives ctx: the drain below
		// still answers the ones already received, against a live store.
		sub, err := s.ServeNATS(context.WithoutCancel(ctx), s.nc, rc.Subject)
		if err != nil {
			return err
		}
		defer drain(sub)
		// Make sure the NATS server has the subscription before reporting ready.
		if err := s.nc.Flush(); err != nil {
			return fmt.Errorf("witnessd: NATS flush: %w", err)
		}
		s.log.Info("witness serving NATS", "subject", sub.Subject, "identity", s.identity)
	}
	var hs *httpserver.Server
	if rc.Listen != "" {
		ln, err := httpserver.Listen(rc.Listen, rc.HTTP)
		if err != nil {
			return fmt.Errorf("witnessd: %w", err)
		}
		if rc.OnListen != nil {
			rc.OnListen(ln.Addr().String())
		}
		s.log.Info("witness listening", "addr", ln.Addr().String(), "identity", s.identity)
		hs = httpserver.Serve(ln, s.Handler(), rc.HTTP)
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-hs.Done()
			if err := hs.Err(); err != nil {
				select {
				case errc <- fmt.Errorf("witnessd: http: %w", err):
				default:
				}
				cancel()
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.RunCrossChecks(ctx)
	}()
	<-ctx.Done()
	if hs != nil {
		sctx, scancel := context.WithTimeout(context.Background(), ShutdownTimeout)
		_ = hs.Shutdown(sctx)
		scancel()
	}
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}

// drain stops a NATS subscription gracefully: requests already received
// are still answered (bounded by ShutdownTimeout) before Run returns, so
// none runs against a store the caller is about to close.
func drain(sub *nats.Subscription) {
	ctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	_ = transport.Drain(ctx, sub)
}
