package securelog

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/securelog/securelog/pkg/keystore"
	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/store/memory"
	"github.com/securelog/securelog/pkg/wire"
)

// rolledBackCopy returns a store holding stream's entries up to seqEnd and
// its segments up to segID of st (an older backup of st).
func rolledBackCopy(t *testing.T, st store.Store, stream string, seqEnd, segID uint64) store.Store {
	t.Helper()
	ctx := context.Background()
	old := memory.New()
	_ = old.Init(ctx, "old")
	rows, _ := st.Range(ctx, stream, 1, seqEnd)
	for _, r := range rows {
		if _, err := old.Insert(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	for id := uint64(1); id <= segID; id++ {
		seg, _, _ := st.SegmentGet(ctx, id)
		ents, _ := st.SegmentEntrySeqnos(ctx, id)
		var se []wire.SegmentEntry
		for i, s := range ents {
			se = append(se, wire.SegmentEntry{Seqno: s, LeafIndex: uint64(i)})
		}
		if _, err := old.SegmentInsert(ctx, seg, se); err != nil {
			t.Fatal(err)
		}
	}
	return old
}

// Issue 9 item 9: restoring an old store and deleting the head file hid
// the rollback — the log opened, appended and signed on the older copy,
// forking the signed history. With the head file missing while the store
// has signed segments, appends and signing halt (an alert, not healthy)
// until the head is re-established from a witness's head (which catches
// the rollback) or the operator accepts the store explicitly.
func TestMissingHeadFileBlocksAppendAndSign(t *testing.T) {
	ctx := context.Background()
	hf := filepath.Join(t.TempDir(), "log.heads.json")
	e := newEnv(t, mem, keystore.Ed25519, func(o *Options) { o.HeadFile = hf })
	appendN(t, e.log, "default", 2)
	s1 := must[wire.SegmentRow](t)(e.log.CloseSegment(ctx, "default"))
	appendN(t, e.log, "default", 2)
	s2 := must[wire.SegmentRow](t)(e.log.CloseSegment(ctx, "default"))
	for _, s := range []wire.SegmentRow{s1, s2} {
		if _, _, err := e.log.SignSegment(ctx, "attest", s.SegmentID); err != nil {
			t.Fatal(err)
		}
	}
	signed2, _, h2, err := e.log.Checkpoint(ctx, s2.SegmentID)
	if err != nil {
		t.Fatal(err)
	}
	witnessed := WitnessHead{SegmentID: s2.SegmentID, CheckpointHash: h2, SignerIdentity: signed2.Signer(), Signature: signed2.Signature}

	// The attack: an older copy (only segment 1) and no head file.
	old := rolledBackCopy(t, e.st, "default", s1.SeqEnd, s1.SegmentID)
	if err := os.Remove(hf); err != nil {
		t.Fatal(err)
	}
	var alerts atomic.Int32
	opts := Options{HeadFile: hf, Trust: e.trust, Signer: e.ks, OnAlert: func(string, error) { alerts.Add(1) }}
	l := New(old, opts)
	if err := l.OpenInitialized(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = l.Append(ctx, "default", "t", wire.Info, "p", []byte("fork"))
	h := wantErr[*StreamHaltedError](t, err)
	if h.Kind != HaltMissingHead {
		t.Fatalf("halt kind %q, want %q", h.Kind, HaltMissingHead)
	}
	wantErr[*MissingHeadError](t, err)
	if _, _, err := l.SignSegment(ctx, "attest", s1.SegmentID); err == nil {
		t.Fatal("signing without an anti-rollback anchor")
	}
	if l.Healthy() == nil || alerts.Load() == 0 {
		t.Fatalf("missing head: healthy=%v alerts=%d", l.Healthy(), alerts.Load())
	}
	if _, err := os.Stat(hf); err == nil {
		t.Fatal("a head file was written for an unanchored store")
	}

	// Re-established from the witness's head: the witness saw segment 2,
	// the store ends at 1 — the rollback is named.
	o := opts
	o.WitnessHead = func(context.Context, string) (WitnessHead, bool, error) { return witnessed, true, nil }
	l = New(old, o)
	if err := l.OpenInitialized(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = l.Append(ctx, "default", "t", wire.Info, "p", []byte("fork"))
	if h := wantErr[*StreamHaltedError](t, err); h.Kind != HaltRollback {
		t.Fatalf("witness ahead of the store: halt %q, want %q", h.Kind, HaltRollback)
	}

	// A witness head whose log signature does not verify is refused.
	forged := witnessed
	forged.Signature = append([]byte(nil), witnessed.Signature...)
	forged.Signature[0] ^= 1
	o.WitnessHead = func(context.Context, string) (WitnessHead, bool, error) { return forged, true, nil }
	if err := New(e.st, o).OpenInitialized(ctx); err == nil {
		t.Fatal("a witness head with a bad signature was used")
	}
	o.WitnessHead = func(context.Context, string) (WitnessHead, bool, error) { return witnessed, true, nil }

	// The real store with the witness's head: the head file is written
	// again and appends go on.
	l = New(e.st, o)
	if err := l.OpenInitialized(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(ctx, "default", "t", wire.Info, "p", []byte("ok")); err != nil {
		t.Fatalf("append after re-establishing the head from the witness: %v", err)
	}
	if rec, ok, _ := l.HeadRecord("default"); !ok || rec.SegmentID != s2.SegmentID {
		t.Fatalf("re-established head %+v %v", rec, ok)
	}

	// The operator's explicit acceptance re-anchors on the store as it is.
	if err := os.Remove(hf); err != nil {
		t.Fatal(err)
	}
	o = opts
	o.AcceptMissingHead = true
	l = New(old, o)
	if err := l.OpenInitialized(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(ctx, "default", "t", wire.Info, "p", []byte("accepted")); err != nil {
		t.Fatalf("append with AcceptMissingHead: %v", err)
	}
	if rec, ok, _ := l.HeadRecord("default"); !ok || rec.SegmentID != s1.SegmentID {
		t.Fatalf("accepted head %+v %v", rec, ok)
	}
}

// A Log whose head file another process advances (a split deployment's
// ingester: the signer keeps the head) does not halt for a missing head
// file and does not create one.
func TestMissingHeadFileAdvancedElsewhere(t *testing.T) {
	ctx := context.Background()
	hf := filepath.Join(t.TempDir(), "signer.heads.json")
	e := newEnv(t, mem, keystore.Ed25519, func(o *Options) { o.HeadFile = hf })
	appendN(t, e.log, "default", 2)
	s1 := must[wire.SegmentRow](t)(e.log.CloseSegment(ctx, "default"))
	if _, _, err := e.log.SignSegment(ctx, "attest", s1.SegmentID); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(t.TempDir(), "store.heads.json")
	l := New(e.st, Options{HeadFile: other, HeadFileAdvancedElsewhere: true})
	if err := l.OpenInitialized(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(ctx, "default", "t", wire.Info, "p", []byte("x")); err != nil {
		t.Fatalf("append: %v", err)
	}
	if _, err := os.Stat(other); err == nil {
		t.Fatal("a head file was created")
	}
}

// lostAfterSignature stores a signature and then fails, as a process
// killed between storing the signature and advancing the head file.
type lostAfterSignature struct{ store.Store }

func (s lostAfterSignature) SegmentSetSignature(ctx context.Context, id uint64, sig []byte, identity string) error {
	if err := s.Store.SegmentSetSignature(ctx, id, sig, identity); err != nil {
		return err
	}
	return errors.New("killed")
}

// A signer killed right after storing a new log's first signature (before
// the head file was advanced) must not find a "deleted" head file on
// restart: the head file exists before the first signature is stored.
// (integration TestSignerKilledMidLoad stalled at one signed segment.)
func TestFirstSignatureCrashIsNotAMissingHead(t *testing.T) {
	ctx := context.Background()
	hf := filepath.Join(t.TempDir(), "log.heads.json")
	e := newEnv(t, mem, keystore.Ed25519, func(o *Options) { o.HeadFile = hf })
	appendN(t, e.log, "default", 2)
	s1 := must[wire.SegmentRow](t)(e.log.CloseSegment(ctx, "default"))
	killed := New(lostAfterSignature{e.st}, Options{Signer: e.ks, Trust: e.trust, HeadFile: hf})
	if err := killed.OpenInitialized(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, err := killed.SignSegment(ctx, "attest", s1.SegmentID); err == nil {
		t.Fatal("the simulated crash did not happen")
	}
	restarted := New(e.st, Options{Signer: e.ks, Trust: e.trust, HeadFile: hf})
	if err := restarted.OpenInitialized(ctx); err != nil {
		t.Fatal(err)
	}
	appendN(t, restarted, "default", 1)
	s2 := must[wire.SegmentRow](t)(restarted.CloseSegment(ctx, "default"))
	if _, _, err := restarted.SignSegment(ctx, "attest", s2.SegmentID); err != nil {
		t.Fatalf("sign after the restart: %v", err)
	}
}
