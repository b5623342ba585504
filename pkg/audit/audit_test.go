package audit_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/securelog/securelog/pkg/audit"
	"github.com/securelog/securelog/pkg/checkpoint"
	"github.com/securelog/securelog/pkg/keystore"
	"github.com/securelog/securelog/pkg/securelog"
	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/store/memory"
	"github.com/securelog/securelog/pkg/store/pebblestore"
	"github.com/securelog/securelog/pkg/wire"
)

var streams = []string{"default", "auth", "billing"}

// buildLog writes 1000 interleaved entries over 3 streams and closes 15
// segments, 5 signed with each algorithm; a few entries stay open.
func buildLog(t testing.TB, st store.Store, cfg string) (*checkpoint.Trust, map[string]uint64) {
	ctx := context.Background()
	ks, err := keystore.OpenSoftware(t.TempDir() + "/keys")
	if err != nil {
		t.Fatal(err)
	}
	var entries []checkpoint.TrustEntry
	for _, alg := range keystore.Algorithms {
		k, err := ks.Generate("signer-"+alg, alg)
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, checkpoint.TrustEntry{Identity: "signer-" + alg, Algorithm: alg, PublicKey: k.PublicKey()})
	}
	trust, err := checkpoint.NewTrust(entries...)
	if err != nil {
		t.Fatal(err)
	}
	n := time.Date(2026, 4, 10, 0, 0, 0, 0, time.UTC)
	l := securelog.New(st, securelog.Options{Signer: ks, Trust: trust, Now: func() time.Time { n = n.Add(time.Millisecond); return n }})
	if err := l.Open(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	heads := map[string]uint64{}
	segs := 0
	for i := 1; i <= 1000; i++ {
		s := streams[(i*7)%3]
		if _, err := l.Append(ctx, s, fmt.Sprintf("ev.%d", i%5), wire.Severity(i%8), "producer", []byte(fmt.Sprintf("payload %d", i))); err != nil {
			t.Fatal(err)
		}
		if i%64 == 0 && segs < 15 {
			seg, err := l.CloseSegment(ctx, s)
			if err != nil {
				t.Fatal(err)
			}
			alg := keystore.Algorithms[segs%3]
			if _, _, err := l.SignSegment(ctx, "signer-"+alg, seg.SegmentID); err != nil {
				t.Fatal(err)
			}
			segs++
		}
	}
	if segs != 15 {
		t.Fatalf("closed %d segments", segs)
	}
	for _, s := range streams {
		h, _, _ := l.Head(ctx, s)
		heads[s] = h
	}
	return trust, heads
}

// tamperStore returns rows changed by the hooks, as if edited at rest.
type tamperStore struct {
	store.Store
	entry func(*wire.EntryRow)
	seg   func(*wire.SegmentRow)
	seqs  func(id uint64, s []uint64) []uint64
}

func (s *tamperStore) Range(ctx context.Context, stream string, from, to uint64) ([]wire.EntryRow, error) {
	rows, err := s.Store.Range(ctx, stream, from, to)
	for i := range rows {
		s.entry(&rows[i])
	}
	return rows, err
}

func (s *tamperStore) SegmentsList(ctx context.Context, stream string) ([]wire.SegmentRow, error) {
	rows, err := s.Store.SegmentsList(ctx, stream)
	for i := range rows {
		s.seg(&rows[i])
	}
	return rows, err
}

func (s *tamperStore) SegmentEntrySeqnos(ctx context.Context, id uint64) ([]uint64, error) {
	v, err := s.Store.SegmentEntrySeqnos(ctx, id)
	return s.seqs(id, v), err
}

func flip(b []byte) []byte {
	c := bytes.Clone(b)
	if len(c) == 0 {
		return []byte{1}
	}
	c[len(c)/2] ^= 1
	return c
}

var entryMutations = map[string]func(*wire.EntryRow){
	"seqno":            func(r *wire.EntryRow) { r.Seqno += 1000000 },
	"stream_id":        func(r *wire.EntryRow) { r.StreamID += "x" },
	"session_id":       func(r *wire.EntryRow) { r.SessionID += "x" },
	"boot_id":          func(r *wire.EntryRow) { r.BootID += "x" },
	"timestamp":        func(r *wire.EntryRow) { r.Timestamp += "x" },
	"event_type":       func(r *wire.EntryRow) { r.EventType += "x" },
	"severity":         func(r *wire.EntryRow) { r.Severity = (r.Severity + 1) % 8 },
	"producer":         func(r *wire.EntryRow) { r.Producer += "x" },
	"payload_encoding": func(r *wire.EntryRow) { r.PayloadEncoding += "x" },
	"payload":          func(r *wire.EntryRow) { r.Payload = flip(r.Payload) },
	"prev_entry_hash":  func(r *wire.EntryRow) { r.PrevEntryHash = flip(r.PrevEntryHash) },
	"entry_hash":       func(r *wire.EntryRow) { r.EntryHash = flip(r.EntryHash) },
}

var segmentMutations = map[string]func(*wire.SegmentRow){
	"segment_id":           func(s *wire.SegmentRow) { s.SegmentID += 1000 },
	"stream_id":            func(s *wire.SegmentRow) { s.StreamID += "x" },
	"seq_start":            func(s *wire.SegmentRow) { s.SeqStart++ },
	"seq_end":              func(s *wire.SegmentRow) { s.SeqEnd-- },
	"merkle_root":          func(s *wire.SegmentRow) { s.MerkleRoot = flip(s.MerkleRoot) },
	"last_entry_hash":      func(s *wire.SegmentRow) { s.LastEntryHash = flip(s.LastEntryHash) },
	"prev_checkpoint_hash": func(s *wire.SegmentRow) { s.PrevCheckpointHash = flip(s.PrevCheckpointHash) },
	"closed_at":            func(s *wire.SegmentRow) { s.ClosedAt += "x" },
	"signature":            func(s *wire.SegmentRow) { s.Signature = flip(s.Signature) },
	"signature_removed":    func(s *wire.SegmentRow) { s.Signature = nil },
	"signer_identity": func(s *wire.SegmentRow) {
		v := "signer-" + keystore.Ed25519
		if s.Signer() == v {
			v = "signer-" + keystore.ECDSAP256
		}
		s.SignerIdentity = &v
	},
}

func auditAll(ctx context.Context, st store.Store, trust *checkpoint.Trust) error {
	for _, s := range streams {
		if _, err := audit.Stream(ctx, audit.StoreSource{Store: st, Window: 300}, s, audit.Options{Trust: trust}); err != nil {
			return fmt.Errorf("stream %s: %w", s, err)
		}
	}
	return nil
}

func TestAuditPassesOnEveryBackendShape(t *testing.T) {
	ctx := context.Background()
	for name, mk := range map[string]func() (store.Store, string){
		"memory": func() (store.Store, string) { return memory.New(), "m" },
		"pebble": func() (store.Store, string) { return pebblestore.New(), t.TempDir() + "/db" },
	} {
		t.Run(name, func(t *testing.T) {
			st, cfg := mk()
			defer st.Close()
			trust, _ := buildLog(t, st, cfg)
			if err := auditAll(ctx, st, trust); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestTamperEveryField changes one field of one stored row at a time and
// expects the audit to fail naming that seqno or segment.
func TestTamperEveryField(t *testing.T) {
	ctx := context.Background()
	st := memory.New()
	trust, _ := buildLog(t, st, "m")
	if err := auditAll(ctx, st, trust); err != nil {
		t.Fatal(err)
	}
	segByStream := map[string][]wire.SegmentRow{}
	for _, s := range streams {
		segByStream[s], _ = st.SegmentsList(ctx, s)
	}
	// Entries: a sample of every shape (first/last of segments, open tail, every 41st).
	targets := map[uint64]bool{1: true, 1000: true}
	for _, segs := range segByStream {
		for _, g := range segs {
			targets[g.SeqStart], targets[g.SeqEnd] = true, true
		}
	}
	for s := uint64(1); s <= 1000; s += 41 {
		targets[s] = true
	}
	for seqno := range targets {
		for field, mut := range entryMutations {
			ts := &tamperStore{Store: st,
				entry: func(r *wire.EntryRow) {
					if r.Seqno == seqno {
						mut(r)
					}
				},
				seg:  func(*wire.SegmentRow) {},
				seqs: func(_ uint64, s []uint64) []uint64 { return s }}
			err := auditAll(ctx, ts, trust)
			var f *audit.Failure
			if !errors.As(err, &f) {
				t.Fatalf("entry %d field %s: audit did not fail with a located failure: %v", seqno, field, err)
			}
			if f.Seqno != seqno && f.Seqno != seqno+1000000 {
				t.Errorf("entry %d field %s: failure names seqno %d / segment %d: %v", seqno, field, f.Seqno, f.SegmentID, err)
			}
		}
	}
	for _, segs := range segByStream {
		for _, g := range segs {
			for field, mut := range segmentMutations {
				id := g.SegmentID
				ts := &tamperStore{Store: st, entry: func(*wire.EntryRow) {},
					seg: func(s *wire.SegmentRow) {
						if s.SegmentID == id {
							mut(s)
						}
					},
					seqs: func(_ uint64, s []uint64) []uint64 { return s }}
				err := auditAll(ctx, ts, trust)
				var f *audit.Failure
				if !errors.As(err, &f) || (f.SegmentID != id && f.SegmentID != id+1000) {
					t.Errorf("segment %d field %s: want failure naming the segment, got %v", id, field, err)
				}
			}
			// Membership records: drop, reorder and substitute.
			for name, m := range map[string]func([]uint64) []uint64{
				"drop": func(s []uint64) []uint64 { return s[:len(s)-1] },
				"reorder": func(s []uint64) []uint64 {
					c := append([]uint64{}, s...)
					c[0], c[len(c)-1] = c[len(c)-1], c[0]
					return c
				},
				"replace": func(s []uint64) []uint64 { c := append([]uint64{}, s...); c[0] += 1; return c },
			} {
				id := g.SegmentID
				ts := &tamperStore{Store: st, entry: func(*wire.EntryRow) {}, seg: func(*wire.SegmentRow) {},
					seqs: func(sid uint64, s []uint64) []uint64 {
						if sid == id && len(s) > 1 {
							return m(s)
						}
						return s
					}}
				err := auditAll(ctx, ts, trust)
				var f *audit.Failure
				if !errors.As(err, &f) || f.SegmentID != id {
					t.Errorf("segment %d membership %s: want failure naming the segment, got %v", id, name, err)
				}
			}
		}
	}
}

func TestAuditHeadRecordAndTrust(t *testing.T) {
	ctx := context.Background()
	st := memory.New()
	trust, _ := buildLog(t, st, "m")
	if _, err := audit.Stream(ctx, audit.StoreSource{Store: st}, "auth", audit.Options{Trust: trust}); err != nil {
		t.Fatal(err)
	}
	if _, err := audit.Stream(ctx, audit.StoreSource{Store: st}, "auth", audit.Options{}); err == nil {
		t.Fatal("audit without trust must refuse")
	}
	other, _ := checkpoint.NewTrust()
	var f *audit.Failure
	if _, err := audit.Stream(ctx, audit.StoreSource{Store: st}, "auth", audit.Options{Trust: other}); !errors.As(err, &f) || f.SegmentID == 0 {
		t.Fatalf("unknown signers must fail naming a segment: %v", err)
	}
}
