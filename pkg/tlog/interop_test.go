package tlog

import (
	"bytes"
	"context"
	"crypto/sha256"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/securelog/securelog/pkg/store/pebblestore"
	"github.com/securelog/securelog/pkg/wire"
)

// Verification by independent clients: golang.org/x/mod's note opens our
// checkpoint with our vkey, and its tlog (TileHashReader over our HTTP
// tiles, CheckRecord, CheckTree) verifies inclusion of random entries and
// consistency between two checkpoints.
func TestIndependentClientVerifies(t *testing.T) {
	ctx := context.Background()
	st := pebblestore.New()
	l, tree := treeLog(t, st, t.TempDir()+"/log", true)
	defer st.Close()
	origin := DefaultOrigin("securelog")
	s, v := testSigner(t, origin)
	cp, err := NewCheckpointer(CheckpointerConfig{Tree: tree, Signer: s, Origin: origin, Store: MetaCheckpoints{Store: tree.bt}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(NewHandler(HandlerConfig{Tree: tree, Checkpoint: cp.Latest}))
	defer srv.Close()
	cl := &Client{URL: srv.URL}

	appendN(t, l, 700, "a", "b", "c")
	if _, err := cp.Step(ctx); err != nil {
		t.Fatal(err)
	}
	msg1, err := cl.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n1, err := note.Open(msg1, note.VerifierList(v))
	if err != nil {
		t.Fatalf("note.Open: %v", err)
	}
	old, err := ParseCheckpoint([]byte(n1.Text))
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 1000, "a", "d")
	if _, err := cp.Step(ctx); err != nil {
		t.Fatal(err)
	}
	msg2, _ := cl.Checkpoint(ctx)
	n2, err := note.Open(msg2, note.VerifierList(v))
	if err != nil {
		t.Fatal(err)
	}
	cur, _ := ParseCheckpoint([]byte(n2.Text))
	if old.Size != 700 || cur.Size != 1700 {
		t.Fatalf("sizes %d, %d", old.Size, cur.Size)
	}
	hr := tlog.TileHashReader(cur.Tree(), cl.TileReader(ctx))
	// Consistency between the two checkpoints.
	tp, err := tlog.ProveTree(cur.Size, old.Size, hr)
	if err != nil {
		t.Fatal(err)
	}
	if err := tlog.CheckTree(tp, cur.Size, cur.Root, old.Size, old.Root); err != nil {
		t.Fatalf("CheckTree: %v", err)
	}
	// Inclusion of random entries, with their entry hash from the bundle
	// and from the store.
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		idx := rng.Int64N(cur.Size)
		leafData, err := cl.Leaf(ctx, idx, cur.Size)
		if err != nil {
			t.Fatal(err)
		}
		row, ok, err := st.Get(ctx, uint64(idx)+1)
		if err != nil || !ok {
			t.Fatal(err)
		}
		if !bytes.Equal(leafData, row.EntryHash) {
			t.Fatalf("bundle leaf %d is not entry_hash of seqno %d", idx, idx+1)
		}
		rp, err := tlog.ProveRecord(cur.Size, idx, hr)
		if err != nil {
			t.Fatal(err)
		}
		if err := tlog.CheckRecord(rp, cur.Size, cur.Root, idx, tlog.RecordHash(row.EntryHash)); err != nil {
			t.Fatalf("CheckRecord %d: %v", idx, err)
		}
		// The old checkpoint proves its own entries too (partial tiles).
		if idx < old.Size {
			ohr := tlog.TileHashReader(old.Tree(), cl.TileReader(ctx))
			rp, err := tlog.ProveRecord(old.Size, idx, ohr)
			if err != nil {
				t.Fatal(err)
			}
			if err := tlog.CheckRecord(rp, old.Size, old.Root, idx, tlog.RecordHash(row.EntryHash)); err != nil {
				t.Fatalf("CheckRecord %d in the old tree: %v", idx, err)
			}
		}
	}
	// A C2SP tlog-proof for one entry verifies offline with the vkey only.
	row, _, _ := st.Get(ctx, 1234)
	rp, err := tlog.ProveRecord(cur.Size, 1233, TileHashes(tree.Tiles(ctx)))
	if err != nil {
		t.Fatal(err)
	}
	doc := Proof{Extra: wire.EncodeEntry(row.Fields()), Index: 1233, Path: rp, Checkpoint: msg2}.Marshal()
	p, err := ParseProof(doc)
	if err != nil {
		t.Fatal(err)
	}
	f, _, _, err := VerifyEntryProof(p, origin, note.VerifierList(v))
	if err != nil || f.Seqno != 1234 {
		t.Fatalf("verify proof: %v %d", err, f.Seqno)
	}
	// A changed entry does not verify.
	p.Extra = wire.EncodeEntry(func() wire.EntryFields { g := row.Fields(); g.Producer = "mallory"; return g }())
	if _, _, _, err := VerifyEntryProof(p, origin, note.VerifierList(v)); err == nil {
		t.Fatal("tampered entry verified")
	}
}

func TestTilesHandler(t *testing.T) {
	ctx := context.Background()
	ft := build(t, 70000, leaf)
	h := NewHandler(HandlerConfig{Tree: ft})
	get := func(path string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequestWithContext(ctx, http.MethodGet, path, nil))
		return rec
	}
	// The spec's example: size 70,000 has 273 full level-0 tiles, a
	// partial of width 112, a full level-1 tile, a partial level-1 tile of
	// width 17, a partial level-2 tile of width 1.
	for path, want := range map[string]int{
		"/tile/0/272":             http.StatusOK,
		"/tile/0/273":             http.StatusNotFound,
		"/tile/0/273.p/112":       http.StatusOK,
		"/tile/0/273.p/113":       http.StatusNotFound,
		"/tile/0/273.p/5":         http.StatusOK,
		"/tile/1/000":             http.StatusOK,
		"/tile/1/001.p/17":        http.StatusOK,
		"/tile/2/000.p/1":         http.StatusOK,
		"/tile/2/000":             http.StatusNotFound,
		"/tile/3/000.p/1":         http.StatusNotFound,
		"/tile/entries/000":       http.StatusOK,
		"/tile/entries/273.p/112": http.StatusOK,
		"/tile/0/0":               http.StatusNotFound,
		"/tile/0/x000/001":        http.StatusNotFound,
		"/tile/00/001":            http.StatusNotFound,
		"/checkpoint":             http.StatusNotFound,
	} {
		if rec := get(path); rec.Code != want {
			t.Errorf("GET %s: %d, want %d (%s)", path, rec.Code, want, rec.Body)
		}
	}
	rec := get("/tile/0/001")
	if rec.Header().Get("Cache-Control") != "public, max-age=31536000, immutable" || rec.Body.Len() != 8192 {
		t.Fatalf("full tile: %v %d bytes", rec.Header(), rec.Body.Len())
	}
	want := make([]byte, 0, 8192)
	for i := 256; i < 512; i++ {
		h := tlog.RecordHash(leaf(i))
		want = append(want, h[:]...)
	}
	if !bytes.Equal(rec.Body.Bytes(), want) {
		t.Fatal("level-0 tile 1 is not the leaf hashes 256..511")
	}
	b := get("/tile/entries/273.p/112").Body.Bytes()
	entries, err := ParseEntryBundle(b)
	if err != nil || len(entries) != 112 || !bytes.Equal(entries[0], leaf(273*256)) {
		t.Fatalf("bundle: %d entries, %v", len(entries), err)
	}
	if rec := get("/tile/0/000"); rec.Code != 200 {
		t.Fatal(rec.Code)
	}
	post := httptest.NewRecorder()
	h.ServeHTTP(post, httptest.NewRequest(http.MethodPost, "/tile/0/000", nil))
	if post.Code != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %d", post.Code)
	}
}

func TestParseTilePath(t *testing.T) {
	for path, want := range map[string]TilePath{
		"tile/0/000":                  {0, 0, 256},
		"tile/3/x001/x234/067":        {3, 1234067, 256},
		"tile/1/x001/x234/067.p/8":    {1, 1234067, 8},
		"tile/entries/x001/000.p/255": {DataLevel, 1000, 255},
		"tile/63/999":                 {63, 999, 256},
	} {
		got, err := ParseTilePath(path)
		if err != nil || got != want {
			t.Errorf("ParseTilePath(%q) = %+v, %v; want %+v", path, got, err, want)
		}
	}
	for _, bad := range []string{
		"tile/0/0", "tile/0/1234", "tile/0/x000/001", "tile/64/000", "tile/-1/000", "tile/01/000",
		"tile/0/000.p/0", "tile/0/000.p/256", "tile/0/000.p/08", "tile/0/001/x002", "tile/data/000",
		"tile/0/000.p", "tile/0", "tiles/0/000", "tile/0/x999/x999/x999/x999/x999/x999/x999/999",
		"tile/0/x009/x223/x372/x036/x854/x775/808",
	} {
		if p, err := ParseTilePath(bad); err == nil {
			t.Errorf("ParseTilePath(%q) accepted as %+v", bad, p)
		}
	}
}

func FuzzParseTilePath(f *testing.F) {
	for _, s := range []string{"tile/0/000", "tile/entries/x001/000.p/3", "tile/2/x123/456"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseTilePath(s)
		if err != nil {
			return
		}
		if p.String() != s || p.N < 0 || p.W < 1 || p.W > TileWidth {
			t.Fatalf("accepted %q as %+v (%s)", s, p, p)
		}
	})
}

func FuzzParseEntryBundle(f *testing.F) {
	f.Add([]byte{0, 2, 'h', 'i'})
	f.Fuzz(func(t *testing.T, b []byte) {
		es, err := ParseEntryBundle(b)
		if err != nil {
			return
		}
		var re []byte
		for _, e := range es {
			re = append(re, byte(len(e)>>8), byte(len(e)))
			re = append(re, e...)
		}
		if !bytes.Equal(re, b) {
			t.Fatalf("bundle %x re-encodes as %x", b, re)
		}
	})
}

func FuzzParseProof(f *testing.F) {
	s, _ := testSignerF()
	ck, _ := SignCheckpoint(Checkpoint{Origin: "o", Size: 2, Root: tlog.NodeHash(tlog.RecordHash([]byte("a")), tlog.RecordHash([]byte("b")))}, s)
	h := sha256.Sum256([]byte("x"))
	f.Add(Proof{Extra: []byte("e"), Index: 1, Path: tlog.RecordProof{tlog.Hash(h)}, Checkpoint: ck}.Marshal())
	f.Add(Proof{Index: 0, Checkpoint: ck}.Marshal())
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParseProof(b)
		if err != nil {
			return
		}
		if !bytes.Equal(p.Marshal(), b) {
			t.Fatalf("proof %q re-encodes as %q", b, p.Marshal())
		}
	})
}
