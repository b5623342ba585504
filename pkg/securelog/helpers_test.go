package securelog

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/securelog/securelog/pkg/checkpoint"
	"github.com/securelog/securelog/pkg/keystore"
	"github.com/securelog/securelog/pkg/rpcserver"
	"github.com/securelog/securelog/pkg/rpcserver/rpctest"
	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/store/filestore"
	"github.com/securelog/securelog/pkg/store/memory"
	"github.com/securelog/securelog/pkg/store/pebblestore"
	"github.com/securelog/securelog/pkg/store/remote"
	"github.com/securelog/securelog/pkg/store/sqlitestore"
	"github.com/securelog/securelog/pkg/transport"
	"github.com/securelog/securelog/pkg/wire"
)

type backend struct {
	name string
	new  func(t *testing.T) (store.Store, string)
}

var backends = []backend{
	{"memory", func(t *testing.T) (store.Store, string) { return memory.New(), "test" }},
	{"pebble", func(t *testing.T) (store.Store, string) { return pebblestore.New(), t.TempDir() + "/log" }},
	{"sqlite", func(t *testing.T) (store.Store, string) { return sqlitestore.New(), t.TempDir() + "/log.db" }},
	{"file", func(t *testing.T) (store.Store, string) { return filestore.New(), t.TempDir() + "/audit.jsonl" }},
	{"remote-http", func(t *testing.T) (store.Store, string) {
		back := sqlitestore.New()
		if err := back.Init(context.Background(), t.TempDir()+"/secure-log.db"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { back.Close() })
		url := rpctest.ServeHTTP(t, back, rpcserver.Config{})
		tr, err := transport.New("http", transport.Config{URL: url})
		if err != nil {
			t.Fatal(err)
		}
		return remote.New(tr), ":memory:"
	}},
	{"remote-nats", func(t *testing.T) (store.Store, string) {
		back := pebblestore.New()
		if err := back.Init(context.Background(), t.TempDir()+"/db"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { back.Close() })
		nc := rpctest.Connect(t, rpctest.StartNATS(t))
		subject := rpctest.ServeNATS(t, nc, back, rpcserver.Config{})
		tr, err := transport.New("nats", transport.Config{NATSConn: nc, Subject: subject})
		if err != nil {
			t.Fatal(err)
		}
		return remote.New(tr), "handshake"
	}},
}

// fakeClock returns increasing times one millisecond apart.
func fakeClock() func() time.Time {
	t0 := time.Date(2026, 4, 10, 0, 0, 0, 0, time.UTC)
	var n int64
	return func() time.Time {
		n++
		return t0.Add(time.Duration(n) * time.Millisecond)
	}
}

type env struct {
	log   *Log
	st    store.Store
	ks    *keystore.Software
	trust *checkpoint.Trust
}

// newEnv opens a log over a fresh store with a software keystore holding
// one key "attest" of alg and a trust file built from its public key.
func newEnv(t *testing.T, b backend, alg string, mod func(*Options)) *env {
	t.Helper()
	st, cfg := b.new(t)
	ks, err := keystore.OpenSoftware(t.TempDir() + "/keys")
	if err != nil {
		t.Fatal(err)
	}
	k, err := ks.Generate("attest", alg)
	if err != nil {
		t.Fatal(err)
	}
	trust, err := checkpoint.NewTrust(checkpoint.TrustEntry{Identity: "attest", Algorithm: alg, PublicKey: k.PublicKey()})
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{Signer: ks, Trust: trust, Now: fakeClock(), SessionID: "sess-test", BootID: "boot-test"}
	if mod != nil {
		mod(&opts)
	}
	l := New(st, opts)
	if err := l.Open(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &env{l, st, ks, trust}
}

func must[T any](t *testing.T) func(v T, err error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func wantErr[E error](t *testing.T, err error) E {
	t.Helper()
	var target E
	if !errors.As(err, &target) {
		t.Fatalf("got error %v (%T), want %T", err, err, target)
	}
	return target
}

func appendN(t *testing.T, l *Log, stream string, n int) []AppendResult {
	t.Helper()
	var out []AppendResult
	for i := 0; i < n; i++ {
		r, err := l.Append(context.Background(), stream, "ev", wire.Info, "p", []byte{byte(i)})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
