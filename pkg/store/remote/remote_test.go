package remote_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/securelog/securelog/pkg/rpcserver"
	"github.com/securelog/securelog/pkg/rpcserver/rpctest"
	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/store/memory"
	"github.com/securelog/securelog/pkg/store/remote"
	"github.com/securelog/securelog/pkg/store/storetest"
	"github.com/securelog/securelog/pkg/transport"
	"github.com/securelog/securelog/pkg/wire"
)

// backends maps a factory's config value to the transport of the server
// holding that storage, so Reopen reaches the same server.
type backends struct {
	mu    sync.Mutex
	n     int
	dials map[string]func() transport.Transport
}

func (b *backends) add(dial func() transport.Transport) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.n++
	cfg := "handshake-" + itoa(b.n)
	if b.dials == nil {
		b.dials = map[string]func() transport.Transport{}
	}
	b.dials[cfg] = dial
	return cfg
}

func (b *backends) get(t *testing.T, cfg string) transport.Transport {
	b.mu.Lock()
	defer b.mu.Unlock()
	d, ok := b.dials[cfg]
	if !ok {
		t.Fatalf("no backend for config %q", cfg)
	}
	return d()
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// memServer returns a fresh initialised memory store, closed at cleanup.
func memServer(t testing.TB) store.Store {
	t.Helper()
	st := memory.New()
	if err := st.Init(context.Background(), "server"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func httpTransport(t testing.TB, url string) transport.Transport {
	t.Helper()
	tr, err := transport.New("http", transport.Config{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func natsTransport(t testing.TB, nc *nats.Conn, subject string) transport.Transport {
	t.Helper()
	tr, err := transport.New("nats", transport.Config{NATSConn: nc, Subject: subject})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func TestConformanceHTTP(t *testing.T) {
	var b backends
	storetest.Run(t, storetest.Factory{
		Name: "remote-http",
		New: func(t *testing.T) (store.Store, string) {
			url := rpctest.ServeHTTP(t, memServer(t), rpcserver.Config{})
			cfg := b.add(func() transport.Transport { return httpTransport(t, url) })
			return remote.New(b.get(t, cfg)), cfg
		},
		Reopen: func(t *testing.T, cfg string) store.Store { return remote.New(b.get(t, cfg)) },
	})
}

func TestConformanceNATS(t *testing.T) {
	ns := rpctest.StartNATS(t)
	nc := rpctest.Connect(t, ns)
	var b backends
	storetest.Run(t, storetest.Factory{
		Name: "remote-nats",
		New: func(t *testing.T) (store.Store, string) {
			subj := rpctest.ServeNATS(t, nc, memServer(t), rpcserver.Config{})
			cfg := b.add(func() transport.Transport { return natsTransport(t, nc, subj) })
			return remote.New(b.get(t, cfg)), cfg
		},
		Reopen: func(t *testing.T, cfg string) store.Store { return remote.New(b.get(t, cfg)) },
	})
}

// fake is a scripted transport that records calls.
type fake struct {
	mu     sync.Mutex
	calls  []string // method + " " + params
	answer func(method string) (json.RawMessage, error)
}

func (f *fake) Call(_ context.Context, method string, params json.RawMessage) (json.RawMessage, error) {
	f.mu.Lock()
	f.calls = append(f.calls, method+" "+string(params))
	f.mu.Unlock()
	return f.answer(method)
}

func TestInitHandshake(t *testing.T) {
	f := &fake{answer: func(string) (json.RawMessage, error) { return wire.NullJSON, nil }}
	s := remote.New(f)
	if err := s.Init(t.Context(), ""); err == nil || err.Error() != "remote store: init config is empty" {
		t.Fatalf("Init(\"\") = %v", err)
	}
	if _, _, err := s.GlobalHead(t.Context()); !errors.Is(err, store.ErrNotInitialized) {
		t.Errorf("GlobalHead before Init = %v, want ErrNotInitialized", err)
	}
	if len(f.calls) != 0 {
		t.Fatalf("calls before a successful Init: %v", f.calls)
	}
	if err := s.Init(t.Context(), ":memory:"); err != nil {
		t.Fatal(err)
	}
	if err := s.Init(t.Context(), ":memory:"); err == nil {
		t.Error("second Init succeeded")
	}
	if len(f.calls) != 1 || f.calls[0] != `init [":memory:"]` {
		t.Errorf("calls = %q, want one init handshake", f.calls)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.GlobalHead(t.Context()); err == nil {
		t.Error("GlobalHead after Close succeeded")
	}
}

// v1Methods are the methods a reference server knows: init, SPEC §16.2
// and the segment reservations (everything before the paged reads).
var v1Methods = wire.Methods[:slices.Index(wire.Methods, wire.MethodSegmentReservation)+1]

// TestEachOperationIsOneCall: against a server that knows only the v1
// methods (it answers the extensions `unknown method`, as the reference
// does), every store operation is exactly one call with the v1 bytes,
// once the store has learned that (one extra call, the first paged read).
func TestEachOperationIsOneCall(t *testing.T) {
	f := &fake{answer: func(m string) (json.RawMessage, error) {
		if !slices.Contains(v1Methods, m) {
			return nil, &transport.StatusError{Prefix: "transport-http", Status: 500, Body: `unknown method "` + m + `"`}
		}
		switch m {
		case wire.MethodRange, wire.MethodSegmentsList, wire.MethodSegmentEntrySeqnos, wire.MethodWitnessList,
			wire.MethodWitnessStreamIDs, wire.MethodStreamList:
			return json.RawMessage(`[]`), nil
		case wire.MethodInsert, wire.MethodSegmentInsert, wire.MethodWitnessInsert, wire.MethodWitnessGC, wire.MethodSegmentReserve:
			return json.RawMessage(`3`), nil
		}
		return wire.NullJSON, nil
	}}
	s := remote.New(f)
	c := t.Context()
	if err := s.Init(c, "h"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Range(c, "s", 1, 2); err != nil {
		t.Fatal(err)
	}
	if len(f.calls) != 3 || f.calls[1] != wire.MethodRangePage+` ["s",1,2,0]` || f.calls[2] != wire.MethodRange+` ["s",1,2]` {
		t.Fatalf("first Range against a v1 server: calls %q, want init, range-page, then v1 range", f.calls)
	}
	f.calls = f.calls[:1]
	str, keep := "s", uint32(2)
	ops := []func() error{
		func() error { _, err := s.Insert(c, wire.EntryRow{Seqno: 3}); return err },
		func() error { _, _, err := s.GlobalHead(c); return err },
		func() error { _, _, err := s.Get(c, 3); return err },
		func() error { _, err := s.Range(c, "s", 1, 2); return err },
		func() error { _, _, err := s.Head(c, "s"); return err },
		func() error { _, _, err := s.Last(c, "s"); return err },
		func() error { _, err := s.SegmentInsert(c, wire.SegmentRow{}, nil); return err },
		func() error { _, _, err := s.SegmentGet(c, 1); return err },
		func() error { _, err := s.SegmentsList(c, "s"); return err },
		func() error { _, _, err := s.SegmentLastSeqno(c, "s"); return err },
		func() error { _, err := s.SegmentEntrySeqnos(c, 1); return err },
		func() error { _, _, err := s.SegmentForSeqno(c, 1); return err },
		func() error { return s.SegmentSetSignature(c, 1, []byte{7}, "k") },
		func() error { _, err := s.WitnessInsert(c, wire.WitnessRow{}); return err },
		func() error { _, _, err := s.WitnessLatest(c, "s"); return err },
		func() error { _, err := s.WitnessList(c, "s"); return err },
		func() error { _, err := s.WitnessStreamIDs(c); return err },
		func() error { _, err := s.WitnessGC(c, &str, &keep, nil); return err },
		func() error { return s.StreamUpsert(c, wire.StreamRow{Name: "s"}) },
		func() error { _, _, err := s.StreamGet(c, "s"); return err },
		func() error { _, err := s.StreamList(c); return err },
		func() error { return s.StreamSetTier(c, "s", "public") },
		func() error { return s.StreamDeprecate(c, "s", "t") },
		func() error { _, err := s.SegmentReserve(c, "s"); return err },
		func() error { _, _, err := s.SegmentReservation(c, "s"); return err },
	}
	for i, op := range ops {
		if err := op(); err != nil {
			t.Fatalf("op %d: %v", i, err)
		}
	}
	if len(f.calls) != len(v1Methods) {
		t.Fatalf("%d calls for %d operations + init", len(f.calls), len(ops))
	}
	for i, m := range v1Methods {
		if !strings.HasPrefix(f.calls[i], m+" ") {
			t.Errorf("call %d = %q, want method %s", i, f.calls[i], m)
		}
	}
	want := map[int]string{
		2:  wire.MethodGlobalHead + " null",
		4:  wire.MethodRange + ` ["s",1,2]`,
		13: wire.MethodSegmentSetSignature + ` [1,[7],"k"]`,
		18: wire.MethodWitnessGC + ` ["s",2,null]`,
	}
	for i, w := range want {
		if f.calls[i] != w {
			t.Errorf("call %d = %q, want %q", i, f.calls[i], w)
		}
	}
}

func TestResultDecodeAndTransportErrors(t *testing.T) {
	terr := errors.New("transport-http: server returned 500: boom")
	answers := map[string]string{
		wire.MethodHead:         `"seven"`,
		wire.MethodInsert:       `null`,
		wire.MethodGet:          `{"seqno":"x"}`,
		wire.MethodStreamList:   `{}`,
		wire.MethodStreamUpsert: `1`,
	}
	f := &fake{answer: func(m string) (json.RawMessage, error) {
		if m == wire.MethodInit {
			return wire.NullJSON, nil
		}
		if a, ok := answers[m]; ok {
			return json.RawMessage(a), nil
		}
		return nil, terr
	}}
	s := remote.New(f)
	c := t.Context()
	if err := s.Init(c, "h"); err != nil {
		t.Fatal(err)
	}
	checks := map[string]error{
		wire.MethodHead:         func() error { _, _, err := s.Head(c, "s"); return err }(),
		wire.MethodInsert:       func() error { _, err := s.Insert(c, wire.EntryRow{Seqno: 1}); return err }(),
		wire.MethodGet:          func() error { _, _, err := s.Get(c, 1); return err }(),
		wire.MethodStreamList:   func() error { _, err := s.StreamList(c); return err }(),
		wire.MethodStreamUpsert: s.StreamUpsert(c, wire.StreamRow{}),
	}
	for m, err := range checks {
		if err == nil || !strings.HasPrefix(err.Error(), "decode result of "+m+": ") {
			t.Errorf("%s: err = %v, want \"decode result of %s: …\"", m, err, m)
		}
	}
	if _, err := s.SegmentsList(c, "s"); err != terr {
		t.Errorf("transport error = %v, want it unchanged", err)
	}
}

// TestConfiguredTransport: NewFromConfig builds its transport from the
// configuration value at Init; the registered backend, which has none,
// fails asking for the URL (the package never reads the environment).
func TestConfiguredTransport(t *testing.T) {
	st := memServer(t)
	url := rpctest.ServeHTTP(t, st, rpcserver.Config{})
	s := remote.NewFromConfig("http", transport.Config{URL: url})
	if err := s.Init(t.Context(), "anything"); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Insert(t.Context(), wire.EntryRow{Seqno: 4, StreamID: "default", Severity: wire.Info}); err != nil {
		t.Fatal(err)
	}
	if head, ok, err := st.GlobalHead(t.Context()); err != nil || !ok || head != 4 {
		t.Errorf("server store head = %d %v %v, want 4", head, ok, err)
	}

	if _, err := store.Open(t.Context(), "remote:x"); err == nil || !strings.Contains(err.Error(), "transport-http: SECURE_LOG_RPC_URL is not set") {
		t.Errorf("Open without URL = %v", err)
	}
	if _, err := store.Open(t.Context(), "remote:"); err == nil || !strings.Contains(err.Error(), "remote store: init config is empty") {
		t.Errorf("Open with empty handshake = %v", err)
	}
}

func TestRemoteOverNATSWithTokens(t *testing.T) {
	ns := rpctest.StartNATS(t)
	nc := rpctest.Connect(t, ns)
	dir := t.TempDir()
	tokens := dir + "/tokens.json"
	if err := os.WriteFile(tokens, []byte(`[{"token":"ro","role":"reader"}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	subj := rpctest.ServeNATS(t, nc, memServer(t), rpcserver.Config{TokensFile: tokens})
	tr, err := transport.New("nats", transport.Config{NATSConn: nc, Subject: subj, Token: "ro"})
	if err != nil {
		t.Fatal(err)
	}
	s := remote.New(tr)
	if err := s.Init(t.Context(), "h"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Head(t.Context(), "default"); err != nil {
		t.Errorf("reader read: %v", err)
	}
	_, err = s.Insert(t.Context(), wire.EntryRow{Seqno: 1})
	if err == nil || err.Error() != `transport-nats: server returned 403: forbidden: method "secure-log-insert" needs the writer role` {
		t.Errorf("reader write = %v", err)
	}
}
