package securelog

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/securelog/securelog/pkg/rpcserver"
	"github.com/securelog/securelog/pkg/rpcserver/rpctest"
	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/store/memory"
	"github.com/securelog/securelog/pkg/store/remote"
	"github.com/securelog/securelog/pkg/store/sqlitestore"
	"github.com/securelog/securelog/pkg/transport"
	"github.com/securelog/securelog/pkg/wire"
)

// TestConcurrentWritersRetrySeqnoRace (issue 9 item 12): twelve writers,
// each its own Log (as twelve `securelog append` processes would be), append
// at once to one store. A writer that loses the race for a seqno must
// retry with the store's new head instead of failing its caller: every
// append succeeds, seqnos are distinct and the chain verifies.
func TestConcurrentWritersRetrySeqnoRace(t *testing.T) {
	const writers, each = 12, 4
	for _, c := range []struct {
		name string
		// open returns a fresh store client for writer i over shared storage.
		open func(t *testing.T) func() (store.Store, string)
	}{
		{"memory", func(t *testing.T) func() (store.Store, string) {
			shared := memory.New()
			if err := shared.Init(context.Background(), "shared"); err != nil {
				t.Fatal(err)
			}
			return func() (store.Store, string) { return sharedStore{shared}, "shared" }
		}},
		{"remote-http (serve-rpc)", func(t *testing.T) func() (store.Store, string) {
			back := sqlitestore.New()
			if err := back.Init(context.Background(), t.TempDir()+"/server.db"); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { back.Close() })
			url := rpctest.ServeHTTP(t, back, rpcserver.Config{})
			return func() (store.Store, string) {
				tr, err := transport.New("http", transport.Config{URL: url})
				if err != nil {
					t.Fatal(err)
				}
				return remote.New(tr), "handshake"
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			open := c.open(t)
			logs := make([]*Log, writers+1)
			for i := range logs {
				st, cfg := open()
				logs[i] = New(st, Options{SessionID: fmt.Sprintf("w%d", i), BootID: "b"})
				if err := logs[i].Open(ctx, cfg); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { st.Close() })
			}
			var wg sync.WaitGroup
			errs := make(chan error, writers*each)
			seen := make(chan uint64, writers*each)
			start := make(chan struct{})
			for i := range writers {
				wg.Go(func() {
					<-start
					for j := range each {
						r, err := logs[i].Append(ctx, "default", "e", wire.Severity(6), "p", fmt.Appendf(nil, "%d/%d", i, j))
						if err != nil {
							errs <- fmt.Errorf("writer %d append %d: %w", i, j, err)
							continue
						}
						seen <- r.Seqno
					}
				})
			}
			close(start)
			wg.Wait()
			close(errs)
			close(seen)
			for err := range errs {
				t.Error(err)
			}
			got := map[uint64]bool{}
			for n := range seen {
				if got[n] {
					t.Fatalf("seqno %d reported twice", n)
				}
				got[n] = true
			}
			if t.Failed() {
				return
			}
			if err := logs[writers].VerifyChain(ctx, "default", 1, writers*each); err != nil {
				t.Fatalf("chain after concurrent writers: %v", err)
			}
		})
	}
}

// sharedStore lets several Logs use one store; closing it is left to the
// test.
type sharedStore struct{ store.Store }

func (sharedStore) Init(context.Context, string) error { return nil }
func (sharedStore) Close() error                       { return nil }
