package node

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"net"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/mod/sumdb/note"

	"github.com/securelog/securelog/pkg/checkpoint"
	"github.com/securelog/securelog/pkg/keystore"
	"github.com/securelog/securelog/pkg/store/memory"
	"github.com/securelog/securelog/pkg/tlog"
	"github.com/securelog/securelog/pkg/tlogwitness"
	"github.com/securelog/securelog/pkg/witnessd"
)

// startNATS runs a JetStream nats-server on a free loopback port.
func startNATS(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	t.Cleanup(ns.Shutdown)
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	return ns.ClientURL()
}

// tlogWitnessServer runs a securelog witness that is a C2SP tlog-witness
// of the log with vkey, over HTTP; it returns its URL and cosigner vkey.
func tlogWitnessServer(t *testing.T, trust *checkpoint.Trust, origin, vkey string) (string, string) {
	t.Helper()
	st := memory.New()
	if err := st.Init(t.Context(), "w"); err != nil {
		t.Fatal(err)
	}
	heads, err := witnessd.OpenTreeHeads(t.Context(), filepath.Join(t.TempDir(), "heads.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { heads.Close() })
	_, priv, _ := ed25519.GenerateKey(nil)
	key, _ := keystore.KeyFromSigner(priv)
	srv, err := witnessd.New(witnessd.Config{Store: st, Trust: trust, Key: key, Logger: quietLogger(),
		Tlog: &witnessd.TlogConfig{Name: "w.example/split", State: heads, Logs: []witnessd.TlogLog{{Origin: origin, VerifierKeys: []string{vkey}}}}})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return hs.URL, srv.TlogVerifierKey()
}

// In the split deployment the signer worker runs the checkpointer over
// the ingester's tree (read over NATS), submits each checkpoint to the
// tlog-witness and the ingester serves the witnessed checkpoint at
// /checkpoint. A restarted signer resumes from its state file: the
// witness answers 409 with its size and the client retries with a
// consistency proof from there.
func TestSplitSignerCheckpointsWithWitness(t *testing.T) {
	url := startNATS(t)
	dir := t.TempDir()
	info, err := PrepareData(filepath.Join(dir, "data"), "securelog")
	if err != nil {
		t.Fatal(err)
	}
	trust, err := checkpoint.LoadTrustFile(info.TrustFile)
	if err != nil {
		t.Fatal(err)
	}
	e, _ := trust.Lookup("securelog")
	origin := tlog.DefaultOrigin("securelog")
	wURL, wVKey := tlogWitnessServer(t, trust, origin, e.VKey)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var ilog lockedBuffer
	idone := make(chan error, 1)
	go func() {
		idone <- RunIngester(ctx, IngesterConfig{NATS: NATSClient{URL: url}, Store: StoreConfig{Spec: info.StoreSpec},
			HeadFile: info.HeadFile, KEKFile: info.KEKFile, TrustFile: info.TrustFile, HTTPListen: "127.0.0.1:0",
			Logger: slog.New(slog.NewTextHandler(&ilog, nil))})
	}()
	addrRe := regexp.MustCompile(`msg="ingester starting" .* http=(127\.0\.0\.1:\d+)`)
	var httpAddr string
	for deadline := time.Now().Add(60 * time.Second); httpAddr == ""; time.Sleep(20 * time.Millisecond) {
		if m := addrRe.FindStringSubmatch(ilog.String()); m != nil {
			httpAddr = m[1]
		}
		select {
		case err := <-idone:
			t.Fatalf("ingester: %v\n%s", err, ilog.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("ingester did not start:\n%s", ilog.String())
		}
	}
	signer := func(ctx context.Context) chan error {
		done := make(chan error, 1)
		go func() {
			done <- RunSigner(ctx, SignerConfig{NATS: NATSClient{URL: url}, Keystore: KeystoreConfig{Dir: info.KeysDir},
				Identity: "securelog", TrustFile: info.TrustFile, HeadFile: filepath.Join(dir, "signer.heads.json"), KEKFile: info.KEKFile,
				Tlog:   TlogConfig{Interval: 100 * time.Millisecond, Witnesses: []tlogwitness.WitnessConfig{{URL: wURL, VKey: wVKey}}},
				Logger: quietLogger()})
		}()
		return done
	}
	sctx, scancel := context.WithCancel(ctx)
	sdone := signer(sctx)

	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	publish := func(n int) {
		for i := 0; i < n; i++ {
			body := fmt.Sprintf(`{"type":"t","severity":"info","producer":"p","payload":"e%d"}`, i)
			if _, err := js.Publish(ctx, "securelog.in.s", []byte(body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	lv, err := note.NewVerifier(e.VKey)
	if err != nil {
		t.Fatal(err)
	}
	wv, _ := tlogwitness.NewVerifier(wVKey)
	v := tlogwitness.CheckpointVerifier{Origin: origin, Log: lv, Policy: tlogwitness.Policy{Witnesses: []note.Verifier{wv}}}
	publish(40)
	first := waitWitnessed(t, httpAddr, "", v, 40)

	// Restart the signer: its client no longer knows the witness's size.
	scancel()
	if err := <-sdone; err != nil {
		t.Fatalf("signer: %v", err)
	}
	sdone = signer(ctx)
	publish(25)
	second := waitWitnessed(t, httpAddr, "", v, 65)
	if second.Checkpoint.Size <= first.Checkpoint.Size {
		t.Fatalf("sizes %d then %d", first.Checkpoint.Size, second.Checkpoint.Size)
	}
	cancel()
	<-sdone
	<-idone
}
