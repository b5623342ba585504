package main

import (
	"flag"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/securelog/securelog/internal/node"
	"github.com/securelog/securelog/pkg/store"
	"github.com/securelog/securelog/pkg/store/pebblestore"
)

// Index cost (issue 12: the secondary indexes and entry counts may cost at
// most 15 % of committed throughput): with -index-cost every run is one
// pair of closed loops and nothing else, on the usual store and on a
// pebble store written without the query indexes and counts (a
// benchmark-only option), in alternating order, printing both rates, the
// ratio and the CPU per event of each run, then the medians.
var indexCost = flag.Bool("index-cost", false, "closed loop: also compare committed/s with and without the query indexes and entry counts (issue 12), in the same run")

// noIndexBackend is the store backend of the runs without indexes.
const noIndexBackend = "pebble-noindex"

// The store without indexes is tuned as the node tunes its pebble store
// (node.OpenStore with the default PebbleTuning): the registry's
// constructor would give it pebble's library defaults instead (16 times
// smaller memtables, a quarter of the cache), and the pair would compare
// two tunings as well as the indexes.
func init() {
	store.Register(noIndexBackend, func() store.Store {
		return pebblestore.New(pebblestore.WithCacheSize(node.DefaultPebbleCacheSize),
			pebblestore.WithMemTables(node.DefaultPebbleMemTableSize, node.DefaultPebbleMemTables),
			pebblestore.WithoutQueryIndexesForBenchmark())
	})
}

// withoutIndexes makes startNode use noIndexBackend.
var withoutIndexes bool

// storeSpecFor is the node's store spec in data directory dir: "" (the
// default pebble store) unless withoutIndexes.
func storeSpecFor(dir string) string {
	if !withoutIndexes {
		return ""
	}
	return noIndexBackend + ":" + filepath.Join(dir, "data", "store")
}

// indexCostResult is one run's pair.
type indexCostResult struct {
	with, without       float64 // committed entries/s
	cpuWith, cpuWithout float64 // process CPU µs per event
	load                string  // 1-minute load average
}

// runIndexCost measures the closed loop with and without the indexes (the
// order alternates with run, so drift of the machine's load does not
// always favour one side). Checkpoint samples are skipped.
func runIndexCost(o options, run int, cpuprofile string) (indexCostResult, error) {
	o.samples = 0
	var r indexCostResult
	for i := range 2 {
		withoutIndexes = (i+run)%2 == 1
		stop := func() {}
		if cpuprofile != "" { // one profile per side: NAME.with.RUN, NAME.without.RUN
			side := "with"
			if withoutIndexes {
				side = "without"
			}
			stop = startProfiles(fmt.Sprintf("%s.%s.%d", cpuprofile, side, run), "", 1)
		}
		c0 := cpuTime()
		res, err := runClosed(o)
		cpu := usPer(cpuTime()-c0, o.events)
		stop()
		if err != nil {
			withoutIndexes = false
			return r, err
		}
		if withoutIndexes {
			r.without, r.cpuWithout = res.rate, cpu
		} else {
			r.with, r.cpuWith = res.rate, cpu
		}
	}
	withoutIndexes = false
	r.load = loadAvg()
	fmt.Printf("run %d: index cost: committed %9.0f entries/s with the query indexes, %9.0f without: ratio %.3f (cost %.1f %%); CPU %.1f vs %.1f µs/event; load %s\n",
		run, r.with, r.without, r.with/r.without, 100*(1-r.with/r.without), r.cpuWith, r.cpuWithout, r.load)
	return r, nil
}

func printIndexCost(rs []indexCostResult) {
	if len(rs) == 0 {
		return
	}
	ratios := mapf(rs, func(r indexCostResult) float64 { return r.with / r.without })
	cpu := mapf(rs, func(r indexCostResult) float64 { return r.cpuWith / r.cpuWithout })
	fmt.Printf("  index cost: committed with/without %9.3f (cost %.1f %%; runs: %s)\n", median(ratios), 100*(1-median(ratios)), fmt3(ratios))
	fmt.Printf("  CPU per event with/without         %9.3f (runs: %s)\n", median(cpu), fmt3(cpu))
	fmt.Printf("  committed with / without           %9.0f / %.0f entries/s\n",
		median(mapf(rs, func(r indexCostResult) float64 { return r.with })), median(mapf(rs, func(r indexCostResult) float64 { return r.without })))
	fmt.Printf("  load averages                      %s\n", strings.Join(mapStr(rs, func(r indexCostResult) string { return r.load }), " "))
}

func fmt3(v []float64) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprintf("%.3f", x)
	}
	return strings.Join(s, " ")
}

func mapStr[T any](xs []T, f func(T) string) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = f(x)
	}
	return out
}
