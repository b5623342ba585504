package securelog

import (
	"bytes"
	"context"
	"crypto/sha256"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/securelog/securelog/pkg/checkpoint"
	"github.com/securelog/securelog/pkg/keystore"
	"github.com/securelog/securelog/pkg/merkle"
	"github.com/securelog/securelog/pkg/seal"
	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/store/memory"
	"github.com/securelog/securelog/pkg/wire"
	"github.com/securelog/securelog/pkg/witness"
)

var mem = backends[0]

// tamperStore returns rows changed by the hooks, as if the stored data had
// been edited behind the log's back.
type tamperStore struct {
	store.Store
	entry func(*wire.EntryRow)
	seg   func(*wire.SegmentRow)
}

func (s *tamperStore) Get(ctx context.Context, seqno uint64) (wire.EntryRow, bool, error) {
	r, ok, err := s.Store.Get(ctx, seqno)
	if ok && s.entry != nil {
		s.entry(&r)
	}
	return r, ok, err
}

func (s *tamperStore) Range(ctx context.Context, stream string, from, to uint64) ([]wire.EntryRow, error) {
	rows, err := s.Store.Range(ctx, stream, from, to)
	for i := range rows {
		if s.entry != nil {
			s.entry(&rows[i])
		}
	}
	return rows, err
}

func (s *tamperStore) SegmentGet(ctx context.Context, id uint64) (wire.SegmentRow, bool, error) {
	r, ok, err := s.Store.SegmentGet(ctx, id)
	if ok && s.seg != nil {
		s.seg(&r)
	}
	return r, ok, err
}

func (s *tamperStore) SegmentsList(ctx context.Context, stream string) ([]wire.SegmentRow, error) {
	rows, err := s.Store.SegmentsList(ctx, stream)
	for i := range rows {
		if s.seg != nil {
			s.seg(&rows[i])
		}
	}
	return rows, err
}

func TestDecision01_ProofBindsIndexAndSize(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, mem, keystore.Ed25519, nil)
	res := appendN(t, e.log, "default", 5)
	seg := must[wire.SegmentRow](t)(e.log.CloseSegment(ctx, "default"))
	p := must[InclusionProof](t)(e.log.BuildInclusionProof(ctx, res[4].Seqno))
	if p.LeafIndex != 4 || p.TreeSize != 5 {
		t.Fatalf("leaf %d size %d", p.LeafIndex, p.TreeSize)
	}
	if err := VerifyInclusionProof(p, seg.MerkleRoot); err != nil {
		t.Fatal(err)
	}
	for _, mut := range []func(*InclusionProof){
		func(p *InclusionProof) { p.LeafIndex = 3 },
		func(p *InclusionProof) { p.TreeSize = 8 },
		func(p *InclusionProof) { p.Path = append(p.Path, p.Path[0]) },
	} {
		q := p
		q.Path = append([]merkle.Step(nil), p.Path...)
		mut(&q)
		wantErr[*wire.InclusionMismatchError](t, VerifyInclusionProof(q, seg.MerkleRoot))
	}
	// An interior node presented as a leaf with a shorter path: the node
	// H(L0||L1) with the path of leaf index 0 in a 3-leaf tree.
	p0 := must[InclusionProof](t)(e.log.BuildInclusionProof(ctx, res[0].Seqno))
	inner := sha256.Sum256(append(append([]byte{}, res[0].EntryHash...), res[1].EntryHash...))
	forged := InclusionProof{Seqno: 99, EntryHash: inner[:], SegmentID: p0.SegmentID, MerkleRoot: p0.MerkleRoot,
		Path: p0.Path[1:], LeafIndex: 0, TreeSize: 5}
	if merkle.RootFromPath(forged.EntryHash, forged.Path) == nil {
		t.Fatal("unreachable")
	}
	if !bytes.Equal(merkle.RootFromPath(forged.EntryHash, forged.Path), seg.MerkleRoot) {
		t.Fatal("test setup: the forged path should reach the root without the shape check")
	}
	wantErr[*wire.InclusionMismatchError](t, VerifyInclusionProof(forged, seg.MerkleRoot))
}

func TestDecision02_ProofCarriesStoredRoot(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, mem, keystore.Ed25519, nil)
	res := appendN(t, e.log, "default", 3)
	must[wire.SegmentRow](t)(e.log.CloseSegment(ctx, "default"))
	ts := &tamperStore{Store: e.st, entry: func(r *wire.EntryRow) {
		if r.Seqno == 2 {
			r.EntryHash = bytes.Repeat([]byte{7}, 32)
		}
	}}
	l := New(ts, Options{})
	if err := l.OpenInitialized(ctx); err != nil {
		t.Fatal(err)
	}
	_, err := l.BuildInclusionProof(ctx, res[0].Seqno)
	cb := wantErr[*wire.ChainBrokenError](t, err)
	if !strings.Contains(cb.Reason, "merkle root mismatch") {
		t.Fatalf("reason %q", cb.Reason)
	}
}

func TestDecision03_SignsCheckpointHash(t *testing.T) {
	ctx := context.Background()
	for _, alg := range keystore.Algorithms {
		t.Run(alg, func(t *testing.T) {
			e := newEnv(t, mem, alg, nil)
			appendN(t, e.log, "default", 2)
			seg := must[wire.SegmentRow](t)(e.log.CloseSegment(ctx, "default"))
			h, sig, err := e.log.SignSegment(ctx, "attest", seg.SegmentID)
			if err != nil {
				t.Fatal(err)
			}
			_, f, _, err := e.log.Checkpoint(ctx, seg.SegmentID)
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(wire.EncodeCheckpoint(f))
			if !bytes.Equal(h, sum[:]) {
				t.Fatal("checkpoint hash is not SHA-256 of the canonical checkpoint")
			}
			k := must[keystore.Key](t)(e.ks.GetKey(ctx, "attest"))
			if err := checkpoint.VerifySignature(alg, k.PublicKey(), h, sig); err != nil {
				t.Fatalf("signature is not over the 32-byte checkpoint hash: %v", err)
			}
		})
	}
}

func TestDecision04_VerifyNeedsOnlyPublicKeys(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, mem, keystore.ECDSAP256, nil)
	appendN(t, e.log, "default", 3)
	seg := must[wire.SegmentRow](t)(e.log.CloseSegment(ctx, "default"))
	must[[]byte](t)(func() ([]byte, error) { h, _, err := e.log.SignSegment(ctx, "attest", seg.SegmentID); return h, err }())
	// A verifier with only the trust file (no keystore at all).
	v := New(e.st, Options{Trust: e.trust})
	if err := v.OpenInitialized(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := v.VerifyCheckpointChain(ctx, "default"); err != nil || n != 1 {
		t.Fatalf("verify with trust only: %d %v", n, err)
	}
	// A trust file with another key for the identity rejects the signature.
	other, _ := keystore.OpenSoftware(t.TempDir())
	k2 := must[keystore.Key](t)(other.Generate("attest", keystore.ECDSAP256))
	if bytes.Equal(k2.PublicKey(), must[keystore.Key](t)(e.ks.GetKey(ctx, "attest")).PublicKey()) {
		t.Fatal("two software keystores produced the same key for one label: keys must be random")
	}
	bad, _ := checkpoint.NewTrust(checkpoint.TrustEntry{Identity: "attest", Algorithm: keystore.ECDSAP256, PublicKey: k2.PublicKey()})
	v2 := New(e.st, Options{Trust: bad})
	_ = v2.OpenInitialized(ctx)
	_, err := v2.VerifyCheckpointChain(ctx, "default")
	wantErr[*wire.ChainBrokenError](t, err)
	// No trust and no keystore: verification refuses instead of passing.
	v3 := New(e.st, Options{})
	_ = v3.OpenInitialized(ctx)
	_, err = v3.VerifySegmentSignature(ctx, seg.SegmentID)
	wantErr[*wire.InvalidError](t, err)
}

var kek = bytes.Repeat([]byte{9}, 32)

// TestDecision05_SealedInterleaving reproduces the reference's failing
// interleaving (SPEC §12.3 note): stream x closes segment 1, then a sealed
// append to default, then default closes. The reference seals under the
// predicted id 1 and the real segment is 2; we must decrypt.
func TestDecision05_SealedInterleaving(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, mem, keystore.Ed25519, func(o *Options) { o.KEK = kek })
	l := e.log
	if err := l.CreateStream(ctx, "default", "protected", nil); err != nil {
		t.Fatal(err)
	}
	appendN(t, l, "x", 1)
	if s := must[wire.SegmentRow](t)(l.CloseSegment(ctx, "x")); s.SegmentID != 1 {
		t.Fatalf("x segment %d", s.SegmentID)
	}
	r := must[AppendResult](t)(l.AppendSealed(ctx, "default", "secret", wire.Info, "p", []byte("very secret")))
	// Readable before the close (predicted id) ...
	if pt := must[[]byte](t)(l.OpenPayload(ctx, r.Seqno)); string(pt) != "very secret" {
		t.Fatalf("before close: %q", pt)
	}
	seg := must[wire.SegmentRow](t)(l.CloseSegment(ctx, "default"))
	if seg.SegmentID != 2 {
		t.Fatalf("default segment %d", seg.SegmentID)
	}
	// ... and after (real id), and the key really is that of segment 2.
	if pt := must[[]byte](t)(l.OpenPayload(ctx, r.Seqno)); string(pt) != "very secret" {
		t.Fatalf("after close: %q", pt)
	}
	row := must[wire.EntryRow](t)(l.Read(ctx, r.Seqno))
	if _, err := seal.Open(kek, "default", "protected", 2, row.Payload); err != nil {
		t.Fatalf("not sealed under segment 2: %v", err)
	}
	if _, err := seal.Open(kek, "default", "protected", 1, row.Payload); err == nil {
		t.Fatal("sealed under segment 1 (the reference's wrong prediction)")
	}

	// Harder interleaving: two sealed streams pending, a public stream
	// closes in between, and a restart (new Log) before the closes.
	for _, s := range []string{"s1", "s2"} {
		if err := l.CreateStream(ctx, s, "highly-restricted", nil); err != nil {
			t.Fatal(err)
		}
	}
	a1 := must[AppendResult](t)(l.Append(ctx, "s1", "t", wire.Info, "p", []byte("one")))
	a2 := must[AppendResult](t)(l.Append(ctx, "s2", "t", wire.Info, "p", []byte("two")))
	appendN(t, l, "x", 1)
	l2 := New(e.st, Options{KEK: kek})
	if err := l2.OpenInitialized(ctx); err != nil {
		t.Fatal(err)
	}
	must[wire.SegmentRow](t)(l2.CloseSegment(ctx, "x")) // forces s1 then s2 to close first
	a3 := must[AppendResult](t)(l2.Append(ctx, "s2", "t", wire.Info, "p", []byte("three")))
	must[wire.SegmentRow](t)(l2.CloseSegment(ctx, "s2"))
	for _, c := range []struct {
		seq  uint64
		want string
	}{{a1.Seqno, "one"}, {a2.Seqno, "two"}, {a3.Seqno, "three"}} {
		if pt, err := l2.OpenPayload(ctx, c.seq); err != nil || string(pt) != c.want {
			t.Fatalf("seqno %d: %q %v", c.seq, pt, err)
		}
	}
}

func TestDecision06_SealingReachable(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	kf := filepath.Join(dir, "kek")
	if err := seal.GenerateKEKFile(kf); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(kf); fi.Mode().Perm() != 0o600 {
		t.Fatalf("kek file mode %v", fi.Mode())
	}
	k := must[[]byte](t)(seal.LoadKEK(kf))
	e := newEnv(t, mem, keystore.Ed25519, func(o *Options) { o.KEK = k })
	if err := e.log.CreateStream(ctx, "pay", "protected", nil); err != nil {
		t.Fatal(err)
	}
	r := must[AppendResult](t)(e.log.Append(ctx, "pay", "card", wire.Notice, "shop", []byte("4111")))
	row := must[wire.EntryRow](t)(e.log.Read(ctx, r.Seqno))
	if row.PayloadEncoding != wire.AEADEncoding || bytes.Contains(row.Payload, []byte("4111")) || len(row.Payload) != 4+28 {
		t.Fatalf("not sealed: %+v", row)
	}
	// Without the KEK: appends to the sealed stream are refused, nothing written.
	l2 := New(e.st, Options{})
	_ = l2.OpenInitialized(ctx)
	_, err := l2.Append(ctx, "pay", "card", wire.Notice, "shop", []byte("x"))
	wantErr[*wire.InvalidError](t, err)
	if h, _, _ := e.st.GlobalHead(ctx); h != r.Seqno {
		t.Fatal("refused append wrote something")
	}
	_, err = l2.OpenPayload(ctx, r.Seqno)
	wantErr[*wire.InvalidError](t, err)
}

func TestDecision07_TierMeaning(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, mem, keystore.Ed25519, func(o *Options) { o.KEK = kek })
	l := e.log
	_ = l.CreateStream(ctx, "pub", "public", nil)
	_ = l.CreateStream(ctx, "prot", "protected", nil)
	_ = l.CreateStream(ctx, "hr", "highly-restricted", nil)
	p := must[wire.EntryRow](t)(l.Read(ctx, must[AppendResult](t)(l.Append(ctx, "pub", "user.login", wire.Info, "authd", []byte("pw"))).Seqno))
	if p.PayloadEncoding != "cbor" || string(p.Payload) != "pw" {
		t.Fatalf("public not plaintext: %+v", p)
	}
	_, err := l.AppendSealed(ctx, "pub", "x", wire.Info, "p", []byte("x"))
	wantErr[*wire.InvalidError](t, err)
	pr := must[wire.EntryRow](t)(l.Read(ctx, must[AppendResult](t)(l.Append(ctx, "prot", "user.login", wire.Info, "authd", []byte("pw"))).Seqno))
	if pr.PayloadEncoding != wire.AEADEncoding || pr.EventType != "user.login" || pr.Producer != "authd" {
		t.Fatalf("protected: %+v", pr)
	}
	hr := must[wire.EntryRow](t)(l.Read(ctx, must[AppendResult](t)(l.Append(ctx, "hr", "user.login", wire.Info, "authd", []byte("pw"))).Seqno))
	if hr.PayloadEncoding != wire.AEADEncoding || hr.EventType != seal.Minimize(kek, "hr", "event_type", "user.login") ||
		hr.Producer != seal.Minimize(kek, "hr", "producer", "authd") || !seal.IsMinimized(hr.EventType) {
		t.Fatalf("highly-restricted not minimised: %+v", hr)
	}
	_, err = l.AppendWithEncoding(ctx, "prot", "x", wire.Info, "p", nil, "custom")
	wantErr[*wire.InvalidError](t, err)
}

func TestDecision08_LazyStreams(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, mem, keystore.Ed25519, nil)
	appendN(t, e.log, "lazy", 1)
	row, ok, err := e.st.StreamGet(ctx, "lazy")
	if err != nil || !ok || row.Tier != "public" {
		t.Fatalf("lazy stream row: %+v %v %v", row, ok, err)
	}
	if err := e.log.DeprecateStream(ctx, "lazy"); err != nil {
		t.Fatalf("a lazily created stream must be deprecatable: %v", err)
	}
}

func TestDecision09_CreateStream(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, mem, keystore.Ed25519, nil)
	l := e.log
	d := "desc"
	if err := l.CreateStream(ctx, "s", "protected", &d); err != nil {
		t.Fatal(err)
	}
	before, _, _ := e.st.StreamGet(ctx, "s")
	if err := l.CreateStream(ctx, "s", "protected", &d); err != nil {
		t.Fatalf("same values again: %v", err)
	}
	after, _, _ := e.st.StreamGet(ctx, "s")
	if before.CreatedAt != after.CreatedAt {
		t.Fatal("no-op re-create changed created_at")
	}
	wantErr[*wire.InvalidError](t, l.CreateStream(ctx, "t", "secret", nil))
	wantErr[*wire.InvalidError](t, l.CreateStream(ctx, "t", "Public", nil))
	appendN(t, l, "u", 1)
	wantErr[*wire.InvalidError](t, l.CreateStream(ctx, "u", "protected", nil))
	if err := l.CreateStream(ctx, "u", "public", &d); err != nil {
		t.Fatalf("description change without tier change: %v", err)
	}
	_ = l.DeprecateStream(ctx, "u")
	wantErr[*wire.InvalidError](t, l.CreateStream(ctx, "u", "public", &d))
}

func TestDecision10_ListInCreationOrder(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, mem, keystore.Ed25519, nil)
	for _, n := range []string{"zeta", "alpha", "mid"} {
		if err := e.log.CreateStream(ctx, n, "public", nil); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for _, s := range must[[]StreamInfo](t)(e.log.ListStreams(ctx)) {
		got = append(got, s.Name)
	}
	if strings.Join(got, ",") != "default,zeta,alpha,mid" {
		t.Fatalf("order %v", got)
	}
}

func TestDecision11_HeadFile(t *testing.T) {
	ctx := context.Background()
	hf := filepath.Join(t.TempDir(), "log.heads.json")
	var alerts atomic.Int32
	e := newEnv(t, mem, keystore.Ed25519, func(o *Options) {
		o.HeadFile = hf
		o.OnAlert = func(string, error) { alerts.Add(1) }
	})
	l := e.log
	appendN(t, l, "default", 2)
	s1 := must[wire.SegmentRow](t)(l.CloseSegment(ctx, "default"))
	appendN(t, l, "default", 2)
	s2 := must[wire.SegmentRow](t)(l.CloseSegment(ctx, "default"))
	for _, s := range []wire.SegmentRow{s1, s2} {
		if _, _, err := l.SignSegment(ctx, "attest", s.SegmentID); err != nil {
			t.Fatal(err)
		}
	}
	rec, ok, _ := l.HeadRecord("default")
	if !ok || rec.SegmentID != s2.SegmentID {
		t.Fatalf("head record %+v", rec)
	}
	// Forward only: re-signing the older segment does not move the head back.
	if _, _, err := l.SignSegment(ctx, "attest", s1.SegmentID); err != nil {
		t.Fatal(err)
	}
	if rec, _, _ := l.HeadRecord("default"); rec.SegmentID != s2.SegmentID {
		t.Fatalf("head moved backwards to %d", rec.SegmentID)
	}
	data, _ := os.ReadFile(hf)
	if _, err := witness.ParseHeadFile(data); err != nil || bytes.HasSuffix(data, []byte("\n")) {
		t.Fatalf("head file format: %v", err)
	}
	// Roll the store back to a copy that only has the first segment.
	old := memory.New()
	_ = old.Init(ctx, "old")
	rows, _ := e.st.Range(ctx, "default", 1, s1.SeqEnd)
	for _, r := range rows {
		_, _ = old.Insert(ctx, r)
	}
	seg1, _, _ := e.st.SegmentGet(ctx, s1.SegmentID)
	ents, _ := e.st.SegmentEntrySeqnos(ctx, s1.SegmentID)
	var se []wire.SegmentEntry
	for i, s := range ents {
		se = append(se, wire.SegmentEntry{Seqno: s, LeafIndex: uint64(i)})
	}
	_, _ = old.SegmentInsert(ctx, seg1, se)
	rolled := New(old, Options{HeadFile: hf, Trust: e.trust, Signer: e.ks, OnAlert: func(string, error) { alerts.Add(1) }})
	err := rolled.OpenInitialized(ctx)
	cb := wantErr[*wire.ChainBrokenError](t, err)
	if !strings.Contains(cb.Reason, "rollback detected") {
		t.Fatalf("reason %q", cb.Reason)
	}
	// Signing on the rolled-back store is refused too.
	_, _, err = rolled.SignSegment(ctx, "attest", s1.SegmentID)
	wantErr[*wire.ChainBrokenError](t, err)
	if alerts.Load() < 2 {
		t.Fatalf("alerts raised: %d", alerts.Load())
	}
}

func TestDecision14_DeprecateUnknownStream(t *testing.T) {
	e := newEnv(t, mem, keystore.Ed25519, nil)
	wantErr[*wire.StreamNotFoundError](t, e.log.DeprecateStream(context.Background(), "nope"))
}

func TestDecision15_OpenTwice(t *testing.T) {
	e := newEnv(t, mem, keystore.Ed25519, nil)
	wantErr[*wire.InvalidError](t, e.log.Open(context.Background(), "again"))
	wantErr[*wire.InvalidError](t, e.log.OpenInitialized(context.Background()))
	// Before open, operations fail with storage errors.
	l := New(memory.New(), Options{})
	_, err := l.Append(context.Background(), "s", "t", wire.Info, "p", nil)
	wantErr[*wire.StorageError](t, err)
}

// countingStore counts entry point reads.
type countingStore struct {
	store.Store
	gets, lists atomic.Int64
}

func (c *countingStore) Get(ctx context.Context, s uint64) (wire.EntryRow, bool, error) {
	c.gets.Add(1)
	return c.Store.Get(ctx, s)
}

func (c *countingStore) SegmentsList(ctx context.Context, s string) ([]wire.SegmentRow, error) {
	c.lists.Add(1)
	return c.Store.SegmentsList(ctx, s)
}

func TestDecision19_ConcurrentAppendsAndLinearCheckpoints(t *testing.T) {
	ctx := context.Background()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			e := newEnv(t, b, keystore.Ed25519, nil)
			var wg sync.WaitGroup
			for g := 0; g < 8; g++ {
				wg.Add(1)
				go func(g int) {
					defer wg.Done()
					for i := 0; i < 40; i++ {
						stream := []string{"a", "b"}[i%2]
						if _, err := e.log.Append(ctx, stream, "ev", wire.Info, "p", []byte{byte(g), byte(i)}); err != nil {
							t.Error(err)
							return
						}
					}
				}(g)
			}
			wg.Wait()
			if h, _, _ := e.st.GlobalHead(ctx); h != 320 {
				t.Fatalf("global head %d, want 320", h)
			}
			for s := uint64(1); s <= 320; s++ {
				if _, ok, _ := e.st.Get(ctx, s); !ok {
					t.Fatalf("seqno %d lost", s)
				}
			}
			for _, s := range []string{"a", "b"} {
				h, _, _ := e.log.Head(ctx, s)
				if err := e.log.VerifyChain(ctx, s, 1, h); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
	// Checkpoint chain verification reads each segment's last entry once.
	e := newEnv(t, mem, keystore.Ed25519, nil)
	const k = 30
	for i := 0; i < k; i++ {
		appendN(t, e.log, "default", 1)
		s := must[wire.SegmentRow](t)(e.log.CloseSegment(ctx, "default"))
		if _, _, err := e.log.SignSegment(ctx, "attest", s.SegmentID); err != nil {
			t.Fatal(err)
		}
	}
	cs := &countingStore{Store: e.st}
	v := New(cs, Options{Trust: e.trust})
	_ = v.OpenInitialized(ctx)
	if n, err := v.VerifyCheckpointChain(ctx, "default"); err != nil || n != k {
		t.Fatalf("%d %v", n, err)
	}
	if cs.gets.Load() > k || cs.lists.Load() > 1 {
		t.Fatalf("verify-checkpoint-chain of %d segments made %d entry reads and %d segment lists; want linear", k, cs.gets.Load(), cs.lists.Load())
	}
}

func TestDecision20_BootID(t *testing.T) {
	l := New(memory.New(), Options{})
	want := "rand-"
	if b, err := os.ReadFile("/proc/sys/kernel/random/boot_id"); err == nil {
		want = strings.TrimSpace(string(b))
		if l.BootID() != want {
			t.Fatalf("boot id %q, want host boot id %q", l.BootID(), want)
		}
	} else if !strings.HasPrefix(l.BootID(), want) {
		t.Fatalf("boot id %q", l.BootID())
	}
	if len(l.SessionID()) != 36 || New(memory.New(), Options{}).SessionID() == l.SessionID() {
		t.Fatal("session id must be a fresh UUID per instance")
	}
}

func TestDecision21_ColonInSealedStream(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, mem, keystore.Ed25519, func(o *Options) { o.KEK = kek })
	wantErr[*wire.InvalidError](t, e.log.CreateStream(ctx, "a:tier=public", "protected", nil))
	if err := e.log.CreateStream(ctx, "a:b", "public", nil); err != nil {
		t.Fatalf("public streams may contain ':': %v", err)
	}
}

func TestDecision22_RFC3339Everywhere(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, mem, keystore.Ed25519, func(o *Options) { o.Now = nil })
	appendN(t, e.log, "default", 1)
	_ = e.log.CreateStream(ctx, "x", "public", nil)
	_ = e.log.DeprecateStream(ctx, "x")
	seg := must[wire.SegmentRow](t)(e.log.CloseSegment(ctx, "default"))
	row := must[wire.EntryRow](t)(e.log.Read(ctx, 1))
	sx, _, _ := e.st.StreamGet(ctx, "x")
	for _, ts := range []string{row.Timestamp, seg.ClosedAt, sx.CreatedAt, *sx.DeprecatedAt} {
		if _, err := wire.ParseTime(ts); err != nil || !strings.HasSuffix(ts, "+00:00") {
			t.Errorf("timestamp %q is not the §5.4 RFC 3339 writer format", ts)
		}
	}
	for _, s := range must[[]StreamInfo](t)(e.log.ListStreams(ctx)) {
		if _, err := wire.ParseTime(s.CreatedAt); err != nil {
			t.Errorf("stream %s created_at %q is not RFC 3339", s.Name, s.CreatedAt)
		}
	}
}

// raceStore lets another writer close the stream's segment after a close
// computed its range and before it inserts: only the store's atomic check
// can then refuse the overlapping segment.
type raceStore struct {
	store.Store
	calls  int
	closer func()
}

func (r *raceStore) SegmentInsert(ctx context.Context, row wire.SegmentRow, e []wire.SegmentEntry) (uint64, error) {
	r.calls++
	if r.calls == 1 && r.closer != nil {
		r.closer()
	}
	return r.Store.SegmentInsert(ctx, row, e)
}

func TestDecision13_CloseRacesClose(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, mem, keystore.Ed25519, nil)
	appendN(t, e.log, "default", 3)
	rs := &raceStore{Store: e.st}
	other := New(e.st, Options{})
	_ = other.OpenInitialized(ctx)
	rs.closer = func() {
		if _, err := other.CloseSegment(ctx, "default"); err != nil {
			t.Error(err)
		}
	}
	l := New(rs, Options{})
	_ = l.OpenInitialized(ctx)
	_, err := l.CloseSegment(ctx, "default")
	sc := wantErr[*wire.SegmentAlreadyClosedError](t, err)
	if sc.SegmentID != 1 {
		t.Fatalf("names segment %d", sc.SegmentID)
	}
	if segs, _ := e.st.SegmentsList(ctx, "default"); len(segs) != 1 {
		t.Fatalf("%d segments: the racing close inserted an overlapping segment", len(segs))
	}
}

// A signer signing a stream's segments in order lists the stream's segments
// only for the first one: later checkpoints link through cached hashes.
func TestDecision19_SigningDoesNotRelistSegments(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, mem, keystore.Ed25519, func(o *Options) { o.HeadFile = filepath.Join(t.TempDir(), "h.json") })
	const k = 25
	var ids []uint64
	for i := 0; i < k; i++ {
		appendN(t, e.log, "default", 2)
		ids = append(ids, must[wire.SegmentRow](t)(e.log.CloseSegment(ctx, "default")).SegmentID)
	}
	cs := &countingStore{Store: e.st}
	signer := New(cs, Options{Signer: e.ks, Trust: e.trust, HeadFile: filepath.Join(t.TempDir(), "signer.json")})
	_ = signer.OpenInitialized(ctx)
	cs.lists.Store(0) // opening without a head file looks for signed segments once
	for _, id := range ids {
		if _, _, err := signer.SignSegment(ctx, "attest", id); err != nil {
			t.Fatal(err)
		}
	}
	if n := cs.lists.Load(); n > 2 {
		t.Fatalf("signing %d segments listed the stream's segments %d times", k, n)
	}
	if n, err := New(e.st, Options{Trust: e.trust}).verifyChainFresh(ctx, "default"); err != nil || n != k {
		t.Fatalf("chain after signing: %d %v", n, err)
	}
}

func (l *Log) verifyChainFresh(ctx context.Context, stream string) (uint32, error) {
	if err := l.OpenInitialized(ctx); err != nil {
		return 0, err
	}
	return l.VerifyCheckpointChain(ctx, stream)
}
