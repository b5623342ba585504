package filestore

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/wire"
)

// writeThree writes a file whose last line is InsertEntry seqno 3 and
// returns its bytes and the offset where that line starts.
func writeThree(t *testing.T, path string) ([]byte, int) {
	t.Helper()
	s := openAt(t, path, fixedClock)
	for i := uint64(1); i <= 3; i++ {
		_, err := s.Insert(context.Background(), goldenEntry(i, "default", "ev"))
		must(t, err)
	}
	must(t, s.Close())
	data, err := os.ReadFile(path)
	must(t, err)
	last := bytes.LastIndexByte(data[:len(data)-1], '\n') + 1
	if !bytes.HasPrefix(data[last:], []byte(`{"InsertEntry":{"seqno":3,`)) {
		t.Fatalf("unexpected last line %s", data[last:])
	}
	return data, last
}

// TestTornTail cuts the last line at every byte offset: the op is dropped
// (and the file cut back to the previous line) unless the cut only removed
// the newline, in which case the op is kept and the newline restored.
func TestTornTail(t *testing.T) {
	dir := t.TempDir()
	full, last := writeThree(t, filepath.Join(dir, "full.jsonl"))
	ctx := context.Background()
	for cut := last; cut < len(full); cut++ {
		path := filepath.Join(dir, "torn.jsonl")
		must(t, os.WriteFile(path, full[:cut], 0o600))
		s := New()
		if err := s.Init(ctx, path); err != nil {
			t.Fatalf("cut at %d: Init: %v", cut, err)
		}
		kept := cut == len(full)-1
		if _, ok, err := s.Get(ctx, 3); err != nil || ok != kept {
			t.Fatalf("cut at %d: Get(3) present = %v (%v), want %v", cut, ok, err, kept)
		}
		data, err := os.ReadFile(path)
		must(t, err)
		want := full[:last]
		if kept {
			want = full
		}
		if !bytes.Equal(data, want) {
			t.Fatalf("cut at %d: file after Init has %d bytes, want %d", cut, len(data), len(want))
		}
		// The store keeps working and the next line lands on its own line.
		if !kept {
			_, err = s.Insert(ctx, goldenEntry(3, "default", "ev"))
			must(t, err)
		}
		_, err = s.Insert(ctx, goldenEntry(4, "default", "ev"))
		must(t, err)
		must(t, s.Close())
		s = openAt(t, path, fixedClock)
		if h, ok, err := s.Head(ctx, "default"); err != nil || !ok || h != 4 {
			t.Fatalf("cut at %d: head after reopen = %d, %v, %v", cut, h, ok, err)
		}
		must(t, s.Close())
		must(t, os.Remove(path))
	}
}

func TestCorruptLines(t *testing.T) {
	full, _ := writeThree(t, filepath.Join(t.TempDir(), "full.jsonl"))
	lines := strings.SplitAfter(string(full), "\n")
	cases := []struct {
		name, content, want string
	}{
		{"garbage in the middle", lines[0] + lines[1] + "garbage\n" + lines[3], "corrupt log at line 3: "},
		{"torn line in the middle", lines[0] + lines[1][:40] + "\n" + lines[2] + lines[3], "corrupt log at line 2: "},
		{"complete bad last line", string(full) + "{\"Nope\":1}\n", "corrupt log at line 5: unknown operation kind \"Nope\""},
		{"missing seqno", lines[0] + `{"InsertEntry":{"stream_id":"x"}}` + "\n", "corrupt log at line 2: InsertEntry: missing required field \"seqno\""},
		{"null segment id", `{"InsertSegment":{"segment":{"segment_id":null},"entries":[]}}` + "\n", "corrupt log at line 1: InsertSegment: segment: field \"segment_id\" is null"},
		{"two kinds", `{"DeleteWitness":1,"StreamSetTier":{}}` + "\n", "corrupt log at line 1: want one"},
		{"duplicate seqno", string(full) + lines[2], "corrupt log at line 5: duplicate seqno 2"},
		{"bad severity", strings.Replace(string(full), `"severity":"alert"`, `"severity":"ALERT"`, 1), "corrupt log at line 2: InsertEntry: "},
		{"blank lines counted", lines[0] + "\n  \n" + "x\n", "corrupt log at line 4: "},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bad.jsonl")
			must(t, os.WriteFile(path, []byte(c.content), 0o600))
			err := New().Init(context.Background(), path)
			if err == nil || !strings.HasPrefix(err.Error(), c.want) {
				t.Fatalf("Init = %v, want an error starting %q", err, c.want)
			}
			after, rerr := os.ReadFile(path)
			must(t, rerr)
			if string(after) != c.content {
				t.Fatal("a failed Init modified the file")
			}
		})
	}
}

func TestInitErrors(t *testing.T) {
	ctx := context.Background()
	err := New().Init(ctx, "")
	if err == nil || err.Error() != "file store: init config is empty; pass a log file path" {
		t.Fatalf("Init(\"\") = %v", err)
	}
	dir := t.TempDir()
	if err := New().Init(ctx, dir); err == nil || !strings.Contains(err.Error(), dir) {
		t.Fatalf("Init(directory) = %v, want an error naming it", err)
	}
	if err := New().Init(ctx, filepath.Join(dir, "missing", "x.jsonl")); err == nil {
		t.Fatal("Init in a missing directory succeeded")
	}
	var s Store
	s.now = time.Now
	if _, _, err := s.GlobalHead(ctx); !errors.Is(err, store.ErrNotInitialized) {
		t.Fatalf("GlobalHead before Init = %v", err)
	}
	path := filepath.Join(dir, "log.jsonl")
	first := openAt(t, path, fixedClock)
	if err := first.Init(ctx, path); err == nil {
		t.Fatal("second Init on one Store succeeded")
	}
	if err := New().Init(ctx, path); err == nil || !strings.Contains(err.Error(), "lock") {
		t.Fatalf("Init of a file another Store holds = %v, want a lock error", err)
	}
	must(t, first.Close())
	if _, err := first.Insert(ctx, goldenEntry(1, "a", "e")); !errors.Is(err, store.ErrNotInitialized) {
		t.Fatalf("Insert after Close = %v", err)
	}
	openAt(t, path, fixedClock) // the lock was released
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != FileMode {
		t.Fatalf("file mode = %v, %v; want %v", fi.Mode(), err, FileMode)
	}
}

// faultyFile wraps the log file and fails the next write or sync.
type faultyFile struct {
	*os.File
	failWrite, failSync, failTruncate bool
	partial                           int // bytes written before a failing write
}

func (f *faultyFile) Write(p []byte) (int, error) {
	if f.failWrite {
		f.failWrite = false
		n, _ := f.File.Write(p[:min(f.partial, len(p))])
		return n, errors.New("injected write failure")
	}
	return f.File.Write(p)
}

func (f *faultyFile) Sync() error {
	if f.failSync {
		f.failSync = false
		return errors.New("injected sync failure")
	}
	return f.File.Sync()
}

func (f *faultyFile) Truncate(size int64) error {
	if f.failTruncate {
		return errors.New("injected truncate failure")
	}
	return f.File.Truncate(size)
}

// TestFailedWriteLeavesNoTrace injects write and sync failures: the op is
// not applied in memory and its bytes are cut from the file.
func TestFailedWriteLeavesNoTrace(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "log.jsonl")
	s := openAt(t, path, fixedClock)
	_, err := s.Insert(ctx, goldenEntry(1, "a", "e"))
	must(t, err)
	good, err := os.ReadFile(path)
	must(t, err)
	ff := &faultyFile{File: s.f.(*os.File)}
	s.f = ff

	ff.failWrite, ff.partial = true, 25
	if _, err := s.Insert(ctx, goldenEntry(2, "a", "e")); err == nil {
		t.Fatal("Insert with a failing write succeeded")
	}
	ff.failSync = true
	if err := s.StreamUpsert(ctx, wire.StreamRow{Name: "b", Tier: "public"}); err == nil {
		t.Fatal("StreamUpsert with a failing sync succeeded")
	}
	if _, ok, _ := s.Get(ctx, 2); ok {
		t.Fatal("failed Insert is visible")
	}
	if _, ok, _ := s.StreamGet(ctx, "b"); ok {
		t.Fatal("failed StreamUpsert is visible")
	}
	if data, _ := os.ReadFile(path); !bytes.Equal(data, good) {
		t.Fatalf("file after failed writes:\n%s\nwant:\n%s", data, good)
	}
	// The store still works: the same seqno can be written now.
	_, err = s.Insert(ctx, goldenEntry(2, "a", "e"))
	must(t, err)

	// If the file cannot be cut back, the store refuses further writes.
	ff.failWrite, ff.partial, ff.failTruncate = true, 10, true
	if _, err := s.Insert(ctx, goldenEntry(3, "a", "e")); err == nil {
		t.Fatal("Insert with a failing write succeeded")
	}
	ff.failTruncate = false
	_, err = s.Insert(ctx, goldenEntry(4, "a", "e"))
	if err == nil || !strings.Contains(err.Error(), "unusable until reopened") {
		t.Fatalf("Insert after an unrecoverable failure = %v", err)
	}
	if rows, err := s.Range(ctx, "a", 0, 10); err != nil || len(rows) != 2 {
		t.Fatalf("reads after the failure = %d rows, %v; want 2", len(rows), err)
	}
	// Reopening cuts the torn tail the failed write left.
	must(t, s.Close())
	s = openAt(t, path, fixedClock)
	if h, _, _ := s.Head(ctx, "a"); h != 2 {
		t.Fatalf("head after reopen = %d, want 2", h)
	}
}

func BenchmarkInsert(b *testing.B) {
	s := openAt(b, filepath.Join(b.TempDir(), "bench.jsonl"), fixedClock)
	ctx := context.Background()
	row := goldenEntry(1, "bench", "ev")
	row.Payload = make([]byte, 256)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		row.Seqno = uint64(i + 1)
		if _, err := s.Insert(ctx, row); err != nil {
			b.Fatal(err)
		}
	}
}
