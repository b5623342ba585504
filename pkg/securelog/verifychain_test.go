package securelog

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/securelog/securelog/pkg/keystore"
	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/store/pebblestore"
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

// tamperIntoStore is a pebble store whose RangeInto rows (the windows
// VerifyChain reuses) pass through entry, as if stored so: a changed row's
// encoding (store.RowBuffer.Encodings, made from the stored content) is
// made from the changed content too.
type tamperIntoStore struct {
	*pebblestore.Store
	entry func(*wire.EntryRow)
}

func (s tamperIntoStore) RangeInto(ctx context.Context, stream string, from, to uint64, buf *store.RowBuffer) ([]wire.EntryRow, error) {
	rows, err := s.Store.RangeInto(ctx, stream, from, to, buf)
	for i := range rows {
		before := wire.EncodeEntry(rows[i].Fields())
		s.entry(&rows[i])
		if after := wire.EncodeEntry(rows[i].Fields()); len(buf.Encodings) == len(rows) && !bytes.Equal(after, before) {
			buf.Encodings[i] = after
		}
	}
	return rows, err
}

// VerifyChain over many windows read into reused buffers (pebble's
// RangeInto): a long interleaved stream verifies, in whole and from the
// middle, and a changed payload or link in a late window — read into a
// recycled buffer — is caught at its seqno.
func TestVerifyChainReusedWindows(t *testing.T) {
	ctx := context.Background()
	st := pebblestore.New()
	l := New(st, Options{SessionID: "s", BootID: "b"})
	if err := l.Open(ctx, t.TempDir()+"/db"); err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const n = 5*verifyWindow + 321
	evs := make([]Event, 0, 1000)
	for i := range n {
		s := "a"
		if i%5 == 4 {
			s = "b"
		}
		evs = append(evs, Event{Stream: s, EventType: "t", Severity: wire.Info, Producer: "p", Payload: []byte(fmt.Sprint(i, strings.Repeat("x", i%97)))})
		if len(evs) == cap(evs) || i == n-1 {
			if _, err := l.AppendBatch(ctx, evs, nil); err != nil {
				t.Fatal(err)
			}
			evs = evs[:0]
		}
	}
	for range 2 { // the second time with buffers from the first
		for _, r := range [][2]uint64{{1, n}, {verifyWindow + 7, n}, {1, 3*verifyWindow + 2}} {
			for _, s := range []string{"a", "b"} {
				if err := l.VerifyChain(ctx, s, r[0], r[1]); err != nil {
					t.Fatalf("stream %s range %v: %v", s, r, err)
				}
			}
		}
	}
	late := uint64(4*verifyWindow + 11) // stream a (i%5 != 4)
	for name, spoil := range map[string]func(*wire.EntryRow){
		"payload": func(r *wire.EntryRow) { r.Payload = append(r.Payload[:len(r.Payload):len(r.Payload)], '!') },
		"link":    func(r *wire.EntryRow) { r.PrevEntryHash = make([]byte, 32) },
	} {
		ts := tamperIntoStore{Store: st, entry: func(r *wire.EntryRow) {
			if r.Seqno == late {
				spoil(r)
			}
		}}
		lt := New(ts, Options{})
		if err := lt.OpenInitialized(ctx); err != nil {
			t.Fatal(err)
		}
		cb := wantErr[*wire.ChainBrokenError](t, lt.VerifyChain(ctx, "a", 1, n))
		if cb.Seqno != late {
			t.Fatalf("%s: names seqno %d, want %d", name, cb.Seqno, late)
		}
	}
}
