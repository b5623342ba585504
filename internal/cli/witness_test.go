package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/securelog/securelog/pkg/checkpoint"
	"github.com/securelog/securelog/pkg/keystore"
	"github.com/securelog/securelog/pkg/securelog"
	"github.com/securelog/securelog/pkg/store/memory"
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
