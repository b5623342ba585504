package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/wire"
)

func openStore(t testing.TB, config string) *Store {
	t.Helper()
	s := New()
	if err := s.Init(context.Background(), config); err != nil {
		t.Fatalf("Init(%q): %v", config, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func testEntry(seqno uint64, stream string) wire.EntryRow {
	return wire.EntryRow{
		Seqno: seqno, StreamID: stream, SessionID: "sess", BootID: "boot",
		Timestamp: "2026-01-01T00:00:00+00:00", EventType: "ev", Severity: wire.Info, Producer: "p",
		PayloadEncoding: "cbor", Payload: []byte(fmt.Sprintf("payload %d", seqno)),
		PrevEntryHash: make([]byte, 32), EntryHash: []byte{byte(seqno), 1, 2, 3},
	}
}

func TestInitConfig(t *testing.T) {
	s := New()
	err := s.Init(context.Background(), "")
	want := `sqlite store: init config is empty; pass a database path or ":memory:"`
	if err == nil || err.Error() != want {
		t.Fatalf("Init(\"\") = %v, want %q", err, want)
	}
	if _, _, err := s.GlobalHead(context.Background()); !errors.Is(err, store.ErrNotInitialized) {
		t.Fatalf("GlobalHead before Init = %v, want ErrNotInitialized", err)
	}
	bad := filepath.Join(t.TempDir(), "no", "such", "dir", "x.db")
	if err := New().Init(context.Background(), bad); err == nil || !strings.Contains(err.Error(), bad) {
		t.Fatalf("Init(%q) = %v, want an error naming the path", bad, err)
	}
	s = openStore(t, MemoryConfig)
	if err := s.Init(context.Background(), MemoryConfig); err == nil {
		t.Fatal("second Init succeeded, want an error")
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := s.Insert(context.Background(), testEntry(1, "a")); !errors.Is(err, store.ErrNotInitialized) {
		t.Fatalf("Insert after Close = %v, want ErrNotInitialized", err)
	}
}

// TestSchema checks the SPEC §18 names, the recorded migrations, the pragmas
// of a file database and the RFC 3339 created_at of the seeded stream.
func TestSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "odd?name#1%.db")
	before := time.Now().UTC().Add(-time.Second)
	s := openStore(t, path)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database file not at the configured path: %v", err)
	}
	db := s.db
	names := func(query string) []string {
		t.Helper()
		rows, err := db.Query(query)
		if err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var v string
			if err := rows.Scan(&v); err != nil {
				t.Fatal(err)
			}
			out = append(out, v)
		}
		return out
	}
	tables := names(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`)
	wantTables := []string{"_secure_log_meta", "_secure_log_migrations", "_secure_log_segment_reservations", "_secure_log_segment_tree", "secure_log", "secure_log_segment_entries",
		"secure_log_segments", "secure_log_streams", "witness_log"}
	if !slices.Equal(tables, wantTables) {
		t.Fatalf("tables = %v, want %v", tables, wantTables)
	}
	indexes := names(`SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE 'idx_%' ORDER BY name`)
	wantIndexes := []string{"idx_secure_log_segment_entries_seqno", "idx_secure_log_segments_stream",
		"idx_secure_log_stream", "idx_secure_log_stream_producer_time", "idx_secure_log_stream_time",
		"idx_secure_log_stream_type_time", "idx_secure_log_stream_urgent_time_severity", "idx_secure_log_type", "idx_witness_log_stream"}
	if !slices.Equal(indexes, wantIndexes) {
		t.Fatalf("indexes = %v, want %v", indexes, wantIndexes)
	}
	cols := names(`SELECT name FROM pragma_table_info('secure_log') ORDER BY cid`)
	if want := "seqno stream_id session_id boot_id timestamp event_type severity producer payload_encoding payload prev_entry_hash entry_hash"; strings.Join(cols, " ") != want {
		t.Fatalf("secure_log columns = %v", cols)
	}
	if v := names(`SELECT version FROM _secure_log_migrations ORDER BY version`); strings.Join(v, ",") != "1,2,3,4,5,6,7,8,9,10" {
		t.Fatalf("migrations = %v", v)
	}
	for pragma, want := range map[string]string{"journal_mode": "wal", "foreign_keys": "1", "synchronous": "2"} {
		if got := names("PRAGMA " + pragma); len(got) != 1 || got[0] != want {
			t.Fatalf("PRAGMA %s = %v, want %s", pragma, got, want)
		}
	}
	def, ok, err := s.StreamGet(context.Background(), "default")
	if err != nil || !ok {
		t.Fatalf("StreamGet(default) = %v, %v", ok, err)
	}
	created, err := wire.ParseTime(def.CreatedAt)
	if err != nil || !strings.HasSuffix(def.CreatedAt, "+00:00") || created.Before(before) || created.After(time.Now().Add(time.Second)) {
		t.Fatalf("default created_at = %q (%v), want a current §5.4 timestamp", def.CreatedAt, err)
	}
	if def.Tier != "public" || def.Description == nil || *def.Description != defaultStreamDescription || def.DeprecatedAt != nil {
		t.Fatalf("default stream = %+v", def)
	}
	// Reopening applies nothing twice and keeps the seed.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openStore(t, path)
	def2, _, err := s2.StreamGet(context.Background(), "default")
	if err != nil || def2.CreatedAt != def.CreatedAt {
		t.Fatalf("default after reopen = %+v, %v; want created_at %q", def2, err, def.CreatedAt)
	}
}

// TestReferenceDatabase opens a database laid out by the reference schema
// (migrations 1–4 recorded, SQL-default created_at) and upgrades it.
func TestReferenceDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ref.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE _secure_log_migrations (version INTEGER PRIMARY KEY, applied TEXT NOT NULL DEFAULT (datetime('now')))`); err != nil {
		t.Fatal(err)
	}
	for _, m := range migrations[:4] {
		for _, stmt := range m.stmts {
			if _, err := db.Exec(stmt); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := db.Exec(`INSERT INTO _secure_log_migrations (version) VALUES (?)`, m.version); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec(`INSERT INTO secure_log_streams (name, tier, description) VALUES ('default', 'public', ?)`, defaultStreamDescription); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO secure_log VALUES (7, 'a', 's', 'b', 't', 'e', 'warning', 'p', 'cbor', x'', x'00', x'01')`); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	s := openStore(t, path)
	row, ok, err := s.Get(context.Background(), 7)
	if err != nil || !ok || row.Severity != wire.Warning || row.Payload == nil || len(row.Payload) != 0 {
		t.Fatalf("Get(7) = %+v, %v, %v", row, ok, err)
	}
	def, _, err := s.StreamGet(context.Background(), "default")
	if err != nil || len(def.CreatedAt) != len("2006-01-02 15:04:05") {
		t.Fatalf("reference default stream = %+v, %v; want its SQL-default created_at kept", def, err)
	}
	// Migration 5 was applied on top: batch meta records work.
	if err := s.CommitBatch(context.Background(), store.Batch{Meta: map[string][]byte{"k": {1}}}); err != nil {
		t.Fatalf("CommitBatch on an upgraded reference database: %v", err)
	}
	if v, ok, err := s.GetMeta(context.Background(), "k"); err != nil || !ok || string(v) != "\x01" {
		t.Fatalf("GetMeta(k) = %v, %v, %v", v, ok, err)
	}
}

// TestMigrationIsAtomic runs a migration whose second statement fails:
// neither its first statement nor its record may remain.
func TestMigrationIsAtomic(t *testing.T) {
	s := openStore(t, MemoryConfig)
	bad := migration{version: 99, stmts: []string{`CREATE TABLE half (x)`, `CREATE TABLE broken (`}}
	if err := applyMigration(context.Background(), s.db, bad); err == nil {
		t.Fatal("broken migration applied")
	}
	var n int
	err := s.db.QueryRow(`SELECT (SELECT COUNT(*) FROM sqlite_master WHERE name = 'half') +
		(SELECT COUNT(*) FROM _secure_log_migrations WHERE version = 99)`).Scan(&n)
	if err != nil || n != 0 {
		t.Fatalf("partial migration left behind: count %d, %v", n, err)
	}
}

func TestU64Range(t *testing.T) {
	s := openStore(t, MemoryConfig)
	ctx := context.Background()
	big := uint64(math.MaxInt64) + 1
	_, err := s.Insert(ctx, testEntry(big, "a"))
	if err == nil || !strings.Contains(err.Error(), fmt.Sprint(big)) {
		t.Fatalf("Insert(seqno 2^63) = %v, want an error naming the value", err)
	}
	seg := wire.SegmentRow{StreamID: "a", SeqStart: 1, SeqEnd: big}
	if _, err := s.SegmentInsert(ctx, seg, nil); err == nil || !strings.Contains(err.Error(), "seq_end") {
		t.Fatalf("SegmentInsert(seq_end 2^63) = %v, want an error", err)
	}
	seg.SeqEnd = 1
	if _, err := s.SegmentInsert(ctx, seg, []wire.SegmentEntry{{Seqno: 1}, {Seqno: big, LeafIndex: 1}}); err == nil {
		t.Fatal("SegmentInsert with member seqno 2^63 succeeded")
	}
	if list, err := s.SegmentsList(ctx, "a"); err != nil || len(list) != 0 {
		t.Fatalf("SegmentsList after failed insert = %v, %v; want nothing (atomic)", list, err)
	}
	if _, err := s.WitnessInsert(ctx, wire.WitnessRow{StreamID: "a", SegmentID: big}); err == nil {
		t.Fatal("WitnessInsert(segment_id 2^63) succeeded")
	}
	if _, err := s.Insert(ctx, testEntry(math.MaxInt64, "a")); err != nil {
		t.Fatalf("Insert(seqno 2^63-1): %v", err)
	}
	if _, ok, err := s.Get(ctx, big); err != nil || ok {
		t.Fatalf("Get(2^63) = %v, %v; want absent", ok, err)
	}
	rows, err := s.Range(ctx, "a", 1, math.MaxUint64)
	if err != nil || len(rows) != 1 || rows[0].Seqno != math.MaxInt64 {
		t.Fatalf("Range(a, 1, max) = %v, %v", rows, err)
	}
}

func TestSignatureNullVersusEmpty(t *testing.T) {
	s := openStore(t, MemoryConfig)
	ctx := context.Background()
	signer := "k"
	for i, sig := range [][]byte{nil, {}, {1, 2}} {
		row := wire.SegmentRow{StreamID: "a", SeqStart: uint64(i + 1), SeqEnd: uint64(i + 1), MerkleRoot: []byte{}, Signature: sig}
		if sig != nil {
			row.SignerIdentity = &signer
		}
		id, err := s.SegmentInsert(ctx, row, nil)
		if err != nil || id != uint64(i+1) {
			t.Fatalf("SegmentInsert #%d = %d, %v", i, id, err)
		}
		got, _, err := s.SegmentGet(ctx, id)
		if err != nil || (got.Signature == nil) != (sig == nil) || string(got.Signature) != string(sig) ||
			(got.SignerIdentity == nil) != (sig == nil) || got.MerkleRoot == nil {
			t.Fatalf("segment %d = %+v, %v; want signature %v", id, got, err, sig)
		}
	}
	if err := s.SegmentSetSignature(ctx, 99, []byte{1}, "k"); err == nil || err.Error() != "segment not found: 99" {
		t.Fatalf("SegmentSetSignature(99) = %v", err)
	}
}

// TestTwoHandlesOneFile writes from two Stores on one database file at once,
// as two processes would; the busy timeout and WAL make both succeed.
func TestTwoHandlesOneFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shared.db")
	a, b := openStore(t, path), openStore(t, path)
	const perWriter = 40
	var wg sync.WaitGroup
	errs := make(chan error, 2*perWriter)
	for w, s := range []*Store{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				if _, err := s.Insert(context.Background(), testEntry(uint64(w*perWriter+i+1), "s")); err != nil {
					errs <- err
				}
				if _, err := s.WitnessInsert(context.Background(), wire.WitnessRow{StreamID: "s", ReceivedAt: "x"}); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	rows, err := a.Range(context.Background(), "s", 0, math.MaxUint64)
	if err != nil || len(rows) != 2*perWriter {
		t.Fatalf("rows = %d, %v; want %d", len(rows), err, 2*perWriter)
	}
	ws, err := b.WitnessList(context.Background(), "s")
	if err != nil || len(ws) != 2*perWriter || ws[len(ws)-1].ID != 2*perWriter {
		t.Fatalf("witness rows = %d, %v", len(ws), err)
	}
}

func BenchmarkInsert(b *testing.B) {
	for _, mode := range []string{"memory", "file"} {
		b.Run(mode, func(b *testing.B) {
			config := MemoryConfig
			if mode == "file" {
				config = filepath.Join(b.TempDir(), "bench.db")
			}
			s := openStore(b, config)
			ctx := context.Background()
			row := testEntry(1, "bench")
			row.Payload = make([]byte, 256)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				row.Seqno = uint64(i + 1)
				if _, err := s.Insert(ctx, row); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkCommitBatch(b *testing.B) {
	s := openStore(b, filepath.Join(b.TempDir(), "bench.db"))
	ctx := context.Background()
	const size = 100
	batch := store.Batch{Entries: make([]wire.EntryRow, size), Meta: map[string][]byte{"pos": nil}}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		for j := range batch.Entries {
			batch.Entries[j] = testEntry(uint64(i*size+j+1), "bench")
		}
		batch.Meta["pos"] = []byte(fmt.Sprint(i))
		if err := s.CommitBatch(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "entries/s")
}

// TestDatabaseFileMode (issue 9 item 7): a database file Init creates, and
// the WAL files beside it, are readable by the owner only.
func TestDatabaseFileMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new.db")
	s := openStore(t, path)
	if _, err := s.Insert(context.Background(), testEntry(1, "a")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if m := fi.Mode().Perm(); m != 0o600 {
			t.Errorf("%s has mode %v, want -rw-------", filepath.Base(p), m)
		}
	}
}
