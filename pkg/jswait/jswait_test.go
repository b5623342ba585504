package jswait

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// syncBuffer is a log destination safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A request that is never answered (as JetStream leaves some while a
// stream or meta leader is elected) is bounded by the call timeout and
// retried, even when the caller's context has a long deadline; the wait
// is logged and reported by the Status while it lasts.
func TestDoBoundsUnansweredCallsAndRetries(t *testing.T) {
	logs := &syncBuffer{}
	st := &Status{}
	cfg := Config{CallTimeout: 20 * time.Millisecond, MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(logs, nil)), Status: st}
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	calls := 0
	var during error
	err := Do(ctx, cfg, "create JetStream stream X", func(ctx context.Context) error {
		calls++
		dl, ok := ctx.Deadline()
		if !ok || time.Until(dl) > cfg.CallTimeout {
			t.Errorf("call %d: deadline %v (set %v), want at most %v from now", calls, time.Until(dl), ok, cfg.CallTimeout)
		}
		if calls < 3 {
			<-ctx.Done() // unanswered
			return ctx.Err()
		}
		during = st.Err()
		return nil
	})
	if err != nil || calls != 3 {
		t.Fatalf("Do = %v after %d calls, want nil after 3", err, calls)
	}
	var w *WaitingError
	if !errors.As(during, &w) || w.What != "create JetStream stream X" || w.Attempts != 2 || !strings.Contains(w.Reason, "no answer") {
		t.Fatalf("status while waiting: %v", during)
	}
	if err := st.Err(); err != nil {
		t.Fatalf("status after the wait: %v", err)
	}
	l := logs.String()
	if !strings.Contains(l, "waiting for JetStream: create JetStream stream X") || !strings.Contains(l, "JetStream ready: create JetStream stream X") {
		t.Fatalf("logs:\n%s", l)
	}
}

func TestDoPermanentAndContextEnd(t *testing.T) {
	boom := errors.New("conflicting configuration")
	calls := 0
	err := Do(context.Background(), Config{}, "x", func(context.Context) error { calls++; return Permanent(boom) })
	if err != boom || calls != 1 {
		t.Fatalf("permanent: %v after %d calls", err, calls)
	}
	ctx, cancel := context.WithCancel(context.Background())
	st := &Status{}
	err = Do(ctx, Config{MinBackoff: time.Millisecond, Status: st}, "y", func(context.Context) error {
		cancel()
		return nats.ErrNoResponders
	})
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "no responders") {
		t.Fatalf("ended context: %v", err)
	}
	if st.Err() != nil {
		t.Fatalf("status after the wait ended: %v", st.Err())
	}
}

// Against a NATS server without JetStream, and for a cluster without a
// meta leader (API error 10008), Reason says so.
func TestReason(t *testing.T) {
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	defer s.Shutdown()
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	_, err = js.Stream(context.Background(), "X")
	if r := Reason(err); !strings.Contains(r, "without JetStream") {
		t.Errorf("no JetStream: %v: %q", err, r)
	}
	if r := Reason(&jetstream.APIError{Code: 503, ErrorCode: 10008, Description: "JetStream system temporarily unavailable"}); !strings.Contains(r, "no meta leader") {
		t.Errorf("10008: %q", r)
	}
	if r := Reason(context.DeadlineExceeded); !strings.Contains(r, "no answer") {
		t.Errorf("timeout: %q", r)
	}
}
