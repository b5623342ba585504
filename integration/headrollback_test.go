package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/securelog/securelog/internal/node"
	"github.com/securelog/securelog/pkg/checkpoint"
	"github.com/securelog/securelog/pkg/keystore"
	"github.com/securelog/securelog/pkg/pipeline"
	"github.com/securelog/securelog/pkg/producer"
	"github.com/securelog/securelog/pkg/securelog"
	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/wire"
	"github.com/securelog/securelog/pkg/witnessd"
)

// runUp runs node.Up until stop is called (stop waits for it to return).
func runUp(t *testing.T, cfg node.UpConfig) (node.Info, func()) {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	ctx, cancel := context.WithCancel(context.Background())
	infoc := make(chan node.Info, 1)
	done := make(chan error, 1)
	go func() { done <- node.Up(ctx, cfg, func(i node.Info) { infoc <- i }) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("node.Up: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Error("node.Up did not stop in 30s")
			}
		})
	}
	t.Cleanup(stop)
	select {
	case info := <-infoc:
		return info, stop
	case err := <-done:
		once.Do(cancel)
		t.Fatalf("node.Up: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("node.Up did not start in 60s")
	}
	return node.Info{}, stop
}

// copyTree copies the directory tree src to dst (which must not exist),
// keeping file modes: an older copy of a data directory.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, fi.Mode().Perm())
		}
		if !fi.Mode().IsRegular() {
			return nil // sockets, lock files of a stopped process
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, fi.Mode().Perm())
	})
	if err != nil {
		t.Fatalf("copy %s to %s: %v", src, dst, err)
	}
}

// httpWitness runs a witness (memory store, HTTP) that trusts the log keys
// of trustFile and returns its URL; it stops at test cleanup.
func httpWitness(t *testing.T, trustFile string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	trust, err := checkpoint.LoadTrustFile(trustFile)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := keystore.OpenSoftware(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	key, err := ks.GetKeyOrCreate(ctx, witnessd.DefaultIdentity, keystore.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, "memory:witness")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := witnessd.New(witnessd.Config{Store: st, Trust: trust, Key: key, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	listening := make(chan string, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Run(ctx, witnessd.RunConfig{Listen: "127.0.0.1:0", OnListen: func(a string) { listening <- a }})
		st.Close()
	}()
	t.Cleanup(func() { cancel(); <-done })
	return "http://" + <-listening
}

// witnessHead returns the segment id of the witness's head of stream (0 if none).
func witnessHead(url, stream string) (uint64, error) {
	resp, err := http.Get(url + witnessd.HeadPath + stream)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return 0, nil
	}
	var r wire.WitnessRow
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return 0, err
	}
	return r.SegmentID, nil
}

// healthz returns the status code of GET /healthz.
func healthz(t *testing.T, addr string) int {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// The adversarial scenario of issue 9 item 9, "rollback with head file
// deleted", against securelog up: an older copy of the data directory is
// restored and the head file deleted. Up then refuses appends and signing
// with a clear error, an alert on securelog.alert.<stream> and /healthz
// not ok; with a witness's head (--reset-head-from-witness) the store is
// found behind the witnessed head and refused; with --accept-missing-head
// it goes on.
func TestUpRollbackWithHeadFileDeleted(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	prep, err := node.PrepareData(data, pipeline.DefaultIdentity)
	if err != nil {
		t.Fatal(err)
	}
	wurl := httpWitness(t, prep.TrustFile)
	base := node.UpConfig{DataDir: data, HTTPListen: "127.0.0.1:0", Witnesses: []string{wurl}, Tlog: node.TlogConfig{Off: true},
		Sealer: pipeline.SealerConfig{MaxEntries: 2, MaxAge: 100 * time.Millisecond},
		Signer: pipeline.SignerConfig{ScanInterval: 200 * time.Millisecond}}
	const stream = "ledger"
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// commit appends two events and waits until the witness holds their
	// segment; it returns that segment id.
	commit := func(info node.Info, tag string) uint64 {
		t.Helper()
		nc, err := info.Connect("test")
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		c, err := producer.New(nc, producer.Options{PollInterval: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		var last producer.Committed
		for i := range 2 {
			if last, err = c.Append(ctx, stream, producer.Event{Type: "t", Severity: wire.Info, Producer: "it", Payload: fmt.Appendf(nil, "%s-%d", tag, i)}); err != nil {
				t.Fatal(err)
			}
		}
		ck, err := c.AwaitCheckpoint(ctx, last.Seqno)
		if err != nil {
			t.Fatal(err)
		}
		checkFor(t, 60*time.Second, 50*time.Millisecond, func() error {
			if id, err := witnessHead(wurl, stream); err != nil || id < ck.Segment.SegmentID {
				return fmt.Errorf("witness head %d (%v), want %d", id, err, ck.Segment.SegmentID)
			}
			return nil
		})
		return ck.Segment.SegmentID
	}

	info, stop := runUp(t, base)
	commit(info, "before")
	stop()
	backup := filepath.Join(dir, "backup")
	copyTree(t, data, backup)
	info, stop = runUp(t, base)
	newest := commit(info, "after")
	stop()

	// The attack: the older copy back in place, the head file deleted.
	if err := os.RemoveAll(data); err != nil {
		t.Fatal(err)
	}
	copyTree(t, backup, data)
	if err := os.Remove(info.HeadFile); err != nil {
		t.Fatal(err)
	}

	// attempt starts up with cfg, collects the alerts its signer raises
	// while it opens, and tries one append.
	attempt := func(cfg node.UpConfig) (node.Info, []wire.AlertMsg, error, func()) {
		t.Helper()
		var mu sync.Mutex
		var alerts []wire.AlertMsg
		cfg.Extra = func(_ context.Context, info node.Info) ([]pipeline.Witness, error) {
			nc, err := info.Connect("alerts")
			if err != nil {
				return nil, err
			}
			t.Cleanup(nc.Close)
			if _, err := nc.Subscribe(wire.KindAlert+">", func(m *nats.Msg) {
				var a wire.AlertMsg
				if json.Unmarshal(m.Data, &a) == nil {
					mu.Lock()
					alerts = append(alerts, a)
					mu.Unlock()
				}
			}); err != nil {
				return nil, err
			}
			return nil, nc.Flush()
		}
		info, stop := runUp(t, cfg)
		nc, err := info.Connect("test")
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		c, err := producer.New(nc, producer.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		actx, acancel := context.WithTimeout(ctx, 20*time.Second)
		defer acancel()
		_, aerr := c.Append(actx, stream, producer.Event{Type: "t", Severity: wire.Info, Producer: "it", Payload: []byte("fork")})
		mu.Lock()
		defer mu.Unlock()
		return info, append([]wire.AlertMsg(nil), alerts...), aerr, stop
	}
	wantAlert := func(alerts []wire.AlertMsg, kind string) {
		t.Helper()
		for _, a := range alerts {
			if a.Stream == stream && a.Kind == kind {
				return
			}
		}
		t.Fatalf("no %s alert on %s%s: %+v", kind, wire.KindAlert, stream, alerts)
	}

	// No anchor: refused, named, alerted, not healthy.
	info, alerts, err, stop := attempt(base)
	if err == nil || !strings.Contains(err.Error(), securelog.HaltMissingHead) || !strings.Contains(err.Error(), "--accept-missing-head") {
		t.Fatalf("append on the unanchored older copy: %v", err)
	}
	wantAlert(alerts, securelog.HaltMissingHead)
	if code := healthz(t, info.HTTPAddr); code == http.StatusOK {
		t.Fatal("/healthz ok with a missing head file")
	}
	stop()
	if _, err := os.Stat(info.HeadFile); err == nil {
		t.Fatal("a head file was written for an unanchored store")
	}

	// The witness's head: it saw segment `newest`, which the store lacks.
	cfg := base
	cfg.Anchor = node.HeadAnchor{WitnessURL: wurl}
	info, alerts, err, stop = attempt(cfg)
	if err == nil || !strings.Contains(err.Error(), securelog.HaltRollback) || !strings.Contains(err.Error(), fmt.Sprintf("segment %d", newest)) {
		t.Fatalf("append with the witness's head on the older copy: %v", err)
	}
	wantAlert(alerts, securelog.HaltRollback)
	if code := healthz(t, info.HTTPAddr); code == http.StatusOK {
		t.Fatal("/healthz ok on a rolled-back store")
	}
	stop()

	// The operator accepts the store as it is.
	cfg = base
	cfg.Anchor = node.HeadAnchor{Accept: true}
	info, _, err, stop = attempt(cfg)
	if err != nil {
		t.Fatalf("append with --accept-missing-head: %v", err)
	}
	if code := healthz(t, info.HTTPAddr); code != http.StatusOK {
		t.Fatalf("/healthz %d after --accept-missing-head", code)
	}
	stop()
	if _, err := os.Stat(info.HeadFile); err != nil {
		t.Fatalf("head file not re-established: %v", err)
	}
}
