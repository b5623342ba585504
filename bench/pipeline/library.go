package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/securelog/securelog/pkg/securelog"
	"github.com/securelog/securelog/pkg/store/pebblestore"
	"github.com/securelog/securelog/pkg/wire"
)

// groupResult is the library's group commit under concurrent single
// appends, measured in a child process so its peak RSS is its own.
type groupResult struct {
	rate     float64 // appends/s
	p50, p99 time.Duration
	rssMiB   float64
	cpuUS    float64 // process CPU µs per append (comparable on a loaded machine)
}

func (r groupResult) print(title string) {
	fmt.Printf("%s\n  %9.0f appends/s   p50 %7.2f ms   p99 %7.2f ms   peak RSS %.1f MiB   CPU %.1f µs/append\n", title, r.rate, ms(r.p50), ms(r.p99), r.rssMiB, r.cpuUS)
}

// childGroupCommit is the -child group-commit mode: n single appends of
// size bytes from workers goroutines on a fresh pebble store; it prints one
// line "rate p50ns p99ns rssMiB cpuµs" for the parent (cpuµs: the process's
// CPU per append while appending, pebble's background work included).
func childGroupCommit(n, workers, size int) error {
	dir, err := os.MkdirTemp("", "bench-library")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	st := pebblestore.New(pebblestore.WithLogger(slog.New(slog.DiscardHandler)))
	l := securelog.New(st, securelog.Options{Logger: slog.New(slog.DiscardHandler)})
	ctx := context.Background()
	if err := l.Open(ctx, filepath.Join(dir, "db")); err != nil {
		return err
	}
	defer st.Close()
	var next atomic.Int64
	lat := make([]time.Duration, n)
	var wg sync.WaitGroup
	var firstErr atomic.Value
	t0, c0 := time.Now(), cpuTime()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				p := payload(size, i)
				s := time.Now()
				if _, err := l.Append(ctx, "default", "bench", wire.Info, "bench", p); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				lat[i] = time.Since(s)
			}
		}()
	}
	wg.Wait()
	el, cpu := time.Since(t0), cpuTime()-c0
	if e, ok := firstErr.Load().(error); ok {
		return e
	}
	fmt.Printf("%f %d %d %f %f\n", float64(n)/el.Seconds(), pct(lat, 50), pct(lat, 99), childPeakRSS(), float64(cpu)/float64(time.Microsecond)/float64(n))
	return nil
}

// runGroupCommit runs childGroupCommit in a child process.
func runGroupCommit(n, workers, size int) (groupResult, error) {
	self, err := os.Executable()
	if err != nil {
		return groupResult{}, err
	}
	cmd := exec.Command(self, "-child", "group-commit", "-events", strconv.Itoa(n), "-producers", strconv.Itoa(workers), "-size", strconv.Itoa(size))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return groupResult{}, fmt.Errorf("group-commit child: %w", err)
	}
	var r groupResult
	var p50, p99 int64
	if _, err := fmt.Sscan(strings.TrimSpace(string(out)), &r.rate, &p50, &p99, &r.rssMiB, &r.cpuUS); err != nil {
		return groupResult{}, fmt.Errorf("group-commit child printed %q: %w", out, err)
	}
	r.p50, r.p99 = time.Duration(p50), time.Duration(p99)
	return r, nil
}

// batchResult compares the library's batch append with a raw pebble
// synced batch of the same size and value size.
type batchResult struct{ lib, raw float64 }

func (r batchResult) print(title string) {
	fmt.Printf("%s\n  library %9.0f entries/s   raw pebble %9.0f entries/s   ratio %.2f\n", title, r.lib, r.raw, r.lib/r.raw)
}

// runBatch appends n events in batches of batch through the library, then
// writes n values of size bytes in synced pebble batches of batch.
func runBatch(n, batch, size int) (batchResult, error) {
	dir, err := os.MkdirTemp("", "bench-batch")
	if err != nil {
		return batchResult{}, err
	}
	defer os.RemoveAll(dir)
	quiet := slog.New(slog.DiscardHandler)
	st := pebblestore.New(pebblestore.WithLogger(quiet))
	l := securelog.New(st, securelog.Options{Logger: quiet})
	ctx := context.Background()
	if err := l.Open(ctx, filepath.Join(dir, "lib")); err != nil {
		return batchResult{}, err
	}
	evs := make([]securelog.Event, batch)
	t0 := time.Now()
	for i := 0; i < n; i += batch {
		for j := range evs {
			evs[j] = securelog.Event{Stream: "default", EventType: "bench", Severity: wire.Info, Producer: "bench", Payload: payload(size, i+j)}
		}
		if _, err := l.AppendBatch(ctx, evs, nil); err != nil {
			st.Close()
			return batchResult{}, err
		}
	}
	var r batchResult
	r.lib = float64(n) / time.Since(t0).Seconds()
	st.Close()

	db, err := pebble.Open(filepath.Join(dir, "raw"), &pebble.Options{Logger: pebbleQuiet{}})
	if err != nil {
		return r, err
	}
	defer db.Close()
	key := make([]byte, 9)
	t0 = time.Now()
	for i := 0; i < n; i += batch {
		b := db.NewBatch()
		for j := range batch {
			key[0] = 'e'
			binary.BigEndian.PutUint64(key[1:], uint64(i+j))
			if err := b.Set(key, payload(size, i+j), nil); err != nil {
				return r, err
			}
		}
		if err := b.Commit(pebble.Sync); err != nil {
			return r, err
		}
		b.Close()
	}
	r.raw = float64(n) / time.Since(t0).Seconds()
	return r, nil
}

// pebbleQuiet drops pebble's informational messages.
type pebbleQuiet struct{}

func (pebbleQuiet) Infof(string, ...any)  {}
func (pebbleQuiet) Errorf(string, ...any) {}
func (pebbleQuiet) Fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}

func runChild(mode string, o options, bundlePath string) error {
	switch mode {
	case "group-commit":
		return childGroupCommit(o.events, o.producers, o.size)
	case "audit":
		return childAudit(bundlePath)
	}
	return fmt.Errorf("unknown -child mode %q", mode)
}

// runLibrary prints the library rows: group commit of 256 concurrent
// single appends (100,000 appends of 300 B, peak RSS of that process) and
// batch append beside raw pebble.
func runLibrary(o options, runs int) {
	for run := 1; run <= runs; run++ {
		b, err := runBatch(100_000, 100, 300)
		if err != nil {
			fail(err)
		}
		b.print(fmt.Sprintf("run %d: library batch append vs raw pebble synced batch (batches of 100, 300 B)", run))
		g, err := runGroupCommit(100_000, 256, 300)
		if err != nil {
			fail(err)
		}
		g.print(fmt.Sprintf("run %d: library, 256 concurrent single appends (100,000 × 300 B)", run))
	}
}
