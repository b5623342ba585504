package securelog

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/securelog/securelog/pkg/checkpoint"
	"github.com/securelog/securelog/pkg/keystore"
	"github.com/securelog/securelog/pkg/rpcserver"
	"github.com/securelog/securelog/pkg/store/pebblestore"
	"github.com/securelog/securelog/pkg/store/remote"
	"github.com/securelog/securelog/pkg/transport"
	"github.com/securelog/securelog/pkg/wire"
)

// records keeps the messages logged at WARN and above.
type records struct {
	mu   sync.Mutex
	msgs []string
}

func (r *records) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (r *records) Handle(_ context.Context, rec slog.Record) error {
	var b strings.Builder
	b.WriteString(rec.Message)
	rec.Attrs(func(a slog.Attr) bool { b.WriteString(" " + a.String()); return true })
	r.mu.Lock()
	r.msgs = append(r.msgs, b.String())
	r.mu.Unlock()
	return nil
}
func (r *records) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *records) WithGroup(string) slog.Handler      { return r }

// rpcRequests sums the server's requests of methods.
func rpcRequests(t *testing.T, reg *prometheus.Registry, methods ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() != "securelog_rpc_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "method" {
					for _, want := range methods {
						if l.GetValue() == want {
							n += m.GetCounter().GetValue()
						}
					}
				}
			}
		}
	}
	return n
}

// TestSignLargeSegmentOverNATS reproduces `WARN msg="rpc reply failed"
// transport=nats error="nats: maximum payload exceeded"`: a signer on the
// remote store (NATS) checks a segment whose entries do not fit one NATS
// message. No reply may exceed the server's max_payload (the reads come in
// pages), the segment is signed, and an inclusion proof over the remote
// store reads the stored tree, not the segment's entries.
func TestSignLargeSegmentOverNATS(t *testing.T) {
	ctx := context.Background()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true, MaxPayload: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)

	// The ingester's side: the store and a log that writes and closes.
	back := pebblestore.New()
	if err := back.Init(ctx, t.TempDir()+"/db"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { back.Close() })
	writer := New(back, Options{Now: fakeClock(), SessionID: "s", BootID: "b"})
	if err := writer.OpenInitialized(ctx); err != nil {
		t.Fatal(err)
	}
	const n = 400 // ~4 KiB of JSON each: ~1.6 MiB, 25 times max_payload
	payload := bytes.Repeat([]byte{200}, 1000)
	for range n {
		if _, err := writer.Append(ctx, "default", "ev", wire.Info, "p", payload); err != nil {
			t.Fatal(err)
		}
	}
	seg, err := writer.CloseSegment(ctx, "default")
	if err != nil {
		t.Fatal(err)
	}

	// The signer's side: a log over the remote store.
	var logs records
	srv, err := rpcserver.New(back, rpcserver.Config{}, slog.New(&logs))
	if err != nil {
		t.Fatal(err)
	}
	sv, err := srv.ServeNATS(ctx, nc, "securelog.rpc.large")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sv.Unsubscribe() })
	tr, err := transport.New("nats", transport.Config{NATSConn: nc, Subject: "securelog.rpc.large"})
	if err != nil {
		t.Fatal(err)
	}
	rs := remote.New(tr)
	ks, err := keystore.OpenSoftware(t.TempDir() + "/keys")
	if err != nil {
		t.Fatal(err)
	}
	k, err := ks.Generate("attest", "ed25519")
	if err != nil {
		t.Fatal(err)
	}
	trust, err := checkpoint.NewTrust(checkpoint.TrustEntry{Identity: "attest", Algorithm: "ed25519", PublicKey: k.PublicKey()})
	if err != nil {
		t.Fatal(err)
	}
	signer := New(rs, Options{Signer: ks, Trust: trust, Now: fakeClock(), SessionID: "s2", BootID: "b"})
	if err := signer.Open(ctx, "handshake"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rs.Close() })

	if _, _, err := signer.SignSegment(ctx, "attest", seg.SegmentID); err != nil {
		t.Fatalf("SignSegment over NATS: %v", err)
	}
	if _, err := signer.VerifySegmentSignature(ctx, seg.SegmentID); err != nil {
		t.Fatalf("VerifySegmentSignature: %v", err)
	}
	rows, err := signer.Store().Range(ctx, "default", 1, n)
	if err != nil || len(rows) != n || rows[n-1].Seqno != n || !bytes.Equal(rows[n-1].Payload, payload) {
		t.Fatalf("Range over NATS: %d rows, %v", len(rows), err)
	}

	reads := rpcRequests(t, srv.Registry(), wire.MethodRange, wire.MethodRangePage)
	p, err := signer.BuildInclusionProof(ctx, n/2)
	if err != nil {
		t.Fatalf("BuildInclusionProof over NATS: %v", err)
	}
	if err := VerifyInclusionProof(p, seg.MerkleRoot); err != nil {
		t.Fatal(err)
	}
	if got := rpcRequests(t, srv.Registry(), wire.MethodRange, wire.MethodRangePage); got != reads {
		t.Errorf("the inclusion proof read the segment's entries (%v range calls); want the stored tree", got-reads)
	}

	logs.mu.Lock()
	defer logs.mu.Unlock()
	for _, m := range logs.msgs {
		if strings.Contains(m, "rpc reply failed") || strings.Contains(m, "maximum payload") {
			t.Errorf("server logged %q: a reply exceeded max_payload", m)
		}
	}
}
