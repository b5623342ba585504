package securelog

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/securelog/securelog/pkg/chain"
	"github.com/securelog/securelog/pkg/keystore"
	"github.com/securelog/securelog/pkg/merkle"
	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/store/memory"
	"github.com/securelog/securelog/pkg/wire"
)

// forgeRow inserts a row at the next global seqno straight into the store
// (as an anonymous raw-store RPC client can), linking to prev. With bogusHash its entry hash is not the
// hash of its contents.
func forgeRow(t *testing.T, e *env, stream string, prev []byte, bogusHash bool) wire.EntryRow {
	t.Helper()
	head, _, err := e.st.GlobalHead(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	seqno := head + 1
	row := wire.EntryRow{Seqno: seqno, StreamID: stream, SessionID: "forger", BootID: "forger",
		Timestamp: "2026-04-10T00:00:00.000000Z", EventType: "forged", Severity: wire.Info, Producer: "x",
		PayloadEncoding: wire.EncoderName, Payload: []byte("forged"), PrevEntryHash: prev}
	row.EntryHash = chain.RowHash(row)
	if bogusHash {
		row.EntryHash = bytes.Repeat([]byte{0xab}, 32)
	}
	if _, err := e.st.Insert(context.Background(), row); err != nil {
		t.Fatal(err)
	}
	return row
}

// forgeSegment inserts a segment straight into the store over the given
// member rows, with the root over their stored hashes; mod may alter it.
func forgeSegment(t *testing.T, e *env, rows []wire.EntryRow, prevCk []byte, mod func(*wire.SegmentRow, *[]wire.SegmentEntry)) uint64 {
	t.Helper()
	leaves := make([][]byte, len(rows))
	ents := make([]wire.SegmentEntry, len(rows))
	for i, r := range rows {
		leaves[i] = r.EntryHash
		ents[i] = wire.SegmentEntry{Seqno: r.Seqno, LeafIndex: uint64(i)}
	}
	seg := wire.SegmentRow{StreamID: rows[0].StreamID, SeqStart: rows[0].Seqno, SeqEnd: rows[len(rows)-1].Seqno,
		MerkleRoot: merkle.Root(leaves), LastEntryHash: rows[len(rows)-1].EntryHash, PrevCheckpointHash: prevCk,
		ClosedAt: "2026-04-10T00:00:01.000000Z"}
	if mod != nil {
		mod(&seg, &ents)
	}
	id, err := e.st.SegmentInsert(context.Background(), seg, ents)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// lyingStore is a memory store that can answer with altered segment rows
// and memberships, as a tampered or malicious store (or store RPC server)
// can, past the checks a correct backend makes on insert.
type lyingStore struct {
	store.Store
	mu      sync.Mutex
	segs    map[uint64]func(*wire.SegmentRow)
	members map[uint64][]uint64
}

var lying = backend{"lying", func(t *testing.T) (store.Store, string) {
	return &lyingStore{Store: memory.New(), segs: map[uint64]func(*wire.SegmentRow){}, members: map[uint64][]uint64{}}, "test"
}}

func (s *lyingStore) tamper(id uint64, seg func(*wire.SegmentRow), members []uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if seg != nil {
		s.segs[id] = seg
	}
	if members != nil {
		s.members[id] = members
	}
}

func (s *lyingStore) SegmentGet(ctx context.Context, id uint64) (wire.SegmentRow, bool, error) {
	row, ok, err := s.Store.SegmentGet(ctx, id)
	s.mu.Lock()
	defer s.mu.Unlock()
	if f := s.segs[id]; f != nil && ok {
		f(&row)
	}
	return row, ok, err
}

func (s *lyingStore) SegmentEntrySeqnos(ctx context.Context, id uint64) ([]uint64, error) {
	s.mu.Lock()
	m, ok := s.members[id]
	s.mu.Unlock()
	if ok {
		return m, nil
	}
	return s.Store.SegmentEntrySeqnos(ctx, id)
}

func storedRows(t *testing.T, e *env, stream string) []wire.EntryRow {
	t.Helper()
	rows, err := e.st.Range(context.Background(), stream, 1, 1<<40)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// TestSignRefusesInvalidSegment: the signer checks a segment before signing
// it (issue 9 item 1): leaves recomputed from the entries' canonical bytes,
// chain links, root, range, members and the link to the previous checkpoint.
// A failure signs nothing, raises an alert and stops signing the stream.
func TestSignRefusesInvalidSegment(t *testing.T) {
	ctx := context.Background()
	cases := map[string]func(t *testing.T, e *env) uint64{
		"forged entry hash": func(t *testing.T, e *env) uint64 {
			rs := appendN(t, e.log, "s", 2)
			forgeRow(t, e, "s", rs[1].EntryHash, true)
			return forgeSegment(t, e, storedRows(t, e, "s"), wire.ZeroHash, nil)
		},
		"broken link": func(t *testing.T, e *env) uint64 {
			appendN(t, e.log, "s", 2)
			forgeRow(t, e, "s", bytes.Repeat([]byte{1}, 32), false)
			return forgeSegment(t, e, storedRows(t, e, "s"), wire.ZeroHash, nil)
		},
		"root mismatch": func(t *testing.T, e *env) uint64 {
			appendN(t, e.log, "s", 3)
			return forgeSegment(t, e, storedRows(t, e, "s"), wire.ZeroHash, func(s *wire.SegmentRow, _ *[]wire.SegmentEntry) {
				s.MerkleRoot = bytes.Repeat([]byte{2}, 32)
			})
		},
		"skips the first entry": func(t *testing.T, e *env) uint64 {
			appendN(t, e.log, "s", 3)
			id := forgeSegment(t, e, storedRows(t, e, "s"), wire.ZeroHash, nil)
			// Stores refuse such a segment now; a tampered store can still
			// answer with one.
			rows := storedRows(t, e, "s")[1:]
			e.st.(*lyingStore).tamper(id, func(s *wire.SegmentRow) {
				s.SeqStart = rows[0].Seqno
				s.MerkleRoot = merkle.Root([][]byte{rows[0].EntryHash, rows[1].EntryHash})
			}, []uint64{rows[0].Seqno, rows[1].Seqno})
			return id
		},
		"members are not the range": func(t *testing.T, e *env) uint64 {
			appendN(t, e.log, "s", 3)
			rows := storedRows(t, e, "s")
			id := forgeSegment(t, e, rows, wire.ZeroHash, nil)
			e.st.(*lyingStore).tamper(id, nil, []uint64{rows[0].Seqno, rows[2].Seqno})
			return id
		},
		"last entry hash": func(t *testing.T, e *env) uint64 {
			appendN(t, e.log, "s", 3)
			return forgeSegment(t, e, storedRows(t, e, "s"), wire.ZeroHash, func(s *wire.SegmentRow, _ *[]wire.SegmentEntry) {
				s.LastEntryHash = bytes.Repeat([]byte{3}, 32)
			})
		},
		"previous checkpoint": func(t *testing.T, e *env) uint64 {
			appendN(t, e.log, "s", 2)
			s1 := must[wire.SegmentRow](t)(e.log.CloseSegment(ctx, "s"))
			if _, _, err := e.log.SignSegment(ctx, "attest", s1.SegmentID); err != nil {
				t.Fatal(err)
			}
			appendN(t, e.log, "s", 2)
			return forgeSegment(t, e, storedRows(t, e, "s")[2:], wire.ZeroHash, nil)
		},
	}
	for name, mk := range cases {
		for _, closed := range []bool{false, true} {
			sub := name
			if closed {
				sub += "/with ClosedSegments" // as in securelog up: a forged segment was not closed here
			}
			t.Run(sub, func(t *testing.T) {
				var alerts atomic.Int32
				e := newEnv(t, lying, keystore.Ed25519, func(o *Options) {
					o.OnAlert = func(string, error) { alerts.Add(1) }
					if closed {
						o.Closed = NewClosedSegments(0)
					}
				})
				appendN(t, e.log, "other", 1)
				id := mk(t, e)
				_, _, err := e.log.SignSegment(ctx, "attest", id)
				wantErr[*wire.ChainBrokenError](t, err)
				if seg, _, _ := e.st.SegmentGet(ctx, id); len(seg.Signature) != 0 {
					t.Fatal("invalid segment was signed")
				}
				if alerts.Load() == 0 {
					t.Fatal("no alert raised")
				}
				if e.log.Healthy() == nil {
					t.Fatal("log reports healthy after refusing a segment")
				}
				var halted *StreamHaltedError
				if !errors.As(err, &halted) || halted.Stream != "s" {
					t.Fatalf("error %v does not halt stream s", err)
				}
				// Signing of the stream stays stopped; other streams go on.
				_, _, err = e.log.SignSegment(ctx, "attest", id)
				wantErr[*StreamHaltedError](t, err)
				o := must[wire.SegmentRow](t)(e.log.CloseSegment(ctx, "other"))
				if _, _, err := e.log.SignSegment(ctx, "attest", o.SegmentID); err != nil {
					t.Fatalf("other stream: %v", err)
				}
			})
		}
	}
}

// TestSignAcceptsValidSegments: the check passes for segments the log
// closed itself, over interleaved streams, with and without cached
// checkpoints (a fresh Log signs a store another Log closed).
func TestSignAcceptsValidSegments(t *testing.T) {
	ctx := context.Background()
	for _, b := range backends[:3] {
		t.Run(b.name, func(t *testing.T) {
			e := newEnv(t, b, keystore.Ed25519, nil)
			var ids []uint64
			for range 3 {
				appendN(t, e.log, "a", 2)
				appendN(t, e.log, "b", 1)
				appendN(t, e.log, "a", 1)
				ids = append(ids, must[wire.SegmentRow](t)(e.log.CloseSegment(ctx, "a")).SegmentID)
				ids = append(ids, must[wire.SegmentRow](t)(e.log.CloseSegment(ctx, "b")).SegmentID)
			}
			fresh := New(e.st, Options{Signer: e.ks, Trust: e.trust})
			if err := fresh.OpenInitialized(ctx); err != nil {
				t.Fatal(err)
			}
			for i, id := range ids {
				l := e.log
				if i%2 == 1 {
					l = fresh
				}
				if _, _, err := l.SignSegment(ctx, "attest", id); err != nil {
					t.Fatalf("segment %d: %v", id, err)
				}
			}
			if e.log.Healthy() != nil || fresh.Healthy() != nil {
				t.Fatal("unhealthy after valid signatures")
			}
		})
	}
}

// TestAppendRefusesForgedTail reproduces the ingester attack of issue 9
// item 1 at the Log: a raw-store client inserts the next seqno of a stream
// with a bogus entry_hash; the log's next commit fails with the duplicate,
// and the retry must not chain onto the forged row.
func TestAppendRefusesForgedTail(t *testing.T) {
	ctx := context.Background()
	var alerts atomic.Int32
	e := newEnv(t, mem, keystore.Ed25519, func(o *Options) {
		o.OnAlert = func(string, error) { alerts.Add(1) }
	})
	rs := appendN(t, e.log, "s", 2)
	forgeRow(t, e, "s", rs[1].EntryHash, true)
	if _, err := e.log.Append(ctx, "s", "ev", wire.Info, "p", []byte("x")); err == nil {
		t.Fatal("append over the forged seqno succeeded")
	}
	_, err := e.log.Append(ctx, "s", "ev", wire.Info, "p", []byte("y"))
	wantErr[*wire.ChainBrokenError](t, err)
	if h, _, _ := e.st.GlobalHead(ctx); h != 3 {
		t.Fatalf("global head %d: an entry was chained onto the forged row", h)
	}
	if alerts.Load() == 0 || e.log.Healthy() == nil {
		t.Fatalf("alerts %d, healthy %v", alerts.Load(), e.log.Healthy())
	}
	// Other streams are stopped as well: a batch never half-commits around
	// a halted stream.
	if _, err := e.log.Append(ctx, "other", "ev", wire.Info, "p", nil); err == nil {
		t.Fatal("append to another stream of a halted log succeeded")
	}
	// A fresh log over the same store (a restarted ingester) refuses too.
	fresh := New(e.st, Options{})
	if err := fresh.OpenInitialized(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = fresh.Append(ctx, "s", "ev", wire.Info, "p", nil)
	wantErr[*wire.ChainBrokenError](t, err)
}

// TestAppendChainsOntoVerifiedForeignRows: rows another writer appended
// correctly are verified and chained onto.
func TestAppendChainsOntoVerifiedForeignRows(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, mem, keystore.Ed25519, nil)
	appendN(t, e.log, "s", 2)
	other := New(e.st, Options{})
	if err := other.OpenInitialized(ctx); err != nil {
		t.Fatal(err)
	}
	appendN(t, other, "s", 3)
	// e.log's cached head is stale: its append loses the seqno race,
	// re-reads the tail, verifies the other writer's rows and chains on.
	appendN(t, e.log, "s", 2)
	if err := e.log.VerifyChain(ctx, "s", 1, 7); err != nil {
		t.Fatal(err)
	}
	if e.log.Healthy() != nil {
		t.Fatal(e.log.Healthy())
	}
}
