// Command query measures entry queries (issue 12: "a query over 10,000,000
// entries returning 100 rows answers in ≤ 50 ms p99") on a fixture store.
//
// The fixture is written once through the library's own write path
// (securelog.Log.AppendBatch in large synced batches: chained, hashed
// entries with their index records and counts, exactly what `securelog
// up` stores) and cached in -dir, reused by later runs with the same
// -entries, -store and -seed. Then every query shape of the issue (all,
// type exact and prefix, producer, minimum severity, time range and
// combinations, newest and oldest first) is measured: page 1, page 2 from
// its cursor, and pages at random cursors across the stream, each
// returning -limit rows, through the store (store.QueryEntries) and
// through the HTTP query API's handler (JSON rendering included, no
// network). Figures come with the 1-minute load average.
//
//	go run ./bench/query -entries 10000000 -dir /var/tmp/securelog-query-10m
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"
)

func main() {
	entries := flag.Int("entries", 10_000_000, "entries in the fixture store")
	dir := flag.String("dir", "", "fixture directory, reused when it holds a fixture of the same -entries, -store and -seed (default: a directory in the system temp dir named after them)")
	backend := flag.String("store", "pebble", "store backend: pebble or sqlite")
	batch := flag.Int("batch", 20000, "events per synced batch while filling the fixture")
	seed := flag.Uint64("seed", 1, "workload seed")
	spanDays := flag.Float64("span-days", 30, "time the fixture's entries are spread over, in days")
	n := flag.Int("queries", 400, "queries measured per shape and order")
	limit := flag.Int("limit", 100, "rows per page")
	api := flag.Bool("api", true, "also measure through the HTTP query API handler")
	only := flag.String("only", "", "measure only the shapes whose name contains this")
	fillOnly := flag.Bool("fill-only", false, "build (or check) the fixture and exit")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the measurements to this file")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "query bench:", err)
			os.Exit(1)
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	if *dir == "" {
		*dir = filepath.Join(os.TempDir(), fmt.Sprintf("securelog-query-fixture-%s-%d-seed%d", *backend, *entries, *seed))
	}
	if err := run(*dir, *backend, *entries, *batch, *seed, time.Duration(*spanDays*24*float64(time.Hour)), *n, *limit, *api, *only, *fillOnly); err != nil {
		fmt.Fprintln(os.Stderr, "query bench:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

func run(dir, backend string, entries, batch int, seed uint64, span time.Duration, n, limit int, api bool, only string, fillOnly bool) error {
	ctx := context.Background()
	quiet := slog.New(slog.DiscardHandler)
	fmt.Printf("query bench: %s, GOMAXPROCS %d, %s store, %d entries, load %.2f\n", runtime.Version(), runtime.GOMAXPROCS(0), backend, entries, load1())
	m, err := ensureFixture(ctx, dir, backend, entries, batch, seed, span, quiet)
	if err != nil {
		return err
	}
	if fillOnly {
		return nil
	}
	t0 := time.Now()
	st, err := openStore(ctx, dir, backend, false, quiet)
	if err != nil {
		return err
	}
	defer st.Close()
	// Opening a store of an older schema upgrades it (builds what it lacks).
	fmt.Printf("store opened in %.1f s, load %.2f\n", time.Since(t0).Seconds(), load1())
	return measure(ctx, st, m, n, limit, api, only)
}

// load1 is the 1-minute load average (0 when unknown).
func load1() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f, _, _ := strings.Cut(string(b), " ")
	v, _ := strconv.ParseFloat(f, 64)
	return v
}
