package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/securelog/securelog/pkg/bundle"
	"github.com/securelog/securelog/pkg/bundle/bundletest"
	"github.com/securelog/securelog/pkg/securelog"
	"github.com/securelog/securelog/pkg/store/pebblestore"
	"github.com/securelog/securelog/pkg/wire"
)

var bigOnce = flag.Bool("big-once", false, "with -table -big: measure the 1,000,000-entry rows in the first run only")

// loadAvg returns the 1-minute load average ("?" if unknown).
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

// row is one line of the issue-13 table: the medians of its runs and the
// load averages seen while measuring it.
type row struct {
	metric, target string
	values         []float64
	format         func(float64) string
	loads          []string
}

func (r *row) add(v float64) { r.values = append(r.values, v); r.loads = append(r.loads, loadAvg()) }

func (r *row) String() string {
	if len(r.values) == 0 {
		return fmt.Sprintf("| %s | not measured | %s | |", r.metric, r.target)
	}
	runs := make([]string, len(r.values))
	for i, v := range r.values {
		runs[i] = r.format(v)
	}
	return fmt.Sprintf("| %s | **%s** (runs: %s) | %s | %s |", r.metric, r.format(median(r.values)), strings.Join(runs, ", "), r.target, strings.Join(r.loads, ", "))
}

func f0(v float64) string  { return fmt.Sprintf("%.0f", v) }
func f2(v float64) string  { return fmt.Sprintf("%.2f", v) }
func fms(v float64) string { return fmt.Sprintf("%.1f ms", v) }
func fus(v float64) string { return fmt.Sprintf("%.0f µs", v) }

// runTable measures every row of issue 13 runs times (the 1,000,000-entry
// rows once each run as well) and prints the table.
func runTable(o options, runs int, duration time.Duration, burstN int, big bool) {
	var (
		ratioRelaxed = &row{metric: "pipeline committed ÷ raw JetStream async publish, relaxed sync", target: "≥ 0.5", format: f2}
		committedRel = &row{metric: "pipeline committed entries/s, relaxed sync (closed loop)", target: "", format: f0}
		rawRelaxed   = &row{metric: "raw JetStream async publish msg/s, relaxed sync", target: "", format: f0}
		ratioAlways  = &row{metric: "pipeline committed ÷ raw JetStream, `sync always`", target: "≥ 0.9", format: f2}
		openP99      = &row{metric: "time to committed p99 at half the maximum rate (open loop, relaxed)", target: "≤ 25 ms", format: fms}
		burstGap     = &row{metric: fmt.Sprintf("burst of %d events: longest gap between commits", burstN), target: "≤ 2,000 ms", format: fms}
		groupP99     = &row{metric: "library: 256 concurrent single appends, p99 latency", target: "≤ 10 ms", format: fms}
		groupRate    = &row{metric: "library: 256 concurrent single appends, appends/s", target: "not lower", format: f0}
		rss          = &row{metric: "library: peak RSS for 100,000 appends of 300 B (MiB)", target: "≤ 64", format: func(v float64) string { return fmt.Sprintf("%.1f", v) }}
		batchRatio   = &row{metric: "library batch append ÷ raw Pebble synced batch (batches of 100, 300 B)", target: "≥ 0.25", format: f2}
		proof10k     = &row{metric: "v1 inclusion proof in a 10,000-entry segment, p99", target: "≤ 1 ms", format: fus}
		proof1M      = &row{metric: "v1 inclusion proof in a 1,000,000-entry segment, p99", target: "≤ 2 ms", format: fus}
		verifyRate   = &row{metric: "verify-chain, entries/s (200,000 entries, all cores)", target: "≥ 1 M per core", format: f0}
		verifyCPU    = &row{metric: "verify-chain, CPU µs per entry", target: "≤ 1", format: f2}
		auditTime    = &row{metric: "`audit` of a 1,000,000-entry bundle, seconds", target: "≤ 2", format: f2}
		auditCPU     = &row{metric: "`audit` of a 1,000,000-entry bundle, CPU seconds", target: "", format: f2}
		auditRSS     = &row{metric: "`audit` of a 1,000,000-entry bundle, peak RSS (MiB)", target: "≤ 100", format: func(v float64) string { return fmt.Sprintf("%.1f", v) }}
		// Issue 11.
		committedOn  = &row{metric: "issue 11: pipeline committed entries/s, relaxed sync, transparency tree on (interleaved pairs)", target: "", format: f0}
		committedOff = &row{metric: "issue 11: pipeline committed entries/s, relaxed sync, transparency tree off (interleaved pairs)", target: "", format: f0}
		treeRatio    = &row{metric: "issue 11: pipeline committed, tree on ÷ tree off (each interleaved pair, relaxed sync)", target: "≥ 0.9", format: f3}
		treeCPUOn    = &row{metric: "issue 11: pipeline process CPU µs/event, tree on (interleaved pairs)", target: "", format: f2}
		treeCPUOff   = &row{metric: "issue 11: pipeline process CPU µs/event, tree off (interleaved pairs)", target: "", format: f2}
		treeCPURatio = &row{metric: "issue 11: pipeline process CPU per event, tree off ÷ tree on (each interleaved pair; the rate ratio where CPU-bound)", target: "", format: f3}
		ckptWitness  = &row{metric: "issue 11: time to checkpointed p99, local tlog-witness configured", target: "≤ 1,500 ms", format: fms}
		tlogProof1M  = &row{metric: "issue 11: tlog inclusion proof in a 1,000,000-entry log, p99", target: "≤ 1 ms", format: fus}
		tlogProofCPU = &row{metric: "issue 11: tlog inclusion proof in a 1,000,000-entry log, CPU µs", target: "", format: f0}
	)
	var bundlePath string
	if big {
		dir, err := os.MkdirTemp("", "bench-bundle")
		if err != nil {
			fail(err)
		}
		defer os.RemoveAll(dir)
		fmt.Println("generating a 1,000,000-entry bundle ...")
		if bundlePath, _, err = bundletest.WriteFile(dir, 1_000_000, 10_000); err != nil {
			fail(err)
		}
	}
	for run := 1; run <= runs; run++ {
		fmt.Printf("run %d of %d (load average %s)\n", run, runs, loadAvg())
		for _, always := range []bool{false, true} {
			oo := o
			oo.always = always
			raw, err := rawPublishRate(o.events, o.size, always)
			if err != nil {
				fail(err)
			}
			c0 := cpuTime()
			r, err := runClosed(oo)
			if err != nil {
				fail(err)
			}
			r.raw, r.cpu = raw, cpuTime()-c0
			r.print(fmt.Sprintf("run %d: closed loop, sync always=%v", run, always), oo)
			if always {
				ratioAlways.add(r.rate / raw)
				continue
			}
			ratioRelaxed.add(r.rate / raw)
			committedRel.add(r.rate)
			rawRelaxed.add(raw)
			if err := tableTlogRuns(run, oo, raw, tlogRows{committedOn, committedOff, treeRatio, treeCPUOn, treeCPUOff, treeCPURatio, ckptWitness}); err != nil {
				fail(err)
			}
			op, err := runOpen(oo, r.rate/2, duration)
			if err != nil {
				fail(err)
			}
			op.print(fmt.Sprintf("run %d: open loop", run))
			openP99.add(ms(pct(op.lat, 99)))
			if burstN > 0 {
				b, err := runBurst(oo, burstN)
				if err != nil {
					fail(err)
				}
				b.print(fmt.Sprintf("run %d: burst", run))
				burstGap.add(ms(b.maxGap))
			}
		}
		g, err := runGroupCommit(100_000, 256, 300)
		if err != nil {
			fail(err)
		}
		g.print(fmt.Sprintf("run %d: library, 256 concurrent single appends", run))
		groupP99.add(ms(g.p99))
		groupRate.add(g.rate)
		rss.add(g.rssMiB)
		b, err := runBatch(100_000, 100, 300)
		if err != nil {
			fail(err)
		}
		b.print(fmt.Sprintf("run %d: batch vs raw pebble", run))
		batchRatio.add(b.lib / b.raw)
		p, _, _, err := runProofVerify(10_000, 0)
		if err != nil {
			fail(err)
		}
		proof10k.add(float64(p.Microseconds()))
		_, vr, vc, err := runProofVerify(200_000, 200_000)
		if err != nil {
			fail(err)
		}
		verifyRate.add(vr)
		verifyCPU.add(vc)
		fmt.Printf("run %d: proof p99 (10k) %v; verify-chain %.0f entries/s, %.2f CPU µs/entry\n", run, p, vr, vc)
		if big && (run == 1 || !*bigOnce) {
			p, _, _, err := runProofVerify(1_000_000, 0)
			if err != nil {
				fail(err)
			}
			proof1M.add(float64(p.Microseconds()))
			a, err := runAuditChild(bundlePath)
			if err != nil {
				fail(err)
			}
			fmt.Printf("run %d: proof p99 (1M) %v; audit %.2f s, %.2f CPU s, peak RSS %.1f MiB\n", run, p, a[0], a[1], a[2])
			tp, tc, err := runTlogProof(1_000_000)
			if err != nil {
				fail(err)
			}
			fmt.Printf("run %d: tlog inclusion proof (1M) p99 %v, %.0f CPU µs/proof\n", run, tp, tc)
			tlogProof1M.add(float64(tp.Microseconds()))
			tlogProofCPU.add(tc)
			auditTime.add(a[0])
			auditCPU.add(a[1])
			auditRSS.add(a[2])
		}
	}
	fmt.Printf("\n| metric | median of %d | target | load average (1 min) per run |\n|---|---|---|---|\n", runs)
	for _, r := range []*row{ratioRelaxed, committedRel, rawRelaxed, ratioAlways, openP99, groupP99, groupRate, rss, batchRatio,
		proof10k, proof1M, verifyRate, verifyCPU, auditTime, auditCPU, auditRSS, burstGap,
		committedOn, committedOff, treeRatio, treeCPUOn, treeCPUOff, treeCPURatio, ckptWitness, tlogProof1M, tlogProofCPU} {
		fmt.Println(r)
	}
}

// runProofVerify fills a pebble log with n entries in one segment, closes
// it, compacts the store (so the fill's background compactions do not
// share the machine with what is measured) and returns the p99 of 1,000 inclusion proofs; with verify > 0 it also
// verifies the chain of the first verify entries and returns entries/s and
// CPU µs per entry.
func runProofVerify(n, verify int) (p99 time.Duration, rate, cpuPer float64, err error) {
	dir, err := os.MkdirTemp("", "bench-proof")
	if err != nil {
		return 0, 0, 0, err
	}
	defer os.RemoveAll(dir)
	quiet := slog.New(slog.DiscardHandler)
	st := pebblestore.New(pebblestore.WithLogger(quiet))
	l := securelog.New(st, securelog.Options{Logger: quiet})
	ctx := context.Background()
	if err := l.Open(ctx, filepath.Join(dir, "db")); err != nil {
		return 0, 0, 0, err
	}
	defer st.Close()
	evs := make([]securelog.Event, 0, 1000)
	for i := 0; i < n; i++ {
		evs = append(evs, securelog.Event{Stream: "default", EventType: "bench", Severity: wire.Info, Producer: "bench", Payload: payload(300, i)})
		if len(evs) == cap(evs) || i == n-1 {
			if _, err := l.AppendBatch(ctx, evs, nil); err != nil {
				return 0, 0, 0, err
			}
			evs = evs[:0]
		}
	}
	if _, err := l.CloseSegment(ctx, "default"); err != nil {
		return 0, 0, 0, err
	}
	// Measure the log at rest, not the fill's background compactions.
	if err := st.Compact(ctx); err != nil {
		return 0, 0, 0, err
	}
	lat := make([]time.Duration, 0, 1000)
	for i := range 1000 {
		seqno := uint64(i)*7919%uint64(n) + 1
		t0 := time.Now()
		if _, err := l.BuildInclusionProof(ctx, seqno); err != nil {
			return 0, 0, 0, err
		}
		lat = append(lat, time.Since(t0))
	}
	p99 = pct(lat, 99)
	if verify > 0 {
		c0, t0 := cpuTime(), time.Now()
		if err := l.VerifyChain(ctx, "default", 1, uint64(verify)); err != nil {
			return 0, 0, 0, err
		}
		el, cpu := time.Since(t0), cpuTime()-c0
		rate, cpuPer = float64(verify)/el.Seconds(), usPer(cpu, verify)
	}
	return p99, rate, cpuPer, nil
}

// childAudit is the -child audit mode: audits the bundle at path and
// prints "seconds cpuSeconds peakRSSMiB".
func childAudit(path string) error {
	t0, c0 := time.Now(), cpuTime()
	r, err := bundle.Open(path)
	if err != nil {
		return err
	}
	defer r.Close()
	rep, err := bundle.Audit(context.Background(), r, bundle.AuditOptions{})
	if err != nil {
		return err
	}
	if rep.Entries != 1_000_000 {
		return fmt.Errorf("audited %d entries, want 1,000,000", rep.Entries)
	}
	fmt.Printf("%f %f %f\n", time.Since(t0).Seconds(), (cpuTime() - c0).Seconds(), childPeakRSS())
	return nil
}

// runAuditChild audits the bundle in a child process (its own peak RSS).
func runAuditChild(path string) ([3]float64, error) {
	var a [3]float64
	self, err := os.Executable()
	if err != nil {
		return a, err
	}
	cmd := exec.Command(self, "-child", "audit", "-bundle", path)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return a, fmt.Errorf("audit child: %w", err)
	}
	if _, err := fmt.Sscan(strings.TrimSpace(string(out)), &a[0], &a[1], &a[2]); err != nil {
		return a, fmt.Errorf("audit child printed %q: %w", out, err)
	}
	return a, nil
}

// tlogRows are issue 11's pipeline rows of the table.
type tlogRows struct {
	committedOn, committedOff, treeRatio, cpuOn, cpuOff, cpuRatio, ckptWitness *row
}

// tableTlogRuns measures issue 11's pipeline rows after the relaxed closed
// loop (raw is the raw JetStream rate beside it): -tlog-pairs interleaved
// pairs (2 if unset) of closed loops of -tlog-events with the tree on and
// off, each pair's ratio and CPU µs/event a value of the rows; then a
// quarter of the events with up's local witness cosigning each
// checkpoint, whose time-to-checkpointed samples (twice
// -checkpoint-samples) give the p99.
func tableTlogRuns(run int, o options, raw float64, rows tlogRows) error {
	pairs := *tlogPairs
	if pairs <= 0 {
		pairs = 2
	}
	fmt.Printf("run %d: transparency tree on and off, %d interleaved pairs\n", run, pairs)
	ps, err := runTlogPairs(o, pairs, *tlogEvents)
	if err != nil {
		return err
	}
	for _, p := range ps {
		rows.committedOn.add(p.on)
		rows.committedOff.add(p.off)
		rows.treeRatio.add(p.ratio())
		rows.cpuOn.add(p.cpuOn)
		rows.cpuOff.add(p.cpuOff)
		rows.cpuRatio.add(p.cpuOff / p.cpuOn)
	}
	w := o
	w.witness, w.events, w.samples = true, max(o.events/4, o.producers), 2*o.samples
	c0 := cpuTime()
	r, err := runClosed(w)
	if err != nil {
		return fmt.Errorf("closed loop, local witness: %w", err)
	}
	r.raw, r.cpu = raw, cpuTime()-c0
	r.print(fmt.Sprintf("run %d: closed loop, sync always=%v, local tlog-witness", run, o.always), w)
	rows.ckptWitness.add(ms(pct(r.ckpt, 99)))
	return nil
}
