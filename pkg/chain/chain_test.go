package chain_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/securelog/securelog/internal/vectors"
	"github.com/securelog/securelog/pkg/chain"
	"github.com/securelog/securelog/pkg/wire"
)

// chainRows returns the rows of the chain vector, all streams, ascending.
func chainRows(t *testing.T) []wire.EntryRow {
	t.Helper()
	v := vectors.Load(t)
	if len(v.Chain.Entries) != 5 {
		t.Fatalf("chain vector has %d entries, want 5", len(v.Chain.Entries))
	}
	var rows []wire.EntryRow
	for _, e := range v.Chain.Entries {
		rows = append(rows, e.Row(t))
	}
	return rows
}

func byStream(rows []wire.EntryRow, stream string) []wire.EntryRow {
	var out []wire.EntryRow
	for _, r := range rows {
		if r.StreamID == stream {
			out = append(out, r.Clone())
		}
	}
	return out
}

func TestEntryHashVectors(t *testing.T) {
	v := vectors.Load(t)
	all := append(append([]vectors.Entry{}, v.Entries...), v.Chain.Entries...)
	all = append(all, v.AEAD.EncryptedEntry)
	for _, e := range all {
		want := e.EntryHashHex
		if got := hex.EncodeToString(chain.EntryHash(e.Fields.Wire(t))); got != want {
			t.Errorf("%s: EntryHash %s, want %s", e.Name, got, want)
		}
		row := e.Row(t)
		row.EntryHash = nil // RowHash must not look at the stored hash
		if got := hex.EncodeToString(chain.RowHash(row)); got != want {
			t.Errorf("%s: RowHash %s, want %s", e.Name, got, want)
		}
	}
}

func TestEntryHashResultsAreIndependent(t *testing.T) {
	rows := chainRows(t)
	h1 := chain.RowHash(rows[0])
	keep := append([]byte(nil), h1...)
	for range 10 {
		_ = chain.RowHash(rows[2])
	}
	if !bytes.Equal(h1, keep) {
		t.Fatal("an earlier EntryHash result changed after later calls")
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			r := rows[i%len(rows)]
			for range 200 {
				if !bytes.Equal(chain.RowHash(r), r.EntryHash) {
					t.Errorf("concurrent RowHash of seqno %d wrong", r.Seqno)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestVerifyChainVector(t *testing.T) {
	rows := chainRows(t)
	def := byStream(rows, "default")
	audit := byStream(rows, "audit")
	if len(def) != 4 || len(audit) != 1 {
		t.Fatalf("streams: default %d rows, audit %d rows; want 4 and 1", len(def), len(audit))
	}
	if err := chain.VerifyRows(def, wire.ZeroHash); err != nil {
		t.Errorf("default stream: %v", err)
	}
	if err := chain.VerifyRows(audit, wire.ZeroHash); err != nil {
		t.Errorf("audit stream: %v", err)
	}
	// Entry 5 links to entry 3 of its own stream, not to entry 4 of audit.
	if !bytes.Equal(def[3].PrevEntryHash, def[2].EntryHash) {
		t.Error("vector: entry 5 does not link to entry 3")
	}
	// A sub-range verifies against its real predecessor only.
	if err := chain.VerifyRows(def[1:], def[0].EntryHash); err != nil {
		t.Errorf("default from seqno 2: %v", err)
	}
	assertBroken(t, chain.VerifyRows(def[1:], wire.ZeroHash), 2, "prev_entry_hash mismatch")
	// Interleaving both streams as one chain breaks at the audit row.
	assertBroken(t, chain.VerifyRows(rows, wire.ZeroHash), 4, "")

	v := chain.NewVerifier(wire.ZeroHash)
	if !bytes.Equal(v.Last(), wire.ZeroHash) {
		t.Errorf("Last before any row = %x, want zero hash", v.Last())
	}
	for _, r := range def {
		if err := v.Next(r); err != nil {
			t.Fatalf("Next(%d): %v", r.Seqno, err)
		}
	}
	if !bytes.Equal(v.Last(), def[3].EntryHash) {
		t.Errorf("Last = %x, want hash of seqno 5", v.Last())
	}
	if err := chain.VerifyRows(nil, wire.ZeroHash); err != nil {
		t.Errorf("empty rows: %v", err)
	}
}

func assertBroken(t *testing.T, err error, seqno uint64, reason string) {
	t.Helper()
	var cb *wire.ChainBrokenError
	if !errors.As(err, &cb) {
		t.Fatalf("error %v (%T), want *wire.ChainBrokenError at seqno %d", err, err, seqno)
	}
	if cb.Seqno != seqno {
		t.Errorf("chain broken at seqno %d, want %d (%v)", cb.Seqno, seqno, err)
	}
	if !strings.Contains(cb.Reason, reason) {
		t.Errorf("reason %q does not contain %q", cb.Reason, reason)
	}
}

func TestVerifyRowsDetectsTampering(t *testing.T) {
	flip := func(b []byte) []byte { c := append([]byte(nil), b...); c[len(c)-1] ^= 1; return c }
	tampers := []struct {
		field  string
		mutate func(*wire.EntryRow)
		reason string
	}{
		{"stream_id", func(r *wire.EntryRow) { r.StreamID += "x" }, ""},
		{"session_id", func(r *wire.EntryRow) { r.SessionID = "sess-evil" }, "content"},
		{"boot_id", func(r *wire.EntryRow) { r.BootID = "boot-evil" }, "content"},
		{"seqno", func(r *wire.EntryRow) { r.Seqno += 100 }, "content"},
		{"timestamp", func(r *wire.EntryRow) { r.Timestamp = "2030-01-01T00:00:00+00:00" }, "content"},
		{"event_type", func(r *wire.EntryRow) { r.EventType += "." }, "content"},
		{"severity", func(r *wire.EntryRow) { r.Severity = (r.Severity + 1) % 8 }, "content"},
		{"producer", func(r *wire.EntryRow) { r.Producer = "mallory" }, "content"},
		{"payload_encoding", func(r *wire.EntryRow) { r.PayloadEncoding = wire.AEADEncoding }, "content"},
		{"payload", func(r *wire.EntryRow) { r.Payload = flip(r.Payload) }, "content"},
		{"payload truncated", func(r *wire.EntryRow) { r.Payload = r.Payload[:len(r.Payload)-1] }, "content"},
		{"prev_entry_hash", func(r *wire.EntryRow) { r.PrevEntryHash = flip(r.PrevEntryHash) }, "prev_entry_hash mismatch"},
		{"entry_hash", func(r *wire.EntryRow) { r.EntryHash = flip(r.EntryHash) }, "content"},
	}
	rows := byStream(chainRows(t), "default")
	for _, tc := range tampers {
		for i := range rows {
			t.Run(tc.field, func(t *testing.T) {
				tampered := byStream(rows, "default")
				tc.mutate(&tampered[i])
				err := chain.VerifyRows(tampered, wire.ZeroHash)
				assertBroken(t, err, tampered[i].Seqno, tc.reason)
			})
		}
	}
}

func TestVerifyRowsStructuralAttacks(t *testing.T) {
	rows := byStream(chainRows(t), "default") // seqnos 1,2,3,5

	deleted := append(append([]wire.EntryRow{}, rows[:1]...), rows[2:]...)
	assertBroken(t, chain.VerifyRows(deleted, wire.ZeroHash), 3, "prev_entry_hash mismatch")

	swapped := []wire.EntryRow{rows[0], rows[2], rows[1], rows[3]}
	assertBroken(t, chain.VerifyRows(swapped, wire.ZeroHash), 3, "prev_entry_hash mismatch")

	dup := []wire.EntryRow{rows[0], rows[1], rows[1]}
	assertBroken(t, chain.VerifyRows(dup, wire.ZeroHash), 2, "strictly ascending")

	assertBroken(t, chain.VerifyRows(rows, rows[0].EntryHash), 1, "prev_entry_hash mismatch")
	assertBroken(t, chain.VerifyRows(rows, nil), 1, "prev_entry_hash mismatch")

	foreign := byStream(chainRows(t), "audit")[0]
	mixed := []wire.EntryRow{rows[0], rows[1], rows[2], foreign}
	assertBroken(t, chain.VerifyRows(mixed, wire.ZeroHash), 4, "stream")

	for _, tc := range []struct {
		name   string
		mutate func(*wire.EntryRow)
	}{
		{"short prev", func(r *wire.EntryRow) { r.PrevEntryHash = r.PrevEntryHash[:31] }},
		{"long entry hash", func(r *wire.EntryRow) { r.EntryHash = append(r.EntryHash, 0) }},
		{"nil entry hash", func(r *wire.EntryRow) { r.EntryHash = nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := byStream(rows, "default")
			tc.mutate(&bad[1])
			var inv *wire.InvalidError
			if err := chain.VerifyRows(bad, wire.ZeroHash); !errors.As(err, &inv) {
				t.Fatalf("got %v (%T), want *wire.InvalidError", err, err)
			}
		})
	}

	// Errors are sticky on a Verifier.
	v := chain.NewVerifier(wire.ZeroHash)
	first := v.Next(rows[1])
	if first == nil {
		t.Fatal("row 2 accepted at genesis")
	}
	if err := v.Next(rows[0]); err != first {
		t.Errorf("after an error Next returned %v, want the first error", err)
	}
}

func BenchmarkEntryHash(b *testing.B) {
	f := wire.EntryFields{Version: 1, StreamID: "default", SessionID: "0b6e1f7a-2f44-4c51-9d2e-6a1f3c9b8e70",
		BootID: "5f0c2a9e-8d1b-4c3e-a7f6-1e2d3c4b5a69", Seqno: 123456789,
		Timestamp: "2026-08-04T10:11:12.123456789+00:00", EventType: "user.login", Severity: wire.Info,
		Producer: "authd", PayloadEncoding: "cbor", Payload: bytes.Repeat([]byte{7}, 200),
		PrevEntryHash: wire.ZeroHash}
	b.ReportAllocs()
	b.SetBytes(int64(wire.EntrySize(f)))
	for b.Loop() {
		_ = chain.EntryHash(f)
	}
}

// BenchmarkSHA256Floor is the floor of verify-chain's CPU per entry on the
// machine it runs on: SHA-256 alone (crypto/sha256, SHA-NI where the CPU
// has it) over the canonical encoding of bench/pipeline's entries (300-byte
// payload, 36-character session and boot ids), and of the generated
// bundles' (24-byte payload).
func BenchmarkSHA256Floor(b *testing.B) {
	pipeline := wire.EntryFields{Version: 1, StreamID: "default", SessionID: "0b6e1f7a-2f44-4c51-9d2e-6a1f3c9b8e70",
		BootID: "5f0c2a9e-8d1b-4c3e-a7f6-1e2d3c4b5a69", Seqno: 123456, Timestamp: "2026-11-30T05:00:00.123456Z",
		EventType: "bench", Severity: wire.Info, Producer: "bench", PayloadEncoding: "cbor",
		Payload: bytes.Repeat([]byte{'a'}, 300), PrevEntryHash: wire.ZeroHash}
	generated := wire.EntryFields{Version: 1, StreamID: "big", SessionID: "sess", BootID: "boot", Seqno: 123456,
		Timestamp: "2026-04-10T00:00:00.000000Z", EventType: "ev", Severity: wire.Info, Producer: "gen",
		PayloadEncoding: "cbor", Payload: make([]byte, 24), PrevEntryHash: wire.ZeroHash}
	for _, c := range []struct {
		name string
		f    wire.EntryFields
	}{{"pipeline", pipeline}, {"bundle", generated}} {
		enc := wire.EncodeEntry(c.f)
		b.Run(fmt.Sprintf("%s/%dB", c.name, len(enc)), func(b *testing.B) {
			b.SetBytes(int64(len(enc)))
			c0 := cpuTime()
			for b.Loop() {
				_ = sha256.Sum256(enc)
			}
			b.ReportMetric(float64(cpuTime()-c0)/float64(b.N), "CPU-ns/entry")
		})
	}
}

// cpuTime is the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
