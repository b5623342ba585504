package tlog

import (
	"bytes"
	"context"
	"errors"
	"testing"
)

// With a witness policy (Cosign), Latest is the latest checkpoint that
// satisfied it: a checkpoint the witnesses did not cosign is announced but
// not served, is submitted again while the tree does not grow, and is
// served once cosigned; after a restart the witnessed one is served again.
func TestCheckpointerServesOnlyWitnessedCheckpoints(t *testing.T) {
	ctx := context.Background()
	origin := "example.com/log"
	s, _ := testSigner(t, origin)
	ft := build(t, 10, leaf)
	ms := memStore(t)
	st, co := MetaCheckpoints{Store: ms}, MetaCheckpoints{Store: ms, Key: CosignedCheckpointKey}
	witnessUp := false
	var submitted int
	cosign := func(_ context.Context, signed []byte) ([]byte, error) {
		submitted++
		if !witnessUp {
			return signed, errors.New("witness down")
		}
		return append(append([]byte{}, signed...), []byte("— w1 AAAA\n")...), nil
	}
	var published [][]byte
	cfg := CheckpointerConfig{Tree: ft, Signer: s, Origin: origin, Store: st, Cosigned: co, Cosign: cosign,
		Publish: func(b []byte) error { published = append(published, b); return nil }}
	c, err := NewCheckpointer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := c.Step(ctx); !ok || err != nil {
		t.Fatalf("first step: %v %v", ok, err)
	}
	if n, size, policy := c.Witnessed(); n != nil || size != 0 || !policy {
		t.Fatalf("unwitnessed checkpoint served: %q %d %v", n, size, policy)
	}
	if len(published) != 1 {
		t.Fatalf("%d announcements, want 1", len(published))
	}
	// Not grown, not witnessed: submitted again.
	if ok, err := c.Step(ctx); ok || err == nil || submitted != 2 {
		t.Fatalf("retry: signed %v err %v submitted %d", ok, err, submitted)
	}
	witnessUp = true
	if _, err := c.Step(ctx); err != nil {
		t.Fatal(err)
	}
	n, size, _ := c.Witnessed()
	if size != 10 || string(c.Latest()) != string(n) || !bytes.Contains(n, []byte("— w1 AAAA\n")) {
		t.Fatalf("witnessed %q size %d", n, size)
	}
	// Witnessed: no more submissions while the tree does not grow.
	if _, err := c.Step(ctx); err != nil || submitted != 3 {
		t.Fatalf("resubmitted a witnessed checkpoint: %v, %d submissions", err, submitted)
	}
	// The tree grows while the witness is down: the old witnessed
	// checkpoint stays served, also after a restart.
	witnessUp = false
	*ft = *build(t, 20, leaf)
	if ok, _ := c.Step(ctx); !ok {
		t.Fatal("did not sign the grown tree")
	}
	if _, size, _ := c.Witnessed(); size != 10 {
		t.Fatalf("witnessed size %d, want 10", size)
	}
	c2, err := NewCheckpointer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := c2.Step(ctx); ok || err == nil {
		t.Fatalf("restart: signed %v err %v (want a retry of size 20)", ok, err)
	}
	if got, size, _ := c2.Witnessed(); size != 10 || string(got) != string(n) {
		t.Fatalf("after restart: witnessed size %d", size)
	}
	witnessUp = true
	if _, err := c2.Step(ctx); err != nil {
		t.Fatal(err)
	}
	if _, size, _ := c2.Witnessed(); size != 20 {
		t.Fatalf("witnessed size %d, want 20", size)
	}
}
