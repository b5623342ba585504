package securelog

import (
	"context"
	"testing"

	"github.com/securelog/securelog/pkg/keystore"
	"github.com/securelog/securelog/pkg/wire"
)

// VerifyChain over a sub-range checks the link into the range against the
// stream's real predecessor, across other streams' seqnos (SPEC §14.6).
func TestVerifyChainSubRange(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, mem, keystore.Ed25519, nil)
	for i := 0; i < 3000; i++ {
		s := "a"
		if i%3 != 0 {
			s = "b" // long gaps in a's seqnos
		}
		if _, err := e.log.Append(ctx, s, "t", wire.Info, "p", []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range [][2]uint64{{1, 3000}, {2, 3000}, {1500, 2999}, {2998, 2998}, {2999, 3000}} {
		err := e.log.VerifyChain(ctx, "a", r[0], r[1])
		if r == [2]uint64{2999, 3000} {
			wantErr[*wire.StreamNotFoundError](t, err) // no entry of a in range
			continue
		}
		if err != nil {
			t.Fatalf("range %v: %v", r, err)
		}
	}
	wantErr[*wire.InvalidError](t, e.log.VerifyChain(ctx, "a", 10, 9))
	// A wrong predecessor hash at the start of a sub-range is caught.
	ts := &tamperStore{Store: e.st, entry: func(r *wire.EntryRow) {
		if r.Seqno == 1498 { // a's entry just before 1500 (seqnos 1,4,...,1498,1501)
			r.EntryHash = make([]byte, 32)
		}
	}}
	l := New(ts, Options{})
	_ = l.OpenInitialized(ctx)
	cb := wantErr[*wire.ChainBrokenError](t, l.VerifyChain(ctx, "a", 1500, 2999))
	if cb.Seqno != 1501 {
		t.Fatalf("names seqno %d, want 1501", cb.Seqno)
	}
}
