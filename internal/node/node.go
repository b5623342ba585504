// Package node is the one composition root of securelog: it turns a
// configuration value into running parts. Every process shape uses it —
// `securelog up` (Up: embedded nats-server, ingester, store RPC, sealer,
// signer, local witness and the HTTP listener in one process), the
// separate workers (RunIngester, RunSealer, RunSigner; also cmd/*) — so
// there is exactly one place that opens stores (OpenStore), keystores
// (OpenKeystore) and KEKs (LoadKEK) and wires the pipeline.
//
// Builders return services with Run(ctx) error; RunAll runs them under one
// errgroup, so the first failure stops the others and every goroutine is
// waited for. Resources a service uses (connections, stores, the embedded
// server) are released in reverse order of acquisition after all services
// have returned. The package never reads the environment or flags: the CLI
// fills its configuration structs.
package node

import (
	"context"
	"fmt"
	"sync"

	"golang.org/x/sync/errgroup"
)

// Service is one running part of a node: Run blocks until ctx ends (nil)
// or the part fails (an error naming the part).
type Service struct {
	// Name names the part in errors and logs ("ingester", "http", ...).
	Name string
	run  func(ctx context.Context) error
}

// NewService returns a service named name that runs run.
func NewService(name string, run func(ctx context.Context) error) Service {
	return Service{Name: name, run: run}
}

// Run runs the service until ctx ends or it fails.
func (s Service) Run(ctx context.Context) error {
	if err := s.run(ctx); err != nil {
		return fmt.Errorf("%s: %w", s.Name, err)
	}
	return nil
}

// RunAll runs services under one errgroup until ctx ends or one fails;
// then the others are cancelled and RunAll returns once all have returned,
// with the first error.
func RunAll(ctx context.Context, services ...Service) error {
	g := newGroup(ctx)
	g.run(services...)
	return g.wait()
}

// group is an errgroup that services can join while it runs (Up starts
// the sealer and signer once the ingester consumes).
type group struct {
	g      *errgroup.Group
	ctx    context.Context // cancelled by stop or the first failure
	cancel context.CancelFunc
	once   sync.Once
	err    error
}

func newGroup(ctx context.Context) *group {
	cctx, cancel := context.WithCancel(ctx)
	g, gctx := errgroup.WithContext(cctx)
	return &group{g: g, ctx: gctx, cancel: cancel}
}

func (g *group) run(services ...Service) {
	for _, s := range services {
		g.g.Go(func() error { return s.Run(g.ctx) })
	}
}

// stop cancels every service.
func (g *group) stop() { g.cancel() }

// wait returns the first error once every service has returned.
func (g *group) wait() error {
	g.once.Do(func() {
		g.err = g.g.Wait()
		g.cancel()
	})
	return g.err
}

// closers releases resources in reverse order of acquisition.
type closers []func()

func (c *closers) add(f func()) { *c = append(*c, f) }

func (c *closers) close() {
	for i := len(*c) - 1; i >= 0; i-- {
		(*c)[i]()
	}
	*c = nil
}
