package litewitness

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/crypto/ssh"
	"golang.org/x/mod/sumdb/note"

	"github.com/securelog/securelog/internal/node"
	"github.com/securelog/securelog/pkg/checkpoint"
	"github.com/securelog/securelog/pkg/rpcserver"
	"github.com/securelog/securelog/pkg/tlog"
	"github.com/securelog/securelog/pkg/tlogwitness"
)

// litewitness cosigns our checkpoints through `up`'s own wiring: the
// checkpointer submits each checkpoint to it (--tlog-witnesses), /checkpoint
// serves only checkpoints it cosigned, our verifier accepts its
// cosignatures and refuses a tampered one.
func TestLitewitnessCosignsThroughUp(t *testing.T) {
	dir := t.TempDir()
	bin := buildLitewitness(t, dir)
	data := filepath.Join(dir, "data")
	info, err := node.PrepareData(data, "securelog")
	if err != nil {
		t.Fatal(err)
	}
	trust, err := checkpoint.LoadTrustFile(info.TrustFile)
	if err != nil {
		t.Fatal(err)
	}
	e, _ := trust.Lookup("securelog")
	logOrigin := tlog.DefaultOrigin("securelog")

	seed := sha256.Sum256([]byte("litewitness through up"))
	wkey := ed25519.NewKeyFromSeed(seed[:])
	sock := startAgent(t, wkey)
	sshPub, err := ssh.NewPublicKey(wkey.Public())
	if err != nil {
		t.Fatal(err)
	}
	dbPath := filepath.Join(dir, "lw.db")
	seedDB(t, dbPath, logOrigin, e.VKey)
	addr := freeAddr(t)
	startLitewitness(t, bin, dbPath, sock, ssh.FingerprintSHA256(sshPub), addr)
	wvkey := tlogwitness.VerifierKey(witnessName, tlogwitness.SigTypeCosignatureV1, wkey.Public().(ed25519.PublicKey))

	ctx, cancel := context.WithCancel(context.Background())
	infoc := make(chan node.Info, 1)
	done := make(chan error, 1)
	go func() {
		done <- node.Up(ctx, node.UpConfig{DataDir: data, HTTPListen: "127.0.0.1:0",
			Tlog:   node.TlogConfig{Interval: 100 * time.Millisecond, Witnesses: []tlogwitness.WitnessConfig{{URL: "http://" + addr, VKey: wvkey}}},
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, func(i node.Info) { infoc <- i })
	}()
	select {
	case info = <-infoc:
	case err := <-done:
		t.Fatalf("up: %v", err)
	}
	defer func() { cancel(); <-done }()
	nc, err := info.Connect("lw-through-up")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	lv, _ := tlogwitness.NewVerifier(e.VKey)
	wv, _ := tlogwitness.NewVerifier(wvkey)
	v := tlogwitness.CheckpointVerifier{Origin: logOrigin, Log: lv, Policy: tlogwitness.Policy{Witnesses: []note.Verifier{wv}}}
	// up is authenticated by default: /checkpoint and the tiles need the
	// reader token from its data directory.
	tok, err := info.Token(rpcserver.RoleReader)
	if err != nil {
		t.Fatal(err)
	}
	cl := &tlog.Client{URL: "http://" + info.HTTPAddr, Token: tok}
	var last []byte
	for round, want := range []int64{20, 45} {
		for i := 0; i < 25-5*(1-round); i++ {
			if _, err := js.Publish(ctx, "securelog.in.s", fmt.Appendf(nil, `{"type":"t","severity":"info","producer":"p","payload":"%d"}`, i)); err != nil {
				t.Fatal(err)
			}
		}
		var lastErr error
		waitFor(t, fmt.Sprintf("a checkpoint of size %d cosigned by litewitness", want), func() bool {
			msg, err := cl.Checkpoint(ctx)
			if err != nil {
				lastErr = err
				return false
			}
			got, err := v.Verify(msg, time.Now())
			if err != nil {
				lastErr = err
				return false
			}
			last = msg
			return got.Checkpoint.Size >= want && len(got.Cosignatures) == 1 && got.Cosignatures[0].Witness == witnessName
		})
		_ = lastErr
	}
	if got := dbSize(t, dbPath, logOrigin); got < 45 {
		t.Fatalf("litewitness recorded size %d", got)
	}
	// A tampered litewitness cosignature is refused.
	i := strings.LastIndex(string(last), "— "+witnessName+" ")
	if i < 0 {
		t.Fatalf("no litewitness signature line in\n%s", last)
	}
	b := []byte(string(last))
	j := i + len("— "+witnessName+" ") + 10
	if b[j] == 'A' {
		b[j] = 'B'
	} else {
		b[j] = 'A'
	}
	if _, err := v.Verify(b, time.Now()); err == nil {
		t.Fatal("a tampered litewitness cosignature verified")
	}
}
