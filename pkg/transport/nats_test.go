package transport_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/securelog/securelog/pkg/rpcserver"
	"github.com/securelog/securelog/pkg/rpcserver/rpctest"
	"github.com/securelog/securelog/pkg/store/memory"
	"github.com/securelog/securelog/pkg/transport"
	"github.com/securelog/securelog/pkg/wire"
)

// responder answers requests on subject with a scripted status and payload.
func responder(t *testing.T, nc *nats.Conn, subject string, answer func(n int32, m *nats.Msg) *nats.Msg) *atomic.Int32 {
	t.Helper()
	var calls atomic.Int32
	sub, err := nc.Subscribe(subject, func(m *nats.Msg) {
		if r := answer(calls.Add(1), m); r != nil {
			_ = m.RespondMsg(r)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return &calls
}

func replyMsg(status, body string) *nats.Msg {
	r := nats.NewMsg("")
	if status != "" {
		r.Header.Set(wire.NATSStatusHeader, status)
	}
	r.Data = []byte(body)
	return r
}

func TestNATSCall(t *testing.T) {
	clearEnv(t)
	ns := rpctest.StartNATS(t)
	nc := rpctest.Connect(t, ns)
	var got atomic.Value
	calls := responder(t, nc, "rpc.a", func(n int32, m *nats.Msg) *nats.Msg {
		got.Store(m.Header.Get("Authorization") + " " + string(m.Data))
		switch n {
		case 1:
			return replyMsg("200", "[1]")
		case 2:
			return replyMsg("500", "stream not found: x")
		default:
			return replyMsg("", "no header")
		}
	})
	tr, err := transport.New("nats", transport.Config{NATSURL: ns.ClientURL(), Subject: "rpc.a", Token: "t1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.(*transport.NATS).Close() })
	res, err := tr.Call(t.Context(), wire.MethodSegmentEntrySeqnos, json.RawMessage(`[1]`))
	if err != nil || string(res) != "[1]" {
		t.Fatalf("Call = %s, %v", res, err)
	}
	if g := got.Load().(string); g != `Bearer t1 {"method":"secure-log-segment-entry-seqnos","params":[1]}` {
		t.Errorf("request = %s", g)
	}
	_, err = tr.Call(t.Context(), wire.MethodStreamSetTier, json.RawMessage(`["x","public"]`))
	var se *transport.StatusError
	if !errors.As(err, &se) || err.Error() != "transport-nats: server returned 500: stream not found: x" {
		t.Errorf("500 reply: %v", err)
	}
	if _, err := tr.Call(t.Context(), wire.MethodGet, json.RawMessage(`[1]`)); err == nil || !strings.Contains(err.Error(), "Securelog-Status") {
		t.Errorf("reply without status: %v", err)
	}
	if calls.Load() != 3 {
		t.Errorf("%d calls, want 3 (no retries of permanent failures)", calls.Load())
	}
}

func TestNATSNoRespondersRetriesReadsOnly(t *testing.T) {
	clearEnv(t)
	ns := rpctest.StartNATS(t)
	nc := rpctest.Connect(t, ns)
	// With an hour of backoff, a retried call can only end by its context:
	// a write fails at once with no responders, a read waits for the retry.
	tr, err := transport.New("nats", transport.Config{NATSConn: nc, Subject: "rpc.none", Backoff: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if _, err := tr.Call(ctx, wire.MethodInsert, json.RawMessage(`[{}]`)); !errors.Is(err, nats.ErrNoResponders) || errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("write: err = %v, want no responders without retry", err)
	}
	if _, err := tr.Call(ctx, wire.MethodGet, json.RawMessage(`[1]`)); !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, nats.ErrNoResponders) {
		t.Errorf("read: err = %v, want the deadline while waiting to retry after no responders", err)
	}
	// A responder that appears after the first attempt is reached by a retry of a read.
	tr2, err := transport.New("nats", transport.Config{NATSConn: nc, Subject: "rpc.late", Backoff: 20 * time.Millisecond, Retries: 50})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := tr2.Call(context.Background(), wire.MethodGet, json.RawMessage(`[1]`))
		done <- err
	}()
	responder(t, nc, "rpc.late", func(int32, *nats.Msg) *nats.Msg { return replyMsg("200", "null") })
	if err := <-done; err != nil {
		t.Errorf("read with late responder: %v", err)
	}
	if err := tr.(*transport.NATS).Close(); err != nil || nc.IsClosed() {
		t.Errorf("Close closed a borrowed connection (err %v)", err)
	}
}

func TestNATSConfigErrors(t *testing.T) {
	clearEnv(t)
	for _, subj := range []string{"a b", "rpc.*", "rpc.>"} {
		if _, err := transport.New("nats", transport.Config{Subject: subj, NATSURL: "nats://127.0.0.1:1"}); err == nil {
			t.Errorf("subject %q accepted", subj)
		}
	}
	if _, err := transport.New("nats", transport.Config{NATSURL: "nats://127.0.0.1:1"}); err == nil ||
		!strings.HasPrefix(err.Error(), "transport-nats: connect nats://127.0.0.1:1") {
		t.Errorf("unreachable server: %v", err)
	}
}

// TestHTTPSWithCAFile runs the real server with TLS and reaches it with a
// client that trusts the test CA (and fails without it).
func TestHTTPSWithCAFile(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	certFile, keyFile := writeSelfSigned(t, dir)
	st := memory.New()
	if err := st.Init(t.Context(), "tls"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- rpcserver.Run(ctx, st, rpcserver.Config{Listen: "127.0.0.1:0", TLSCert: certFile, TLSKey: keyFile,
			OnListen: func(a string) { addrc <- a }}, nil)
	}()
	t.Cleanup(func() { cancel(); <-done })
	var addr string
	select {
	case addr = <-addrc:
	case err := <-done:
		t.Fatalf("Run: %v", err)
	}
	tr, err := transport.New("http", transport.Config{URL: "https://" + addr, CAFile: certFile})
	if err != nil {
		t.Fatal(err)
	}
	res, err := tr.Call(t.Context(), wire.MethodHead, json.RawMessage(`["default"]`))
	if err != nil || string(res) != "null" {
		t.Fatalf("https call = %s, %v", res, err)
	}
	untrusting, err := transport.New("http", transport.Config{URL: "https://" + addr, Retries: -1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := untrusting.Call(t.Context(), wire.MethodHead, json.RawMessage(`["default"]`)); err == nil {
		t.Error("client without the CA accepted the self-signed certificate")
	}
	if _, err := transport.New("http", transport.Config{URL: "https://" + addr, CAFile: keyFile}); err == nil {
		t.Error("CA file without certificates accepted")
	}
}

func writeSelfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "securelog-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// Read methods go to the read-only subject (so a NATS user allowed only
// there can read); mutating ones to the subject; a server that serves only
// the subject still answers reads (fallback on no responders).
func TestNATSReadSubject(t *testing.T) {
	clearEnv(t)
	ns := rpctest.StartNATS(t)
	nc := rpctest.Connect(t, ns)
	reads := responder(t, nc, "rs.rpc.read", func(int32, *nats.Msg) *nats.Msg { return replyMsg("200", "7") })
	writes := responder(t, nc, "rs.rpc", func(int32, *nats.Msg) *nats.Msg { return replyMsg("200", "1") })
	tr, err := transport.NewNATS(transport.Config{NATSConn: nc, Subject: "rs.rpc"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if got, err := tr.Call(ctx, wire.MethodGlobalHead, nil); err != nil || string(got) != "7" {
		t.Fatalf("read: %s %v", got, err)
	}
	if _, err := tr.Call(ctx, wire.MethodInsert, json.RawMessage(`[{}]`)); err != nil {
		t.Fatal(err)
	}
	if reads.Load() != 1 || writes.Load() != 1 {
		t.Fatalf("read subject got %d, subject %d; want 1 and 1", reads.Load(), writes.Load())
	}
	old := responder(t, nc, "old.rpc", func(int32, *nats.Msg) *nats.Msg { return replyMsg("200", "3") })
	tr, err = transport.NewNATS(transport.Config{NATSConn: nc, Subject: "old.rpc"})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if got, err := tr.Call(ctx, wire.MethodGlobalHead, nil); err != nil || string(got) != "3" {
			t.Fatalf("read from a server without the read subject: %s %v", got, err)
		}
	}
	if old.Load() != 2 {
		t.Fatalf("old server answered %d reads, want 2", old.Load())
	}
}
