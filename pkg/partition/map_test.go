package partition

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/securelog/securelog/pkg/wire"
)

func TestStreamKeys(t *testing.T) {
	for _, s := range []string{"alpha", "a-b_C9", "ünïcode", "a:b", "x=y"} {
		k := StreamKey(s)
		for _, r := range k {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-/_=.", r)) {
				t.Fatalf("key %q of %q has a character KV keys refuse", k, s)
			}
		}
		st, part, err := ParseKey(k)
		if err != nil || st != s || part != "" {
			t.Fatalf("ParseKey(%q) = %q, %q, %v; want stream %q", k, st, part, err, s)
		}
	}
	if _, p, err := ParseKey(PartitionKey("p1")); err != nil || p != "p1" {
		t.Fatalf("partition key: %q %v", p, err)
	}
	if _, _, err := ParseKey("other.key"); err == nil {
		t.Fatal("foreign key accepted")
	}
}

func TestMapRules(t *testing.T) {
	ctx := context.Background()
	m := New(NewMemoryKV())
	// Unassigned streams go to the default partition (the default rule).
	if p, assigned, err := m.Owner(ctx, "alpha"); err != nil || assigned || p != wire.DefaultPartition {
		t.Fatalf("unassigned: %q %v %v", p, assigned, err)
	}
	// Unknown partition: the error names the known ones.
	err := m.Assign(ctx, "alpha", "p1")
	var unk *wire.UnknownPartitionError
	if !errors.As(err, &unk) || unk.Name != "p1" || strings.Join(unk.Known, ",") != "default" {
		t.Fatalf("assign to unknown partition: %v", err)
	}
	if added, err := m.Add(ctx, "p1"); err != nil || !added {
		t.Fatalf("add: %v %v", added, err)
	}
	if added, err := m.Add(ctx, "p1"); err != nil || added {
		t.Fatalf("add again: %v %v", added, err)
	}
	if _, err := m.Add(ctx, "bad.name"); err == nil {
		t.Fatal("bad partition name accepted")
	}
	if err := m.Assign(ctx, "alpha", "p1"); err != nil {
		t.Fatal(err)
	}
	if err := m.Assign(ctx, "alpha", "p1"); err != nil {
		t.Fatalf("re-assigning to the owner: %v", err)
	}
	// A second Map (another client) sees it and is refused with the owner.
	other := New(m.kv)
	err = other.Assign(ctx, "alpha", wire.DefaultPartition)
	var conf *wire.PartitionConflictError
	if !errors.As(err, &conf) || conf.Owner != "p1" || conf.Stream != "alpha" || conf.Want != wire.DefaultPartition {
		t.Fatalf("conflicting assignment: %v", err)
	}
	if r, err := other.Route(ctx, "alpha"); err != nil || r.Name() != "p1" || r.RPCSubject() != "securelog.p.p1.rpc" {
		t.Fatalf("route: %v %v", r, err)
	}
	// An ingester's claim of an unassigned stream is permanent too.
	if err := m.Claim(ctx, "beta", wire.DefaultPartition); err != nil {
		t.Fatal(err)
	}
	if err := other.Assign(ctx, "beta", "p1"); !errors.As(err, &conf) || conf.Owner != wire.DefaultPartition {
		t.Fatalf("assigning a claimed stream: %v", err)
	}
	if err := m.Check(ctx, "p9"); !errors.As(err, &unk) || strings.Join(unk.Known, ",") != "default,p1" {
		t.Fatalf("check: %v", err)
	}
	s, err := m.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(s.Partitions, ",") != "default,p1" || s.Owners["alpha"] != "p1" || s.Owners["beta"] != "default" {
		t.Fatalf("snapshot %+v", s)
	}
	if got := s.Streams("p1"); len(got) != 1 || got[0] != "alpha" {
		t.Fatalf("streams of p1: %v", got)
	}
}

// Concurrent claims of one stream by several partitions: exactly one wins
// and every loser learns the winner ("never two partitions").
func TestConcurrentClaims(t *testing.T) {
	ctx := context.Background()
	kv := NewMemoryKV()
	parts := []string{"default", "p1", "p2", "p3"}
	owners := make([]string, len(parts))
	var wg sync.WaitGroup
	for i, p := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := New(kv).Claim(ctx, "s", p)
			var conf *wire.PartitionConflictError
			switch {
			case err == nil:
				owners[i] = p
			case errors.As(err, &conf):
				owners[i] = conf.Owner
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	for _, o := range owners[1:] {
		if o != owners[0] {
			t.Fatalf("claims disagree on the owner: %v", owners)
		}
	}
}

func TestNoBucket(t *testing.T) {
	ctx := context.Background()
	m := New(nil)
	if p, _, err := m.Owner(ctx, "x"); err != nil || p != wire.DefaultPartition {
		t.Fatalf("%q %v", p, err)
	}
	if err := m.Claim(ctx, "x", wire.DefaultPartition); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Add(ctx, "p1"); !errors.Is(err, ErrNoMap) {
		t.Fatalf("add without bucket: %v", err)
	}
	var unk *wire.UnknownPartitionError
	if err := m.Check(ctx, "p1"); !errors.As(err, &unk) {
		t.Fatalf("check without bucket: %v", err)
	}
}

// laggingKV answers Get from a replica that has not applied the latest
// writes yet: a key exists (Create refuses it) but Get misses it the first
// lag times. JetStream KV's direct gets on a replicated bucket may be
// served by such a follower.
type laggingKV struct {
	*MemoryKV
	mu  sync.Mutex
	lag int
}

func (k *laggingKV) Get(ctx context.Context, key string) ([]byte, bool, error) {
	k.mu.Lock()
	if k.lag > 0 {
		k.lag--
		k.mu.Unlock()
		return nil, false, nil
	}
	k.mu.Unlock()
	return k.MemoryKV.Get(ctx, key)
}

// A claim that loses to another partition learns the winner even when
// the read after the refused create is served by a lagging replica
// (found by TestPartitionsOnR3Cluster: "stream is in the partition map but
// has no owner" failed the ingester's batch).
func TestClaimReadsOwnerFromLaggingReplica(t *testing.T) {
	ctx := context.Background()
	kv := &laggingKV{MemoryKV: NewMemoryKV()}
	if err := New(kv).Claim(ctx, "s", "p1"); err != nil {
		t.Fatal(err)
	}
	kv.lag = 3
	err := New(kv).Claim(ctx, "s", wire.DefaultPartition)
	var conf *wire.PartitionConflictError
	if !errors.As(err, &conf) || conf.Owner != "p1" {
		t.Fatalf("losing claim: %v, want a conflict naming p1", err)
	}
}
