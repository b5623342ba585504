package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	xtlog "golang.org/x/mod/sumdb/tlog"

	"github.com/securelog/securelog/pkg/checkpoint"
	"github.com/securelog/securelog/pkg/keystore"
	"github.com/securelog/securelog/pkg/securelog"
	"github.com/securelog/securelog/pkg/store/memory"
	"github.com/securelog/securelog/pkg/tlogwitness"
	"github.com/securelog/securelog/pkg/wire"
	"github.com/securelog/securelog/pkg/witnessd"
)

// syncBuffer is a bytes.Buffer safe for a writer and a poller.
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

// witnessLog builds a log with one signed segment of stream "s" and writes
// the trust file of its signer to trustPath.
func witnessLog(t *testing.T, trustPath string) *securelog.Log {
	t.Helper()
	ctx := context.Background()
	ks, err := keystore.OpenSoftware(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	k, err := ks.Generate("attest", keystore.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	data, err := checkpoint.MarshalTrust([]checkpoint.TrustEntry{{Identity: "attest", Algorithm: k.Algorithm(), PublicKey: k.PublicKey()}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(trustPath, data, 0o644); err != nil {
		t.Fatal(err)
	}
	l := securelog.New(memory.New(), securelog.Options{Signer: ks})
	if err := l.Open(ctx, "cli-test"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Store().Close() })
	signNext(t, l)
	return l
}

func signNext(t *testing.T, l *securelog.Log) {
	t.Helper()
	ctx := context.Background()
	if _, err := l.Append(ctx, "s", "ev", wire.Info, "p", []byte("x")); err != nil {
		t.Fatal(err)
	}
	seg, err := l.CloseSegment(ctx, "s")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := l.SignSegment(ctx, "attest", seg.SegmentID); err != nil {
		t.Fatal(err)
	}
}

// startWitness runs `securelog witness` until the returned stop is called
// and returns its HTTP URL.
func startWitness(t *testing.T, args ...string) (url string, stop func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, append([]string{"witness", "--listen", "127.0.0.1:0"}, args...), nil, &stdout, &stderr)
	}()
	re := regexp.MustCompile(`listening on (http://\S+)`)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if m := re.FindStringSubmatch(stdout.String()); m != nil {
			url = m[1]
			break
		}
		select {
		case code := <-done:
			t.Fatalf("witness exited with %d: %s", code, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("witness did not start: %s %s", stdout.String(), stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return url, func() int { cancel(); return <-done }
}

func TestWitnessCommand(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "witness")
	wtrustPath := filepath.Join(dir, "witnesses.json")
	var out, errb bytes.Buffer
	if code := Main(context.Background(), []string{"witness", "keys", "--data", data, "--out", wtrustPath}, nil, &out, &errb); code != 0 {
		t.Fatalf("witness keys: %d %s", code, errb.String())
	}
	wtrust, err := checkpoint.LoadTrustFile(wtrustPath)
	if err != nil {
		t.Fatal(err)
	}
	entry, ok := wtrust.Lookup(witnessd.DefaultIdentity)
	if !ok || entry.Algorithm != keystore.Ed25519 || !strings.Contains(out.String(), "witness\ted25519\t") {
		t.Fatalf("witness trust %+v, output %q", entry, out.String())
	}

	trustPath := filepath.Join(dir, "trust.json")
	l := witnessLog(t, trustPath)
	url, stop := startWitness(t, "--data", data, "--trust", trustPath)
	ctx := context.Background()
	sub, err := l.BuildWitnessSubmission(ctx, "s", 0)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := witnessd.NewHTTPClient(url).Submit(ctx, sub)
	if err != nil || !rec.Accepted {
		t.Fatalf("submit: %+v %v", rec, err)
	}
	if err := witnessd.VerifyCosignature(wtrust, rec); err != nil {
		t.Fatal(err)
	}
	if code := stop(); code != 0 {
		t.Fatalf("witness exit code %d", code)
	}

	// The witnessed head survives a restart: an older checkpoint is stale,
	// the next one must link to the remembered head.
	first := sub
	signNext(t, l)
	url, stop = startWitness(t, "--data", data, "--trust", trustPath)
	defer stop()
	next, err := l.BuildWitnessSubmission(ctx, "s", first.SegmentID)
	if err != nil {
		t.Fatal(err)
	}
	c := witnessd.NewHTTPClient(url)
	if rec, err := c.Submit(ctx, next); err != nil || !rec.Accepted {
		t.Fatalf("next: %+v %v", rec, err)
	}
	rec, err = c.Submit(ctx, first)
	if err != nil || rec.Status != witnessd.StatusStale || rec.CurrentHead == nil || rec.CurrentHead.SegmentID != next.SegmentID {
		t.Fatalf("stale: %+v %v", rec, err)
	}
}

func TestWitnessUsage(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"witness", "--data", dir},                                      // no trust file
		{"witness", "--trust", filepath.Join(dir, "t.json")},            // no data dir
		{"witness", "--data", dir, "--trust", "t.json", "--listen", ""}, // nothing to serve
		{"witness", "keys"},
	} {
		var out, errb bytes.Buffer
		if code := Main(context.Background(), args, nil, &out, &errb); code != 2 {
			t.Errorf("%v: exit %d (%s), want 2", args, code, errb.String())
		}
	}
}

// TestWitnessCommandTlog: `securelog witness --tlog-log VKEY` serves C2SP
// tlog-witness; the vkey `witness keys --tlog-name` prints verifies its
// cosignatures, and its state survives a restart.
func TestWitnessCommandTlog(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	data := filepath.Join(dir, "witness")
	trustPath := filepath.Join(dir, "trust.json")
	witnessLog(t, trustPath)
	var out, errb bytes.Buffer
	if code := Main(ctx, []string{"witness", "keys", "--data", data, "--tlog-name", "witness.test/w1"}, nil, &out, &errb); code != 0 {
		t.Fatalf("witness keys: %d %s", code, errb.String())
	}
	m := regexp.MustCompile(`tlog-witness cosigner vkey\t(\S+)`).FindStringSubmatch(out.String())
	if m == nil || !strings.HasPrefix(m[1], "witness.test/w1+") {
		t.Fatalf("witness keys output %q has no cosigner vkey", out.String())
	}
	wvkey := m[1]

	const origin = "example.com/cli-log"
	skey, vkey, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := note.NewSigner(skey)
	var leaves []xtlog.Hash
	var size int64
	hr := xtlog.HashReaderFunc(func(idx []int64) ([]xtlog.Hash, error) {
		outh := make([]xtlog.Hash, len(idx))
		for i, x := range idx {
			outh[i] = leaves[x]
		}
		return outh, nil
	})
	checkpointOf := func(k int, salt string) []byte {
		for range k {
			hs, err := xtlog.StoredHashes(size, []byte(salt+fmt.Sprint(size)), hr)
			if err != nil {
				t.Fatal(err)
			}
			leaves = append(leaves, hs...)
			size++
		}
		root, err := xtlog.TreeHash(size, hr)
		if err != nil {
			t.Fatal(err)
		}
		msg, err := note.Sign(&note.Note{Text: tlogwitness.Checkpoint{Origin: origin, Size: size, Root: root}.String()}, signer)
		if err != nil {
			t.Fatal(err)
		}
		return msg
	}

	args := []string{"--data", data, "--trust", trustPath, "--tlog-log", vkey, "--tlog-name", "witness.test/w1"}
	url, stop := startWitness(t, args...)
	opts := tlogwitness.Options{Witnesses: []tlogwitness.WitnessConfig{{URL: url, VKey: wvkey}}}
	client, err := tlogwitness.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	logV, _ := tlogwitness.NewVerifier(vkey)
	verifier := tlogwitness.CheckpointVerifier{Origin: origin, Log: logV, Policy: client.Policy()}
	for _, k := range []int{2, 5} {
		res, err := client.Submit(ctx, checkpointOf(k, "a"), tlogwitness.HashReaderProofs(hr))
		if err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		if _, err := verifier.Verify(res.Cosigned, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if code := stop(); code != 0 {
		t.Fatalf("witness exit %d", code)
	}
	// Restarted with --tlog (the log's vkey from a trust file instead of
	// --tlog-log), the witness remembers size 7: a fresh client learns it
	// through 409 and gets the next checkpoint cosigned.
	raw, _ := base64.StdEncoding.DecodeString(strings.SplitN(vkey, "+", 3)[2]) // NAME+ID+BASE64; base64 may hold '+'
	if len(raw) != 33 {
		t.Fatalf("vkey %q: key of %d bytes", vkey, len(raw))
	}
	trust2 := filepath.Join(dir, "trust-vkey.json")
	tdata, err := checkpoint.MarshalTrust([]checkpoint.TrustEntry{{Identity: "tlog", Algorithm: keystore.Ed25519, PublicKey: raw[1:], VKey: vkey}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(trust2, tdata, 0o644); err != nil {
		t.Fatal(err)
	}
	var eout, eerr bytes.Buffer
	if code := Main(ctx, []string{"witness", "--data", data, "--trust", trustPath, "--tlog", "--listen", "127.0.0.1:0"}, nil, &eout, &eerr); code != 2 {
		t.Fatalf("--tlog with a trust file without vkeys: exit %d, want 2 (%s)", code, eerr.String())
	}
	url, stop = startWitness(t, "--data", data, "--trust", trust2, "--tlog", "--tlog-name", "witness.test/w1")
	defer stop()
	opts.Witnesses[0].URL = url
	client, _ = tlogwitness.New(opts)
	res, err := client.Submit(ctx, checkpointOf(3, "a"), tlogwitness.HashReaderProofs(hr))
	if err != nil || !res.Witnessed {
		t.Fatalf("after restart: %v", err)
	}
	// An unknown origin is 404.
	resp, err := http.Post(url+"/add-checkpoint", "text/plain", strings.NewReader("old 0\n\nexample.com/nobody\n1\n"+
		base64.StdEncoding.EncodeToString(make([]byte, 32))+"\n\n— example.com/nobody AAAAAAAA\n"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown origin: %d", resp.StatusCode)
	}
}
