package storetest

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/wire"
)

// hash32 returns a deterministic 32-byte value for a label and number.
func hash32(label string, n uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], n)
	h := sha256.Sum256(append([]byte(label), b[:]...))
	return h[:]
}

// entry returns a fully populated entry row with the seqno and stream.
func entry(seqno uint64, stream string) wire.EntryRow {
	return wire.EntryRow{
		Seqno:           seqno,
		StreamID:        stream,
		SessionID:       "session-" + stream,
		BootID:          "boot-0001",
		Timestamp:       fmt.Sprintf("2026-08-04T10:11:%02d.123456789+00:00", seqno%60),
		EventType:       fmt.Sprintf("event.%d", seqno%7),
		Severity:        wire.Severity(seqno % 8),
		Producer:        "producer/" + stream,
		PayloadEncoding: "json",
		Payload:         []byte(fmt.Sprintf(`{"n":%d,"s":%q}`, seqno, stream)),
		PrevEntryHash:   hash32("prev", seqno),
		EntryHash:       hash32("entry", seqno),
	}
}

// segment returns a segment row of the stream covering [start, end].
func segment(stream string, start, end uint64) wire.SegmentRow {
	return wire.SegmentRow{
		SegmentID:          999, // must be ignored by the store
		StreamID:           stream,
		SeqStart:           start,
		SeqEnd:             end,
		MerkleRoot:         hash32("root", start),
		LastEntryHash:      hash32("entry", end),
		PrevCheckpointHash: hash32("cp", start),
		ClosedAt:           "2026-08-04T10:11:12.500+00:00",
	}
}

// members returns membership records for seqnos, leaf index in slice order.
func members(seqnos ...uint64) []wire.SegmentEntry {
	out := make([]wire.SegmentEntry, len(seqnos))
	for i, s := range seqnos {
		out[i] = wire.SegmentEntry{Seqno: s, LeafIndex: uint64(i)}
	}
	return out
}

// witness returns a witness row of the stream received at the time.
func witness(stream string, seg uint64, receivedAt string) wire.WitnessRow {
	return wire.WitnessRow{
		ID:                77, // must be ignored by the store
		StreamID:          stream,
		SegmentID:         seg,
		SeqStart:          seg*10 + 1,
		SeqEnd:            seg*10 + 10,
		CheckpointHashHex: fmt.Sprintf("%x", hash32("cp", seg)),
		SignatureHex:      fmt.Sprintf("%x", hash32("sig", seg)),
		SignerIdentity:    "signer-" + stream,
		ReceivedAt:        receivedAt,
	}
}

func strp(s string) *string { return &s }

// diffEntry describes how got differs from want ("" if equal). Non-optional
// byte fields compare by content (nil equals empty).
func diffEntry(want, got wire.EntryRow) string {
	var d []string
	add := func(field string, w, g any) { d = append(d, fmt.Sprintf("%s: want %v, got %v", field, w, g)) }
	if want.Seqno != got.Seqno {
		add("seqno", want.Seqno, got.Seqno)
	}
	for _, f := range [][3]string{
		{"stream_id", want.StreamID, got.StreamID}, {"session_id", want.SessionID, got.SessionID},
		{"boot_id", want.BootID, got.BootID}, {"timestamp", want.Timestamp, got.Timestamp},
		{"event_type", want.EventType, got.EventType}, {"producer", want.Producer, got.Producer},
		{"payload_encoding", want.PayloadEncoding, got.PayloadEncoding},
	} {
		if f[1] != f[2] {
			add(f[0], fmt.Sprintf("%q", f[1]), fmt.Sprintf("%q", f[2]))
		}
	}
	if want.Severity != got.Severity {
		add("severity", want.Severity, got.Severity)
	}
	for _, f := range []struct {
		name string
		w, g []byte
	}{{"payload", want.Payload, got.Payload}, {"prev_entry_hash", want.PrevEntryHash, got.PrevEntryHash},
		{"entry_hash", want.EntryHash, got.EntryHash}} {
		if !bytes.Equal(f.w, f.g) {
			add(f.name, f.w, f.g)
		}
	}
	return strings.Join(d, "; ")
}

// diffSegment describes how got differs from want ("" if equal). A nil
// signature must stay nil; signer identities compare by presence and value.
func diffSegment(want, got wire.SegmentRow) string {
	var d []string
	add := func(field string, w, g any) { d = append(d, fmt.Sprintf("%s: want %v, got %v", field, w, g)) }
	if want.SegmentID != got.SegmentID {
		add("segment_id", want.SegmentID, got.SegmentID)
	}
	if want.StreamID != got.StreamID {
		add("stream_id", want.StreamID, got.StreamID)
	}
	if want.SeqStart != got.SeqStart || want.SeqEnd != got.SeqEnd {
		add("seq range", [2]uint64{want.SeqStart, want.SeqEnd}, [2]uint64{got.SeqStart, got.SeqEnd})
	}
	if !bytes.Equal(want.MerkleRoot, got.MerkleRoot) {
		add("merkle_root", want.MerkleRoot, got.MerkleRoot)
	}
	if !bytes.Equal(want.LastEntryHash, got.LastEntryHash) {
		add("last_entry_hash", want.LastEntryHash, got.LastEntryHash)
	}
	if !bytes.Equal(want.PrevCheckpointHash, got.PrevCheckpointHash) {
		add("prev_checkpoint_hash", want.PrevCheckpointHash, got.PrevCheckpointHash)
	}
	if want.ClosedAt != got.ClosedAt {
		add("closed_at", want.ClosedAt, got.ClosedAt)
	}
	if (want.Signature == nil) != (got.Signature == nil) || !bytes.Equal(want.Signature, got.Signature) {
		add("signature", fmtOptBytes(want.Signature), fmtOptBytes(got.Signature))
	}
	if (want.SignerIdentity == nil) != (got.SignerIdentity == nil) || want.Signer() != got.Signer() {
		add("signer_identity", fmtOptString(want.SignerIdentity), fmtOptString(got.SignerIdentity))
	}
	return strings.Join(d, "; ")
}

// diffStream describes how got differs from want ("" if equal).
func diffStream(want, got wire.StreamRow) string {
	var d []string
	if want.Name != got.Name || want.Tier != got.Tier || want.CreatedAt != got.CreatedAt {
		d = append(d, fmt.Sprintf("name/tier/created_at: want %q/%q/%q, got %q/%q/%q",
			want.Name, want.Tier, want.CreatedAt, got.Name, got.Tier, got.CreatedAt))
	}
	if (want.Description == nil) != (got.Description == nil) ||
		(want.Description != nil && *want.Description != *got.Description) {
		d = append(d, fmt.Sprintf("description: want %s, got %s", fmtOptString(want.Description), fmtOptString(got.Description)))
	}
	if (want.DeprecatedAt == nil) != (got.DeprecatedAt == nil) ||
		(want.DeprecatedAt != nil && *want.DeprecatedAt != *got.DeprecatedAt) {
		d = append(d, fmt.Sprintf("deprecated_at: want %s, got %s", fmtOptString(want.DeprecatedAt), fmtOptString(got.DeprecatedAt)))
	}
	return strings.Join(d, "; ")
}

func fmtOptBytes(b []byte) string {
	if b == nil {
		return "absent"
	}
	return fmt.Sprintf("%v", b)
}

func fmtOptString(s *string) string {
	if s == nil {
		return "absent"
	}
	return fmt.Sprintf("%q", *s)
}

// mustInsert inserts rows and fails the test on any error or wrong result.
func mustInsert(t *testing.T, s store.Store, rows ...wire.EntryRow) {
	t.Helper()
	for _, r := range rows {
		got, err := s.Insert(ctx(t), r)
		if err != nil {
			t.Fatalf("Insert(seqno %d): %v", r.Seqno, err)
		}
		if got != r.Seqno {
			t.Fatalf("Insert(seqno %d) returned %d", r.Seqno, got)
		}
	}
}

// mustSegment inserts a segment and checks the assigned id.
func mustSegment(t *testing.T, s store.Store, row wire.SegmentRow, entries []wire.SegmentEntry, wantID uint64) {
	t.Helper()
	id, err := s.SegmentInsert(ctx(t), row, entries)
	if err != nil {
		t.Fatalf("SegmentInsert(%s %d..%d): %v", row.StreamID, row.SeqStart, row.SeqEnd, err)
	}
	if id != wantID {
		t.Fatalf("SegmentInsert(%s %d..%d) id = %d, want %d", row.StreamID, row.SeqStart, row.SeqEnd, id, wantID)
	}
}

// mustWitness inserts a witness row and checks the assigned id.
func mustWitness(t *testing.T, s store.Store, row wire.WitnessRow, wantID int64) {
	t.Helper()
	id, err := s.WitnessInsert(ctx(t), row)
	if err != nil {
		t.Fatalf("WitnessInsert(%s): %v", row.StreamID, err)
	}
	if id != wantID {
		t.Fatalf("WitnessInsert(%s) id = %d, want %d", row.StreamID, id, wantID)
	}
}

// checkRange compares Range(stream, from, to) with the wanted rows.
func checkRange(t *testing.T, s store.Store, stream string, from, to uint64, want []wire.EntryRow) {
	t.Helper()
	got, err := s.Range(ctx(t), stream, from, to)
	if err != nil {
		t.Fatalf("Range(%q, %d, %d): %v", stream, from, to, err)
	}
	if len(got) != len(want) {
		t.Fatalf("Range(%q, %d, %d) returned %d rows %v, want %d %v", stream, from, to, len(got), seqnos(got), len(want), seqnos(want))
	}
	for i := range want {
		if d := diffEntry(want[i], got[i]); d != "" {
			t.Fatalf("Range(%q, %d, %d)[%d]: %s", stream, from, to, i, d)
		}
	}
}

func seqnos(rows []wire.EntryRow) []uint64 {
	out := make([]uint64, len(rows))
	for i, r := range rows {
		out[i] = r.Seqno
	}
	return out
}

// checkGet compares Get(seqno) with want (nil: must be absent).
func checkGet(t *testing.T, s store.Store, seqno uint64, want *wire.EntryRow) {
	t.Helper()
	got, ok, err := s.Get(ctx(t), seqno)
	if err != nil {
		t.Fatalf("Get(%d): %v", seqno, err)
	}
	if want == nil {
		if ok {
			t.Fatalf("Get(%d) = %+v, want absent", seqno, got)
		}
		return
	}
	if !ok {
		t.Fatalf("Get(%d) absent, want a row", seqno)
	}
	if d := diffEntry(*want, got); d != "" {
		t.Fatalf("Get(%d): %s", seqno, d)
	}
}

// checkOptU64 checks an (value, present, error) result.
func checkOptU64(t *testing.T, what string, got uint64, ok bool, err error, want uint64, wantOK bool) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if ok != wantOK || (ok && got != want) {
		t.Fatalf("%s = (%d, %v), want (%d, %v)", what, got, ok, want, wantOK)
	}
}

// wantErr fails unless errors.As finds an error of type E in err, and
// returns it.
func wantErr[E error](t *testing.T, what string, err error) E {
	t.Helper()
	var e E
	if !errors.As(err, &e) {
		t.Fatalf("%s: error %v (%T), want a %T", what, err, err, e)
	}
	return e
}

// checkDuplicate fails unless err is a *store.DuplicateSeqnoError for seqno.
func checkDuplicate(t *testing.T, what string, err error, seqno uint64) {
	t.Helper()
	if e := wantErr[*store.DuplicateSeqnoError](t, what, err); e.Seqno != seqno {
		t.Fatalf("%s: duplicate seqno %d reported, want %d", what, e.Seqno, seqno)
	}
}

// witnessIDs lists the ids of the stream's witness rows.
func witnessIDs(t *testing.T, s store.Store, stream string) []int64 {
	t.Helper()
	rows, err := s.WitnessList(ctx(t), stream)
	if err != nil {
		t.Fatalf("WitnessList(%q): %v", stream, err)
	}
	ids := make([]int64, len(rows))
	for i, r := range rows {
		ids[i] = r.ID
	}
	if !slices.IsSorted(ids) {
		t.Fatalf("WitnessList(%q) ids %v not ascending", stream, ids)
	}
	return ids
}
