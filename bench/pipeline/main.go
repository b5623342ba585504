// Command pipeline measures the JetStream pipeline in one process (the
// shape of `securelog up`, built by internal/node) beside the raw
// JetStream baseline on a server with the same settings, in the same run.
//
// Modes (all that are switched on run, in this order, each -runs times on
// a fresh data directory; medians are printed when -runs > 1):
//
//   - closed loop (default): -events spread over -producers clients with
//     -window events in flight each, every producer awaiting committed:
//     committed entries/s, time to committed p50/p99, the ratio to the raw
//     JetStream async publish rate, time to checkpointed, peak RSS.
//
//     With -index-cost each run also compares the closed loop's committed
//     rate with and without the query indexes and entry counts (issue 12).
//
//   - open loop (-rate N|half): events offered at a fixed rate for
//     -duration, each timed from its scheduled send to its commit receipt
//     (no coordinated omission): p50/p90/p99/max. "half" uses half of the
//     closed loop's committed rate of the same run.
//
//   - burst (-burst N): N events published with core NATS as fast as the
//     connection takes them (as `nats pub --count N` does): time until all
//     are committed and the longest gap between two commit receipts.
//
//   - partitions (-partitions N): N partitions on one JetStream server, each
//     with its own store, ingester, sealer, signer and stream, -producers
//     clients per partition: per-partition and aggregate committed/s.
//
//   - tree cost (-tlog-pairs N): N interleaved pairs of closed loops with
//     the transparency tree on and off (order alternating), -tlog-events
//     each: every pair's committed/s and ratio, process CPU µs/event of
//     both, and the medians (issue 11); with -cpuprofile each run's CPU
//     profile (name.on, name.off; name.on.N, name.off.N for pair N).
//
//   - table (-table): every row of issue 13 (pipeline under both sync
//     settings with raw JetStream beside it, open loop at half rate, burst,
//     library group commit and peak RSS in a child process, batch append
//     beside raw Pebble, inclusion proofs, verify-chain, audit of a
//     1,000,000-entry bundle in a child process) and issue 11's (the
//     relaxed closed loop in -tlog-pairs interleaved pairs with the
//     transparency tree on and off, the on ÷ off ratio of each pair and the
//     CPU µs/event of both, time to checkpointed with up's local tlog-witness, a tlog
//     inclusion proof in a 1,000,000-leaf tree), -runs times, printed as
//     a table of medians with the load average of each run.
//
//     go run ./bench/pipeline [-sync always|default] [-events 50000] [-producers 4]
//     [-window 2000] [-size 256] [-rate half|N] [-duration 10s] [-burst 100000]
//     [-runs 3] [-closed=false] [-cpuprofile cpu.out] [-memprofile allocs.out]
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type options struct {
	events, producers, window, size int
	always                          bool
	samples                         int
	tlogOff, witness                bool // closed loop: tree off (issue 11 cost); up's local witness configured
}

func main() {
	var o options
	flag.IntVar(&o.events, "events", 50000, "closed loop: events to publish")
	flag.IntVar(&o.producers, "producers", 4, "concurrent producer clients")
	flag.IntVar(&o.window, "window", 2000, "closed loop: events in flight per producer")
	flag.IntVar(&o.size, "size", 256, "payload bytes")
	syncMode := flag.String("sync", "always", "JetStream sync: always or default")
	flag.IntVar(&o.samples, "checkpoint-samples", 10, "closed loop: events whose time to checkpointed is measured")
	closed := flag.Bool("closed", true, "run the closed-loop measurement")
	rate := flag.String("rate", "", `open loop: offered events/s, or "half" for half the closed loop's committed rate`)
	duration := flag.Duration("duration", 10*time.Second, "open loop: how long to offer load")
	burst := flag.Int("burst", 0, "burst: events published at once with core NATS (0 = no burst run)")
	runs := flag.Int("runs", 1, "repetitions of every mode (medians printed when > 1)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the closed-loop runs (of the open-loop runs with -closed=false; of the -child process)")
	memprofile := flag.String("memprofile", "", "write an allocation profile of the closed-loop runs")
	traceFile := flag.String("trace", "", "write a runtime execution trace of the open-loop runs (go tool trace; -pprof=sched shows where goroutines waited for a CPU)")
	child := flag.String("child", "", "internal: run one measurement in this child process (group-commit, audit)")
	bundlePath := flag.String("bundle", "", "internal: the bundle of -child audit")
	library := flag.Bool("library", false, "run the library measurements (group commit, RSS, batch vs raw pebble)")
	table := flag.Bool("table", false, "measure every row of issue 13 (both sync settings, library, proofs, verify-chain, audit) -runs times and print the table")
	big := flag.Bool("big", true, "with -table: include the 1,000,000-entry rows (proof, bundle audit)")
	partitions := flag.Int("partitions", 0, "run N partitions (own store, ingester, sealer, signer and stream each) on one JetStream server and print per-partition and aggregate committed/s")
	flag.Parse()
	if *child != "" {
		stop := startProfiles(*cpuprofile, *memprofile, 1)
		if err := runChild(*child, o, *bundlePath); err != nil {
			fail(err)
		}
		stop()
		return
	}
	if *table {
		fmt.Printf("machine: %d CPUs (GOMAXPROCS %d), %s/%s, %s; %s; command: %s\n", runtime.NumCPU(), runtime.GOMAXPROCS(0),
			runtime.GOOS, runtime.GOARCH, runtime.Version(), time.Now().UTC().Format("2006-01-02 15:04 MST"), strings.Join(os.Args, " "))
		runTable(o, *runs, *duration, *burst, *big)
		return
	}
	if *library {
		stop := startProfiles(*cpuprofile, *memprofile, 1)
		runLibrary(o, *runs)
		stop()
		return
	}
	if *syncMode != "always" && *syncMode != "default" {
		fmt.Fprintln(os.Stderr, "-sync: want always or default")
		os.Exit(2)
	}
	o.always = *syncMode == "always"
	if *partitions > 0 {
		for run := 1; run <= *runs; run++ {
			if err := runPartitions(o, *partitions); err != nil {
				fail(err)
			}
		}
		return
	}
	var fixedRate float64
	if *rate != "" && *rate != "half" {
		r, err := strconv.ParseFloat(*rate, 64)
		if err != nil || r <= 0 {
			fmt.Fprintln(os.Stderr, `-rate: want a positive number of events/s or "half"`)
			os.Exit(2)
		}
		fixedRate = r
	}
	if *rate == "half" && !*closed {
		fmt.Fprintln(os.Stderr, `-rate half needs the closed loop (-closed)`)
		os.Exit(2)
	}
	fmt.Printf("machine: %d CPUs (GOMAXPROCS %d), %s/%s, %s; JetStream sync %s; %d B payloads; %s\n",
		runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH, runtime.Version(), *syncMode, o.size,
		time.Now().UTC().Format("2006-01-02 15:04 MST"))
	if *tlogPairs > 0 {
		tlogProfile = *cpuprofile
		if _, err := runTlogPairs(o, *tlogPairs, *tlogEvents); err != nil {
			fail(err)
		}
		return
	}

	var raws, rawE2E []float64
	var closedRes []closedResult
	var openRes []openResult
	var burstRes []burstResult
	var icRes []indexCostResult
	for run := 1; run <= *runs; run++ {
		if *indexCost {
			// Only the pairs: the other measurements of a run would stretch
			// the time between the two sides of a pair and add nothing.
			ic, err := runIndexCost(o, run, *cpuprofile)
			if err != nil {
				fail(err)
			}
			icRes = append(icRes, ic)
			continue
		}
		c0 := cpuTime()
		raw, err := rawPublishRate(o.events, o.size, o.always)
		if err != nil {
			fail(err)
		}
		c1 := cpuTime()
		raws = append(raws, raw)
		e2e, err := rawEndToEnd(o.events, o.size, o.always)
		if err != nil {
			fail(err)
		}
		c2 := cpuTime()
		rawE2E = append(rawE2E, e2e)
		fmt.Printf("run %d: raw JetStream async publish %9.0f msg/s (%.1f µs CPU/msg); publish + ordered consumer end to end %9.0f msg/s (%.1f µs CPU/msg)\n",
			run, raw, usPer(c1-c0, o.events), e2e, usPer(c2-c1, o.events))
		if *closed {
			stopProfile := startProfiles(*cpuprofile, *memprofile, run)
			c0 := cpuTime()
			r, err := runClosed(o)
			r.cpu = cpuTime() - c0
			stopProfile()
			if err != nil {
				fail(err)
			}
			r.raw = raw
			closedRes = append(closedRes, r)
			r.print(fmt.Sprintf("run %d: closed loop", run), o)
		}
		if *rate != "" {
			rt := fixedRate
			if *rate == "half" {
				rt = closedRes[len(closedRes)-1].rate / 2
			}
			var stopProfile func()
			if !*closed { // else the closed loop's run has the profile
				stopProfile = startProfiles(*cpuprofile, *memprofile, run)
			}
			stopTrace := startTrace(*traceFile, run)
			r, err := runOpen(o, rt, *duration)
			stopTrace()
			if stopProfile != nil {
				stopProfile()
			}
			if err != nil {
				fail(err)
			}
			openRes = append(openRes, r)
			r.print(fmt.Sprintf("run %d: open loop", run))
		}
		if *burst > 0 {
			r, err := runBurst(o, *burst)
			if err != nil {
				fail(err)
			}
			burstRes = append(burstRes, r)
			r.print(fmt.Sprintf("run %d: burst", run))
		}
	}
	if *indexCost {
		fmt.Printf("\nmedians of %d pairs (sync %s)\n", *runs, *syncMode)
		printIndexCost(icRes)
	} else if *runs > 1 {
		fmt.Printf("\nmedians of %d runs (sync %s)\n", *runs, *syncMode)
		fmt.Printf("  raw JetStream async publish      %9.0f msg/s\n", median(raws))
		fmt.Printf("  raw publish + ordered consumer   %9.0f msg/s\n", median(rawE2E))
		if len(closedRes) > 0 {
			fmt.Printf("  closed loop committed            %9.0f entries/s\n", median(mapf(closedRes, func(r closedResult) float64 { return r.rate })))
			fmt.Printf("  committed / raw async publish    %9.2f\n", median(mapf(closedRes, func(r closedResult) float64 { return r.rate / r.raw })))
			fmt.Printf("  closed loop to committed p99     %9.2f ms\n", median(mapf(closedRes, func(r closedResult) float64 { return ms(pct(r.commit, 99)) })))
			fmt.Printf("  to checkpointed p99              %9.2f ms\n", median(mapf(closedRes, func(r closedResult) float64 { return ms(pct(r.ckpt, 99)) })))
		}
		if len(openRes) > 0 {
			fmt.Printf("  open loop offered                %9.0f events/s\n", median(mapf(openRes, func(r openResult) float64 { return r.offered })))
			fmt.Printf("  open loop to committed p50       %9.2f ms\n", median(mapf(openRes, func(r openResult) float64 { return ms(pct(r.lat, 50)) })))
			fmt.Printf("  open loop to committed p99       %9.2f ms\n", median(mapf(openRes, func(r openResult) float64 { return ms(pct(r.lat, 99)) })))
		}
		if len(burstRes) > 0 {
			fmt.Printf("  burst all committed after        %9.2f s\n", median(mapf(burstRes, func(r burstResult) float64 { return r.total.Seconds() })))
			fmt.Printf("  burst longest gap                %9.0f ms\n", median(mapf(burstRes, func(r burstResult) float64 { return ms(r.maxGap) })))
		}
	}
	fmt.Printf("peak RSS of the whole program %.1f MiB\n", peakRSS())
}

// startProfiles starts the CPU profile (one file per run: name.N) and
// arms the allocation profile; the returned function writes them.
func startProfiles(cpu, mem string, run int) func() {
	suffix := func(name string) string {
		if run == 1 {
			return name
		}
		return fmt.Sprintf("%s.%d", name, run)
	}
	var cf *os.File
	if cpu != "" {
		var err error
		if cf, err = os.Create(suffix(cpu)); err != nil {
			fail(err)
		}
		if err := pprof.StartCPUProfile(cf); err != nil {
			fail(err)
		}
	}
	if mem != "" {
		runtime.MemProfileRate = 64 << 10
	}
	return func() {
		if cf != nil {
			pprof.StopCPUProfile()
			cf.Close()
		}
		if mem != "" {
			f, err := os.Create(suffix(mem))
			if err != nil {
				fail(err)
			}
			if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
				fail(err)
			}
			f.Close()
		}
	}
}

// startTrace starts a runtime execution trace into name (name.RUN after
// the first run); the returned function stops it. An empty name traces
// nothing.
func startTrace(name string, run int) func() {
	if name == "" {
		return func() {}
	}
	if run > 1 {
		name = fmt.Sprintf("%s.%d", name, run)
	}
	f, err := os.Create(name)
	if err != nil {
		fail(err)
	}
	if err := trace.Start(f); err != nil {
		fail(err)
	}
	return func() {
		trace.Stop()
		if err := f.Close(); err != nil {
			fail(err)
		}
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}

func usPer(d time.Duration, n int) float64 {
	return float64(d) / float64(time.Microsecond) / float64(n)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[max(0, min(i-1, len(s)-1))]
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func mapf[T any](xs []T, f func(T) float64) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = f(x)
	}
	return out
}

// cpuTime is the process's user+system CPU time so far: figures per
// event stay comparable on a loaded machine, where rates do not.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// childPeakRSS is this process's peak RSS in MiB from /proc/self/status
// (VmHWM), which starts afresh at exec, unlike getrusage's ru_maxrss that
// a child inherits from its parent across fork and exec; else peakRSS.
func childPeakRSS() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
				if kb, err := strconv.ParseFloat(f[1], 64); err == nil {
					return kb / 1024
				}
			}
		}
	}
	return peakRSS()
}

func peakRSS() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Maxrss) / 1024 // KiB on Linux
}

func payload(size, i int) []byte {
	b := make([]byte, size)
	for j := range b {
		b[j] = 'a' + byte((i+j)%26)
	}
	return b
}
