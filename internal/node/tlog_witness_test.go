package node

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/mod/sumdb/note"

	"github.com/securelog/securelog/pkg/checkpoint"
	"github.com/securelog/securelog/pkg/pipeline"
	"github.com/securelog/securelog/pkg/producer"
	"github.com/securelog/securelog/pkg/tlogwitness"
	"github.com/securelog/securelog/pkg/wire"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// startUp runs Up until the test ends and returns its Info.
func startUp(t *testing.T, cfg UpConfig) Info {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	infoc := make(chan Info, 1)
	done := make(chan error, 1)
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	go func() { done <- Up(ctx, cfg, func(i Info) { infoc <- i }) }()
	select {
	case info := <-infoc:
		t.Cleanup(func() { cancel(); <-done })
		return info
	case err := <-done:
		cancel()
		t.Fatalf("up: %v", err)
	case <-time.After(60 * time.Second):
		cancel()
		t.Fatal("up did not start in 60 s")
	}
	return Info{}
}

// publishN publishes n events to stream s through JetStream.
func publishN(t *testing.T, info Info, n int) {
	t.Helper()
	nc, err := info.Connect("tlog-witness-test")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	for i := 0; i < n; i++ {
		body := fmt.Sprintf(`{"type":"t","severity":"info","producer":"p","payload":"e%d"}`, i)
		if _, err := js.Publish(context.Background(), "securelog.in.s", []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
}

// logVerifier returns the note verifier of the log key in the trust file.
func logVerifier(t *testing.T, info Info) note.Verifier {
	t.Helper()
	trust, err := checkpoint.LoadTrustFile(info.TrustFile)
	if err != nil {
		t.Fatal(err)
	}
	e, _ := trust.Lookup(info.Identity)
	v, err := note.NewVerifier(e.VKey)
	if err != nil {
		t.Fatalf("trust file vkey %q: %v", e.VKey, err)
	}
	return v
}

// getCheckpoint GETs /checkpoint with an optional bearer token.
func getCheckpoint(t *testing.T, addr, token string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/checkpoint", nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// waitWitnessed polls /checkpoint until it is a checkpoint of at least
// size entries that v accepts (policy met).
func waitWitnessed(t *testing.T, addr, token string, v tlogwitness.CheckpointVerifier, size int64) *tlogwitness.Verified {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		code, body := getCheckpoint(t, addr, token)
		if code == http.StatusOK {
			got, err := v.Verify(body, time.Now())
			if err == nil && got.Checkpoint.Size >= size {
				return got
			}
			last = fmt.Errorf("size %v: %v\n%s", got, err, body)
		} else {
			last = fmt.Errorf("HTTP %d %s", code, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no witnessed checkpoint of size %d: %v", size, last)
	return nil
}

// up's local witness is a C2SP tlog-witness: /checkpoint serves checkpoints
// that it cosigned, which a policy of that witness accepts; the tiles need
// a reader token when the listener has tokens (not with Public).
func TestUpLocalWitnessCosignsCheckpoints(t *testing.T) {
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens.json")
	if err := os.WriteFile(tokens, []byte(`[{"token":"w-tok","role":"writer"},{"token":"r-tok","role":"reader"}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	info := startUp(t, UpConfig{DataDir: filepath.Join(dir, "data"), HTTPListen: "127.0.0.1:0", LocalWitness: true,
		TokensFile: tokens, Tlog: TlogConfig{Interval: 50 * time.Millisecond}})
	if info.WitnessVKey == "" {
		t.Fatal("up's local witness has no tlog-witness vkey")
	}
	wv, err := tlogwitness.NewVerifier(info.WitnessVKey)
	if err != nil {
		t.Fatal(err)
	}
	lv := logVerifier(t, info)
	v := tlogwitness.CheckpointVerifier{Origin: lv.Name(), Log: lv, Policy: tlogwitness.Policy{Witnesses: []note.Verifier{wv}}}
	publishN(t, info, 50)
	got := waitWitnessed(t, info.HTTPAddr, "r-tok", v, 50)
	if len(got.Cosignatures) != 1 || got.Cosignatures[0].Witness != LocalTlogWitnessName {
		t.Fatalf("cosignatures %+v", got.Cosignatures)
	}
	if code, _ := getCheckpoint(t, info.HTTPAddr, ""); code != http.StatusUnauthorized {
		t.Fatalf("/checkpoint without a token: HTTP %d, want 401", code)
	}
	if code, _ := getCheckpoint(t, info.HTTPAddr, "bad"); code != http.StatusUnauthorized {
		t.Fatalf("/checkpoint with an unknown token: HTTP %d, want 401", code)
	}
	// The checkpointer answers securelog.tlog.latest with the same note.
	nc, err := info.Connect("latest")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	m, err := nc.Request(wire.TlogLatestSubject, nil, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var r wire.TlogLatestReply
	if err := json.Unmarshal(m.Data, &r); err != nil || !r.Policy || r.Size < 50 {
		t.Fatalf("latest reply %+v %v", r, err)
	}
	if _, err := v.Verify([]byte(r.Checkpoint), time.Now()); err != nil {
		t.Fatalf("latest reply: %v", err)
	}
	// A policy with a witness that never cosigned refuses it.
	pub, _, _ := ed25519.GenerateKey(nil)
	ov, _ := tlogwitness.NewCosignatureVerifier("other.example/w", pub)
	v2 := v
	v2.Policy = tlogwitness.Policy{Witnesses: []note.Verifier{wv, ov}}
	var qe *tlogwitness.QuorumError
	if _, err := v2.Verify([]byte(r.Checkpoint), time.Now()); !errors.As(err, &qe) {
		t.Fatalf("2-of-2 policy with an absent witness: %v", err)
	}
}

// With Public the tiles need no token.
func TestUpPublicTiles(t *testing.T) {
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens.json")
	if err := os.WriteFile(tokens, []byte(`[{"token":"w-tok","role":"writer"}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	info := startUp(t, UpConfig{DataDir: filepath.Join(dir, "data"), HTTPListen: "127.0.0.1:0",
		TokensFile: tokens, Tlog: TlogConfig{Interval: 50 * time.Millisecond, Public: true}})
	lv := logVerifier(t, info)
	publishN(t, info, 5)
	waitWitnessed(t, info.HTTPAddr, "", tlogwitness.CheckpointVerifier{Origin: lv.Name(), Log: lv}, 5)
}

// With a witness policy (up's local witness), the checkpointed level
// waits for a witnessed C2SP checkpoint that holds the entry, and returns
// it; the policy accepts it.
func TestCheckpointedWaitsForWitnessedCheckpoint(t *testing.T) {
	info := startUp(t, UpConfig{DataDir: filepath.Join(t.TempDir(), "data"), LocalWitness: true,
		Sealer: pipeline.SealerConfig{MaxAge: 50 * time.Millisecond, ScanInterval: 20 * time.Millisecond},
		Signer: pipeline.SignerConfig{ScanInterval: 20 * time.Millisecond},
		Tlog:   TlogConfig{Interval: 300 * time.Millisecond}})
	nc, err := info.Connect("producer")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	c, err := producer.New(nc, producer.Options{PollInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	wv, _ := tlogwitness.NewVerifier(info.WitnessVKey)
	lv := logVerifier(t, info)
	v := tlogwitness.CheckpointVerifier{Origin: lv.Name(), Log: lv, Policy: tlogwitness.Policy{Witnesses: []note.Verifier{wv}}}
	for i := range 3 {
		app, err := c.Append(ctx, "s", producer.Event{Severity: wire.Info, Payload: fmt.Appendf(nil, "e%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		ck, err := c.AwaitCheckpoint(ctx, app.Seqno)
		if err != nil {
			t.Fatal(err)
		}
		if ck.TlogCheckpoint == "" {
			t.Fatalf("seqno %d checkpointed without a witnessed C2SP checkpoint", app.Seqno)
		}
		got, err := v.Verify([]byte(ck.TlogCheckpoint), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if got.Checkpoint.Size < int64(app.Seqno) {
			t.Fatalf("seqno %d: witnessed checkpoint of size %d does not hold it", app.Seqno, got.Checkpoint.Size)
		}
	}
}

// up's witness trust file names the local witness's cosignature vkey.
func TestUpWitnessTrustHasVKey(t *testing.T) {
	info := startUp(t, UpConfig{DataDir: filepath.Join(t.TempDir(), "data"), LocalWitness: true})
	wt, err := checkpoint.LoadTrustFile(info.WitnessTrustFile)
	if err != nil {
		t.Fatal(err)
	}
	if e := wt.Entries(); len(e) != 1 || e[0].VKey == "" || e[0].VKey != info.WitnessVKey {
		t.Fatalf("witness trust %+v, vkey %q", e, info.WitnessVKey)
	}
}
