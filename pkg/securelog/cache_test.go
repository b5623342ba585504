package securelog

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"github.com/securelog/securelog/pkg/keystore"
	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/wire"
)

func TestLRU(t *testing.T) {
	type op struct {
		put  bool
		key  string
		val  int
		want int // get: expected value, -1 = absent
	}
	tests := []struct {
		name    string
		max     int
		ops     []op
		keys    []string // remaining keys, most recently used first
		evicted []string
	}{
		{"fills up to max", 3, []op{{put: true, key: "a"}, {put: true, key: "b"}, {put: true, key: "c"}}, []string{"c", "b", "a"}, nil},
		{"evicts least recently put", 2, []op{{put: true, key: "a"}, {put: true, key: "b"}, {put: true, key: "c"}}, []string{"c", "b"}, []string{"a"}},
		{"get counts as use", 2, []op{{put: true, key: "a", val: 1}, {put: true, key: "b"}, {key: "a", want: 1}, {put: true, key: "c"}}, []string{"c", "a"}, []string{"b"}},
		{"update keeps one entry", 2, []op{{put: true, key: "a", val: 1}, {put: true, key: "a", val: 2}, {key: "a", want: 2}}, []string{"a"}, nil},
		{"miss", 2, []op{{put: true, key: "a"}, {key: "b", want: -1}}, []string{"a"}, nil},
		{"max 1", 1, []op{{put: true, key: "a"}, {put: true, key: "b"}, {key: "a", want: -1}}, []string{"b"}, []string{"a"}},
		{"default bound when max <= 0", 0, []op{{put: true, key: "a"}, {put: true, key: "b"}, {put: true, key: "c"}, {put: true, key: "d"}}, []string{"d", "c", "b"}, []string{"a"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var evicted []string
			c := newLRU(tc.max, 3, func(k string, _ int) { evicted = append(evicted, k) })
			for _, o := range tc.ops {
				if o.put {
					c.put(o.key, o.val)
					continue
				}
				v, ok := c.get(o.key)
				if got := map[bool]int{true: v, false: -1}[ok]; got != o.want {
					t.Fatalf("get(%q) = %d, want %d", o.key, got, o.want)
				}
			}
			var keys []string
			for e := c.order.Front(); e != nil; e = e.Next() {
				keys = append(keys, e.Value.(*lruEntry[string, int]).key)
			}
			if !reflect.DeepEqual(keys, tc.keys) || c.len() != len(tc.keys) {
				t.Errorf("keys %v (len %d), want %v", keys, c.len(), tc.keys)
			}
			if !reflect.DeepEqual(evicted, tc.evicted) {
				t.Errorf("evicted %v, want %v", evicted, tc.evicted)
			}
		})
	}
}

// TestCacheBounds (issue 8 item 4): every cache of a Log holds at most its
// bound however many streams, segments and keys it meets, and evictions
// cost reads, not correctness: a batch interleaving more streams than the
// stream cache holds chains every stream correctly, and every stream still
// verifies (chain, checkpoints, proofs) after its cache entries were evicted.
func TestCacheBounds(t *testing.T) {
	ctx := context.Background()
	const streams, segsPer = 7, 3
	bounds := Options{CacheStreams: 2, CacheCheckpoints: 3, CacheKeys: 2}
	for _, b := range []backend{backends[0], backends[1]} { // memory (one insert per entry), pebble (batches)
		t.Run(b.name, func(t *testing.T) {
			e := newEnv(t, b, keystore.Ed25519, func(o *Options) {
				o.CacheStreams, o.CacheCheckpoints, o.CacheKeys = bounds.CacheStreams, bounds.CacheCheckpoints, bounds.CacheKeys
				o.Trust = nil // verify with the keystore's public keys (every identity)
			})
			ids := []string{"attest"}
			for i := 1; i < 4; i++ {
				id := fmt.Sprintf("attest%d", i)
				if _, err := e.ks.Generate(id, keystore.Ed25519); err != nil {
					t.Fatal(err)
				}
				ids = append(ids, id)
			}
			checkBounds := func(when string) {
				t.Helper()
				e.log.mu.Lock()
				ls, as := e.log.lastHash.len(), e.log.anchors.len()
				e.log.mu.Unlock()
				e.log.keyMu.Lock()
				ks := e.log.keyCache.len()
				e.log.keyMu.Unlock()
				e.log.ckMu.Lock()
				cs, ch := e.log.ck.len(), len(e.log.ckByHash)
				e.log.ckMu.Unlock()
				if ls > bounds.CacheStreams || as > bounds.CacheStreams || ks > bounds.CacheKeys || cs > bounds.CacheCheckpoints || ch > bounds.CacheCheckpoints {
					t.Fatalf("%s: cache sizes lastHash %d, anchors %d (bound %d), keys %d (bound %d), checkpoints %d/%d (bound %d)",
						when, ls, as, bounds.CacheStreams, ks, bounds.CacheKeys, cs, ch, bounds.CacheCheckpoints)
				}
			}
			for seg := 0; seg < segsPer; seg++ {
				var evs []Event
				for i := 0; i < 3; i++ {
					for s := 0; s < streams; s++ {
						evs = append(evs, Event{Stream: fmt.Sprintf("s%d", s), EventType: "ev", Severity: wire.Info, Producer: "p", Payload: []byte{byte(seg), byte(i)}})
					}
				}
				res := must[[]BatchResult](t)(e.log.AppendBatch(ctx, evs, nil))
				for _, r := range res {
					if r.Err != nil {
						t.Fatal(r.Err)
					}
				}
				checkBounds("after a batch")
				appendN(t, e.log, "s0", 1) // a single append on top of evicted state
				for s := 0; s < streams; s++ {
					sg := must[wire.SegmentRow](t)(e.log.CloseSegment(ctx, fmt.Sprintf("s%d", s)))
					if _, _, err := e.log.SignSegment(ctx, ids[(s+seg)%len(ids)], sg.SegmentID); err != nil {
						t.Fatal(err)
					}
				}
				checkBounds("after closing and signing")
			}
			for s := 0; s < streams; s++ {
				name := fmt.Sprintf("s%d", s)
				head, _, err := e.log.Head(ctx, name)
				if err != nil {
					t.Fatal(err)
				}
				if err := e.log.VerifyChain(ctx, name, 1, head); err != nil {
					t.Fatalf("stream %s: %v", name, err)
				}
				if n, err := e.log.VerifyCheckpointChain(ctx, name); err != nil || n != segsPer {
					t.Fatalf("stream %s: %d segments, %v", name, n, err)
				}
				p := must[InclusionProof](t)(e.log.BuildInclusionProof(ctx, head))
				if err := VerifyInclusionProof(p, p.MerkleRoot); err != nil {
					t.Fatal(err)
				}
			}
			checkBounds("after verifying")
		})
	}
}

// readOnly hides every write of a store: a Reader must need none.
type readOnly struct{ store.ReadStore }

// TestReaderOverReadStore: a Reader over nothing but a store.ReadStore
// reads, verifies and proves exactly what the writing Log does.
func TestReaderOverReadStore(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, backends[0], keystore.Ed25519, nil)
	appendN(t, e.log, "default", 5)
	seg := must[wire.SegmentRow](t)(e.log.CloseSegment(ctx, "default"))
	if _, _, err := e.log.SignSegment(ctx, "attest", seg.SegmentID); err != nil {
		t.Fatal(err)
	}
	appendN(t, e.log, "default", 2)
	r := NewReader(readOnly{e.st}, ReaderOptions{Trust: e.trust})
	for seqno := uint64(1); seqno <= 5; seqno++ {
		want := must[InclusionProof](t)(e.log.BuildInclusionProof(ctx, seqno))
		got := must[InclusionProof](t)(r.BuildInclusionProof(ctx, seqno))
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("seqno %d: reader proof %+v, log proof %+v", seqno, got, want)
		}
	}
	if err := r.VerifyChain(ctx, "default", 1, 7); err != nil {
		t.Fatal(err)
	}
	if n, err := r.VerifyCheckpointChain(ctx, "default"); err != nil || n != 1 {
		t.Fatalf("VerifyCheckpointChain = %d, %v", n, err)
	}
	_, _, want := must3(t)(e.log.Checkpoint(ctx, seg.SegmentID))
	if _, _, got := must3(t)(r.Checkpoint(ctx, seg.SegmentID)); !bytesEqual(got, want) {
		t.Fatalf("reader checkpoint %x, log %x", got, want)
	}
	if got, ok, err := r.SegmentOf(ctx, 3); err != nil || !ok || got.SegmentID != seg.SegmentID {
		t.Fatalf("SegmentOf(3) = %d, %v, %v", got.SegmentID, ok, err)
	}
	if _, ok, err := r.SegmentOf(ctx, 6); err != nil || ok {
		t.Fatalf("SegmentOf(6) (open segment) = %v, %v", ok, err)
	}
	if _, err := NewReader(readOnly{e.st}, ReaderOptions{}).VerifySegmentSignature(ctx, seg.SegmentID); err == nil {
		t.Fatal("a Reader without trust verified a signature")
	}
}

func must3(t *testing.T) func(wire.SegmentRow, wire.CheckpointFields, []byte, error) (wire.SegmentRow, wire.CheckpointFields, []byte) {
	return func(s wire.SegmentRow, f wire.CheckpointFields, h []byte, err error) (wire.SegmentRow, wire.CheckpointFields, []byte) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return s, f, h
	}
}
