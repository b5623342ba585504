package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/securelog/securelog/pkg/wire"
)

func lookupCommit(t *testing.T, nc *nats.Conn, js uint64) wire.CommitLookupReply {
	t.Helper()
	req, _ := json.Marshal(wire.CommitLookup{JSSeq: js})
	m, err := nc.Request(wire.CommitLookupSubject, req, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var r wire.CommitLookupReply
	if err := json.Unmarshal(m.Data, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestCommitLookup: every JetStream message's outcome can be looked up
// from the ingester's durable commit index — committed ones with their
// seqno and entry hash, rejected ones as not committed, future ones as
// pending — also after the ingester restarts.
func TestCommitLookup(t *testing.T) {
	nc, js := startJetStream(t)
	st := memStore(t)
	_, stop := runIngester(t, nc, openLog(t, st))
	publish(t, js, "a", 0, 30)
	bad := nats.NewMsg(wire.SubjectFor(wire.KindIn, "a"))
	bad.Data = []byte(`{"type":"t","severity":"loud","producer":"p"}`)
	bad.Header.Set(wire.MsgIDHeader, "bad")
	ack, err := js.PublishMsg(context.Background(), bad)
	if err != nil {
		t.Fatal(err)
	}
	publish(t, js, "b", 30, 60)
	checkFor(t, 10*time.Second, func() error {
		if n := len(entries(t, st, "a")) + len(entries(t, st, "b")); n != 60 {
			return fmt.Errorf("%d entries", n)
		}
		return nil
	})
	check := func() {
		t.Helper()
		for js := uint64(1); js <= 61; js++ {
			r := lookupCommit(t, nc, js)
			if js == ack.Sequence {
				if r.Status != wire.LookupNotCommitted {
					t.Fatalf("rejected message %d: %+v", js, r)
				}
				continue
			}
			if r.Status != wire.LookupCommitted {
				t.Fatalf("message %d: %+v", js, r)
			}
			row, ok, _ := st.Get(context.Background(), r.Seqno)
			want := fmt.Sprintf("e%d", js-1)
			if js > ack.Sequence {
				want = fmt.Sprintf("e%d", js-2)
			}
			if !ok || string(row.Payload) != want || string(row.EntryHash) != string(r.EntryHash) || row.StreamID != r.Stream {
				t.Fatalf("message %d → seqno %d: row %+v ok=%v, reply %+v", js, r.Seqno, row, ok, r)
			}
		}
		if r := lookupCommit(t, nc, 1000); r.Status != wire.LookupPending {
			t.Fatalf("future message: %+v", r)
		}
	}
	check()
	stop()
	_, stop2 := runIngester(t, nc, openLog(t, st)) // a restart reads the index from the store
	defer stop2()
	check()
	if r := lookupCommit(t, nc, 0); r.Error == "" {
		t.Fatalf("js_seq 0 accepted: %+v", r)
	}
}
