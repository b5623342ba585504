package securelog

import (
	"context"
	"sync"
	"testing"

	"github.com/securelog/securelog/pkg/keystore"
	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/wire"
)

// A rejected event in a group commit fails only its own caller.
func TestGroupCommitIsolatesErrors(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, backends[1], keystore.Ed25519, nil) // pebble: group commit path
	appendN(t, e.log, "closed", 1)
	if err := e.log.DeprecateStream(ctx, "closed"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, rejected := 0, 0
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			stream := "open"
			if g%4 == 0 {
				stream = "closed"
			}
			for i := 0; i < 20; i++ {
				_, err := e.log.Append(ctx, stream, "ev", wire.Info, "p", []byte{byte(g), byte(i)})
				mu.Lock()
				if err != nil {
					if _, inv := err.(*wire.InvalidError); !inv || stream != "closed" {
						t.Errorf("stream %s: %v", stream, err)
					}
					rejected++
				} else {
					ok++
				}
				mu.Unlock()
			}
		}(g)
	}
	wg.Wait()
	if ok != 240 || rejected != 80 {
		t.Fatalf("ok %d rejected %d", ok, rejected)
	}
	h, _, _ := e.log.Head(ctx, "open")
	if err := e.log.VerifyChain(ctx, "open", 1, h); err != nil {
		t.Fatal(err)
	}
	if gh, _, _ := e.st.GlobalHead(ctx); gh != 241 {
		t.Fatalf("global head %d, want 241 (no gaps, nothing written for rejected events)", gh)
	}
	// A cancelled context fails only that caller's own append before it queues.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := e.log.Append(cctx, "open", "ev", wire.Info, "p", nil); err != nil {
		t.Logf("cancelled append: %v", err)
	}
}

// AppendBatchFunc hands the batch's results to the meta function before the
// commit, and its records commit with the entries.
func TestAppendBatchFuncMetaSeesResults(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, backends[1], keystore.Ed25519, nil)
	appendN(t, e.log, "gone", 1)
	_ = e.log.DeprecateStream(ctx, "gone")
	evs := []Event{
		{Stream: "s", EventType: "t", Severity: wire.Info, Producer: "p"},
		{Stream: "gone", EventType: "t", Severity: wire.Info, Producer: "p"},
		{Stream: "s", EventType: "t", Severity: wire.Info, Producer: "p"},
	}
	var seen []BatchResult
	res, err := e.log.AppendBatchFunc(ctx, evs, func(r []BatchResult) map[string][]byte {
		seen = append([]BatchResult(nil), r...)
		return map[string][]byte{"k": {byte(r[2].Seqno)}}
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != 3 || seen[0].Seqno != 2 || seen[1].Err == nil || seen[2].Seqno != 3 || res[2].Seqno != 3 {
		t.Fatalf("meta saw %+v; results %+v", seen, res)
	}
	v, ok, err := e.st.(store.Batcher).GetMeta(ctx, "k")
	if err != nil || !ok || len(v) != 1 || v[0] != 3 {
		t.Fatalf("meta record: %v %v %v", v, ok, err)
	}
}
