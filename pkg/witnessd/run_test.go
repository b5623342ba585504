package witnessd

import (
	"context"
	"testing"
	"time"

	"github.com/securelog/securelog/pkg/httpserver"
	"github.com/securelog/securelog/pkg/httpserver/httpservertest"

	"github.com/securelog/securelog/pkg/rpcserver/rpctest"
	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/wire"
)

// gatedStore holds WitnessLatest until gate is closed and, like the pebble
// store, refuses a cancelled context.
type gatedStore struct {
	store.Store
	entered chan struct{}
	gate    chan struct{}
}

func (g *gatedStore) WitnessLatest(ctx context.Context, stream string) (wire.WitnessRow, bool, error) {
	select {
	case g.entered <- struct{}{}:
	default:
	}
	<-g.gate
	if err := ctx.Err(); err != nil {
		return wire.WitnessRow{}, false, err
	}
	return g.Store.WitnessLatest(ctx, stream)
}

// TestRunAnswersDrainedNATSSubmissions: a submission received before Run's
// context ends is still decided against the store while the subscription
// drains, not failed with the cancelled context.
func TestRunAnswersDrainedNATSSubmissions(t *testing.T) {
	ns := rpctest.StartNATS(t)
	fx := newFixture(t)
	cp := fx.chain(1, 0)
	g := &gatedStore{entered: make(chan struct{}, 1), gate: make(chan struct{})}
	s := newWitness(t, fx.trust, func(c *Config) {
		g.Store = c.Store
		c.Store = g
		c.NATS = rpctest.Connect(t, ns)
	})
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	stopped := make(chan error, 1)
	go func() {
		stopped <- s.Run(ctx, RunConfig{Listen: "127.0.0.1:0", OnListen: func(string) { close(ready) }})
	}()
	<-ready
	type result struct {
		accepted bool
		err      error
	}
	got := make(chan result, 1)
	go func() {
		rec, err := NewNATSClient(rpctest.Connect(t, ns), "").Submit(context.Background(), cp[0].submission())
		got <- result{rec.Accepted, err}
	}()
	<-g.entered
	cancel()
	close(g.gate)
	r := <-got
	if r.err != nil || !r.accepted {
		t.Fatalf("submission received before shutdown: accepted=%v err=%v", r.accepted, r.err)
	}
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
}

// TestRunCutsSlowClients: submitters dribbling their body or headers are
// disconnected once the read timeouts expire (issue 9 item 5).
func TestRunCutsSlowClients(t *testing.T) {
	fx := newFixture(t)
	s := newWitness(t, fx.trust, nil)
	ctx, cancel := context.WithCancel(t.Context())
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- s.Run(ctx, RunConfig{
			Listen:   "127.0.0.1:0",
			OnListen: func(a string) { addrc <- a },
			HTTP:     httpserver.Config{ReadHeaderTimeout: 200 * time.Millisecond, ReadTimeout: 400 * time.Millisecond},
		})
	}()
	addr := <-addrc
	httpservertest.DribbleBodies(t, addr, SubmitPath, 40, 10*time.Second)
	httpservertest.DribbleHeaders(t, addr, 40, 10*time.Second)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
