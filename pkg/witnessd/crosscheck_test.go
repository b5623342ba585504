package witnessd

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/securelog/securelog/pkg/keystore"
	"github.com/securelog/securelog/pkg/rpcserver"
	"github.com/securelog/securelog/pkg/rpcserver/rpctest"
	"github.com/securelog/securelog/pkg/securelog"
	"github.com/securelog/securelog/pkg/store/memory"
	"github.com/securelog/securelog/pkg/store/remote"
	"github.com/securelog/securelog/pkg/transport"
)

// swapTransport forwards calls to a transport that can be replaced: the
// witness keeps talking to "the log", whose store is swapped underneath.
type swapTransport struct {
	mu sync.RWMutex
	t  transport.Transport
}

func (s *swapTransport) Call(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error) {
	s.mu.RLock()
	t := s.t
	s.mu.RUnlock()
	return t.Call(ctx, method, params)
}

func (s *swapTransport) set(t transport.Transport) {
	s.mu.Lock()
	s.t = t
	s.mu.Unlock()
}

// serveLog serves l's store over HTTP RPC and returns a transport to it.
func serveLog(t *testing.T, l *securelog.Log) transport.Transport {
	t.Helper()
	url := rpctest.ServeHTTP(t, l.Store(), rpcserver.Config{})
	tr, err := transport.NewHTTP(transport.Config{URL: url, Retries: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

// buildLog makes a log whose streams get segments in the order given; each
// segment's payloads are salted with salt and its position, so two logs
// with the same plan and salt are identical and different salts diverge.
func buildLog(t *testing.T, ks *keystore.Software, salt byte, plan ...string) *securelog.Log {
	t.Helper()
	l := openLog(t, memory.New(), ks, "")
	for i, stream := range plan {
		closeAndSignPayload(t, l, stream, 2, salt+byte(i))
	}
	return l
}

func TestCrossCheck(t *testing.T) {
	ctx := t.Context()
	e := newLogEnv(t)
	orig := buildLog(t, e.ks, 0, "s", "s", "t") // s: segments 1, 2; t: segment 3
	sw := &swapTransport{t: serveLog(t, orig)}
	logStore := remote.New(sw)
	if err := logStore.Init(ctx, "witness"); err != nil {
		t.Fatal(err)
	}
	var alerts alertSink
	s := newWitness(t, e.trust, func(c *Config) { c.LogStore = logStore; c.OnAlert = alerts.add })
	for _, stream := range []string{"s", "t"} {
		sub, err := orig.BuildWitnessSubmission(ctx, stream, 0)
		if err != nil {
			t.Fatal(err)
		}
		if rec, err := s.Submit(ctx, sub); err != nil || !rec.Accepted {
			t.Fatalf("submit %s: %+v %v", stream, rec, err)
		}
	}
	check := func(want map[string]string) []Alert {
		t.Helper()
		got, err := s.CrossCheck(ctx)
		if err != nil {
			t.Fatal(err)
		}
		kinds := map[string]string{}
		for _, a := range got {
			kinds[a.Stream] = a.Kind
		}
		if len(kinds) != len(want) || len(got) != len(want) {
			t.Fatalf("alerts %+v, want kinds %v", got, want)
		}
		for st, k := range want {
			if kinds[st] != k {
				t.Fatalf("alerts %+v, want kinds %v", got, want)
			}
		}
		return got
	}
	check(nil)
	if len(alerts.all()) != 0 {
		t.Fatalf("alerts on a clean log: %+v", alerts.all())
	}

	// (i) Divergence: same shape, different data.
	sw.set(serveLog(t, buildLog(t, e.ks, 100, "s", "s", "t")))
	got := check(map[string]string{"s": AlertDivergence, "t": AlertDivergence})
	if !strings.Contains(got[0].Detail, "witness divergence at segment") {
		t.Fatalf("detail %q", got[0].Detail)
	}
	check(map[string]string{"s": AlertDivergence, "t": AlertDivergence})
	if n := len(alerts.all()); n != 2 {
		t.Fatalf("hook called %d times, want 2 (a repeated finding is raised once)", n)
	}

	// The witnessed segment id now belongs to another stream.
	sw.set(serveLog(t, buildLog(t, e.ks, 0, "x", "x", "s", "t")))
	got = check(map[string]string{"s": AlertDivergence, "t": AlertDivergence})
	for _, a := range got {
		if a.Stream == "s" && !strings.Contains(a.Detail, `belongs to stream "x"`) {
			t.Fatalf("detail %q", a.Detail)
		}
	}

	// Back to the original: clean again.
	sw.set(serveLog(t, orig))
	check(nil)

	// (ii) Rollback: an older copy (same data, fewer segments), caught by
	// the running loop.
	sw.set(serveLog(t, buildLog(t, e.ks, 0, "s")))
	before := len(alerts.all())
	s2ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.interval = 5 * time.Millisecond
	done := make(chan struct{})
	go func() { defer close(done); s.RunCrossChecks(s2ctx) }()
	waitFor(t, "rollback alerts", func() bool { return len(alerts.all()) >= before+2 })
	cancel()
	<-done
	for _, a := range alerts.all()[before:] {
		if a.Kind != AlertRollback {
			t.Fatalf("alert %+v, want rollback", a)
		}
	}
	if n := len(alerts.all()); n != before+2 {
		t.Fatalf("rollback raised %d alerts, want 2", n-before)
	}

	// An unreachable log is an error, not an alert.
	sw.set(&failingTransport{})
	if _, err := s.CrossCheck(ctx); err == nil {
		t.Fatal("cross-check against an unreachable log succeeded")
	}
}

type failingTransport struct{}

func (failingTransport) Call(context.Context, string, json.RawMessage) (json.RawMessage, error) {
	return nil, context.DeadlineExceeded
}
