package tlog

import (
	"bytes"
	"context"
	"math/rand/v2"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera/client"

	"github.com/securelog/securelog/pkg/store/pebblestore"
)

// Verification by Tessera's client (github.com/transparency-dev/tessera,
// not written here) over our HTTP checkpoint, tiles and entry bundles:
// it opens our checkpoints with our vkey, its LogStateTracker follows the
// log from one checkpoint to the next (checking consistency itself), its
// ProofBuilder's consistency proof and inclusion proofs of random entries
// verify with transparency-dev/merkle, the entry bundles hold each
// entry's entry_hash, and a changed leaf does not verify.
func TestTesseraClientVerifies(t *testing.T) {
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
	root, err := url.Parse(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	f, err := client.NewHTTPFetcher(root, srv.Client())
	if err != nil {
		t.Fatal(err)
	}

	appendN(t, l, 700, "a", "b", "c")
	if _, err := cp.Step(ctx); err != nil {
		t.Fatal(err)
	}
	old, oldRaw, _, err := client.FetchCheckpoint(ctx, f.ReadCheckpoint, v, origin)
	if err != nil {
		t.Fatalf("tessera FetchCheckpoint: %v", err)
	}
	lst, err := client.NewLogStateTracker(ctx, f.ReadTile, oldRaw, v, origin, client.UnilateralConsensus(f.ReadCheckpoint))
	if err != nil {
		t.Fatalf("tessera NewLogStateTracker: %v", err)
	}
	appendN(t, l, 1000, "a", "d")
	if _, err := cp.Step(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := lst.Update(ctx); err != nil {
		t.Fatalf("tessera LogStateTracker.Update (consistency %d → newer): %v", old.Size, err)
	}
	cur := lst.Latest()
	if old.Size != 700 || cur.Size != 1700 {
		t.Fatalf("sizes %d, %d; want 700, 1700", old.Size, cur.Size)
	}
	pb, err := client.NewProofBuilder(ctx, cur.Size, f.ReadTile)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := pb.ConsistencyProof(ctx, old.Size, cur.Size)
	if err != nil {
		t.Fatal(err)
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, old.Size, cur.Size, cons, old.Hash, cur.Hash); err != nil {
		t.Fatalf("consistency %d → %d: %v", old.Size, cur.Size, err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for _, idx := range []uint64{0, 255, 256, 699, 1699, rng.Uint64N(1700), rng.Uint64N(1700), rng.Uint64N(1700)} {
		b, err := client.GetEntryBundle(ctx, f.ReadEntryBundle, idx/TileWidth, cur.Size)
		if err != nil {
			t.Fatalf("tessera GetEntryBundle %d: %v", idx/TileWidth, err)
		}
		row, ok, err := st.Get(ctx, idx+1)
		if err != nil || !ok {
			t.Fatalf("seqno %d: %v %v", idx+1, ok, err)
		}
		if int(idx%TileWidth) >= len(b.Entries) || !bytes.Equal(b.Entries[idx%TileWidth], row.EntryHash) {
			t.Fatalf("entry bundle %d: leaf %d is not entry_hash of seqno %d", idx/TileWidth, idx, idx+1)
		}
		ip, err := pb.InclusionProof(ctx, idx)
		if err != nil {
			t.Fatal(err)
		}
		leafHash := rfc6962.DefaultHasher.HashLeaf(row.EntryHash)
		if err := proof.VerifyInclusion(rfc6962.DefaultHasher, idx, cur.Size, leafHash, ip, cur.Hash); err != nil {
			t.Fatalf("inclusion of leaf %d: %v", idx, err)
		}
		bad := rfc6962.DefaultHasher.HashLeaf(append(bytes.Clone(row.EntryHash[:31]), row.EntryHash[31]^1))
		if err := proof.VerifyInclusion(rfc6962.DefaultHasher, idx, cur.Size, bad, ip, cur.Hash); err == nil {
			t.Fatalf("a changed leaf %d verified", idx)
		}
	}
}
