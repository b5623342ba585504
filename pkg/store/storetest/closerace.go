package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/wire"
)

// The close race: workers append entries and close segments with the
// log's read-then-insert algorithm (SPEC §7.1: last sealed seqno, then the
// entries after it, then SegmentInsert) and nothing else to coordinate
// them. Only the store's atomic SegmentInsert check keeps a stream's
// segments a partition of its entries; a losing close gets
// *store.SegmentOverlapError and the worker goes on.

var raceStreams = []string{"a", "b"}

// raceWorker appends n entries (round-robin over the streams, seqno =
// global head + 1, retried on a duplicate seqno) and tries a close after
// each append, then closes every stream once more. It returns how many
// closes the store refused as overlapping.
func raceWorker(ctx context.Context, with func(func(store.Store) error) error, id, n int) (refused int, err error) {
	for i := range n {
		stream := raceStreams[(id+i)%len(raceStreams)]
		if err := with(func(s store.Store) error { return appendNext(ctx, s, stream) }); err != nil {
			return refused, err
		}
		err := with(func(s store.Store) error { return naiveClose(ctx, s, stream) })
		var overlap *store.SegmentOverlapError
		switch {
		case errors.As(err, &overlap):
			refused++
		case err != nil:
			return refused, err
		}
	}
	for _, stream := range raceStreams {
		for {
			err := with(func(s store.Store) error { return naiveClose(ctx, s, stream) })
			var overlap *store.SegmentOverlapError
			if errors.As(err, &overlap) {
				refused++
				continue
			}
			if err != nil {
				return refused, err
			}
			break
		}
	}
	return refused, nil
}

// appendNext inserts an entry of stream at global head + 1, retrying when
// another writer took that seqno first.
func appendNext(ctx context.Context, s store.Store, stream string) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		head, _, err := s.GlobalHead(ctx)
		if err != nil {
			return fmt.Errorf("GlobalHead: %w", err)
		}
		_, err = s.Insert(ctx, entry(head+1, stream))
		var dup *store.DuplicateSeqnoError
		if errors.As(err, &dup) {
			continue
		}
		if err != nil {
			return fmt.Errorf("Insert(%d): %w", head+1, err)
		}
		return nil
	}
}

// naiveClose closes the stream's open segment as the log does, without any
// lock of its own. Nothing to close is not an error.
func naiveClose(ctx context.Context, s store.Store, stream string) error {
	last, ok, err := s.SegmentLastSeqno(ctx, stream)
	if err != nil {
		return fmt.Errorf("SegmentLastSeqno(%s): %w", stream, err)
	}
	start := uint64(1)
	if ok {
		start = last + 1
	}
	head, ok, err := s.Head(ctx, stream)
	if err != nil {
		return fmt.Errorf("Head(%s): %w", stream, err)
	}
	if !ok || head < start {
		return nil
	}
	rows, err := s.Range(ctx, stream, start, head)
	if err != nil {
		return fmt.Errorf("Range(%s): %w", stream, err)
	}
	if len(rows) == 0 {
		return nil
	}
	seg := segment(stream, rows[0].Seqno, rows[len(rows)-1].Seqno)
	seg.LastEntryHash = rows[len(rows)-1].EntryHash
	if _, err := s.SegmentInsert(ctx, seg, members(seqnos(rows)...)); err != nil {
		return fmt.Errorf("SegmentInsert(%s %d..%d): %w", stream, seg.SeqStart, seg.SeqEnd, err)
	}
	return nil
}

// partitionError checks that each stream's segments, by ascending id, cover
// its entries from the first one on, consecutively, without overlap or gap,
// each listing exactly the stream's entries in its range.
func partitionError(ctx context.Context, s store.Store) error {
	return partitionErrorOf(ctx, s, raceStreams)
}

func partitionErrorOf(ctx context.Context, s store.Store, streams []string) error {
	for _, stream := range streams {
		head, ok, err := s.Head(ctx, stream)
		if err != nil || !ok {
			return fmt.Errorf("Head(%s) = (%d, %v, %v)", stream, head, ok, err)
		}
		rows, err := s.Range(ctx, stream, 0, head)
		if err != nil {
			return err
		}
		all := seqnos(rows)
		segs, err := s.SegmentsList(ctx, stream)
		if err != nil {
			return err
		}
		pos := 0
		for _, g := range segs {
			got, err := s.SegmentEntrySeqnos(ctx, g.SegmentID)
			if err != nil {
				return err
			}
			if pos >= len(all) || all[pos] != g.SeqStart {
				next := "none"
				if pos < len(all) {
					next = fmt.Sprint(all[pos])
				}
				return fmt.Errorf("stream %s: segment %d = %d..%d, but the next unsealed seqno is %s (overlap or gap); segments %s",
					stream, g.SegmentID, g.SeqStart, g.SeqEnd, next, describe(segs))
			}
			end := pos
			for end < len(all) && all[end] <= g.SeqEnd {
				end++
			}
			if want := all[pos:end]; !slices.Equal(got, want) || want[len(want)-1] != g.SeqEnd {
				return fmt.Errorf("stream %s: segment %d (%d..%d) members %v, want %v", stream, g.SegmentID, g.SeqStart, g.SeqEnd, got, want)
			}
			pos = end
		}
		if pos != len(all) {
			return fmt.Errorf("stream %s: seqnos %v left unsealed after the final closes; segments %s", stream, all[pos:], describe(segs))
		}
	}
	return nil
}

func describe(segs []wire.SegmentRow) string {
	var b strings.Builder
	for _, g := range segs {
		fmt.Fprintf(&b, "[%d: %d..%d]", g.SegmentID, g.SeqStart, g.SeqEnd)
	}
	return b.String()
}

// testCloseRace runs the close race with goroutines sharing one store.
func (h *harness) testCloseRace(t *testing.T) {
	s := h.open(t)
	const workers, each = 6, 25
	with := func(f func(store.Store) error) error { return f(s) }
	var refused atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			n, err := raceWorker(ctx(t), with, w, each)
			refused.Add(int64(n))
			if err != nil {
				errs <- fmt.Errorf("worker %d: %w", w, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if err := partitionError(ctx(t), s); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %d overlapping closes refused", h.f.Name, refused.Load())
}

// ProcessRace configures RunProcessRace.
type ProcessRace struct {
	// New returns a new, uninitialised store of the backend.
	New func() store.Store
	// Config is the Init config shared by every process (fresh storage).
	Config string
	// ChildTest is the name of the test function of the same test binary
	// that calls RunRaceChild.
	ChildTest string
	// Procs child processes each run Workers goroutines appending Appends
	// entries each.
	Procs, Workers, Appends int
	// Reopen makes every operation open the store (retrying while another
	// process holds it) and close it again, for backends that lock their
	// storage to one process at a time.
	Reopen bool
}

const raceChildEnv = "SECURELOG_STORETEST_CLOSE_RACE"

type raceChildSpec struct {
	Config  string `json:"config"`
	Proc    int    `json:"proc"`
	Workers int    `json:"workers"`
	Appends int    `json:"appends"`
	Reopen  bool   `json:"reopen"`
}

// RunProcessRace runs the close race from several processes (re-executing
// the test binary as children that run p.ChildTest) on one storage, then
// checks that every stream's segments partition its entries.
func RunProcessRace(t *testing.T, p ProcessRace) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute) // a hang bound, not a pass criterion
	defer cancel()
	s := p.New()
	if err := s.Init(ctx, p.Config); err != nil {
		t.Fatalf("Init(%q): %v", p.Config, err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	var wg sync.WaitGroup
	outs := make([][]byte, p.Procs)
	errs := make([]error, p.Procs)
	for i := range p.Procs {
		spec, _ := json.Marshal(raceChildSpec{Config: p.Config, Proc: i, Workers: p.Workers, Appends: p.Appends, Reopen: p.Reopen})
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^"+p.ChildTest+"$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), raceChildEnv+"="+string(spec))
		wg.Go(func() { outs[i], errs[i] = cmd.CombinedOutput() })
	}
	wg.Wait()
	for i := range p.Procs {
		if errs[i] != nil {
			t.Errorf("child %d: %v\n%s", i, errs[i], outs[i])
		} else if line := refusedLine(outs[i]); line != "" {
			t.Logf("child %d: %s", i, line)
		}
	}
	if t.Failed() {
		return
	}
	s = p.New()
	if err := s.Init(ctx, p.Config); err != nil {
		t.Fatalf("Init(%q) after the race: %v", p.Config, err)
	}
	defer func() { _ = s.Close() }()
	if err := partitionError(ctx, s); err != nil {
		t.Fatal(err)
	}
}

func refusedLine(out []byte) string {
	for _, l := range strings.Split(string(out), "\n") {
		if i := strings.Index(l, "close race child"); i >= 0 {
			return strings.TrimSpace(l[i:])
		}
	}
	return ""
}

// RunRaceChild is the body of the child test named by ProcessRace.ChildTest.
// Run normally (not as a child of RunProcessRace) it does nothing.
func RunRaceChild(t *testing.T, newStore func() store.Store) {
	raw := os.Getenv(raceChildEnv)
	if raw == "" {
		return
	}
	var spec raceChildSpec
	if err := json.Unmarshal([]byte(raw), &spec); err != nil {
		t.Fatalf("%s: %v", raceChildEnv, err)
	}
	c := t.Context()
	var with func(func(store.Store) error) error
	if spec.Reopen {
		with = func(f func(store.Store) error) error {
			s, err := openRetry(c, newStore, spec.Config)
			if err != nil {
				return err
			}
			return errors.Join(f(s), s.Close())
		}
	} else {
		s := newStore()
		if err := s.Init(c, spec.Config); err != nil {
			t.Fatalf("Init(%q): %v", spec.Config, err)
		}
		defer func() { _ = s.Close() }()
		with = func(f func(store.Store) error) error { return f(s) }
	}
	var refused atomic.Int64
	var wg sync.WaitGroup
	for w := range spec.Workers {
		wg.Go(func() {
			n, err := raceWorker(c, with, spec.Proc*spec.Workers+w, spec.Appends)
			refused.Add(int64(n))
			if err != nil {
				t.Errorf("worker %d: %v", w, err)
			}
		})
	}
	wg.Wait()
	t.Logf("close race child %d: %d overlapping closes refused", spec.Proc, refused.Load())
}

// openRetry opens the store, retrying while another process holds it.
func openRetry(ctx context.Context, newStore func() store.Store, config string) (store.Store, error) {
	for delay := time.Millisecond; ; delay = min(2*delay, 20*time.Millisecond) {
		s := newStore()
		err := s.Init(ctx, config)
		if err == nil {
			return s, nil
		}
		_ = s.Close()
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("open %q: %w (last error: %v)", config, ctx.Err(), err)
		case <-time.After(delay):
		}
	}
}
