package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
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
