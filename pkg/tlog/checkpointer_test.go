package tlog

import (
	"context"
	"crypto/ed25519"
	"errors"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/securelog/securelog/pkg/keystore"
	"github.com/securelog/securelog/pkg/store/memory"
)

// fakeTree is a TreeSource over in-memory tiles that a test can swap.
type fakeTree struct {
	size  int64
	root  tlog.Hash
	tiles memTiles
}

func (f *fakeTree) Head(context.Context) (int64, tlog.Hash, error) { return f.size, f.root, nil }
func (f *fakeTree) Tiles(context.Context) TileReader               { return f.tiles }

// build returns a tree of n leaves, leaf i = leafOf(i).
func build(t *testing.T, n int, leafOf func(int) []byte) *fakeTree {
	t.Helper()
	var ls [][]byte
	for i := 0; i < n; i++ {
		ls = append(ls, leafOf(i))
	}
	tiles := memTiles{}
	u, err := Extend(0, ls, tiles)
	if err != nil {
		t.Fatal(err)
	}
	tiles.apply(u)
	return &fakeTree{size: u.NewSize, root: u.Root, tiles: tiles}
}

func testSigner(t *testing.T, origin string) (note.Signer, note.Verifier) {
	t.Helper()
	pub, priv, _ := ed25519.GenerateKey(nil)
	k, _ := keystore.KeyFromSigner(priv)
	s, err := NewNoteSigner(origin, k)
	if err != nil {
		t.Fatal(err)
	}
	vkey, _ := VerifierKey(origin, pub)
	v, _ := note.NewVerifier(vkey)
	return s, v
}

func memStore(t *testing.T) *memory.Store {
	t.Helper()
	m := memory.New()
	if err := m.Init(context.Background(), "x"); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestCheckpointerSignsWhenTheTreeGrows(t *testing.T) {
	ctx := context.Background()
	origin := "example.com/log"
	s, v := testSigner(t, origin)
	ft := build(t, 10, leaf)
	st := MetaCheckpoints{Store: memStore(t)}
	var published [][]byte
	c, err := NewCheckpointer(CheckpointerConfig{Tree: ft, Signer: s, Origin: origin, Store: st,
		Publish: func(b []byte) error { published = append(published, b); return nil }})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := c.Step(ctx); !ok || err != nil {
		t.Fatalf("first step: %v %v", ok, err)
	}
	if ok, err := c.Step(ctx); ok || err != nil {
		t.Fatalf("step without growth signed: %v %v", ok, err)
	}
	*ft = *build(t, 300, leaf)
	if ok, err := c.Step(ctx); !ok || err != nil {
		t.Fatalf("step after growth: %v %v", ok, err)
	}
	if len(published) != 2 {
		t.Fatalf("%d announcements, want 2", len(published))
	}
	ck, _, err := OpenCheckpoint(c.Latest(), origin, note.VerifierList(v))
	if err != nil || ck.Size != 300 || ck.Root != ft.root {
		t.Fatalf("latest %+v %v", ck, err)
	}
	stored, _ := st.Load(ctx)
	if string(stored) != string(c.Latest()) {
		t.Fatal("stored checkpoint is not the latest")
	}
}

// The log never signs a tree inconsistent with its last signed checkpoint,
// even after a restart (the last one is persisted): it refuses and alerts.
func TestCheckpointerRefusesInconsistentTree(t *testing.T) {
	ctx := context.Background()
	origin := "example.com/log"
	s, _ := testSigner(t, origin)
	st := MetaCheckpoints{Store: memStore(t)}
	ft := build(t, 10, leaf)
	c, _ := NewCheckpointer(CheckpointerConfig{Tree: ft, Signer: s, Origin: origin, Store: st})
	if _, err := c.Step(ctx); err != nil {
		t.Fatal(err)
	}
	good, _ := st.Load(ctx)
	other := func(i int) []byte {
		if i == 3 {
			return leaf(1000) // history rewritten at leaf 3
		}
		return leaf(i)
	}
	for name, tree := range map[string]*fakeTree{
		"forked":   build(t, 12, other),
		"rollback": build(t, 9, leaf),
		"sameSize": build(t, 10, other),
	} {
		t.Run(name, func(t *testing.T) {
			var alerts []error
			c2, _ := NewCheckpointer(CheckpointerConfig{Tree: tree, Signer: s, Origin: origin, Store: st,
				OnAlert: func(err error) { alerts = append(alerts, err) }})
			ok, err := c2.Step(ctx)
			var inc *InconsistentTreeError
			if ok || !errors.As(err, &inc) {
				t.Fatalf("signed an inconsistent tree: %v %v", ok, err)
			}
			if len(alerts) != 1 {
				t.Fatalf("%d alerts, want 1", len(alerts))
			}
			if now, _ := st.Load(ctx); string(now) != string(good) {
				t.Fatal("the stored checkpoint changed")
			}
		})
	}
	// A tree whose head does not match its tiles is refused too.
	lying := build(t, 20, leaf)
	lying.root = build(t, 20, other).root
	c3, _ := NewCheckpointer(CheckpointerConfig{Tree: lying, Signer: s, Origin: origin, Store: st})
	if ok, err := c3.Step(ctx); ok || err == nil {
		t.Fatalf("signed a head that its tiles contradict: %v %v", ok, err)
	}
}

func TestCheckpointerChecksOrigin(t *testing.T) {
	s, _ := testSigner(t, "a")
	if _, err := NewCheckpointer(CheckpointerConfig{Tree: &fakeTree{}, Signer: s, Origin: "b", Store: MetaCheckpoints{Store: memStore(t)}}); err == nil {
		t.Fatal("key name different from origin accepted")
	}
}

// testSignerF is testSigner for fuzz seeds: origin "o".
func testSignerF() (note.Signer, note.Verifier) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	k, _ := keystore.KeyFromSigner(priv)
	s, _ := NewNoteSigner("o", k)
	vkey, _ := VerifierKey("o", pub)
	v, _ := note.NewVerifier(vkey)
	return s, v
}

// flakyTree is a TreeSource whose tile reads fail while failing is set
// (the ingester serving the tree is slow: the RPC timed out).
type flakyTree struct {
	*fakeTree
	failing bool
}

func (f *flakyTree) Tiles(ctx context.Context) TileReader {
	return TileReaderFunc(func(id TileID) ([]byte, bool, error) {
		if f.failing {
			return nil, false, context.DeadlineExceeded
		}
		return f.fakeTree.tiles.ReadTile(id)
	})
}

// A tile that cannot be read is no evidence against the tree: the
// checkpointer retries and never alerts (the R3 partition test beside the
// suite logged "checkpointer alert ... refusing to sign tree size 90 ...
// tree hash: tlog: securelog.tlog.tile ...: context deadline exceeded").
func TestCheckpointerDoesNotAlertWhenTilesCannotBeRead(t *testing.T) {
	ctx := context.Background()
	origin := "example.com/log"
	s, _ := testSigner(t, origin)
	st := MetaCheckpoints{Store: memStore(t)}
	ft := &flakyTree{fakeTree: build(t, 10, leaf)}
	var alerts []error
	c, _ := NewCheckpointer(CheckpointerConfig{Tree: ft, Signer: s, Origin: origin, Store: st,
		OnAlert: func(err error) { alerts = append(alerts, err) }})
	if _, err := c.Step(ctx); err != nil {
		t.Fatal(err)
	}
	*ft.fakeTree = *build(t, 300, leaf)
	ft.failing = true
	ok, err := c.Step(ctx)
	var inc *InconsistentTreeError
	if ok || err == nil || errors.As(err, &inc) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("step with unreadable tiles: signed %v, err %v (want the read error, not an inconsistency)", ok, err)
	}
	if len(alerts) != 0 {
		t.Fatalf("alerted on a read error: %v", alerts)
	}
	ft.failing = false
	if ok, err := c.Step(ctx); !ok || err != nil {
		t.Fatalf("step once the tiles are readable: %v %v", ok, err)
	}
}
