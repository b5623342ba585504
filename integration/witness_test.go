package integration_test

// Witness scenarios (DECISIONS 11 and 12), end to end over real transports:
//
//	(e) equivocation: a forged second checkpoint for an already witnessed
//	    segment is refused by the witness and alerted on NATS;
//	(f) rollback: replacing the log's store with an older copy makes the
//	    witness's cross-check alert, and the log's head file refuses to
//	    open or sign on it.

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/securelog/securelog/pkg/checkpoint"
	"github.com/securelog/securelog/pkg/keystore"
	"github.com/securelog/securelog/pkg/rpcserver"
	"github.com/securelog/securelog/pkg/rpcserver/rpctest"
	"github.com/securelog/securelog/pkg/securelog"
	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/store/memory"
	_ "github.com/securelog/securelog/pkg/store/pebblestore"
	"github.com/securelog/securelog/pkg/store/remote"
	"github.com/securelog/securelog/pkg/transport"
	"github.com/securelog/securelog/pkg/wire"
	"github.com/securelog/securelog/pkg/witness"
	"github.com/securelog/securelog/pkg/witnessd"
)

// witEnv is a signing keystore with its trust file and a running witness
// (pebble witness log, HTTP + NATS, alerts collected from NATS and the hook).
type witEnv struct {
	ks        *keystore.Software
	trust     *checkpoint.Trust
	nc        *nats.Conn
	srv       *witnessd.Server
	url       string
	wtrust    *checkpoint.Trust
	hook      chan witnessd.Alert
	published chan witnessd.Alert
}

func witStart(t *testing.T, logStore store.Store) *witEnv {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	ks, err := keystore.OpenSoftware(filepath.Join(dir, "log-keys"))
	if err != nil {
		t.Fatal(err)
	}
	k, err := ks.Generate("attest", keystore.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	trust, err := checkpoint.NewTrust(checkpoint.TrustEntry{Identity: "attest", Algorithm: k.Algorithm(), PublicKey: k.PublicKey()})
	if err != nil {
		t.Fatal(err)
	}
	ns := rpctest.StartNATS(t)
	nc := rpctest.Connect(t, ns)
	e := &witEnv{ks: ks, trust: trust, nc: nc, hook: make(chan witnessd.Alert, 16), published: make(chan witnessd.Alert, 16)}
	sub, err := nc.Subscribe(witnessd.AlertSubjectPrefix+">", func(m *nats.Msg) {
		var msg wire.AlertMsg
		if err := json.Unmarshal(m.Data, &msg); err == nil {
			e.published <- witnessd.Alert{Stream: msg.Stream, SegmentID: msg.SegmentID, Kind: msg.Kind, Detail: msg.Message}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	wst, err := store.Open(ctx, "pebble:"+filepath.Join(dir, "witness", "log"))
	if err != nil {
		t.Fatal(err)
	}
	wks, err := keystore.OpenSoftware(filepath.Join(dir, "witness", "keys"))
	if err != nil {
		t.Fatal(err)
	}
	wkey, err := wks.GetKeyOrCreate(ctx, witnessd.DefaultIdentity, keystore.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	e.wtrust, err = checkpoint.NewTrust(checkpoint.TrustEntry{Identity: witnessd.DefaultIdentity, Algorithm: wkey.Algorithm(), PublicKey: wkey.PublicKey()})
	if err != nil {
		t.Fatal(err)
	}
	e.srv, err = witnessd.New(witnessd.Config{
		Store: wst, Trust: trust, Key: wkey, LogStore: logStore, CheckInterval: 20 * time.Millisecond,
		NATS: nc, OnAlert: func(a witnessd.Alert) { e.hook <- a },
	})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- e.srv.Run(runCtx, witnessd.RunConfig{Listen: "127.0.0.1:0", OnListen: func(a string) { addr <- a }})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("witness Run: %v", err)
		}
		wst.Close()
	})
	select {
	case a := <-addr:
		e.url = "http://" + a
	case err := <-done:
		t.Fatalf("witness Run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("witness did not listen")
	}
	return e
}

// witLog opens a log over st signing with e's keystore.
func (e *witEnv) witLog(t *testing.T, st store.Store, headFile string) *securelog.Log {
	t.Helper()
	l := securelog.New(st, securelog.Options{Signer: e.ks, Trust: e.trust, HeadFile: headFile})
	if err := l.OpenInitialized(context.Background()); err != nil {
		t.Fatal(err)
	}
	return l
}

func witSegment(t *testing.T, l *securelog.Log, stream string, payloads ...string) wire.SegmentRow {
	t.Helper()
	ctx := context.Background()
	for _, p := range payloads {
		if _, err := l.Append(ctx, stream, "payment", wire.Info, "billing", []byte(p)); err != nil {
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

func witMemory(t *testing.T) store.Store {
	t.Helper()
	st := memory.New()
	if err := st.Init(context.Background(), "integration"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func witWaitAlert(t *testing.T, ch <-chan witnessd.Alert, kind, stream string) witnessd.Alert {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case a := <-ch:
			if a.Kind == kind && a.Stream == stream {
				return a
			}
		case <-timeout:
			t.Fatalf("no %s alert for stream %q", kind, stream)
		}
	}
}

// (e) Equivocation: the log's key signs a second, different history for a
// segment the witness already accepted; the witness refuses it (409 over
// HTTP, status "equivocation" over NATS) and alerts.
func TestWitnessEquivocation(t *testing.T) {
	ctx := context.Background()
	e := witStart(t, nil)
	honest := e.witLog(t, witMemory(t), "")
	seg := witSegment(t, honest, "payments", "alice→bob 10", "bob→carol 5")

	natsClient := witnessd.NewNATSClient(e.nc, "")
	sub, err := honest.BuildWitnessSubmission(ctx, "payments", 0)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := natsClient.Submit(ctx, sub)
	if err != nil || !rec.Accepted {
		t.Fatalf("honest checkpoint: %+v %v", rec, err)
	}
	if err := witnessd.VerifyCosignature(e.wtrust, rec); err != nil {
		t.Fatal(err)
	}

	// The forger (holding the signing key) rewrites the segment's history.
	forger := e.witLog(t, witMemory(t), "")
	forged := witSegment(t, forger, "payments", "alice→mallory 10", "bob→carol 5")
	if forged.SegmentID != seg.SegmentID {
		t.Fatalf("forged segment %d, want %d", forged.SegmentID, seg.SegmentID)
	}
	fsub, err := forger.BuildWitnessSubmission(ctx, "payments", 0)
	if err != nil {
		t.Fatal(err)
	}
	if fsub.CheckpointHashHex == sub.CheckpointHashHex {
		t.Fatal("forgery has the honest checkpoint hash")
	}
	for name, c := range map[string]*witnessd.Client{"http": witnessd.NewHTTPClient(e.url), "nats": natsClient} {
		rec, err := c.Submit(ctx, fsub)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if rec.Accepted || rec.Status != witnessd.StatusEquivocation || rec.CosignatureHex != "" {
			t.Fatalf("%s: forged checkpoint receipt %+v", name, rec)
		}
		if rec.CurrentHead == nil || rec.CurrentHead.CheckpointHashHex != sub.CheckpointHashHex {
			t.Fatalf("%s: current head %+v", name, rec.CurrentHead)
		}
		witWaitAlert(t, e.hook, witnessd.AlertEquivocation, "payments")
		a := witWaitAlert(t, e.published, witnessd.AlertEquivocation, "payments")
		if a.SegmentID != seg.SegmentID || !strings.Contains(a.Detail, sub.CheckpointHashHex) {
			t.Fatalf("%s: alert %+v", name, a)
		}
	}
	// The raw HTTP status of the refusal is 409.
	body, _ := json.Marshal(fsub)
	resp, err := http.Post(e.url+witnessd.SubmitPath, "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict {
		t.Fatalf("HTTP status %d, want 409", resp.StatusCode)
	}
	// The honest log keeps going: its next checkpoint still extends the head.
	witSegment(t, honest, "payments", "carol→dave 1")
	next, err := honest.BuildWitnessSubmission(ctx, "payments", seg.SegmentID)
	if err != nil {
		t.Fatal(err)
	}
	if rec, err := natsClient.Submit(ctx, next); err != nil || !rec.Accepted {
		t.Fatalf("honest next: %+v %v", rec, err)
	}
}

// swapHandler serves whichever store handler is current.
type swapHandler struct{ h atomic.Pointer[http.Handler] }

func (s *swapHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	(*s.h.Load()).ServeHTTP(w, r)
}

func (s *swapHandler) serve(t *testing.T, st store.Store) {
	t.Helper()
	h, err := rpcserver.NewHandler(st, rpcserver.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.h.Store(&h)
}

// witOlderCopy copies the stream's first segment (and its entries) of
// live into a fresh store: what a restore from an old backup looks like.
func witOlderCopy(t *testing.T, live store.Store, stream string, seg wire.SegmentRow) store.Store {
	t.Helper()
	ctx := context.Background()
	old := witMemory(t)
	rows, err := live.Range(ctx, stream, 1, seg.SeqEnd)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if _, err := old.Insert(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	row, _, err := live.SegmentGet(ctx, seg.SegmentID)
	if err != nil {
		t.Fatal(err)
	}
	seqnos, err := live.SegmentEntrySeqnos(ctx, seg.SegmentID)
	if err != nil {
		t.Fatal(err)
	}
	var members []wire.SegmentEntry
	for i, s := range seqnos {
		members = append(members, wire.SegmentEntry{Seqno: s, LeafIndex: uint64(i)})
	}
	if _, err := old.SegmentInsert(ctx, row, members); err != nil {
		t.Fatal(err)
	}
	return old
}

// (f) Rollback: the log's store is replaced by an older copy. The
// witness's cross-check (over the log's store RPC) alerts, and the log
// itself, with its head file, refuses to open or sign on the old copy.
func TestWitnessRollback(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	live, err := store.Open(ctx, "pebble:"+filepath.Join(dir, "log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { live.Close() })
	front := &swapHandler{}
	front.serve(t, live)
	hs := httptest.NewServer(front)
	t.Cleanup(hs.Close)
	tr, err := transport.NewHTTP(transport.Config{URL: hs.URL, Retries: -1})
	if err != nil {
		t.Fatal(err)
	}
	logStore := remote.New(tr)
	if err := logStore.Init(ctx, "witness"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logStore.Close() })

	e := witStart(t, logStore)
	headFile := witness.PathForStore(filepath.Join(dir, "log"))
	l := e.witLog(t, live, headFile)
	s1 := witSegment(t, l, "payments", "a", "b")
	witSegment(t, l, "payments", "c")
	sub, err := l.BuildWitnessSubmission(ctx, "payments", 0)
	if err != nil {
		t.Fatal(err)
	}
	c := witnessd.NewHTTPClient(e.url)
	if rec, err := c.Submit(ctx, sub); err != nil || !rec.Accepted {
		t.Fatalf("submit: %+v %v", rec, err)
	}
	// While the log is intact, cross-checks find nothing.
	if alerts, err := e.srv.CrossCheck(ctx); err != nil || len(alerts) != 0 {
		t.Fatalf("clean cross-check: %+v %v", alerts, err)
	}

	old := witOlderCopy(t, live, "payments", s1)
	front.serve(t, old) // the log host now serves the restored copy
	a := witWaitAlert(t, e.hook, witnessd.AlertRollback, "payments")
	if a.SegmentID != sub.SegmentID {
		t.Fatalf("rollback alert %+v", a)
	}
	witWaitAlert(t, e.published, witnessd.AlertRollback, "payments")

	// The log's own defence: with its head file it refuses the old copy.
	var logAlerts atomic.Int32
	rolled := securelog.New(old, securelog.Options{Signer: e.ks, Trust: e.trust, HeadFile: headFile,
		OnAlert: func(string, error) { logAlerts.Add(1) }})
	var cb *wire.ChainBrokenError
	if err := rolled.OpenInitialized(ctx); !errors.As(err, &cb) || !strings.Contains(cb.Reason, "rollback detected") {
		t.Fatalf("open on the old copy: %v", err)
	}
	if _, _, err := rolled.SignSegment(ctx, "attest", s1.SegmentID); !errors.As(err, &cb) {
		t.Fatalf("sign on the old copy: %v", err)
	}
	if logAlerts.Load() == 0 {
		t.Fatal("the log raised no alert")
	}
	// And the witness refuses the old head when the rolled-back log submits it.
	oldSub, err := rolled.BuildWitnessSubmission(ctx, "payments", 0)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := c.Submit(ctx, oldSub)
	if err != nil || rec.Status != witnessd.StatusStale || rec.CurrentHead == nil || rec.CurrentHead.SegmentID != sub.SegmentID {
		t.Fatalf("old head: %+v %v", rec, err)
	}

	// Restoring the real store clears the finding.
	front.serve(t, live)
	deadline := time.Now().Add(10 * time.Second)
	for {
		alerts, err := e.srv.CrossCheck(ctx)
		if err == nil && len(alerts) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cross-check still failing after restore: %+v %v", alerts, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
