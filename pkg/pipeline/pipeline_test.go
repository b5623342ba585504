package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/securelog/securelog/pkg/securelog"
	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/store/memory"
	"github.com/securelog/securelog/pkg/wire"
)

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func checkFor(t *testing.T, total time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(total)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not met in %v: %v", total, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func startNATS(t *testing.T) *nats.Conn {
	t.Helper()
	ns, err := StartServer(ServerConfig{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	nc, err := nats.Connect("", nats.InProcessServer(ns))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// startJetStream starts a server (startNATS) and returns a connection to
// it and its JetStream.
func startJetStream(t *testing.T) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc := startNATS(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// memStore returns an initialised in-memory store.
func memStore(t testing.TB) *memory.Store {
	t.Helper()
	st := memory.New()
	if err := st.Init(context.Background(), "t"); err != nil {
		t.Fatal(err)
	}
	return st
}

func openLog(t testing.TB, st store.Store) *securelog.Log {
	t.Helper()
	l := securelog.New(st, securelog.Options{Logger: quiet()})
	if err := l.OpenInitialized(context.Background()); err != nil {
		t.Fatal(err)
	}
	return l
}

// runIngester runs an ingester until the returned stop function is called.
func runIngester(t *testing.T, nc *nats.Conn, l *securelog.Log) (*Ingester, func()) {
	t.Helper()
	in, err := NewIngester(IngesterConfig{Log: l, Conn: nc, Logger: quiet(), MaxBatch: 50})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx) }()
	checkFor(t, 10*time.Second, func() error {
		if !in.Ready() {
			return fmt.Errorf("not ready")
		}
		return nil
	})
	return in, func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ingester: %v", err)
		}
	}
}

func publish(t *testing.T, js jetstream.JetStream, stream string, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		m := nats.NewMsg(wire.SubjectFor(wire.KindIn, stream))
		m.Data = fmt.Appendf(nil, `{"type":"t","severity":"info","producer":"p","payload":"e%d"}`, i)
		m.Header.Set(wire.MsgIDHeader, fmt.Sprint(i))
		if _, err := js.PublishMsg(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
}

func entries(t *testing.T, st store.Store, stream string) []wire.EntryRow {
	t.Helper()
	head, ok, err := st.GlobalHead(context.Background())
	if err != nil || !ok {
		return nil
	}
	rows, err := st.Range(context.Background(), stream, 1, head)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// TestIngesterResumesFromStorePosition: a second ingester over the same
// store (a restart) continues after the recorded position: no event is
// applied twice, none is lost, and re-published duplicates are dropped.
func TestIngesterResumesFromStorePosition(t *testing.T) {
	nc, js := startJetStream(t)
	st := memStore(t)
	l := openLog(t, st)
	in, stop := runIngester(t, nc, l)
	publish(t, js, "s", 0, 120)
	checkFor(t, 10*time.Second, func() error {
		if n := len(entries(t, st, "s")); n != 120 {
			return fmt.Errorf("%d entries", n)
		}
		return nil
	})
	if in.Position() != 120 {
		t.Fatalf("position %d, want 120", in.Position())
	}
	stop()
	publish(t, js, "s", 100, 250) // 100..119 are duplicates by Nats-Msg-Id
	in2, stop2 := runIngester(t, nc, openLog(t, st))
	defer stop2()
	checkFor(t, 10*time.Second, func() error {
		if n := len(entries(t, st, "s")); n < 250 {
			return fmt.Errorf("%d entries", n)
		}
		return nil
	})
	rows := entries(t, st, "s")
	if len(rows) != 250 {
		t.Fatalf("%d entries, want 250", len(rows))
	}
	for i, r := range rows {
		if want := fmt.Sprintf("e%d", i); string(r.Payload) != want {
			t.Fatalf("entry %d payload %q, want %q", i, r.Payload, want)
		}
	}
	if in2.Position() != 250 {
		t.Fatalf("position %d, want 250", in2.Position())
	}
	if err := l.VerifyChain(context.Background(), "s", 1, rows[len(rows)-1].Seqno); err != nil {
		t.Fatal(err)
	}
}

// TestIngesterRequests: request/reply appends are committed on reply and
// close requests seal the segment (empty-segment when nothing is open).
func TestIngesterRequests(t *testing.T) {
	nc := startNATS(t)
	st := memStore(t)
	_, stop := runIngester(t, nc, openLog(t, st))
	defer stop()
	sealed, err := nc.SubscribeSync(wire.SubjectFor(wire.KindSealed, "r"))
	if err != nil {
		t.Fatal(err)
	}
	var last wire.AppendReply
	for i := range 3 {
		rep, err := nc.Request(wire.SubjectFor(wire.KindAppend, "r"), fmt.Appendf(nil, `{"severity":"info","payload":"%d"}`, i), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(rep.Data, &last); err != nil || last.Error != "" || last.Seqno != uint64(i+1) {
			t.Fatalf("append %d: %s", i, rep.Data)
		}
	}
	rep, err := nc.Request(wire.SubjectFor(wire.KindAppend, "r"), []byte(`{"severity":"nope"}`), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var bad wire.AppendReply
	if err := json.Unmarshal(rep.Data, &bad); err != nil || bad.Code != "invalid" {
		t.Fatalf("bad append: %s", rep.Data)
	}
	for i, wantCode := range []string{"", "empty-segment"} {
		rep, err := nc.Request(wire.SubjectFor(wire.KindClose, "r"), nil, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var cr wire.CloseReply
		if err := json.Unmarshal(rep.Data, &cr); err != nil {
			t.Fatal(err)
		}
		if cr.Code != wantCode {
			t.Fatalf("close %d: code %q, want %q (%s)", i, cr.Code, wantCode, rep.Data)
		}
		if i == 0 && (cr.Segment == nil || cr.Segment.SeqEnd != last.Seqno) {
			t.Fatalf("close: %s", rep.Data)
		}
	}
	if _, err := sealed.NextMsg(5 * time.Second); err != nil {
		t.Fatalf("sealed event: %v", err)
	}
}

// TestSealerPolicy: a close is requested when a stream reaches MaxEntries,
// and by age for a stream below it.
func TestSealerPolicy(t *testing.T) {
	nc := startNATS(t)
	closes := make(chan string, 16)
	sub, err := nc.Subscribe(wire.WildcardFor(wire.KindClose), func(m *nats.Msg) {
		s, _ := wire.StreamOf(wire.KindClose, m.Subject)
		closes <- s
		b, _ := json.Marshal(wire.CloseReply{Segment: &wire.SegmentInfo{Stream: s, SegmentID: 1, SeqEnd: 1 << 40}})
		_ = m.Respond(b)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	ensureStreams(t, nc)
	s, err := NewSealer(SealerConfig{Conn: nc, MaxEntries: 10, MaxAge: 300 * time.Millisecond, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	pub := func(stream string, n int) {
		b, _ := json.Marshal(wire.AppendedMsg{Stream: stream, Count: n, LastSeqno: 5})
		if err := nc.Publish(wire.SubjectFor(wire.KindAppended, stream), b); err != nil {
			t.Fatal(err)
		}
	}
	// The sealer subscribes asynchronously: publish until it reacts.
	start := time.Now()
	checkFor(t, 5*time.Second, func() error {
		pub("full", 10)
		select {
		case got := <-closes:
			if got != "full" {
				return fmt.Errorf("closed %q", got)
			}
			return nil
		case <-time.After(50 * time.Millisecond):
			return fmt.Errorf("no close yet")
		}
	})
	if time.Since(start) > 250*time.Millisecond {
		t.Fatalf("count-triggered close took %v", time.Since(start))
	}
	pub("slow", 1)
	ageStart := time.Now()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case got := <-closes:
			if got == "full" {
				continue // a late answer to an earlier publish of the first phase
			}
			if got != "slow" {
				t.Fatalf("closed %q, want slow", got)
			}
			if d := time.Since(ageStart); d < 200*time.Millisecond {
				t.Fatalf("age close after %v, before MaxAge", d)
			}
			return
		case <-timeout:
			t.Fatal("no close by age")
		}
	}
}
