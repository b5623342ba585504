package node

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/mod/sumdb/note"
	sumtlog "golang.org/x/mod/sumdb/tlog"

	"github.com/securelog/securelog/pkg/checkpoint"
	"github.com/securelog/securelog/pkg/tlog"
)

// `up` extends the tree with every committed entry, signs C2SP
// checkpoints announced on securelog.tlog.checkpoint, and serves tiles that
// golang.org/x/mod's note and tlog verify with the vkey of the trust file.
func TestUpServesVerifiableTlog(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	infoc := make(chan Info, 1)
	done := make(chan error, 1)
	go func() {
		done <- Up(ctx, UpConfig{DataDir: filepath.Join(t.TempDir(), "data"), HTTPListen: "127.0.0.1:0",
			Tlog: TlogConfig{Interval: 50 * time.Millisecond, Public: true}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))},
			func(i Info) { infoc <- i })
	}()
	var info Info
	select {
	case info = <-infoc:
	case err := <-done:
		t.Fatalf("up: %v", err)
	}
	defer func() { cancel(); <-done }()
	nc, err := info.Connect("tlog-test")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	announced := make(chan []byte, 100)
	sub, err := nc.Subscribe(tlog.CheckpointSubject, func(m *nats.Msg) {
		select {
		case announced <- m.Data:
		default:
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	js, _ := jetstream.New(nc)
	publish := func(n int) {
		for i := 0; i < n; i++ {
			body := fmt.Sprintf(`{"type":"t","severity":"info","producer":"p","payload":"e%d"}`, i)
			if _, err := js.Publish(ctx, fmt.Sprintf("securelog.in.s%d", i%3), []byte(body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	trust, err := checkpoint.LoadTrustFile(info.TrustFile)
	if err != nil {
		t.Fatal(err)
	}
	e, _ := trust.Lookup(info.Identity)
	if e.VKey == "" {
		t.Fatalf("trust file has no vkey for %q", info.Identity)
	}
	v, err := note.NewVerifier(e.VKey)
	if err != nil {
		t.Fatal(err)
	}
	cl := &tlog.Client{URL: "http://" + info.HTTPAddr}
	// waitSize polls /checkpoint (bounded) until it covers size entries.
	waitSize := func(size int64) (tlog.Checkpoint, []byte) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			msg, err := cl.Checkpoint(ctx)
			if err == nil {
				n, err := note.Open(msg, note.VerifierList(v))
				if err != nil {
					t.Fatalf("note.Open: %v\n%s", err, msg)
				}
				ck, err := tlog.ParseCheckpoint([]byte(n.Text))
				if err != nil {
					t.Fatal(err)
				}
				if ck.Size >= size {
					return ck, msg
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("no checkpoint of size %d: %v", size, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	publish(300)
	old, _ := waitSize(300)
	publish(400)
	cur, _ := waitSize(700)
	hr := sumtlog.TileHashReader(cur.Tree(), cl.TileReader(ctx))
	tp, err := sumtlog.ProveTree(cur.Size, old.Size, hr)
	if err != nil {
		t.Fatal(err)
	}
	if err := sumtlog.CheckTree(tp, cur.Size, cur.Root, old.Size, old.Root); err != nil {
		t.Fatalf("CheckTree %d → %d: %v", old.Size, cur.Size, err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 10 {
		idx := rng.Int64N(cur.Size)
		leaf, err := cl.Leaf(ctx, idx, cur.Size)
		if err != nil {
			t.Fatal(err)
		}
		p, err := sumtlog.ProveRecord(cur.Size, idx, hr)
		if err != nil {
			t.Fatal(err)
		}
		if err := sumtlog.CheckRecord(p, cur.Size, cur.Root, idx, sumtlog.RecordHash(leaf)); err != nil {
			t.Fatalf("CheckRecord %d: %v", idx, err)
		}
	}
	select {
	case msg := <-announced:
		if _, err := note.Open(msg, note.VerifierList(v)); err != nil {
			t.Fatalf("announced checkpoint: %v", err)
		}
	default:
		t.Fatal("no checkpoint announced on " + tlog.CheckpointSubject)
	}
}
