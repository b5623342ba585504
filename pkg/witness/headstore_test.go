package witness

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// Environment of a head-file worker process (TestMain runs headWorker
// instead of the tests when headWorkerEnv is set).
const (
	headWorkerEnv    = "SECURELOG_TEST_HEAD_WORKER" // stream name of the worker
	headWorkerPath   = "SECURELOG_TEST_HEAD_PATH"
	headWorkerRounds = "SECURELOG_TEST_HEAD_ROUNDS"
	headWorkerOther  = "SECURELOG_TEST_HEAD_OTHER" // stream name of the other worker
	headWorkerOffset = "SECURELOG_TEST_HEAD_OFFSET"
)

func TestMain(m *testing.M) {
	if name := os.Getenv(headWorkerEnv); name != "" {
		if err := headWorker(name); err != nil {
			fmt.Fprintln(os.Stderr, "head worker:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// headWorker advances its own stream 1..rounds and the stream "shared" to
// 2i+offset, and after each step re-reads the file: its own record must be
// exactly what it wrote (no update lost), and no record may ever be lower
// than this worker saw before (never backwards).
func headWorker(name string) error {
	path := os.Getenv(headWorkerPath)
	other := os.Getenv(headWorkerOther)
	rounds, err := strconv.Atoi(os.Getenv(headWorkerRounds))
	if err != nil {
		return err
	}
	offset, err := strconv.ParseUint(os.Getenv(headWorkerOffset), 10, 64)
	if err != nil {
		return err
	}
	seen := map[string]uint64{}
	for i := 1; i <= rounds; i++ {
		if _, err := AdvanceHeadFile(path, HeadRecord{StreamID: name, SegmentID: uint64(i), SeqEnd: uint64(i)}); err != nil {
			return fmt.Errorf("round %d: %w", i, err)
		}
		if _, err := AdvanceHeadFile(path, HeadRecord{StreamID: "shared", SegmentID: 2*uint64(i) + offset}); err != nil {
			return fmt.Errorf("round %d shared: %w", i, err)
		}
		hf, err := LoadHeadFile(path)
		if err != nil {
			return fmt.Errorf("round %d: %w", i, err)
		}
		if r, _ := hf.Lookup(name); r.SegmentID != uint64(i) {
			return fmt.Errorf("round %d: own record is segment %d, wrote %d (update lost)", i, r.SegmentID, i)
		}
		if r, _ := hf.Lookup("shared"); r.SegmentID < 2*uint64(i)+offset {
			return fmt.Errorf("round %d: shared record is segment %d, wrote %d (update lost)", i, r.SegmentID, 2*i+int(offset))
		}
		for _, s := range []string{other, "shared"} {
			r, _ := hf.Lookup(s)
			if r.SegmentID < seen[s] {
				return fmt.Errorf("round %d: record of %q went backwards: %d after %d", i, s, r.SegmentID, seen[s])
			}
			seen[s] = r.SegmentID
		}
	}
	return nil
}

// TestHeadFileTwoProcesses runs two processes (this test binary re-executed)
// that advance one head file concurrently, as sign-segment beside a running
// signer does (issue 8 item 5).
func TestHeadFileTwoProcesses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log.heads.json")
	const rounds = 300
	names := []string{"p1", "p2"}
	cmds := make([]*exec.Cmd, len(names))
	for i, name := range names {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), headWorkerEnv+"="+name, headWorkerPath+"="+path,
			headWorkerRounds+"="+strconv.Itoa(rounds), headWorkerOther+"="+names[1-i], headWorkerOffset+"="+strconv.Itoa(i))
		cmd.Stderr = &prefixWriter{t: t, name: name}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds[i] = cmd
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("worker %s: %v", names[i], err)
		}
	}
	hf, err := LoadHeadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for s, want := range map[string]uint64{"p1": rounds, "p2": rounds, "shared": 2*rounds + 1} {
		if r, ok := hf.Lookup(s); !ok || r.SegmentID != want {
			t.Errorf("final record of %q: segment %d (present %v), want %d", s, r.SegmentID, ok, want)
		}
	}
}

// prefixWriter forwards a worker's stderr to the test log.
type prefixWriter struct {
	t    *testing.T
	name string
}

func (w *prefixWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s: %s", w.name, p)
	return len(p), nil
}

// racingHeadStore is an in-memory HeadStore whose first CompareAndSwap
// loses to a concurrent writer that advances stream "other".
type racingHeadStore struct {
	data  []byte
	raced bool
	swaps int
}

func (s *racingHeadStore) Read() ([]byte, error) { return s.data, nil }

func (s *racingHeadStore) CompareAndSwap(old, new []byte) error {
	if !s.raced {
		s.raced = true
		hf := &HeadFile{Version: HeadFileVersion}
		hf.Advance(HeadRecord{StreamID: "other", SegmentID: 9})
		s.data, _ = hf.Marshal()
	}
	if string(s.data) != string(old) {
		return &HeadConflictError{Path: "mem"}
	}
	s.data = new
	s.swaps++
	return nil
}

func TestUpdateHeadRetriesOnConflict(t *testing.T) {
	hs := &racingHeadStore{}
	wrote, err := UpdateHead(hs, func(hf *HeadFile) (bool, error) {
		return hf.Advance(HeadRecord{StreamID: "s", SegmentID: 3}), nil
	})
	if err != nil || !wrote || hs.swaps != 1 {
		t.Fatalf("wrote=%v swaps=%d err=%v", wrote, hs.swaps, err)
	}
	hf, err := ParseHeadFile(hs.data)
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := hf.Lookup("other"); r.SegmentID != 9 {
		t.Errorf("concurrent writer's record lost: %+v", hf.Records)
	}
	if r, _ := hf.Lookup("s"); r.SegmentID != 3 {
		t.Errorf("own record missing: %+v", hf.Records)
	}
	// Backwards: nothing is written.
	wrote, err = UpdateHead(hs, func(hf *HeadFile) (bool, error) {
		return hf.Advance(HeadRecord{StreamID: "s", SegmentID: 2}), nil
	})
	if err != nil || wrote || hs.swaps != 1 {
		t.Fatalf("backwards advance wrote=%v swaps=%d err=%v", wrote, hs.swaps, err)
	}
}

func TestFileHeadStoreCompareAndSwap(t *testing.T) {
	fs := FileHeadStore{Path: filepath.Join(t.TempDir(), "x.heads.json")}
	if err := fs.CompareAndSwap([]byte("x"), []byte("a")); err == nil {
		t.Fatal("swap from a wrong old value of a missing file succeeded")
	}
	if err := fs.CompareAndSwap(nil, []byte("a")); err != nil {
		t.Fatal(err)
	}
	var conflict *HeadConflictError
	if err := fs.CompareAndSwap(nil, []byte("b")); !errors.As(err, &conflict) {
		t.Fatalf("stale swap: %v", err)
	}
	if err := fs.CompareAndSwap([]byte("a"), []byte("b")); err != nil {
		t.Fatal(err)
	}
	if got, _ := fs.Read(); string(got) != "b" {
		t.Fatalf("contents %q", got)
	}
	if fi, err := os.Stat(fs.Path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v %v", fi, err)
	}
}

func TestMigrateHeadFile(t *testing.T) {
	dir := t.TempDir()
	old, path := filepath.Join(dir, "heads.json"), filepath.Join(dir, "store.heads.json")
	if moved, err := MigrateHeadFile(old, path); moved || err != nil {
		t.Fatalf("nothing to move: %v %v", moved, err)
	}
	if _, err := AdvanceHeadFile(old, HeadRecord{StreamID: "s", SegmentID: 4}); err != nil {
		t.Fatal(err)
	}
	if moved, err := MigrateHeadFile(old, path); !moved || err != nil {
		t.Fatalf("move: %v %v", moved, err)
	}
	hf, err := LoadHeadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := hf.Lookup("s"); !ok || r.SegmentID != 4 {
		t.Fatalf("moved record %+v", hf.Records)
	}
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Fatalf("old head file left: %v", err)
	}
	// Both present: the new location wins, the old file stays for the operator.
	if _, err := AdvanceHeadFile(old, HeadRecord{StreamID: "s", SegmentID: 1}); err != nil {
		t.Fatal(err)
	}
	if moved, err := MigrateHeadFile(old, path); moved || err != nil {
		t.Fatalf("both present: %v %v", moved, err)
	}
	if hf, _ := LoadHeadFile(path); hf.Records[0].SegmentID != 4 {
		t.Fatal("the new head file was replaced")
	}
}
