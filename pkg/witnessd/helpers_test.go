package witnessd

import (
	"context"
	"crypto/ed25519"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/securelog/securelog/pkg/checkpoint"
	"github.com/securelog/securelog/pkg/keystore"
	"github.com/securelog/securelog/pkg/securelog"
	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/store/memory"
	"github.com/securelog/securelog/pkg/wire"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// logEnv is a real log over a memory store, signing as "attest".
type logEnv struct {
	log   *securelog.Log
	st    store.Store
	ks    *keystore.Software
	trust *checkpoint.Trust
	n     int
}

func newLogEnv(t *testing.T) *logEnv {
	t.Helper()
	ks, err := keystore.OpenSoftware(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	k, err := ks.Generate("attest", keystore.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	trust, err := checkpoint.NewTrust(checkpoint.TrustEntry{Identity: "attest", Algorithm: keystore.Ed25519, PublicKey: k.PublicKey()})
	if err != nil {
		t.Fatal(err)
	}
	return &logEnv{log: openLog(t, memory.New(), ks, ""), ks: ks, trust: trust}
}

// openLog opens a log over a fresh store st, signing with ks.
func openLog(t *testing.T, st store.Store, ks *keystore.Software, headFile string) *securelog.Log {
	t.Helper()
	l := securelog.New(st, securelog.Options{Signer: ks, HeadFile: headFile, SessionID: "sess", BootID: "boot",
		Now: fixedClock(), Logger: quiet})
	if err := l.Open(context.Background(), "test"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return l
}

func fixedClock() func() time.Time {
	t0 := time.Date(2026, 4, 10, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	var n int64
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		n++
		return t0.Add(time.Duration(n) * time.Millisecond)
	}
}

// closeAndSign appends n entries to stream, closes a segment and signs it.
func (e *logEnv) closeAndSign(t *testing.T, stream string, n int) wire.SegmentRow {
	t.Helper()
	return closeAndSignPayload(t, e.log, stream, n, byte(e.bump()))
}

func (e *logEnv) bump() int { e.n++; return e.n }

func closeAndSignPayload(t *testing.T, l *securelog.Log, stream string, n int, salt byte) wire.SegmentRow {
	t.Helper()
	ctx := context.Background()
	for i := range n {
		if _, err := l.Append(ctx, stream, "ev", wire.Info, "p", []byte{salt, byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	seg, err := l.CloseSegment(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := l.SignSegment(ctx, "attest", seg.SegmentID); err != nil {
		t.Fatal(err)
	}
	return seg
}

// newWitness returns a witness server over a memory witness log.
func newWitness(t *testing.T, trust Verifier, mod func(*Config)) *Server {
	t.Helper()
	wst := memory.New()
	if err := wst.Init(context.Background(), "witness"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { wst.Close() })
	cfg := Config{Store: wst, Trust: trust, Key: edKey{seededKey("witness")}, Logger: quiet}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// edKey is an in-memory Ed25519 keystore.Key.
type edKey struct{ priv ed25519.PrivateKey }

func (k edKey) Algorithm() string               { return keystore.Ed25519 }
func (k edKey) PublicKey() []byte               { return k.priv.Public().(ed25519.PublicKey) }
func (k edKey) Sign(msg []byte) ([]byte, error) { return ed25519.Sign(k.priv, msg), nil }

// witnessTrust is the trust file of a server's own key.
func witnessTrust(t *testing.T, s *Server) *checkpoint.Trust {
	t.Helper()
	tr, err := checkpoint.NewTrust(checkpoint.TrustEntry{Identity: s.Identity(), Algorithm: keystore.Ed25519, PublicKey: s.key.PublicKey()})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// alertSink collects alerts from the OnAlert hook.
type alertSink struct {
	mu sync.Mutex
	as []Alert
}

func (a *alertSink) add(x Alert) { a.mu.Lock(); a.as = append(a.as, x); a.mu.Unlock() }

func (a *alertSink) all() []Alert {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]Alert(nil), a.as...)
}

// waitFor polls cond every 10ms for up to 10s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
