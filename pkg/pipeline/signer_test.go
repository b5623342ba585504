package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/securelog/securelog/pkg/keystore"
	"github.com/securelog/securelog/pkg/securelog"
	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/store/memory"
	"github.com/securelog/securelog/pkg/wire"
)

type listCounter struct {
	store.Store
	lists atomic.Int64
}

func (c *listCounter) SegmentsList(ctx context.Context, s string) ([]wire.SegmentRow, error) {
	c.lists.Add(1)
	return c.Store.SegmentsList(ctx, s)
}

// TestSignerSignsAnnouncedSegmentsDirectly: in the steady state the signer
// signs each sealed segment by id, without listing the stream's segments
// per event; all segments end up signed in order.
func TestSignerSignsAnnouncedSegmentsDirectly(t *testing.T) {
	ctx := context.Background()
	nc := startNATS(t)
	st := memory.New()
	if err := st.Init(ctx, "m"); err != nil {
		t.Fatal(err)
	}
	writer := openLog(t, st)
	ks, err := keystore.OpenSoftware(t.TempDir() + "/keys")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Generate("signer", keystore.Ed25519); err != nil {
		t.Fatal(err)
	}
	cs := &listCounter{Store: st}
	sl := securelog.New(cs, securelog.Options{Signer: ks, Logger: quiet()})
	if err := sl.OpenInitialized(ctx); err != nil {
		t.Fatal(err)
	}
	ensureStreams(t, nc)
	s, err := NewSigner(SignerConfig{Conn: nc, Log: sl, Identity: "signer", ScanInterval: time.Hour, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(rctx) }()
	defer func() { cancel(); <-done }()

	const k = 20
	var last wire.SegmentRow
	for i := 0; i < k; i++ {
		if _, err := writer.Append(ctx, "s", "t", wire.Info, "p", []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		seg, err := writer.CloseSegment(ctx, "s")
		if err != nil {
			t.Fatal(err)
		}
		data, _ := json.Marshal(wire.SegmentInfoOf(seg))
		if err := nc.Publish(wire.SubjectFor(wire.KindSealed, "s"), data); err != nil {
			t.Fatal(err)
		}
		// Wait for each one, so every event is handled on its own.
		checkFor(t, 10*time.Second, func() error {
			row, _, err := st.SegmentGet(ctx, seg.SegmentID)
			if err != nil || !row.Signed() {
				return fmt.Errorf("segment %d not signed yet", seg.SegmentID)
			}
			return nil
		})
		last = seg
	}
	verifier := securelog.New(st, securelog.Options{Signer: ks})
	_ = verifier.OpenInitialized(ctx)
	if n, err := verifier.VerifyCheckpointChain(ctx, "s"); err != nil || n != k {
		t.Fatalf("checkpoint chain: %d %v", n, err)
	}
	// The start-up scan lists once per stream and the first event of a
	// stream falls back to a listing (a handful in all, depending on how the
	// scan and the first event interleave); every later event is signed
	// directly, so the count must not grow with k.
	if n := cs.lists.Load(); n > 6 {
		t.Fatalf("signing %d announced segments listed segments %d times (last segment %d)", k, n, last.SegmentID)
	}
}

// cancelOnRange cancels the signer's context during its segment check's
// read, as a shutdown does while a segment is being signed.
type cancelOnRange struct {
	store.Store
	cancel context.CancelFunc
}

func (c *cancelOnRange) Range(ctx context.Context, s string, from, to uint64) ([]wire.EntryRow, error) {
	c.cancel()
	return nil, fmt.Errorf("range: %w", ctx.Err())
}

// SegmentsList fails once the context ended, as the remote store does.
func (c *cancelOnRange) SegmentsList(ctx context.Context, s string) ([]wire.SegmentRow, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list: %w", err)
	}
	return c.Store.SegmentsList(ctx, s)
}

// TestSignerShutdownIsNotAnError reproduces `level=ERROR msg="sign
// segment" ... context canceled` at the bench's shutdown: a sign cut short
// by the signer's own cancellation is not an error (it is retried by the
// next signer) and is not logged as one.
func TestSignerShutdownIsNotAnError(t *testing.T) {
	ctx := context.Background()
	nc := startNATS(t)
	st := memory.New()
	if err := st.Init(ctx, "m"); err != nil {
		t.Fatal(err)
	}
	writer := openLog(t, st)
	if _, err := writer.Append(ctx, "s", "t", wire.Info, "p", []byte{1}); err != nil {
		t.Fatal(err)
	}
	if _, err := writer.CloseSegment(ctx, "s"); err != nil {
		t.Fatal(err)
	}
	ks, err := keystore.OpenSoftware(t.TempDir() + "/keys")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Generate("signer", keystore.Ed25519); err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var errs levelCounter
	sl := securelog.New(&cancelOnRange{Store: st, cancel: cancel}, securelog.Options{Signer: ks, Logger: slog.New(&errs)})
	if err := sl.OpenInitialized(ctx); err != nil {
		t.Fatal(err)
	}
	s, err := NewSigner(SignerConfig{Conn: nc, Log: sl, Identity: "signer", ScanInterval: time.Hour, Logger: slog.New(&errs)})
	if err != nil {
		t.Fatal(err)
	}
	if n := s.SignStream(sctx, "s"); n != 0 {
		t.Fatalf("signed %d segments with a cancelled context", n)
	}
	if sctx.Err() == nil {
		t.Fatal("the store was not asked to read (the test did not cancel)")
	}
	// After shutdown, a scan's listing fails: not an error either.
	s.scanAll(sctx)
	if n := s.SignStream(sctx, "s"); n != 0 {
		t.Fatalf("signed %d segments after shutdown", n)
	}
	if got := errs.errors.Load(); got != 0 {
		t.Errorf("%d records at level WARN or ERROR for a sign cut short by shutdown: %v", got, errs.last.Load())
	}
}

// levelCounter counts log records at WARN and above and keeps the last one.
type levelCounter struct {
	errors atomic.Int64
	last   atomic.Value
}

func (c *levelCounter) Enabled(context.Context, slog.Level) bool { return true }
func (c *levelCounter) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		c.errors.Add(1)
		msg := r.Message
		r.Attrs(func(a slog.Attr) bool { msg += " " + a.String(); return true })
		c.last.Store(msg)
	}
	return nil
}
func (c *levelCounter) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c *levelCounter) WithGroup(string) slog.Handler      { return c }
